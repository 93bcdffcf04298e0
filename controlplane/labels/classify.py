"""Judge an import's rows against the labels already stored and the prediction log, in DuckDB
over the Parquet files (only files recorded in SQL are given here).

The rows of an import apply in the order sent. A row equal to the request's current label (the
previous row for that request in this import, else the newest stored one) is a duplicate: counted,
not stored. A different one replaces it (counted as replaced). Of the rows taken for one request
the last is written; readers take a request's label with the newest `received_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Judged:
    """The counts of an import and the rows to write (label file columns, one per request)."""

    accepted: int
    duplicates: int
    replaced: int
    unknown_ids: int
    late: int
    to_write: pa.Table


def files_literal(paths: list[Path]) -> str:
    """A DuckDB list literal of file names (quotes doubled)."""
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def judge(
    incoming: pa.Table,
    *,
    label_files: list[Path],
    log_files: list[Path],
    import_id: str,
    received_at: datetime,
    late_after_seconds: float,
) -> Judged:
    """Count and pick the rows of `incoming` (columns row, request_id, label, value, event_time)."""
    import duckdb
    import pyarrow as pa

    # Times stay microseconds since the epoch inside DuckDB (time zones need its ICU extension).
    con = duckdb.connect(config={"threads": 2})
    try:
        con.register("incoming", incoming)
        if label_files:
            # The current label of each request this import names: the newest stored one.
            con.execute(
                f"""
                CREATE TEMP TABLE stored AS
                SELECT request_id, label, value FROM read_parquet({files_literal(label_files)}, union_by_name = true)
                WHERE request_id IN (SELECT request_id FROM incoming)
                QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY received_at DESC, import_id DESC) = 1
                """
            )
        else:
            con.execute("CREATE TEMP TABLE stored (request_id VARCHAR, label VARCHAR, value DOUBLE)")
        if log_files:
            # When each request was first predicted (a request and its shadow share an id).
            con.execute(
                f"""
                CREATE TEMP TABLE predicted AS
                SELECT request_id, min(epoch_us(ts)) AS ts_us
                FROM read_parquet({files_literal(log_files)}, union_by_name = true)
                WHERE request_id IN (SELECT request_id FROM incoming)
                GROUP BY request_id
                """
            )
        else:
            con.execute("CREATE TEMP TABLE predicted (request_id VARCHAR, ts_us BIGINT)")
        con.execute(
            """
            CREATE TEMP TABLE judged AS
            WITH ordered AS (
                SELECT i.*,
                       row_number() OVER (PARTITION BY i.request_id ORDER BY i.row) AS nth,
                       lag(i.label) OVER (PARTITION BY i.request_id ORDER BY i.row) AS previous_label,
                       lag(i.value) OVER (PARTITION BY i.request_id ORDER BY i.row) AS previous_value
                FROM incoming i
            ), compared AS (
                SELECT o.*,
                       CASE WHEN o.nth = 1 THEN s.request_id IS NOT NULL ELSE true END AS had_label,
                       CASE WHEN o.nth = 1 THEN s.label ELSE o.previous_label END AS current_label,
                       CASE WHEN o.nth = 1 THEN s.value ELSE o.previous_value END AS current_value
                FROM ordered o LEFT JOIN stored s ON s.request_id = o.request_id
            )
            SELECT c.row, c.request_id, c.label, c.value, c.event_time,
                   c.had_label AND c.label IS NOT DISTINCT FROM c.current_label
                       AND c.value IS NOT DISTINCT FROM c.current_value AS duplicate,
                   c.had_label AS had_label,
                   p.ts_us AS predicted_us
            FROM compared c LEFT JOIN predicted p ON p.request_id = c.request_id
            """
        )
        received_us = int(received_at.timestamp() * 1_000_000)
        late_us = int(late_after_seconds * 1_000_000)
        counts = con.execute(
            """
            SELECT count(*) FILTER (WHERE NOT duplicate),
                   count(*) FILTER (WHERE duplicate),
                   count(*) FILTER (WHERE NOT duplicate AND had_label),
                   count(*) FILTER (WHERE NOT duplicate AND predicted_us IS NULL),
                   count(*) FILTER (WHERE NOT duplicate AND predicted_us IS NOT NULL
                                    AND coalesce(epoch_us(event_time), ?) - predicted_us > ?)
            FROM judged
            """,
            [received_us, late_us],
        ).fetchall()[0]
        kept = con.sql(
            """
            SELECT request_id, label, value, event_time FROM judged WHERE NOT duplicate
            QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY row DESC) = 1
            ORDER BY row
            """
        ).to_arrow_table()
    finally:
        con.close()
    accepted, duplicates, replaced, unknown, late = (int(c or 0) for c in counts)
    n = kept.num_rows
    to_write = kept.append_column(
        "received_at", pa.array([received_at] * n, pa.timestamp("us", tz="UTC"))
    ).append_column("import_id", pa.array([import_id] * n, pa.string()))
    return Judged(accepted, duplicates, replaced, unknown, late, to_write)
