"""The prediction log's segment writer: rows in, record files (every field typed out when the
control plane reads them), sealed and moved as they are into the pending directory."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from agent.link import Upward
from agent.logpending import META_KEY, read_info
from agent.predlog import PredictionLog, sampled
from protos import agent_pb2
from runtime.logrecords import SegmentFormat, format_of
from runtime.logsegment import read_table


def collect(sent: list[agent_pb2.AgentMessage]) -> Callable[[Upward], bool]:
    """The link's `send` for a shipper: keeps what it sent as messages (it sends them serialised)."""

    def send(message: Upward) -> bool:
        sent.append(
            message if isinstance(message, agent_pb2.AgentMessage) else agent_pb2.AgentMessage.FromString(message)
        )
        return True

    return send


def read_segment(path: Path, agent: str = "a") -> pa.Table:
    return read_table(path.read_bytes(), agent)


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
    assert info.path.suffix == ".wal" and format_of(info.path.read_bytes()) is SegmentFormat.RECORDS
    table = read_segment(info.path, "agent-a")
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
    assert read_info(info.path) == info  # what a restart reads back: the file's footer


def test_request_ids_and_keys_of_any_text_read_back_as_they_were(tmp_path: Path) -> None:
    """Ids and keys travel as UTF-8 lines (cheaper than JSON on the request path); a list of which
    one holds a newline, an empty one, or text beyond the BMP reads back the same."""
    log = PredictionLog(tmp_path, "a")
    odd = ["plain", "two\nlines", "", "\U0001f600 é", "last"]
    plain = ["", "\U0001f600", "x", "é", "y"]
    _append(log, 5, request_ids=odd, keys=plain)
    _append(log, 5, request_ids=plain, keys=odd)
    [info] = log.flush()
    rows = read_segment(info.path).to_pylist()
    assert [r["request_id"] for r in rows] == odd + plain
    assert [r["routing_key"] for r in rows] == plain + odd


def test_the_agent_never_loads_pyarrow_to_log_to_a_local_sink(tmp_path: Path) -> None:
    """Appending, flushing and recovering are numpy and the file system only: pyarrow (about
    60 MB of an agent's memory) loads only to convert for an S3 sink or an older control plane."""
    import subprocess
    import sys

    script = f"""
import sys
from pathlib import Path
import numpy as np
from agent.predlog import PredictionLog
log = PredictionLog(Path({str(tmp_path)!r}), "a")
log.append("d", "m", "v1", "champion", "", {{"x": np.zeros((3, 2))}}, np.zeros(3, dtype=np.int64),
           ("no", "yes"), None, None, 0.001, ["a", "b", "c"], "")
[info] = log.flush()
assert info.rows == 3
PredictionLog(Path({str(tmp_path)!r}), "a").recover()
print(sorted(m for m in sys.modules if m.split(".")[0] == "pyarrow"))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


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
    """The bound counts the open files and the pending ones: rows that find it full are dropped and
    counted, and rows are kept again once a segment is acknowledged (removed)."""
    probe = PredictionLog(tmp_path / "probe", "a")
    _append(probe, 5)
    [one] = probe.flush()
    log = PredictionLog(tmp_path / "log", "a", buffer_bytes=one.size + 100)
    _append(log, 5)
    _append(log, 5)  # the open file holds the first 5 rows: no room for 5 more
    assert log.dropped_rows == 5
    [first] = log.flush()
    assert first.rows == 5
    _append(log, 5)  # the pending directory is full now
    assert log.flush() == [] and log.dropped_rows == 10
    log.remove(first)
    _append(log, 5)
    assert len(log.flush()) == 1


def test_a_temporary_file_is_never_pending_and_a_stale_one_is_removed_at_start(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "a")
    _append(log, 3)
    [info] = log.flush()
    being_written = tmp_path / "pending" / f".tmp-{info.segment_id}9.wal"
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
    shipper = LogShipper(log, collect(sent), lambda: stream[0], max_in_flight=2)
    assert asyncio.run(shipper.ship()) == 2 and asyncio.run(shipper.ship()) == 0  # bounded in flight
    first, second = (m.log_segment for m in sent)
    assert (first.version.version, second.version.version, first.rows) == ("v1", "v2", 3)
    assert read_table(first.data, "a").num_rows == 3
    shipper.on_ack(agent_pb2.LogSegmentAck(segment_id=first.segment_id, ok=True))
    assert [p.version for p in log.pending()] == ["v2", "v3"]  # deleted only after its ack
    assert asyncio.run(shipper.ship()) == 1 and sent[-1].log_segment.version.version == "v3"
    stream[0] = 2  # a new stream: nothing is in flight any more, both are sent again
    assert asyncio.run(shipper.ship()) == 2
    shipper.on_ack(agent_pb2.LogSegmentAck(segment_id=second.segment_id, ok=False, error="refused"))
    assert [p.version for p in log.pending()] == ["v3"] and log.dropped_rows == 3
    tiny = LogShipper(log, collect(sent), lambda: 1, max_send_bytes=10)
    assert asyncio.run(tiny.ship()) == 0 and log.pending() == [] and log.dropped_rows == 6


def test_rows_kept_before_a_crash_are_recovered_with_the_same_segment_ids(tmp_path: Path) -> None:
    """A SIGKILL between an answer and the flush leaves the open record files: a restart makes
    them segments, with the values they had and without a torn last record, and the same files
    recovered twice (a crash during the first recovery) give the same segment ids: never doubled
    upstream."""
    crashed = PredictionLog(tmp_path, "a")
    _append(crashed, 4)
    _append(crashed, 3, version="v2", values=np.arange(3, dtype=np.float64), labels=None, probabilities=None)
    leftovers = sorted((tmp_path / "journal").glob("*.wal"))
    assert len(leftovers) == 2  # one open file per version
    with open(leftovers[0], "ab") as torn:  # the process died in the middle of a record
        torn.write(b"\x40\x00\x00\x00\x00\x00")
    kept = {p: p.read_bytes() for p in leftovers}
    # The process is gone (no flush, no stop): the next run finds the files and makes segments.
    restarted = PredictionLog(tmp_path, "a")
    restarted.recover()
    infos = restarted.pending()
    assert sorted((i.version, i.rows) for i in infos) == [("v1", 4), ("v2", 3)]
    assert not any(p.exists() for p in leftovers) and restarted.written_rows == 7
    v1 = read_segment(next(i.path for i in infos if i.version == "v1")).to_pylist()
    assert [r["request_id"] for r in v1] == [f"r{i}" for i in range(4)]
    assert [r["label"] for r in v1] == ["no", "yes", "no", "yes"] and v1[2]["in_plan"] == "p2"
    assert math.isnan(v1[0]["in_x"][1]) and v1[1]["in_count"] == 2**40 + 1
    v2 = read_segment(next(i.path for i in infos if i.version == "v2")).to_pylist()
    assert [r["value"] for r in v2] == [0.0, 1.0, 2.0]
    # The same files again (the agent died after making the segments, before deleting them).
    for path, data in kept.items():
        path.write_bytes(data)
    again = PredictionLog(tmp_path, "a")
    again.recover()
    assert sorted(i.segment_id for i in again.pending()) == sorted(i.segment_id for i in infos)
    assert again.pending_bytes == sum(i.size for i in again.pending())


def test_a_flush_moves_the_open_files_as_they_are_and_a_clean_stop_leaves_none_open(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "a")
    _append(log, 2)
    [open_file] = (tmp_path / "journal").iterdir()
    appended = open_file.read_bytes()
    [info] = log.flush()
    assert info.segment_id == open_file.stem and not open_file.exists()
    assert info.path.read_bytes().startswith(appended)  # the same file, its footer added
    _append(log, 1)
    log.stop()
    assert list((tmp_path / "journal").iterdir()) == [] and [p.rows for p in log.pending()] == [2, 1]


def test_a_disk_that_cannot_take_rows_drops_and_counts_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An append that fails (ENOSPC) drops and counts its rows and leaves the file ending with a
    whole record; a segment that cannot be sealed drops its rows, and the other versions of the
    flush are still written."""
    import agent.logjournal

    log = PredictionLog(tmp_path, "a")
    _append(log, 3)
    writev = agent.logjournal.os.writev

    def half_then_full(fd: int, buffers: list[bytes | memoryview]) -> int:
        agent.logjournal.os.write(fd, bytes(buffers[0])[:7])  # part of the record reaches the disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(agent.logjournal.os, "writev", half_then_full)
    _append(log, 4)
    assert log.dropped_rows == 4
    monkeypatch.setattr(agent.logjournal.os, "writev", writev)
    _append(log, 2, version="v2")
    seal = PredictionLog._seal

    def full_for_v2(self: PredictionLog, f: agent.logjournal.OpenFile) -> object:
        if f.version == "v2":
            raise OSError(28, "No space left on device")
        return seal(self, f)

    monkeypatch.setattr(PredictionLog, "_seal", full_for_v2)
    [written] = log.flush()
    assert (written.version, written.rows) == ("v1", 3) and log.dropped_rows == 6
    assert [r["request_id"] for r in read_segment(written.path).to_pylist()] == ["r0", "r1", "r2"]
    assert list((tmp_path / "journal").iterdir()) == []


def test_a_batch_larger_than_a_segment_is_split_across_segments(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "a", segment_bytes=8_000)
    _append(log, 300)
    written = log.flush()
    assert len(written) > 2 and all(i.size <= 8_000 for i in written)
    ids = [r for i in written for r in read_segment(i.path).column("request_id").to_pylist()]
    assert ids == [f"r{i}" for i in range(300)]


def test_an_earlier_releases_arrow_and_parquet_segments_are_still_shipped(tmp_path: Path) -> None:
    """Pending segments an earlier release wrote (Arrow IPC, Parquet) are found at start (their
    schema's metadata) and shipped as they are."""
    import asyncio

    import pyarrow.parquet as pq

    from agent.logship import LogShipper
    from runtime.logsegment import write_arrow

    log = PredictionLog(tmp_path / "new", "a")
    _append(log, 3)
    _append(log, 2, version="v2")
    infos = {i.version: i for i in log.flush()}
    pending = tmp_path / "old" / "pending"
    pending.mkdir(parents=True)
    old = {}
    for version, suffix in (("v1", ".arrow"), ("v2", ".parquet")):
        info = infos[version]
        meta = {"deployment": "d", "model": "m", "version": version, "date": info.date, "rows": info.rows}
        table = read_segment(info.path).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
        old[version] = pending / f"{info.segment_id}{suffix}"
        if suffix == ".arrow":
            with open(old[version], "wb") as handle:
                write_arrow(table, handle)
        else:
            pq.write_table(table, old[version])
    restarted = PredictionLog(tmp_path / "old", "a")
    found = {i.version: i for i in restarted.pending()}
    assert {v: (i.path, i.rows) for v, i in found.items()} == {"v1": (old["v1"], 3), "v2": (old["v2"], 2)}
    assert restarted.pending_bytes == sum(p.stat().st_size for p in old.values())
    sent: list[agent_pb2.AgentMessage] = []
    shipper = LogShipper(restarted, collect(sent), lambda: 1)
    assert asyncio.run(shipper.ship()) == 2
    assert {m.log_segment.version.version: m.log_segment.data for m in sent} == {
        v: p.read_bytes() for v, p in old.items()
    }


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


def test_a_control_plane_of_an_earlier_release_is_sent_arrow_or_parquet(tmp_path: Path) -> None:
    """Its HelloAck does not say it takes record files: the shipper converts each to what it
    takes, Arrow IPC or the log's Parquet file (same rows), so an agent upgraded before its control
    plane loses nothing; a segment that cannot be converted is dropped and counted instead of
    blocking the ones behind it."""
    import asyncio

    from agent.logship import LogShipper
    from runtime.logrecords import END, MAGIC

    log = PredictionLog(tmp_path, "a")
    _append(log, 3)
    [info] = log.flush()
    _append(log, 2, version="v2")
    [broken] = log.flush()
    broken.path.write_bytes(MAGIC + bytes(64) + END)
    written = read_segment(info.path)
    for accepted, kind in ((SegmentFormat.PARQUET, SegmentFormat.PARQUET), (SegmentFormat.ARROW, SegmentFormat.ARROW)):
        sent: list[agent_pb2.AgentMessage] = []
        shipper = LogShipper(log, collect(sent), lambda: 1, accepts=lambda a=accepted: a)
        assert asyncio.run(shipper.ship()) == 1
        data = sent[0].log_segment.data
        assert format_of(data) is kind
        got = read_table(data)
        assert got.drop_columns(["in_x"]).equals(written.drop_columns(["in_x"]))  # in_x holds a NaN
        flat = [t["in_x"].combine_chunks().flatten().to_numpy() for t in (got, written)]
        assert np.array_equal(*flat, equal_nan=True)
        assert log.dropped_rows == 2 and [p.segment_id for p in log.pending()] == [info.segment_id]
    sent = []
    shipper = LogShipper(log, collect(sent), lambda: 2)  # an upgraded control plane
    assert asyncio.run(shipper.ship()) == 1 and sent[-1].log_segment.data == info.path.read_bytes()


def test_an_earlier_releases_journal_of_mixed_versions_is_recovered_one_segment_per_version(tmp_path: Path) -> None:
    """The previous release journaled every kept answer to one file per flush, whatever its
    version: a file of it left by an agent killed before its upgrade becomes one segment per
    version, all its rows there, and a torn last record is cut off."""
    from runtime.logread import scan
    from runtime.logrecords import MAGIC, encode

    probe = PredictionLog(tmp_path / "probe", "a")
    for version, n in (("v1", 3), ("v2", 2), ("v1", 1)):
        _append(probe, n, version=version)
    entries = []
    for f in sorted((tmp_path / "probe" / "journal").glob("*.wal")):
        entries += scan(f.read_bytes())[0]
    entries.sort(key=lambda e: e.ts)  # the order they were answered in, as one file held them
    assert [e.version for e in entries] == ["v1", "v2", "v1"]
    journal = tmp_path / "agent" / "journal"
    journal.mkdir(parents=True)
    old = journal / "01000000000000000000-abcdef01.wal"
    old.write_bytes(MAGIC + b"".join(b"".join(bytes(b) for b in encode(e).buffers) for e in entries) + b"\x10\x00")
    log = PredictionLog(tmp_path / "agent", "a")
    log.recover()
    found = {i.version: i for i in log.pending()}
    assert {v: i.rows for v, i in found.items()} == {"v1": 4, "v2": 2} and not old.exists()
    assert read_segment(found["v1"].path).column("request_id").to_pylist() == ["r0", "r1", "r2", "r0"]
