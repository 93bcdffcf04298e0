"""Metric reports waiting for the control plane's ReportAck.

Each report gets the next sequence number and stays here until acknowledged. Numbers come in
blocks reserved in the agent's cache (`AgentCache.reserve_seqs`), so they never repeat for one
agent id across restarts, whatever the clock does: the control plane takes a repeated
(agent id, seq) for a replay, and a fresh report under an old number would be lost. When the
buffer is full the oldest report is dropped and counted; the count travels in every later
report, so a loss is never silent.

With a spool (`agent.spool`, in the agent's cache) every report is on disk before it can be sent
and until its ack: a killed agent loses none. Writing the spool is the slow part of `add` (an
fsync), so `add` runs on the thread that closes windows, never on the event loop; `ack` only
marks the report settled in memory, and `compact` (also on that thread) deletes what is settled.

At start, `open_reports` rebuilds the buffer from what an earlier run left on disk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from agent.cache import AgentCache
from agent.journal import WindowJournal, recover
from agent.spool import ReportSpool, Spooled
from protos import agent_pb2

log = logging.getLogger("sluice.agent")

DEFAULT_CAPACITY = 3600
SEQ_BLOCK = 10_000  # numbers reserved per write of the cache's high-water mark


class ReportBuffer:
    def __init__(
        self,
        agent_id: str,
        capacity: int = DEFAULT_CAPACITY,
        first_seq: int | None = None,
        reserve: Callable[[int], int] | None = None,
        spool: ReportSpool | None = None,
    ) -> None:
        """`reserve(count)` hands out blocks of never-used numbers (a real agent's cache);
        `first_seq` numbers from a fixed start instead (tests). `spool`: where reports wait on
        disk (None: in memory only)."""
        if capacity < 1:
            raise ValueError("the report buffer needs room for at least one report")
        if (first_seq is None) == (reserve is None):
            raise ValueError("give first_seq or reserve, not both")
        self.agent_id = agent_id
        self.capacity = capacity
        self._reserve = reserve
        self._next_seq = first_seq if first_seq is not None else 0
        self._seq_end: int | None = None  # end of the reserved block (None: unbounded, first_seq)
        if reserve is not None:
            self._next_seq = reserve(SEQ_BLOCK)
            self._seq_end = self._next_seq + SEQ_BLOCK
        self._pending: OrderedDict[int, agent_pb2.MetricReport] = OrderedDict()
        self._sent_at: dict[int, float] = {}
        self._lock = threading.Lock()
        # Serialises `add` as a whole (seq, spool write, insertion), so the spool and the pending
        # order follow the seqs; held across the fsync, which `_lock` (taken by acks) never is.
        self._adding = threading.Lock()
        self.spool = spool
        self.dropped = 0
        self.acked = 0
        #: reports the spool could not write (kept in memory only; a crash would lose them)
        self.unspooled = 0

    def add(self, report: agent_pb2.MetricReport, window_id: bytes = b"") -> agent_pb2.MetricReport:
        """Stamp the report (agent id, seq, dropped count), write it to the spool, keep it until its ack.

        `window_id`: the journal of the window the report closes (`agent.journal`), kept with it
        in the spool. The report is on disk before any sender can see it.
        """
        with self._adding:
            with self._lock:
                report.agent_id = self.agent_id
                while self._seq_end is not None and self._next_seq >= self._seq_end:
                    assert self._reserve is not None
                    start = self._reserve(SEQ_BLOCK)
                    self._next_seq = max(self._next_seq, start)
                    self._seq_end = start + SEQ_BLOCK
                report.seq = self._next_seq
                self._next_seq += 1
                self._make_room(1)  # before the stamp: the report carries the drops it caused
                report.dropped_reports = self.dropped
            if self.spool is not None:
                try:
                    self.spool.append(report, window_id)
                except OSError as exc:
                    self.unspooled += 1
                    log.warning(
                        "metric report %d is kept in memory only (%d so far): cannot write the spool: %s",
                        report.seq,
                        self.unspooled,
                        exc,
                    )
            with self._lock:
                self._pending[report.seq] = report  # room was made above; acks only free more
            return report

    def _make_room(self, count: int) -> None:
        """Drop (and count) the oldest reports until `count` more fit. Holds `_lock`."""
        while self._pending and len(self._pending) + count > self.capacity:
            oldest, _ = self._pending.popitem(last=False)
            self._sent_at.pop(oldest, None)
            self.dropped += 1
            if self.spool is not None:
                self.spool.settle(oldest)

    def restore(self, reports: list[agent_pb2.MetricReport]) -> None:
        """Reports of a previous run (already in the spool, if any): they keep their seq, so a
        replay is a no-op upstream, and later reports are numbered after them."""
        with self._adding, self._lock:
            for report in sorted(reports, key=lambda r: r.seq):
                if report.seq in self._pending:
                    continue
                self._make_room(1)
                self._pending[report.seq] = report
                self._next_seq = max(self._next_seq, report.seq + 1)
            self._pending = OrderedDict(sorted(self._pending.items()))

    def restore_spooled(self) -> list[Spooled]:
        """Load what the spool kept from earlier runs into the buffer; returns it (window ids too)."""
        if self.spool is None:
            return []
        spooled = self.spool.load()
        self.restore([s.report for s in spooled])
        return spooled

    def compact(self) -> int:
        """Delete spool segments whose reports are all acknowledged or dropped (disk I/O: not on
        the event loop)."""
        return self.spool.compact() if self.spool is not None else 0

    def pending(self) -> list[agent_pb2.MetricReport]:
        with self._lock:
            return list(self._pending.values())

    def ack(self, seq: int) -> bool:
        with self._lock:
            self._sent_at.pop(seq, None)
            if self._pending.pop(seq, None) is None:
                return False
            self.acked += 1
            if self.spool is not None:
                self.spool.settle(seq)
            return True

    def mark_sent(self, seq: int, at: float | None = None) -> None:
        with self._lock:
            if seq in self._pending:
                self._sent_at[seq] = time.monotonic() if at is None else at

    def forget_sent(self) -> None:
        """After a reconnect nothing is in flight: every pending report must be sent again."""
        with self._lock:
            self._sent_at.clear()

    def to_send(self, resend_after: float, now: float | None = None) -> list[agent_pb2.MetricReport]:
        """Reports never sent on this stream, or sent more than `resend_after` seconds ago, in order."""
        now = time.monotonic() if now is None else now
        with self._lock:
            out = []
            for seq, report in self._pending.items():
                sent = self._sent_at.get(seq)
                if sent is None or now - sent >= resend_after:
                    out.append(report)
            return out

    def pending_seqs(self) -> list[int]:
        with self._lock:
            return list(self._pending)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)


def open_reports(cache: AgentCache, agent_id: str, capacity: int) -> tuple[ReportBuffer, WindowJournal]:
    """The report buffer with what earlier runs left on disk, and the journal for the new windows.

    Left behind, in this order: reports in the spool (sent again with their seq numbers), reports
    an older agent kept in reports.pb (moved into the spool), and journals of windows that were
    open when a run died. A journal whose window id is in the spool was closed in time (the run
    died before deleting it); any other becomes a report now. Disk I/O: not on the event loop.
    """
    spool = ReportSpool(cache.spool_dir)
    spooled = spool.load()
    reports = ReportBuffer(agent_id, capacity, reserve=cache.reserve_seqs, spool=spool)
    legacy = cache.saved_reports()
    for report in legacy:
        spool.append(report)
    reports.restore([s.report for s in spooled] + legacy)
    cache.forget_saved_reports()
    journal = WindowJournal(cache.journal_dir)
    spooled_windows = {s.window_id for s in spooled if s.window_id}
    recovered = 0
    for path in journal.leftovers:
        found = recover(path)
        if found.report is not None and found.window_id not in spooled_windows:
            reports.add(found.report, found.window_id)
            recovered += sum(w.requests for w in found.report.windows)
        path.unlink(missing_ok=True)
    if spooled or legacy:
        log.info("%d metric report(s) from the previous run wait for the control plane", len(spooled) + len(legacy))
    if recovered:
        log.info("%d request(s) of the window open when the previous run died recovered from its journal", recovered)
    if spool.discarded_bytes:
        log.warning("the report spool had a torn tail (%d bytes, a crash mid-write): cut off", spool.discarded_bytes)
    return reports, journal
