"""The control plane's segment store: durable write + record, refusals that change nothing, and
a resend acknowledged without a second write; an agent's record file lands as the log's Parquet
file (and so do an earlier release's Arrow IPC segments), the first releases' Parquet segments as
they are. Runs on SQLite and PostgreSQL (the `ctx` fixture)."""

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
from runtime.logsegment import read_table, write_arrow

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
    data = info.path.read_bytes()
    return Segment(AGENT, info.segment_id, deployment, "m", version, info.date, info.rows, data, agent_name="agent-a")


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
    stored_rows, sent_rows = read_table(stored.path.read_bytes()), read_table(segment.data, "agent-a")
    assert stored_rows.equals(sent_rows) and set(stored_rows.column("agent").to_pylist()) == {"agent-a"}
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
        ({"data": b"none of the three formats"}, "not a record, Parquet or Arrow IPC file"),
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
    """What an agent of the previous release sends (an Arrow IPC file, written here by pyarrow's
    own writer with zstd buffers) is stored as the log's Parquet file: zstd, the same columns and
    types (the [rows, 2] input a fixed-size list), the same rows and metadata."""
    segment = written_segment(tmp_path)
    table = read_table(segment.data, "agent-a")
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
    table = read_table(segment.data, "agent-a")
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
    sink = io.BytesIO()
    write_arrow(read_table(segment.data, "agent-a"), sink)
    data = bytearray(sink.getvalue())
    assert data[:6] == b"ARROW1"
    footer = int.from_bytes(data[-10:-6], "little")  # the footer's length, before the closing magic
    data[8 : len(data) - 10 - footer] = bytes(len(data) - 18 - footer)
    with pytest.raises(InvalidInput, match="is not a readable Arrow IPC file"):
        receive_segment(ctx, dataclasses.replace(segment, data=bytes(data)))
    assert count_rows(ctx) == 0
    assert not log_dir(ctx).exists() or not any(p.is_file() for p in log_dir(ctx).rglob("*"))


def _records(*heads: dict[str, object], body: bytes = b"", footer: dict[str, object] | None = None) -> bytes:
    """A record file made by hand: what a hostile or broken agent could send."""
    import json
    import struct

    from runtime.logrecords import END, MAGIC

    out = MAGIC
    for head in heads:
        raw = json.dumps(head).encode()
        out += struct.pack("<II", len(raw), len(body)) + raw + body
    meta = json.dumps(footer or {"deployment": "d", "model": "m", "version": "1", "date": "2026-12-07", "rows": 4})
    return out + meta.encode() + struct.pack("<I", len(meta)) + END


GOOD_HEAD: dict[str, object] = {
    "ts": 1.8e9, "deployment": "d", "model": "m", "version": "1", "role": "champion", "experiment": "",
    "feeds": {"x": {"dtype": "<f4", "shape": [4, 2]}}, "labels": {"dtype": "<i8", "shape": [4]}, "classes": None,
    "values": None, "probabilities": None, "latency_ms": 1.0, "request_ids": ["a", "b", "c", "d"], "keys": "",
    "rows": 4,
}  # fmt: skip
GOOD_BODY = np.arange(8, dtype="<f4").tobytes() + np.zeros(4, dtype="<i8").tobytes()


@pytest.mark.parametrize(
    ("head", "body", "message"),
    [
        ({}, GOOD_BODY, None),  # the file as made: accepted (the cases below change one thing)
        ({"feeds": {"x": {"dtype": "|O", "shape": [4, 2]}}}, GOOD_BODY, "dtype |O is not a little-endian"),
        ({"feeds": {"x": {"dtype": ">f4", "shape": [4, 2]}}}, GOOD_BODY, "dtype >f4 is not a little-endian"),
        ({"feeds": {"x": {"dtype": "not a dtype", "shape": [4, 2]}}}, GOOD_BODY, "is not a dtype"),
        ({"feeds": {"x": {"dtype": "<f4", "shape": [4, 2_000_000]}}}, GOOD_BODY, "go past the record's body"),
        ({"feeds": {"x": {"dtype": "<f4", "shape": [3, 2]}}}, GOOD_BODY, "has 3 rows, the record says 4"),
        ({"feeds": {"x": {"dtype": "<f4", "shape": [4, -2]}}}, GOOD_BODY, "non-negative whole numbers"),
        ({}, GOOD_BODY + b"extra", "bytes that nothing claims"),
        ({"request_ids": ["a"]}, GOOD_BODY, "1 request ids for 4 rows"),
        ({"keys": [1, 2, 3, 4]}, GOOD_BODY, "routing keys is not a list of text"),
        ({"request_ids": {"lines": 4, "bytes": 7}}, GOOD_BODY + b"a\nb\nc\nd", None),
        ({"request_ids": {"lines": 4, "bytes": 7}}, GOOD_BODY + b"a\nb\nc\n\xff", "request ids are not UTF-8"),
        ({"request_ids": {"lines": 4, "bytes": 70}}, GOOD_BODY + b"a\nb\nc\nd", "go past the record's body"),
        ({"request_ids": {"lines": 3, "bytes": 7}}, GOOD_BODY + b"a\nb\nc\nd", "4 lines, the header says 3"),
        ({"request_ids": {"lines": 2, "bytes": 3}}, GOOD_BODY + b"a\nb", "2 request ids for 4 rows"),
        ({"request_ids": {"lines": True, "bytes": 3}}, GOOD_BODY + b"a\nb", "are not non-negative whole numbers"),
        ({"ts": "yesterday"}, GOOD_BODY, "'ts' is not a finite number"),
        ({"labels": None}, GOOD_BODY[:32], "the record has no output"),
        ({"version": "2"}, GOOD_BODY, "a record of d/m:2 in a file of d/m:1"),
        ({"feeds": {"x": {"values": ["a", 1, None, {}], "shape": [4]}}}, GOOD_BODY[32:], "values may be text"),
        ({"feeds": {"x": {"values": ["a", 1, None, "b"], "shape": [4]}}}, GOOD_BODY[32:], "do not make one table"),
    ],
)
def test_a_hostile_record_file_is_refused_with_what_is_wrong_and_changes_nothing(
    ctx: Context, tmp_path: Path, head: dict[str, object], body: bytes, message: str | None
) -> None:
    """An agent's record file is untrusted input: every field, dtype, shape and length is checked
    before a row is built (no pickle, no object arrays from bytes, no read past the body)."""
    segment = Segment(AGENT, "00000000000000000001-0a", "d", "m", "1", "2026-12-07", 4, b"", agent_name="agent-a")
    segment = dataclasses.replace(segment, data=_records({**GOOD_HEAD, **head}, body=body))
    if message is None:
        stored = receive_segment(ctx, segment)
        assert pq.read_table(stored.path).column("request_id").to_pylist() == ["a", "b", "c", "d"]
        return
    with pytest.raises(InvalidInput, match=message.replace("|", r"\|").replace("(", r"\(")):
        receive_segment(ctx, segment)
    assert count_rows(ctx) == 0
    assert not log_dir(ctx).exists() or not any(p.is_file() for p in log_dir(ctx).rglob("*"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_records(GOOD_HEAD, body=GOOD_BODY, footer={"rows": 4}), "'deployment' is not text"),
        (
            _records(GOOD_HEAD, body=GOOD_BODY, footer={**dict.fromkeys(("deployment", "model"), "d"), "rows": 5}),
            "'version' is not text",
        ),
        (
            _records(
                GOOD_HEAD,
                body=GOOD_BODY,
                footer={"deployment": "d", "model": "m", "version": "1", "date": "2026-12-07", "rows": 5},
            ),
            "the footer says 5 rows and the records hold 4",
        ),
        (_records(GOOD_HEAD, body=GOOD_BODY)[:-20] + b"\xff\xff\xff\x7f" + b"SLLOGJE\n", "footer's length"),
        (_records(GOOD_HEAD, body=GOOD_BODY[:-3]), "past the end of the file|stray bytes|past the record's body"),
        (_records({**GOOD_HEAD, "rows": 4}, body=GOOD_BODY).replace(b'"rows": 4}', b'"rows": 4 '), "not JSON"),
    ],
)
def test_a_damaged_record_file_is_refused(ctx: Context, data: bytes, message: str) -> None:
    segment = Segment(AGENT, "00000000000000000001-0b", "d", "m", "1", "2026-12-07", 4, data, agent_name="agent-a")
    with pytest.raises(InvalidInput, match=message):
        receive_segment(ctx, segment)
    assert count_rows(ctx) == 0
