"""The prediction log's segment writer: rows in, Arrow IPC segments with every field typed out."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from agent.logformat import read_info
from agent.predlog import META_KEY, Entry, PredictionLog, SegmentInfo, sampled
from protos import agent_pb2
from runtime.logsegment import SegmentFormat, format_of, read_table


def read_segment(path: Path) -> pa.Table:
    return read_table(path.read_bytes())


def _append(log: PredictionLog, n: int, deployment: str = "d", version: str = "v1", **kw: object) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 3))
    x[0, 1] = np.nan
    feeds = {
        "x": x,
        "plan": np.array([f"p{i}" for i in range(n)], dtype=object),
        "count": np.arange(n, dtype=np.int64) + 2**40,
        "flag": np.arange(n) % 2 == 0,
    }
    args: dict[str, object] = {
        "labels": np.arange(n, dtype=np.int64) % 2,
        "classes": ("no", "yes"),
        "values": None,
        "probabilities": np.tile(np.array([[0.25, 0.75]], dtype=np.float32), (n, 1)),
        "latency_seconds": 0.002,
        "request_ids": [f"r{i}" for i in range(n)],
        "keys": [f"k{i}" for i in range(n)],
    }
    args.update(kw)
    log.append(deployment, "m", version, "champion", "exp", feeds, **args)  # type: ignore[arg-type]


def test_a_segment_holds_every_field_with_its_own_type(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "agent-a")
    _append(log, 5)
    [info] = log.flush()
    assert (info.deployment, info.model, info.version, info.rows) == ("d", "m", "v1", 5)
    assert info.path.parent == tmp_path / "pending" and not list(info.path.parent.glob(".tmp-*"))
    table = read_segment(info.path)
    schema = table.schema
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("in_x").type == pa.list_(pa.float64(), 3)
    assert schema.field("in_plan").type == pa.string()
    assert schema.field("in_count").type == pa.int64()
    assert schema.field("in_flag").type == pa.bool_()
    assert schema.field("label").type == pa.string()
    assert schema.field("probabilities").type == pa.list_(pa.float32())
    rows = table.to_pylist()
    assert [r["request_id"] for r in rows] == [f"r{i}" for i in range(5)]
    assert [r["routing_key"] for r in rows] == [f"k{i}" for i in range(5)]
    assert [r["label"] for r in rows] == ["no", "yes", "no", "yes", "no"]
    assert rows[0]["in_count"] == 2**40 and rows[1]["in_flag"] is False and rows[3]["in_plan"] == "p3"
    assert math.isnan(rows[0]["in_x"][1])  # a missing value stays NaN, as the model got it
    assert rows[0]["probabilities"] == [0.25, 0.75]
    assert {r["agent"] for r in rows} == {"agent-a"} and {r["experiment"] for r in rows} == {"exp"}
    assert rows[0]["latency_ms"] == pytest.approx(2.0)
    meta = json.loads(table.schema.metadata[META_KEY])
    assert meta["rows"] == 5 and meta["date"] == info.date
    assert read_info(info.path) == info


def test_one_segment_per_version_and_regressor_values(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "a")
    _append(log, 3, version="v1")
    _append(log, 4, version="v2", labels=None, classes=None, probabilities=None, values=np.arange(4.0))
    _append(log, 2, version="v1", request_ids=[], keys="same-key")
    written = {i.version: i for i in log.flush()}
    assert written["v1"].rows == 5 and written["v2"].rows == 4
    v1 = read_segment(written["v1"].path).to_pylist()
    assert [r["request_id"] for r in v1] == ["r0", "r1", "r2", None, None]
    assert [r["routing_key"] for r in v1][-2:] == ["same-key", "same-key"]
    v2 = read_segment(written["v2"].path)
    assert v2.column("value").to_pylist() == [0.0, 1.0, 2.0, 3.0] and "label" not in v2.column_names
    assert [p.segment_id for p in log.pending()] == sorted(i.segment_id for i in written.values())


def test_sampling_is_by_request_id_and_off_logs_nothing(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "a")
    snapshot = agent_pb2.Snapshot(
        deployments=[
            agent_pb2.DeploymentSnapshot(name="half", log_sample_rate=0.5),
            agent_pb2.DeploymentSnapshot(name="off", log_sample_rate=0.0),
        ]
    )
    log.configure(snapshot)
    _append(log, 200, deployment="half")
    _append(log, 10, deployment="off")
    [info] = log.flush()
    ids = read_segment(info.path).column("request_id").to_pylist()
    assert ids == [f"r{i}" for i in range(200) if sampled(f"r{i}", 0.5)]
    assert 60 < len(ids) < 140
    assert sampled("x", 1.0) and not sampled("x", 0.0)


def test_a_full_buffer_drops_and_counts(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "a", max_buffer_rows=8)
    _append(log, 5)
    _append(log, 5)  # beyond the rows waiting in memory
    assert log.dropped_rows == 5
    [first] = log.flush()
    full = PredictionLog(tmp_path, "a", buffer_bytes=first.size)  # the pending dir is full now
    _append(full, 5)
    assert full.flush() == [] and full.dropped_rows == 5
    full.remove(first)
    _append(full, 5)
    assert len(full.flush()) == 1


def test_a_temporary_file_is_never_pending_and_a_stale_one_is_removed_at_start(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "a")
    _append(log, 3)
    [info] = log.flush()
    being_written = tmp_path / "pending" / f".tmp-{info.segment_id}9.parquet"
    being_written.write_bytes(info.path.read_bytes())  # complete, but not renamed yet
    assert [p.segment_id for p in log.pending()] == [info.segment_id]
    restarted = PredictionLog(tmp_path, "a")
    assert not being_written.exists() and restarted.pending_bytes == info.size


def test_the_shipper_sends_oldest_first_bounded_and_deletes_only_on_ack(tmp_path: Path) -> None:
    import asyncio

    from agent.logship import LogShipper

    log = PredictionLog(tmp_path, "a")
    for version in ("v1", "v2", "v3"):
        _append(log, 3, version=version)
        log.flush()
    sent: list[agent_pb2.AgentMessage] = []
    stream = [1]
    shipper = LogShipper(log, lambda m: sent.append(m) is None, lambda: stream[0], max_in_flight=2)
    assert asyncio.run(shipper.ship()) == 2 and asyncio.run(shipper.ship()) == 0  # bounded in flight
    first, second = (m.log_segment for m in sent)
    assert (first.version.version, second.version.version, first.rows) == ("v1", "v2", 3)
    assert read_table(first.data).num_rows == 3
    shipper.on_ack(agent_pb2.LogSegmentAck(segment_id=first.segment_id, ok=True))
    assert [p.version for p in log.pending()] == ["v2", "v3"]  # deleted only after its ack
    assert asyncio.run(shipper.ship()) == 1 and sent[-1].log_segment.version.version == "v3"
    stream[0] = 2  # a new stream: nothing is in flight any more, both are sent again
    assert asyncio.run(shipper.ship()) == 2
    shipper.on_ack(agent_pb2.LogSegmentAck(segment_id=second.segment_id, ok=False, error="refused"))
    assert [p.version for p in log.pending()] == ["v3"] and log.dropped_rows == 3
    tiny = LogShipper(log, lambda m: sent.append(m) is None, lambda: 1, max_send_bytes=10)
    assert asyncio.run(tiny.ship()) == 0 and log.pending() == [] and log.dropped_rows == 6


def test_rows_kept_before_a_crash_are_recovered_from_the_journal_with_the_same_segment_ids(tmp_path: Path) -> None:
    """A SIGKILL between an answer and the flush lost the rows waiting in memory; now a restart
    writes them from the journal, with the values they had, and a journal written twice (a crash
    after its segments, before its deletion) gives the same segment ids: never doubled upstream."""
    crashed = PredictionLog(tmp_path, "a")
    _append(crashed, 4)
    _append(crashed, 3, version="v2", values=np.arange(3, dtype=np.float64), labels=None, probabilities=None)
    with open(crashed.journal.path, "ab") as journal:  # the process died in the middle of a record
        journal.write(b"\x40\x00\x00\x00\x00\x00")
    [leftover] = sorted((tmp_path / "journal").glob("*.wal"))
    kept = leftover.read_bytes()
    # The process is gone (no flush, no stop): the next run finds the journal and writes it.
    restarted = PredictionLog(tmp_path, "a")
    restarted.recover()
    infos = restarted.pending()
    assert sorted((i.version, i.rows) for i in infos) == [("v1", 4), ("v2", 3)]
    assert not leftover.exists() and restarted.written_rows == 7
    v1 = read_segment(next(i.path for i in infos if i.version == "v1")).to_pylist()
    assert [r["request_id"] for r in v1] == [f"r{i}" for i in range(4)]
    assert [r["label"] for r in v1] == ["no", "yes", "no", "yes"] and v1[2]["in_plan"] == "p2"
    assert math.isnan(v1[0]["in_x"][1]) and v1[1]["in_count"] == 2**40 + 1
    v2 = read_segment(next(i.path for i in infos if i.version == "v2")).to_pylist()
    assert [r["value"] for r in v2] == [0.0, 1.0, 2.0]
    # The same journal again (the agent died after writing its segments, before deleting it).
    leftover.write_bytes(kept)
    again = PredictionLog(tmp_path, "a")
    again.recover()
    assert sorted(i.segment_id for i in again.pending()) == sorted(i.segment_id for i in infos)
    assert again.pending_bytes == sum(i.size for i in again.pending())


def test_a_flush_empties_the_journal_and_a_clean_stop_leaves_none(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "a")
    _append(log, 2)
    first = log.journal.path
    [info] = log.flush()
    assert info.segment_id.startswith(first.stem) and not first.exists()
    assert [p.name for p in (tmp_path / "journal").iterdir()] == [log.journal.path.name]
    log.stop()
    assert list((tmp_path / "journal").iterdir()) == []


def test_a_segment_the_disk_cannot_hold_is_dropped_and_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails (ENOSPC) drops and counts that segment's rows; the other groups of the
    flush are still written (before, the error ended the flush and lost them all uncounted)."""
    log = PredictionLog(tmp_path, "a")
    _append(log, 3)
    _append(log, 2, version="v2")
    write = PredictionLog._write_segment

    def full_for_v1(self: PredictionLog, first: Entry, table: pa.Table, segment_id: str) -> SegmentInfo:
        if first.version == "v1":
            raise OSError(28, "No space left on device")
        return write(self, first, table, segment_id)

    monkeypatch.setattr(PredictionLog, "_write_segment", full_for_v1)
    [written] = log.flush()
    assert written.version == "v2" and log.dropped_rows == 3


def test_segments_are_arrow_files_and_an_earlier_releases_parquet_ones_are_still_shipped(tmp_path: Path) -> None:
    """This release writes Arrow IPC files (the control plane makes them Parquet); a Parquet
    segment an earlier release left in the pending directory is found at start and shipped as it
    is, and a journal written again after the upgrade replaces it under the same id, not beside it."""
    import asyncio

    import pyarrow.parquet as pq

    from agent.logship import LogShipper

    log = PredictionLog(tmp_path, "a")
    _append(log, 3)
    [info] = log.flush()
    data = info.path.read_bytes()
    assert info.path.suffix == ".arrow" and format_of(data) is SegmentFormat.ARROW
    # What the previous release wrote for the same rows: a Parquet file, metadata and all.
    old = info.path.with_suffix(".parquet")
    pq.write_table(read_table(data), old, compression="zstd")
    info.path.unlink()
    restarted = PredictionLog(tmp_path, "a")
    [found] = restarted.pending()
    assert (found.path, found.rows, found.version) == (old, 3, "v1") and restarted.pending_bytes == old.stat().st_size
    sent: list[agent_pb2.AgentMessage] = []
    shipper = LogShipper(restarted, lambda m: sent.append(m) is None, lambda: 1)
    assert asyncio.run(shipper.ship()) == 1 and sent[0].log_segment.data == old.read_bytes()
    # The same segment id written again from a journal (as Arrow): one pending file, counted once.
    again = restarted._write_segment(
        Entry(0, "d", "m", "v1", "champion", "", {}, None, None, None, None, 0, [], "", 3),
        read_table(data),
        found.segment_id,
    )
    assert [p.path for p in restarted.pending()] == [again.path] and not old.exists()
    assert restarted.pending_bytes == again.size


def test_a_journal_record_of_more_buffers_than_one_writev_takes_is_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record is its header and a view of each array (one `os.writev`); beyond the buffers one
    call takes (a model of many inputs) it is joined and written whole, and reads back the same."""
    import agent.logjournal

    monkeypatch.setattr(agent.logjournal, "_MAX_BUFFERS", 2)
    crashed = PredictionLog(tmp_path, "a")
    _append(crashed, 4)
    restarted = PredictionLog(tmp_path, "a")
    restarted.recover()
    [info] = restarted.pending()
    rows = read_segment(info.path).to_pylist()
    assert [r["request_id"] for r in rows] == ["r0", "r1", "r2", "r3"] and rows[3]["in_count"] == 2**40 + 3
    assert rows[2]["in_flag"] is True and rows[1]["probabilities"] == [0.25, 0.75]


def test_a_control_plane_of_an_earlier_release_is_sent_parquet(tmp_path: Path) -> None:
    """Its HelloAck does not say it takes Arrow segments: the shipper converts each to the log's
    Parquet file (same rows), so an agent upgraded before its control plane loses nothing; a
    segment that cannot be read is dropped and counted instead of blocking the ones behind it."""
    import asyncio

    import pyarrow.parquet as pq

    from agent.logship import LogShipper

    log = PredictionLog(tmp_path, "a")
    _append(log, 3)
    [info] = log.flush()
    _append(log, 2, version="v2")
    [broken] = log.flush()
    broken.path.write_bytes(b"ARROW1\x00\x00" + bytes(64) + b"ARROW1")
    sent: list[agent_pb2.AgentMessage] = []
    accepted = [False]
    shipper = LogShipper(log, lambda m: sent.append(m) is None, lambda: 1, arrow_accepted=lambda: accepted[0])
    assert asyncio.run(shipper.ship()) == 1
    data = sent[0].log_segment.data
    assert format_of(data) is SegmentFormat.PARQUET
    got, written = pq.read_table(pa.BufferReader(data)), read_segment(info.path)
    assert got.drop_columns(["in_x"]).equals(written.drop_columns(["in_x"]))  # in_x holds a NaN
    flat = [t["in_x"].combine_chunks().flatten().to_numpy() for t in (got, written)]
    assert np.array_equal(*flat, equal_nan=True)
    assert log.dropped_rows == 2 and [p.segment_id for p in log.pending()] == [info.segment_id]
    accepted[0] = True  # a new stream to an upgraded control plane: the Arrow file as it is
    shipper = LogShipper(log, lambda m: sent.append(m) is None, lambda: 2, arrow_accepted=lambda: accepted[0])
    assert asyncio.run(shipper.ship()) == 1 and sent[-1].log_segment.data == info.path.read_bytes()
