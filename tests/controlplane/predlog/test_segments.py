"""The control plane's segment store: durable write + record, refusals that change nothing, and
a resend acknowledged without a second write; an agent's Arrow IPC segment lands as the log's
Parquet file, an earlier release's Parquet segment as it is. Runs on SQLite and PostgreSQL (the
`ctx` fixture)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from agent.predlog import PredictionLog
from controlplane.context import Context
from controlplane.predlog.segments import Segment, log_dir, receive_segment, recorded_files
from controlplane.store.models import LogSegmentRow
from core.errors import InvalidInput, PermissionDenied
from runtime.logsegment import read_table

AGENT = "0123456789abcdef"
HIVE = ds.partitioning(
    pa.schema([("deployment", pa.string()), ("date", pa.string()), ("version", pa.string())]), flavor="hive"
)


def written_segment(tmp_path: Path, rows: int = 4, deployment: str = "d", version: str = "1") -> Segment:
    log = PredictionLog(tmp_path / "agent", "agent-a")
    feeds = {"x": np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)}
    log.append(
        deployment, "m", version, "champion", "", feeds, np.zeros(rows, dtype=np.int64), None, None, None,
        0.001, [f"r{i}" for i in range(rows)], "",
    )  # fmt: skip
    [info] = log.flush()
    return Segment(AGENT, info.segment_id, deployment, "m", version, info.date, info.rows, info.path.read_bytes())


def count_rows(ctx: Context) -> int:
    with ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(LogSegmentRow)) or 0)


def test_a_segment_is_stored_in_the_hive_layout_and_recorded(ctx: Context, tmp_path: Path) -> None:
    segment = written_segment(tmp_path)
    stored = receive_segment(ctx, segment, frozenset({("d", "m", "1")}))
    assert stored.new
    root = log_dir(ctx)
    assert (
        stored.path
        == root / "deployment=d" / f"date={segment.date}" / "version=1" / f"{AGENT}-{segment.segment_id}.parquet"
    )
    stored_rows, sent_rows = read_table(stored.path.read_bytes()), read_table(segment.data)
    assert stored_rows.equals(sent_rows) and stored_rows.schema.metadata == sent_rows.schema.metadata
    assert not list(stored.path.parent.glob(".tmp-*"))
    assert recorded_files(ctx) == [stored.path] and recorded_files(ctx, "other") == []
    table = ds.dataset(root, format="parquet", partitioning=HIVE).to_table()
    assert table.num_rows == 4 and set(table.column("version").to_pylist()) == {"1"}


def test_a_resend_is_acknowledged_without_a_second_write(ctx: Context, tmp_path: Path) -> None:
    segment = written_segment(tmp_path)
    first = receive_segment(ctx, segment)
    again = receive_segment(ctx, segment)
    assert first.new and not again.new and again.path == first.path
    assert count_rows(ctx) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": b"PAR1 not really parquet PAR1"}, "not a readable Parquet file"),
        ({"data": b"ARROW1\x00\x00 not really arrow ARROW1"}, "not a readable Arrow IPC file"),
        ({"data": b"neither of the two formats"}, "neither a Parquet nor an Arrow IPC file"),
        ({"rows": 5}, "says 5 rows and holds 4"),
        ({"version": "2"}, "not every row has version '2'"),
        ({"segment_id": "../../etc"}, "segment id"),
        ({"date": "yesterday"}, "YYYY-MM-DD"),
        ({"deployment": "../x"}, "deployment name"),
    ],
)
def test_a_bad_segment_is_refused_and_changes_nothing(
    ctx: Context, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    segment = dataclasses.replace(written_segment(tmp_path), **change)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        receive_segment(ctx, segment)
    assert count_rows(ctx) == 0
    assert not log_dir(ctx).exists() or not any(p.is_file() for p in log_dir(ctx).rglob("*"))


def test_an_oversized_segment_is_refused(ctx: Context, tmp_path: Path) -> None:
    ctx.config.log.max_segment_bytes = 100
    with pytest.raises(InvalidInput, match=r"the limit is 100 \(\[log\] max_segment_bytes\)"):
        receive_segment(ctx, written_segment(tmp_path))
    assert count_rows(ctx) == 0


def test_a_file_without_the_log_columns_is_refused(ctx: Context, tmp_path: Path) -> None:
    segment = written_segment(tmp_path)
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"deployment": ["d"] * 4, "x": [1, 2, 3, 4]}), path)
    with pytest.raises(InvalidInput, match="has no column 'ts'"):
        receive_segment(ctx, dataclasses.replace(segment, data=path.read_bytes()))


def test_an_agent_may_log_only_routes_it_was_sent(ctx: Context, tmp_path: Path) -> None:
    with pytest.raises(PermissionDenied, match="was not sent m:1 of deployment 'd'"):
        receive_segment(ctx, written_segment(tmp_path), frozenset({("d", "m", "2")}))
    assert count_rows(ctx) == 0


def test_an_arrow_ipc_segment_lands_as_parquet_with_the_same_rows_and_columns(ctx: Context, tmp_path: Path) -> None:
    """What an agent sends now (an Arrow IPC file, written here by pyarrow's own writer with zstd
    buffers, as `runtime.logsegment` does) is stored as the log's Parquet file: zstd, the same
    columns and types (the [rows, 2] input a fixed-size list), the same rows and metadata."""
    segment = written_segment(tmp_path)
    table = read_table(segment.data)
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    segment = dataclasses.replace(segment, data=sink.getvalue())
    stored = receive_segment(ctx, segment)
    assert stored.path.suffix == ".parquet" and stored.path.read_bytes()[:4] == b"PAR1"
    parquet = pq.ParquetFile(stored.path)
    assert parquet.schema_arrow.field("in_x").type == pa.list_(pa.float32(), 2)
    assert {parquet.metadata.row_group(0).column(i).compression for i in range(parquet.metadata.num_columns)} == {
        "ZSTD"
    }
    assert parquet.read().equals(table) and parquet.schema_arrow.metadata == table.schema.metadata
    with ctx.db.session() as session:
        row = session.scalars(select(LogSegmentRow)).one()
        assert (row.rows, row.bytes) == (4, stored.path.stat().st_size)  # the Parquet file's size
    # The readers of the log read it as before (the hive layout, Parquet).
    found = ds.dataset(log_dir(ctx), format="parquet", partitioning=HIVE).to_table()
    assert sorted(found.column("request_id").to_pylist()) == ["r0", "r1", "r2", "r3"]


def test_a_parquet_segment_of_an_earlier_release_is_stored_as_it_is(ctx: Context, tmp_path: Path) -> None:
    """An agent of the previous release (or its pending segments written before an upgrade)
    sends Parquet: accepted, and its bytes are the stored file."""
    segment = written_segment(tmp_path)
    table = read_table(segment.data)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    segment = dataclasses.replace(segment, data=sink.getvalue())
    stored = receive_segment(ctx, segment)
    assert stored.new and stored.path.read_bytes() == segment.data
    assert pq.read_table(stored.path).equals(table)


def test_a_corrupt_arrow_segment_is_refused_and_nothing_is_written(ctx: Context, tmp_path: Path) -> None:
    """A damaged Arrow file (its record batch zeroed, its header and footer intact, so it still
    looks like one) is refused with the reason; no file, no temporary file, no record."""
    segment = written_segment(tmp_path)
    data = bytearray(segment.data)
    assert data[:6] == b"ARROW1"
    footer = int.from_bytes(data[-10:-6], "little")  # the footer's length, before the closing magic
    data[8 : len(data) - 10 - footer] = bytes(len(data) - 18 - footer)
    with pytest.raises(InvalidInput, match="is not a readable Arrow IPC file"):
        receive_segment(ctx, dataclasses.replace(segment, data=bytes(data)))
    assert count_rows(ctx) == 0
    assert not log_dir(ctx).exists() or not any(p.is_file() for p in log_dir(ctx).rglob("*"))
