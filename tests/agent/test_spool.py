"""Metric reports on disk until acknowledged (the spool) and the open window's journal (issue 16, item 6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agent.cache import AgentCache
from agent.journal import WindowJournal, recover
from agent.recorder import MetricsRecorder
from agent.reports import ReportBuffer, open_reports
from agent.spool import MAGIC, ReportSpool
from protos import agent_pb2, common_pb2


def report(requests: int = 1) -> agent_pb2.MetricReport:
    window = agent_pb2.VersionWindow(
        deployment="d", version=common_pb2.VersionRef(model="m", version="v1"), requests=requests
    )
    return agent_pb2.MetricReport(window_seconds=1.0, windows=[window])


def spooled_buffer(root: Path, capacity: int = 100, first_seq: int = 1, per_segment: int = 64) -> ReportBuffer:
    return ReportBuffer("a", capacity, first_seq=first_seq, spool=ReportSpool(root, per_segment))


def restart(root: Path, per_segment: int = 64) -> tuple[ReportSpool, list[int]]:
    spool = ReportSpool(root, per_segment)
    return spool, [int(s.report.seq) for s in spool.load()]


def test_every_report_is_on_disk_in_order_until_acknowledged(tmp_path: Path) -> None:
    buffer = spooled_buffer(tmp_path, per_segment=2)
    sent = [buffer.add(report(i + 1)) for i in range(5)]
    # A crash now (nothing closed, nothing acked): all five are read back, in order, unchanged.
    spool, seqs = restart(tmp_path, 2)
    assert seqs == [1, 2, 3, 4, 5]
    assert [s.report for s in spool.load()] == sent

    for seq in (1, 2, 4):
        assert buffer.ack(seq)
    assert buffer.compact() == 1  # segment [1, 2] is settled; [3, 4] still holds 3
    assert len(list(tmp_path.glob("*.seg"))) == 2
    _, seqs = restart(tmp_path, 2)
    assert seqs == [3, 4, 5]  # 4 shares a segment with 3: resent, a replay upstream
    assert buffer.ack(3) and buffer.ack(5)
    assert buffer.compact() == 2
    assert list(tmp_path.glob("*.seg")) == []
    assert restart(tmp_path)[1] == []


def test_a_restarted_buffer_keeps_the_seqs_and_numbers_after_them(tmp_path: Path) -> None:
    first = spooled_buffer(tmp_path, first_seq=50)
    for _ in range(3):
        first.add(report())
    first.ack(51)

    spool = ReportSpool(tmp_path)
    restarted = ReportBuffer("a", 100, first_seq=10, spool=spool)
    restarted.restore([s.report for s in spool.load()])
    assert restarted.pending_seqs() == [50, 51, 52]  # 51's ack was in memory only: sent again
    assert restarted.add(report()).seq == 53  # never reuses a seq
    restarted.ack(50)
    restarted.ack(51)
    restarted.ack(52)
    restarted.compact()
    assert restart(tmp_path)[1] == [53]


def test_a_torn_tail_is_cut_off_and_the_whole_records_kept(tmp_path: Path) -> None:
    buffer = spooled_buffer(tmp_path)
    for _ in range(3):
        buffer.add(report())
    [segment] = tmp_path.glob("*.seg")
    whole = segment.read_bytes()
    segment.write_bytes(whole[:-5])  # a crash in the middle of the third write

    spool = ReportSpool(tmp_path)
    restarted = ReportBuffer("a", 100, first_seq=10, spool=spool)
    restarted.restore([s.report for s in spool.load()])
    assert restarted.pending_seqs() == [1, 2]
    assert spool.discarded_bytes > 0
    assert len(segment.read_bytes()) < len(whole) - 5  # cut back to the last whole record
    restarted.add(report())  # appends after a restart go to a new segment
    assert restart(tmp_path)[1] == [1, 2, 10]


def test_a_hole_of_zeros_is_not_taken_for_reports(tmp_path: Path) -> None:
    buffer = spooled_buffer(tmp_path)
    buffer.add(report())
    [segment] = tmp_path.glob("*.seg")
    segment.write_bytes(segment.read_bytes() + bytes(4096))  # blocks allocated, never written
    assert restart(tmp_path)[1] == [1]


def test_a_record_whose_checksum_fails_ends_the_segment(tmp_path: Path) -> None:
    buffer = spooled_buffer(tmp_path)
    for _ in range(3):
        buffer.add(report())
    [segment] = tmp_path.glob("*.seg")
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF  # the last record's bytes no longer match its crc (a length persisted before them)
    segment.write_bytes(bytes(data))
    assert restart(tmp_path)[1] == [1, 2]


def test_a_file_that_is_not_a_segment_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "000000000007.seg").write_bytes(b"garbage")
    (tmp_path / "notes.txt").write_text("left alone")
    spool, seqs = restart(tmp_path)
    assert seqs == []
    assert not (tmp_path / "000000000007.seg").exists()
    assert (tmp_path / "notes.txt").exists()
    spool.append(report())
    assert [p.name for p in spool.segments()] == ["000000000008.seg"]  # numbering goes on
    assert (tmp_path / "000000000008.seg").read_bytes().startswith(MAGIC)


def test_overflow_drops_the_oldest_from_disk_too_and_counts_it(tmp_path: Path) -> None:
    buffer = spooled_buffer(tmp_path, capacity=3, per_segment=1)
    reports = [buffer.add(report()) for _ in range(5)]
    assert [r.dropped_reports for r in reports] == [0, 0, 0, 1, 2]
    buffer.compact()
    assert restart(tmp_path, 1)[1] == [3, 4, 5]


def test_a_restart_with_more_reports_than_room_keeps_the_newest(tmp_path: Path) -> None:
    first = spooled_buffer(tmp_path, per_segment=1)
    for _ in range(5):
        first.add(report())
    spool = ReportSpool(tmp_path, 1)
    small = ReportBuffer("a", 2, first_seq=1, spool=spool)
    small.restore([s.report for s in spool.load()])
    assert small.pending_seqs() == [4, 5] and small.dropped == 3
    small.compact()
    assert restart(tmp_path, 1)[1] == [4, 5]


# ---- the open window's journal ----


def journaled_recorder(root: Path) -> tuple[MetricsRecorder, WindowJournal]:
    journal = WindowJournal(root)
    recorder = MetricsRecorder(journal=journal)
    snapshot = agent_pb2.Snapshot(
        deployments=[
            agent_pb2.DeploymentSnapshot(
                name="d",
                experiment="exp",
                routes=[
                    agent_pb2.Route(
                        version=common_pb2.VersionRef(model="m", version="v1"), role=common_pb2.ROLE_CHAMPION
                    )
                ],
            )
        ]
    )
    recorder.configure(snapshot)
    return recorder, journal


def record(recorder: MetricsRecorder, n: int) -> None:
    for i in range(n):
        rows = np.zeros((1 + i % 3, 2), dtype=np.float32)
        recorder.record_prediction("d", "m", "v1", "champion", rows, np.zeros(rows.shape[0], np.int64), None, 0.001)


def test_a_journal_left_by_a_crash_becomes_the_report_of_its_window(tmp_path: Path) -> None:
    recorder, _ = journaled_recorder(tmp_path)
    record(recorder, 30)
    recorder.record_error("d", "m", "v1", "champion", "INVALID_ARGUMENT", refused=True)
    recorder.record_error("d", "m", "v1", "champion", "INTERNAL")
    recorder.record_rejected("d", "NOT_FOUND")
    recorder.record_prediction("d", "m", "v2", "challenger", np.zeros((1, 2), np.float32), None, None, 0.002)
    # The process dies here: the window never closed. What a flush would have reported:
    [path] = tmp_path.glob("*.journal")
    found = recover(path)
    expected = recorder.flush()
    assert found.report is not None and expected is not None
    assert found.window_id == bytes.fromhex(path.stem)
    windows = {w.version.version: w for w in found.report.windows}
    wanted = {w.version.version: w for w in expected.windows}
    assert set(windows) == {"v1", "v2"}
    for version, window in windows.items():
        assert window.requests == wanted[version].requests
        assert window.rows == wanted[version].rows
        assert list(window.errors) == list(wanted[version].errors)
        assert window.rejected_inputs == wanted[version].rejected_inputs
        assert sum(window.latency.counts) + window.latency.zero_count == sum(wanted[version].latency.counts)
        assert window.role == wanted[version].role
    assert windows["v1"].requests == 32 and windows["v1"].rows == 60 and windows["v1"].rejected_inputs == 2
    assert windows["v1"].experiment == "exp"


def test_a_torn_last_journal_record_is_ignored(tmp_path: Path) -> None:
    recorder, _ = journaled_recorder(tmp_path)
    record(recorder, 10)
    [path] = tmp_path.glob("*.journal")
    path.write_bytes(path.read_bytes()[:-4])
    found = recover(path)
    assert found.report is not None
    assert [w.requests for w in found.report.windows] == [9]


def test_a_closed_window_leaves_a_fresh_journal_and_hands_back_the_old_one(tmp_path: Path) -> None:
    recorder, journal = journaled_recorder(tmp_path)
    record(recorder, 3)
    report_, closed = recorder.close_window()
    assert report_ is not None and closed is not None
    assert closed.path.exists()
    closed.remove()
    [fresh] = tmp_path.glob("*.journal")
    assert recover(fresh).report is None  # nothing since the close
    assert recorder.close_journal() is None and list(tmp_path.glob("*.journal")) == []  # empty: deleted
    assert journal.failures == 0


def test_a_restart_sends_every_report_and_the_open_window_once(tmp_path: Path) -> None:
    cache = AgentCache(tmp_path)
    reports, journal = open_reports(cache, "agent-a", 100)
    recorder = MetricsRecorder(journal=journal)
    record(recorder, 5)
    report_, closed = recorder.close_window()
    assert report_ is not None and closed is not None
    reports.add(report_, closed.window_id)
    # Killed before deleting the journal of the spooled window, and with a second window open.
    record(recorder, 7)
    assert len(list(cache.journal_dir.glob("*.journal"))) == 2

    again, _ = open_reports(AgentCache(tmp_path), "agent-a", 100)
    pending = again.pending()
    assert [sum(w.requests for w in r.windows) for r in pending] == [5, 7]  # not 5, 5, 7
    assert pending[0].seq < pending[1].seq
    assert list(cache.journal_dir.glob("*.journal")) == []  # the new run's journal is not open yet
    # The recovered window is in the spool before its journal is gone: a third start finds it there.
    third, _ = open_reports(AgentCache(tmp_path), "agent-a", 100)
    assert [r.seq for r in third.pending()] == [r.seq for r in pending]


def test_reports_an_older_agent_kept_move_into_the_spool(tmp_path: Path) -> None:
    cache = AgentCache(tmp_path)
    old = ReportBuffer("agent-a", first_seq=40)
    kept = [old.add(report()) for _ in range(2)]
    encoded = (r.SerializeToString() for r in kept)
    cache.reports_path.write_bytes(b"".join(len(b).to_bytes(4, "big") + b for b in encoded))
    reports, _ = open_reports(cache, "agent-a", 100)
    assert reports.pending_seqs() == [40, 41]
    assert not cache.reports_path.exists()
    again, _ = open_reports(AgentCache(tmp_path), "agent-a", 100)
    assert again.pending_seqs() == [40, 41]


def test_a_journal_that_cannot_be_written_never_stops_the_counting(tmp_path: Path) -> None:
    """A full or failing disk costs the crash protection of the open window, not its counts."""
    recorder, journal = journaled_recorder(tmp_path)
    record(recorder, 2)
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    journal.directory = blocked  # every new journal file fails to open (ENOTDIR), as on a broken disk
    report_, closed = recorder.close_window()
    assert report_ is not None and closed is not None
    record(recorder, 3)
    report_, closed = recorder.close_window()
    assert report_ is not None and [w.requests for w in report_.windows] == [3]
    assert journal.failures >= 1
