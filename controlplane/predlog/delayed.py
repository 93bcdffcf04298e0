"""Label-joined figures over a slice of time, for judgements that wait for delayed labels.

An experiment or a health check that declares a label delay judges only the predictions old
enough to have their label: those logged at or before `cutoff` (= now - delay). This module
counts, per (model, version, agent id: the agent that shipped the segment), the logged
predictions of a slice (since a moment, of one experiment or of every route), how many are not
due yet (younger than the delay), how many due ones have their current label (`labeled`) and
how many are still without one (`overdue`), and judges the labelled due ones: correct answers
(classifiers), the moments of the absolute error and the sum of squared errors (regressors), so
the caller runs the same tests as on live feedback (a Welch test needs (n, mean, M2)).

The join is `joined.py`'s (the current label of a request is the newest received), over the
recorded segment files of the deployment whose date can hold a row of the slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from controlplane.context import Context
from controlplane.datafiles import files, storage
from controlplane.deployment_reads import find_deployment
from controlplane.predlog.joined import current_labels_sql, log_sql, no_labels_sql
from controlplane.store.models import LabelImportRow, LogSegmentRow
from core.summaries import Moments


@dataclass(frozen=True)
class SliceFigures:
    """One (model, version, agent)'s logged predictions of a slice and what is judged of them."""

    model: str
    version: str
    #: the id of the agent that shipped the segments (compute_slice: the file's path)
    agent: str
    predictions: int
    #: logged after the cutoff: their label is not expected yet
    not_due: int
    #: due (at or before the cutoff) and with a current label: what a judgement uses
    labeled: int
    #: due but still without a label
    overdue: int
    #: classifiers: labelled due predictions that were right
    n_correct: int = 0
    #: regressors: the absolute errors of the labelled due predictions
    abs_error: Moments = field(default_factory=Moments)
    sum_squared_error: float = 0.0

    @property
    def waiting(self) -> int:
        """Predictions without a judged label: not due yet, or due and still unlabelled."""
        return self.not_due + self.overdue

    def merge(self, other: SliceFigures) -> SliceFigures:
        return SliceFigures(
            self.model,
            self.version,
            self.agent,
            self.predictions + other.predictions,
            self.not_due + other.not_due,
            self.labeled + other.labeled,
            self.overdue + other.overdue,
            self.n_correct + other.n_correct,
            self.abs_error.merge(other.abs_error),
            self.sum_squared_error + other.sum_squared_error,
        )


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch (the log's `ts` in DuckDB, without time-zone functions)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1_000_000)


def slice_files(
    ctx: Context, deployment: str, since: datetime, versions: set[tuple[str, str]] | None = None
) -> tuple[dict[Path, str], list[Path]]:
    """The recorded log files that can hold a row logged since `since` (a segment's date is its
    first row's UTC day; a day's margin keeps a segment that began before midnight), of the
    given (model, version)s or all, each with the id of the agent that shipped it, and every
    recorded label file of the deployment."""
    first_day = (since - timedelta(days=1)).strftime("%Y-%m-%d")
    with ctx.db.session() as session:
        find_deployment(session, deployment)
        segments = session.execute(
            select(LogSegmentRow.model, LogSegmentRow.version, LogSegmentRow.path, LogSegmentRow.agent_id)
            .where(LogSegmentRow.deployment == deployment, LogSegmentRow.date >= first_day)
            .order_by(LogSegmentRow.id)
        ).all()
        imports = session.scalars(
            select(LabelImportRow.path)
            .where(LabelImportRow.deployment == deployment, LabelImportRow.path != "")
            .order_by(LabelImportRow.id)
        ).all()
    label_root = files.labels_dir(ctx.config, ctx.artifacts.root)
    # an S3 segment: its cached copy (the caller holds storage.reading() until the query ran)
    wanted = [s for s in segments if versions is None or (s.model, s.version) in versions]
    logs = {storage.local(ctx, s.path): s.agent_id for s in wanted}
    return logs, [label_root / p for p in imports]


def slice_figures(
    ctx: Context,
    deployment: str,
    *,
    since: datetime,
    cutoff: datetime,
    until: datetime | None = None,
    experiment: str | None = None,
    versions: set[tuple[str, str]] | None = None,
) -> list[SliceFigures]:
    """The deployment's predictions logged in [since, until) (until: open), of one experiment
    (its rows carry its name) or all, judged against the labels of those logged at or before
    `cutoff`. NotFound for an unknown deployment."""
    with storage.reading():
        log_files, label_files = slice_files(ctx, deployment, since, versions)
        if not log_files:
            return []
        per_file = compute_slice(
            list(log_files),
            label_files,
            since_us=to_us(since),
            cutoff_us=to_us(cutoff),
            until_us=None if until is None else to_us(until),
            experiment=experiment,
        )
    merged: dict[tuple[str, str, str], SliceFigures] = {}
    for f in per_file:
        agent = log_files.get(Path(f.agent), "")
        key = (f.model, f.version, agent)
        mine = replace(f, agent=agent)
        merged[key] = merged[key].merge(mine) if key in merged else mine
    return [merged[k] for k in sorted(merged)]


def compute_slice(
    log_files: list[Path],
    label_files: list[Path],
    *,
    since_us: int,
    cutoff_us: int,
    until_us: int | None = None,
    experiment: str | None = None,
) -> list[SliceFigures]:
    """The figures over these files per (model, version, file) (the file's path in `agent`)."""
    import duckdb

    con = duckdb.connect(config={"threads": 2})
    try:
        log = log_sql(log_files, filename=True)
        types = {row[0]: str(row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {log}").fetchall()}
        predicted_label = "p.label" if "label" in types else "CAST(NULL AS VARCHAR)"
        predicted_value = "p.value" if types.get("value") == "DOUBLE" else "CAST(NULL AS DOUBLE)"
        truth = current_labels_sql(label_files) if label_files else no_labels_sql()
        where = ["epoch_us(p.ts) >= $since"]
        params: dict[str, object] = {"since": since_us, "cutoff": cutoff_us}
        if until_us is not None:
            where.append("epoch_us(p.ts) < $until")
            params["until"] = until_us
        if experiment is not None:
            where.append("p.experiment = $experiment")
            params["experiment"] = experiment
        rows = con.execute(
            f"""
            WITH truth AS ({truth}),
            joined AS (
                SELECT p.model, p.version, p.filename AS agent,
                       epoch_us(p.ts) <= $cutoff AS due,
                       t.request_id IS NOT NULL AS has_label,
                       CASE WHEN t.truth_label IS NOT NULL AND {predicted_label} IS NOT NULL
                            THEN CAST({predicted_label} = t.truth_label AS BIGINT) END AS correct,
                       CASE WHEN t.truth_value IS NOT NULL THEN abs({predicted_value} - t.truth_value) END AS ae
                FROM {log} p LEFT JOIN truth t ON t.request_id = p.request_id
                WHERE {" AND ".join(where)}
            )
            SELECT model, version, agent, count(*),
                   count(*) FILTER (WHERE NOT due),
                   count(*) FILTER (WHERE due AND has_label),
                   count(*) FILTER (WHERE due AND NOT has_label),
                   coalesce(sum(correct) FILTER (WHERE due), 0),
                   count(ae) FILTER (WHERE due),
                   avg(ae) FILTER (WHERE due),
                   var_pop(ae) FILTER (WHERE due),
                   coalesce(sum(ae * ae) FILTER (WHERE due), 0)
            FROM joined GROUP BY model, version, agent ORDER BY model, version, agent
            """,
            params,
        ).fetchall()
    finally:
        con.close()
    out = []
    for model, version, agent, n, not_due, labeled, overdue, correct, n_ae, mean, var, sse in rows:
        n_ae = int(n_ae)
        moments = Moments(n_ae, float(mean), float(var) * n_ae) if n_ae and mean is not None else Moments()
        out.append(
            SliceFigures(
                model=str(model),
                version=str(version),
                agent=str(agent),
                predictions=int(n),
                not_due=int(not_due),
                labeled=int(labeled),
                overdue=int(overdue),
                n_correct=int(correct),
                abs_error=moments if math.isfinite(moments.mean) else Moments(),
                sum_squared_error=float(sse),
            )
        )
    return out
