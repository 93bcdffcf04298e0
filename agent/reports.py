"""Metric reports waiting for the control plane's ReportAck.

Each report gets the next sequence number and stays here until acknowledged. Numbers come in
blocks reserved in the agent's cache (`AgentCache.reserve_seqs`), so they never repeat for one
agent id across restarts, whatever the clock does: the control plane takes a repeated
(agent id, seq) for a replay, and a fresh report under an old number would be lost. When the
buffer is full the oldest report is dropped and counted; the count travels in every later
report, so a loss is never silent.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from protos import agent_pb2

DEFAULT_CAPACITY = 3600
SEQ_BLOCK = 10_000  # numbers reserved per write of the cache's high-water mark


class ReportBuffer:
    def __init__(
        self,
        agent_id: str,
        capacity: int = DEFAULT_CAPACITY,
        first_seq: int | None = None,
        reserve: Callable[[int], int] | None = None,
    ) -> None:
        """`reserve(count)` hands out blocks of never-used numbers (a real agent's cache);
        `first_seq` numbers from a fixed start instead (tests)."""
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
        self.dropped = 0
        self.acked = 0

    def add(self, report: agent_pb2.MetricReport) -> agent_pb2.MetricReport:
        """Stamp the report (agent id, seq, dropped count) and keep it until its ack."""
        with self._lock:
            report.agent_id = self.agent_id
            while self._seq_end is not None and self._next_seq >= self._seq_end:
                assert self._reserve is not None
                start = self._reserve(SEQ_BLOCK)
                self._next_seq = max(self._next_seq, start)
                self._seq_end = start + SEQ_BLOCK
            report.seq = self._next_seq
            self._next_seq += 1
            while len(self._pending) >= self.capacity:
                oldest, _ = self._pending.popitem(last=False)
                self._sent_at.pop(oldest, None)
                self.dropped += 1
            report.dropped_reports = self.dropped
            self._pending[report.seq] = report
            return report

    def restore(self, reports: list[agent_pb2.MetricReport]) -> None:
        """Reports saved by a previous run: they keep their seq (a replay is a no-op upstream)."""
        with self._lock:
            for report in sorted(reports, key=lambda r: r.seq):
                if report.seq in self._pending:
                    continue
                while len(self._pending) >= self.capacity:
                    oldest, _ = self._pending.popitem(last=False)
                    self._sent_at.pop(oldest, None)
                    self.dropped += 1
                self._pending[report.seq] = report
                self._next_seq = max(self._next_seq, report.seq + 1)
            self._pending = OrderedDict(sorted(self._pending.items()))

    def pending(self) -> list[agent_pb2.MetricReport]:
        with self._lock:
            return list(self._pending.values())

    def ack(self, seq: int) -> bool:
        with self._lock:
            self._sent_at.pop(seq, None)
            if self._pending.pop(seq, None) is None:
                return False
            self.acked += 1
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
