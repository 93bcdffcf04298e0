"""The agent's cache directory and its buffer of unacknowledged metric reports."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from agent.cache import AgentCache, ArtifactMismatch
from agent.reports import SEQ_BLOCK, ReportBuffer
from protos import agent_pb2


def test_agent_id_is_created_once_and_kept(tmp_path: Path) -> None:
    first = AgentCache(tmp_path / "c").agent_id()
    assert first == AgentCache(tmp_path / "c").agent_id()
    assert first != AgentCache(tmp_path / "other").agent_id()


def test_artifacts_are_verified_before_they_get_their_name(tmp_path: Path) -> None:
    cache = AgentCache(tmp_path)
    data = os.urandom(5000)
    sha = hashlib.sha256(data).hexdigest()
    download = cache.begin_download(sha)
    download.write(data[:100])
    download.write(data[100:])
    assert download.commit().read_bytes() == data
    assert cache.has(sha) and cache.cached_sha256s() == [sha]

    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ArtifactMismatch):
        cache.put(data, wrong)
    assert not cache.has(wrong)
    assert [p.name for p in cache.artifacts_dir.iterdir()] == [sha]  # no temporary file left


def test_verify_drops_a_corrupted_cached_file(tmp_path: Path) -> None:
    cache = AgentCache(tmp_path)
    data = b"model bytes"
    sha = hashlib.sha256(data).hexdigest()
    cache.put(data, sha)
    assert cache.verify(sha)
    cache.artifact_path(sha).write_bytes(b"tampered")
    assert not cache.verify(sha)
    assert not cache.has(sha)


def test_snapshot_round_trip_and_corrupt_file(tmp_path: Path) -> None:
    cache = AgentCache(tmp_path)
    assert cache.load_snapshot() is None
    snapshot = agent_pb2.Snapshot(
        snapshot_id=7, deployments=[agent_pb2.DeploymentSnapshot(name="d", generation=3, salt="s")]
    )
    cache.save_snapshot(snapshot)
    assert AgentCache(tmp_path).load_snapshot() == snapshot
    cache.snapshot_path.write_bytes(b"\xff\xff not a protobuf")
    assert cache.load_snapshot() is None


def test_garbage_collection_keeps_used_and_recent_artifacts(tmp_path: Path) -> None:
    cache = AgentCache(tmp_path)
    shas = []
    for i in range(6):
        data = f"artifact {i}".encode()
        sha = hashlib.sha256(data).hexdigest()
        path = cache.put(data, sha)
        os.utime(path, (time.time() - 100 + i, time.time() - 100 + i))
        shas.append(sha)
    removed = cache.collect_garbage(in_use=[shas[0]], keep=2)
    assert set(removed) == set(shas[1:4])
    assert set(cache.cached_sha256s()) == {shas[0], shas[4], shas[5]}


def report() -> agent_pb2.MetricReport:
    return agent_pb2.MetricReport(window_seconds=1.0)


def test_reports_get_increasing_seqs_and_leave_only_when_acked() -> None:
    buffer = ReportBuffer("agent-1", capacity=10, first_seq=100)
    sent = [buffer.add(report()) for _ in range(3)]
    assert [r.seq for r in sent] == [100, 101, 102]
    assert all(r.agent_id == "agent-1" for r in sent)
    assert [r.seq for r in buffer.to_send(resend_after=10)] == [100, 101, 102]
    for r in sent:
        buffer.mark_sent(r.seq, at=1000.0)
    assert buffer.to_send(resend_after=10, now=1005.0) == []
    assert [r.seq for r in buffer.to_send(resend_after=10, now=1011.0)] == [100, 101, 102]
    assert buffer.ack(101) and not buffer.ack(101)
    buffer.forget_sent()  # a reconnect: everything unacked goes again, in order
    assert [r.seq for r in buffer.to_send(resend_after=10, now=1005.0)] == [100, 102]


def test_overflow_drops_the_oldest_and_says_so() -> None:
    buffer = ReportBuffer("a", capacity=3, first_seq=1)
    reports = [buffer.add(report()) for _ in range(5)]
    assert buffer.pending_seqs() == [3, 4, 5]
    assert buffer.dropped == 2
    assert [r.dropped_reports for r in reports] == [0, 0, 0, 1, 2]


def test_seqs_never_repeat_across_restarts_even_when_the_clock_steps_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11, #6: numbers came from the clock, so after a clock step back (VM restore) fresh
    reports reused old numbers and the control plane dropped them as replays (and ACKed them)."""
    cache = AgentCache(tmp_path)
    first = ReportBuffer("a", reserve=cache.reserve_seqs)
    before = [first.add(report()).seq for _ in range(3)]
    assert before == sorted(before) and len(set(before)) == 3

    real_ns = time.time_ns()
    monkeypatch.setattr(time, "time_ns", lambda: real_ns - 3600 * 10**9)  # an hour back
    restarted = ReportBuffer("a", reserve=AgentCache(tmp_path).reserve_seqs)
    after = [restarted.add(report()).seq for _ in range(3)]
    assert min(after) > max(before)


def test_a_new_block_is_reserved_before_the_last_one_runs_out(tmp_path: Path) -> None:
    cache = AgentCache(tmp_path)
    buffer = ReportBuffer("a", capacity=2, reserve=cache.reserve_seqs)
    seqs = [buffer.add(report()).seq for _ in range(SEQ_BLOCK + 5)]
    assert seqs == list(range(seqs[0], seqs[0] + SEQ_BLOCK + 5))  # no gap inside a run
    mark = int((tmp_path / "report_seq").read_text())
    assert mark == seqs[0] + 2 * SEQ_BLOCK  # written before any number of the second block was used
    assert ReportBuffer("a", reserve=AgentCache(tmp_path).reserve_seqs).add(report()).seq == mark


def test_a_buffer_needs_one_source_of_numbers() -> None:
    with pytest.raises(ValueError, match="first_seq or reserve"):
        ReportBuffer("a")


def test_reports_kept_by_an_agent_before_the_spool_are_read_whole(tmp_path: Path) -> None:
    """reports.pb of an older agent's graceful stop: length-prefixed; a torn tail keeps the whole entries."""
    cache = AgentCache(tmp_path)
    buffer = ReportBuffer("a", first_seq=1)
    data = b"".join(
        len(b).to_bytes(4, "big") + b for b in (buffer.add(report()).SerializeToString() for _ in range(2))
    )
    cache.reports_path.write_bytes(data[:-3])
    assert [r.seq for r in cache.saved_reports()] == [1]
    cache.forget_saved_reports()
    assert cache.saved_reports() == []
