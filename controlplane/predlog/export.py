"""Datasets: the prediction log's rows with their current labels, as one Parquet file.

`sluice dataset export` (the training set for retraining) asks for a deployment's logged rows,
optionally of one version, within a time range, only those with a label. DuckDB joins the
recorded segment files with the current labels (the newest import wins, as everywhere) and
writes the result straight to a temporary Parquet file in the data directory, which the
servicer streams and then deletes: no row goes through Python.

Columns: every column of the log (ts, deployment, model, version, role, experiment,
request_id, routing_key, agent, latency_ms, the `in_` features, the outputs label / value /
probabilities) followed by the truth: `true_label`, `true_value`, `label_event_time`,
`label_received_at` (null for a row without a label).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from controlplane.context import Context
from controlplane.datafiles import storage
from controlplane.datafiles.files import data_dir
from controlplane.labels.classify import files_literal
from controlplane.predlog.joined import log_sql, recorded_sources
from core.errors import InvalidInput

TRUTH_COLUMNS = ("true_label", "true_value", "label_event_time", "label_received_at")


@dataclass(frozen=True)
class DatasetQuery:
    """What to export. Times are UTC; `until` is exclusive."""

    deployment: str
    since: datetime | None = None
    until: datetime | None = None
    version: tuple[str, str] | None = None  # (model, version)
    labeled_only: bool = False

    def check(self) -> None:
        """InvalidInput for a range that selects nothing by construction."""
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InvalidInput(f"since ({self.since.isoformat()}) must be before until ({self.until.isoformat()})")


@dataclass(frozen=True)
class ExportedFile:
    """A temporary Parquet file (the caller deletes it) and what it holds."""

    path: Path
    rows: int
    size: int


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def export_dataset(ctx: Context, query: DatasetQuery) -> ExportedFile:
    """Write the rows `query` selects to a new temporary Parquet file. NotFound for an unknown
    deployment, InvalidInput for since >= until."""
    import duckdb
    import pyarrow.parquet as pq

    query.check()
    sources = recorded_sources(ctx, query.deployment, per_hour=False)
    workdir = data_dir(ctx.artifacts.root) / "exports"
    workdir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".export-", suffix=".parquet", dir=workdir)
    os.close(handle)
    path = Path(name)
    try:
        if not sources.log_paths:
            _write_empty(path)
        else:
            conditions, parameters = _conditions(query)
            truth = (
                f"""SELECT request_id, label AS true_label, value AS true_value,
                           event_time AS label_event_time, received_at AS label_received_at
                    FROM read_parquet({files_literal(sources.label_files)}, union_by_name = true)
                    QUALIFY row_number() OVER (PARTITION BY request_id
                                               ORDER BY received_at DESC, import_id DESC) = 1"""
                if sources.label_files
                else """SELECT CAST(NULL AS VARCHAR) AS request_id, CAST(NULL AS VARCHAR) AS true_label,
                               CAST(NULL AS DOUBLE) AS true_value,
                               CAST(NULL AS TIMESTAMPTZ) AS label_event_time,
                               CAST(NULL AS TIMESTAMPTZ) AS label_received_at WHERE false"""
            )
            join = "JOIN" if query.labeled_only else "LEFT JOIN"
            where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
            with storage.reading():  # no S3 copy is evicted before the query reads it
                log_files = sources.log_files(ctx)
                con = duckdb.connect(config={"threads": 2})
                try:
                    con.execute(
                        f"""
                        COPY (
                            WITH truth AS ({truth})
                            SELECT p.*, t.true_label, t.true_value, t.label_event_time, t.label_received_at
                            FROM {log_sql(log_files)} p {join} truth t ON t.request_id = p.request_id
                            {where}
                            ORDER BY p.ts, p.request_id
                        ) TO '{str(path).replace("'", "''")}' (FORMAT parquet, COMPRESSION zstd)
                        """,
                        parameters,
                    )
                finally:
                    con.close()
        rows = pq.read_metadata(path).num_rows
        return ExportedFile(path, rows, path.stat().st_size)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _conditions(query: DatasetQuery) -> tuple[list[str], list[object]]:
    """The WHERE clauses and their parameters. Times compare as microseconds since the epoch
    (DuckDB's time-zone functions need its ICU extension)."""
    conditions: list[str] = []
    parameters: list[object] = []
    if query.since is not None:
        conditions.append("epoch_us(p.ts) >= ?")
        parameters.append(_micros(query.since))
    if query.until is not None:
        conditions.append("epoch_us(p.ts) < ?")
        parameters.append(_micros(query.until))
    if query.version is not None:
        conditions.append("p.model = ? AND p.version = ?")
        parameters.extend(query.version)
    return conditions, parameters


def _write_empty(path: Path) -> None:
    """A deployment that logged nothing: a file of the log's fixed columns and the truth's, no row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from controlplane.predlog.segments import REQUIRED

    fields = [pa.field(name, kind) for name, kind in REQUIRED.items()]
    fields += [
        pa.field("true_label", pa.string()),
        pa.field("true_value", pa.float64()),
        pa.field("label_event_time", pa.timestamp("us", tz="UTC")),
        pa.field("label_received_at", pa.timestamp("us", tz="UTC")),
    ]
    pq.write_table(pa.schema(fields).empty_table(), path)
