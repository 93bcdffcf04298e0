"""Label-joined metrics: the prediction log joined with the label store's current labels.

For each (model, version) of a deployment (and optionally each UTC hour of the prediction) it
counts the logged predictions, those with a label and those still waiting for one, and judges
the labelled ones: accuracy for a classifier (the logged `label` equals the truth's `label` as
text), MAE and RMSE for a regressor (the logged scalar `value` against the truth's `value`).

The join runs in DuckDB over the files recorded in SQL only (`log_segments`, `label_imports`),
so a file without its row is never read. The result depends on nothing but that set of files
(a file never changes once recorded), so each segment's partial totals are kept: a
repeated `sluice status` scans nothing, and a new segment or import rescans only the new segments
and those holding a request that the new import names.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from controlplane.context import Context
from controlplane.datafiles import files, storage
from controlplane.deployment_reads import find_deployment
from controlplane.labels.classify import files_literal
from controlplane.predlog.segments import log_dir
from controlplane.store.models import LabelImportRow, LogSegmentRow

HOUR_US = 3_600_000_000
#: how many (deployment, files) results are kept; each is a handful of numbers per version
CACHE_ENTRIES = 128


@dataclass(frozen=True)
class JoinedFigures:
    """The label-joined figures of one version (over one hour bucket, or over the whole log).
    A figure that does not apply (accuracy of a regressor) or has no labelled row is NaN."""

    model: str
    version: str
    #: start of the UTC hour, microseconds since the epoch; None for the whole log
    hour_us: int | None
    predictions: int
    labeled: int
    waiting: int
    accuracy: float = math.nan
    mae: float = math.nan
    rmse: float = math.nan


@dataclass(frozen=True)
class RecordedSources:
    """The recorded files of one deployment and the ids that identify that set."""

    #: as recorded: paths under the log dir, or s3:// URIs (see `log_files`)
    log_paths: list[str]
    label_files: list[Path]
    key: tuple[str, str, bool, tuple[str, ...], tuple[str, ...]]

    def log_files(self, ctx: Context) -> list[Path]:
        """Local files of the segments (an S3 segment: its cached copy, fetched if needed; call it
        inside `storage.reading()` so no copy is evicted before the query reads it)."""
        return [storage.local(ctx, path) for path in self.log_paths]


#: one segment's partial totals: (model, version, hour_us) -> predictions, labeled, correct,
#: judged (rows with a correct/incorrect verdict), sum |error|, sum error², errors (rows with one)
Partial = dict[tuple[str, str, int | None], tuple[int, int, float, int, float, float, int]]


@dataclass
class _State:
    """What the last call of one (log dir, deployment, per-hour) computed: each recorded
    segment's partial totals, the imports they were judged against, and the combined result."""

    partials: dict[str, Partial]
    imports: tuple[str, ...]
    result: list[JoinedFigures]


_states: OrderedDict[tuple[str, str, bool], _State] = OrderedDict()
_cache_lock = threading.Lock()


def recorded_sources(ctx: Context, deployment: str, per_hour: bool) -> RecordedSources:
    """The deployment's recorded segment and label files (NotFound for an unknown deployment)."""
    log_root = log_dir(ctx)
    label_root = files.labels_dir(ctx.config, ctx.artifacts.root)
    with ctx.db.session() as session:
        find_deployment(session, deployment)
        segments = session.execute(
            select(LogSegmentRow.id, LogSegmentRow.path)
            .where(LogSegmentRow.deployment == deployment, LogSegmentRow.path != "")  # "": purged
            .order_by(LogSegmentRow.id)
        ).all()
        imports = session.execute(
            select(LabelImportRow.id, LabelImportRow.path)
            .where(LabelImportRow.deployment == deployment, LabelImportRow.path != "")
            .order_by(LabelImportRow.id)
        ).all()
    # paths too: a purge rewrites a segment or label file under a new name (same id, other rows)
    key = (
        str(log_root),
        deployment,
        per_hour,
        tuple(f"{s.id}:{s.path}" for s in segments),
        tuple(f"{i.id}:{i.path}" for i in imports),
    )
    return RecordedSources([s.path for s in segments], [label_root / i.path for i in imports], key)


def joined_metrics(ctx: Context, deployment: str, *, per_hour: bool = False) -> list[JoinedFigures]:
    """The deployment's label-joined figures per version (and per hour when `per_hour`), ordered
    by model, version and hour. Empty when nothing is logged. NotFound for an unknown deployment.

    Incremental: each recorded segment's partial totals are kept; a call recomputes only the new
    segments and those holding a request id that a new import names (whose current label may
    have changed: a replaced label replaces, it does not add), then adds the partials up. A
    segment or import that left the record (purged) recomputes everything."""
    sources = recorded_sources(ctx, deployment, per_hour)
    if not sources.log_paths:
        return []
    state_key = (sources.key[0], deployment, per_hour)
    # a segment's key is "id:path": a purge rewrites a file under a new name (same id, other rows),
    # so a rewritten segment is a new one and the old one left the record
    segment_ids, import_ids = sources.key[3], sources.key[4]
    with _cache_lock:
        state = _states.get(state_key)
        if state is not None:
            _states.move_to_end(state_key)
    if state is not None and state.imports == import_ids and set(state.partials) == set(segment_ids):
        return state.result  # nothing resolved: no S3 segment fetched
    with storage.reading():
        paths = dict(zip(segment_ids, sources.log_files(ctx), strict=True))
        labels = dict(zip(import_ids, sources.label_files, strict=True))
        result, partials = update(state, paths, labels, per_hour)
    with _cache_lock:
        _states[state_key] = _State(partials, import_ids, result)
        while len(_states) > CACHE_ENTRIES:
            _states.popitem(last=False)
    return result


def update(
    state: _State | None, segments: dict[str, Path], imports: dict[str, Path], per_hour: bool
) -> tuple[list[JoinedFigures], dict[str, Partial]]:
    """The figures and per-segment partials after `state` (None: from scratch) for these recorded
    segments and imports (what `joined_metrics` and the bench run)."""
    label_files = list(imports.values())
    if state is None or not set(state.imports) <= set(imports) or not set(state.partials) <= set(segments):
        partials: dict[str, Partial] = {}
        redo = set(segments)
    else:
        partials = dict(state.partials)
        redo = set(segments) - set(partials)
        new_imports = [path for i, path in imports.items() if i not in state.imports]
        if new_imports and partials:
            redo |= touched_segments({s: segments[s] for s in partials}, new_imports)
    if redo:
        partials.update(compute_partials({s: segments[s] for s in redo}, label_files, per_hour=per_hour))
    return combine(partials), partials


def touched_segments(segments: dict[str, Path], label_files: list[Path]) -> set[str]:
    """The segments holding a request id that these label files name."""
    import duckdb

    by_path = {str(p): s for s, p in segments.items()}
    con = duckdb.connect(config={"threads": 2})
    try:
        rows = con.execute(
            f"""
            SELECT DISTINCT p.filename FROM {log_sql(list(segments.values()), filename=True)} p
            WHERE p.request_id IN (
                SELECT request_id FROM read_parquet({files_literal(label_files)}, union_by_name = true))
            """
        ).fetchall()
    finally:
        con.close()
    return {by_path[str(name)] for (name,) in rows}


def compute_partials(segments: dict[str, Path], label_files: list[Path], *, per_hour: bool) -> dict[str, Partial]:
    """Each segment's partial totals against the current labels of these label files."""
    import duckdb

    by_path = {str(p): s for s, p in segments.items()}
    out: dict[str, Partial] = {s: {} for s in segments}
    con = duckdb.connect(config={"threads": 2})
    try:
        log = log_sql(list(segments.values()), filename=True)
        types = _column_types(con, log)
        predicted_label = "p.label" if "label" in types else "CAST(NULL AS VARCHAR)"
        predicted_value = "p.value" if types.get("value") == "DOUBLE" else "CAST(NULL AS DOUBLE)"
        truth = current_labels_sql(label_files) if label_files else no_labels_sql()
        hour = f"(epoch_us(p.ts) // {HOUR_US}) * {HOUR_US}" if per_hour else "CAST(NULL AS BIGINT)"
        rows = con.execute(
            f"""
            WITH truth AS ({truth}),
            joined AS (
                SELECT p.filename, p.model, p.version, {hour} AS hour_us,
                       t.request_id IS NOT NULL AS has_label,
                       CASE WHEN t.truth_label IS NOT NULL AND {predicted_label} IS NOT NULL
                            THEN CAST({predicted_label} = t.truth_label AS DOUBLE) END AS correct,
                       CASE WHEN t.truth_value IS NOT NULL THEN {predicted_value} - t.truth_value END AS error
                FROM {log} p LEFT JOIN truth t ON t.request_id = p.request_id
            )
            SELECT filename, model, version, hour_us, count(*), count(*) FILTER (WHERE has_label),
                   coalesce(sum(correct), 0), count(correct), coalesce(sum(abs(error)), 0),
                   coalesce(sum(error * error), 0), count(error)
            FROM joined GROUP BY filename, model, version, hour_us
            """
        ).fetchall()
    finally:
        con.close()
    for name, model, version, hour_us, n, labeled, correct, judged, abs_sum, sq_sum, errors in rows:
        key = (str(model), str(version), None if hour_us is None else int(hour_us))
        out[by_path[str(name)]][key] = (
            int(n),
            int(labeled),
            float(correct),
            int(judged),
            float(abs_sum),
            float(sq_sum),
            int(errors),
        )
    return out


def combine(partials: dict[str, Partial]) -> list[JoinedFigures]:
    """The partials of every segment added up into figures per version (and hour)."""
    totals: dict[tuple[str, str, int | None], list[float]] = {}
    for partial in partials.values():
        for key, values in partial.items():
            total = totals.setdefault(key, [0, 0, 0.0, 0, 0.0, 0.0, 0])
            for i, v in enumerate(values):
                total[i] += v
    out = []
    for (model, version, hour_us), t in sorted(totals.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0)):
        n, labeled, correct, judged, abs_sum, sq_sum, errors = t
        out.append(
            JoinedFigures(
                model=model,
                version=version,
                hour_us=hour_us,
                predictions=int(n),
                labeled=int(labeled),
                waiting=int(n) - int(labeled),
                accuracy=correct / judged if judged else math.nan,
                mae=abs_sum / errors if errors else math.nan,
                rmse=math.sqrt(sq_sum / errors) if errors else math.nan,
            )
        )
    return out


def _column_types(con: object, relation_sql: str) -> dict[str, str]:
    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    return {row[0]: str(row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {relation_sql}").fetchall()}


def current_labels_sql(label_files: list[Path]) -> str:
    """A query of each labelled request's current label (the newest `received_at` wins, as
    `labels.store.current_labels`), columns request_id, truth_label, truth_value."""
    return f"""
        SELECT request_id, label AS truth_label, value AS truth_value
        FROM read_parquet({files_literal(label_files)}, union_by_name = true)
        QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY received_at DESC, import_id DESC) = 1
    """


def no_labels_sql() -> str:
    """`current_labels_sql`'s columns and no row (a deployment without a label file yet)."""
    return (
        "SELECT CAST(NULL AS VARCHAR) AS request_id, CAST(NULL AS VARCHAR) AS truth_label, "
        "CAST(NULL AS DOUBLE) AS truth_value WHERE false"
    )


def log_sql(log_files: list[Path], *, filename: bool = False) -> str:
    """The recorded segments as one relation (the files' own columns; hive partition values are
    not read, the files carry deployment and version as text); with `filename`, a column
    `filename` holds each row's file."""
    extra = ", filename = true" if filename else ""
    return f"read_parquet({files_literal(log_files)}, union_by_name = true, hive_partitioning = false{extra})"


def compute(log_files: list[Path], label_files: list[Path], *, per_hour: bool = False) -> list[JoinedFigures]:
    """The figures over these files (no cache; what `joined_metrics` and the bench run)."""
    import duckdb

    con = duckdb.connect(config={"threads": 2})
    try:
        log = log_sql(log_files)
        types = _column_types(con, log)
        # A classifier's log has `label`, a regressor's `value` (a multi-output regressor's is a
        # list: not judged here). A column no file has is taken as null.
        predicted_label = "p.label" if "label" in types else "CAST(NULL AS VARCHAR)"
        predicted_value = "p.value" if types.get("value") == "DOUBLE" else "CAST(NULL AS DOUBLE)"
        truth = current_labels_sql(label_files) if label_files else no_labels_sql()
        hour = f"(epoch_us(p.ts) // {HOUR_US}) * {HOUR_US}" if per_hour else "CAST(NULL AS BIGINT)"
        rows = con.execute(
            f"""
            WITH truth AS ({truth}),
            joined AS (
                SELECT p.model, p.version, {hour} AS hour_us,
                       t.request_id IS NOT NULL AS has_label,
                       CASE WHEN t.truth_label IS NOT NULL AND {predicted_label} IS NOT NULL
                            THEN CAST({predicted_label} = t.truth_label AS DOUBLE) END AS correct,
                       CASE WHEN t.truth_value IS NOT NULL THEN {predicted_value} - t.truth_value END AS error
                FROM {log} p LEFT JOIN truth t ON t.request_id = p.request_id
            )
            SELECT model, version, hour_us, count(*), count(*) FILTER (WHERE has_label),
                   avg(correct), avg(abs(error)), sqrt(avg(error * error))
            FROM joined GROUP BY model, version, hour_us ORDER BY model, version, hour_us
            """
        ).fetchall()
    finally:
        con.close()
    return [
        JoinedFigures(
            model=str(model),
            version=str(version),
            hour_us=None if hour_us is None else int(hour_us),
            predictions=int(n),
            labeled=int(labeled),
            waiting=int(n) - int(labeled),
            accuracy=_number(accuracy),
            mae=_number(mae),
            rmse=_number(rmse),
        )
        for model, version, hour_us, n, labeled, accuracy, mae, rmse in rows
    ]


def _number(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]
