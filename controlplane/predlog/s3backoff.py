"""When the control plane cannot read an agent's S3 bucket (its own credentials are missing or
refused, its `[log] s3_endpoint` is wrong or down), it says so once and backs off, per bucket.

Without this an agent announcing a segment it uploaded got no ack, sent the announcement again
every 30 s, and each time the control plane asked S3 again and logged a traceback, for ever. Now
the first failure of a bucket raises `Deferred` with a message naming the bucket, the reason and
the keys to check; until the backoff (30 s doubling to 10 min) has passed, an announcement for that
bucket is deferred at once, without asking S3; the next one after it tries again. The agent keeps
each deferred segment and sends it again after `retry_after` (LogSegmentAck.retry_after_seconds),
so nothing loops faster than the backoff and nothing is lost: the first read that works records
the waiting segments as they come.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import Unavailable

FIRST_BACKOFF = 30.0
MAX_BACKOFF = 600.0


class Deferred(Unavailable):
    """The segment's bucket is not readable by the control plane now: not recorded, not refused;
    the agent sends it again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float, first: bool) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        #: the first failure of this bucket since it was last readable (the one worth a log line)
        self.first = first


@dataclass
class _Failing:
    reason: str
    backoff: float
    retry_at: float
    deferred: int = 0


class BucketBackoff:
    """Per (endpoint, bucket): why reading it failed and when to try again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failing: dict[tuple[str, str], _Failing] = {}

    def check(self, key: tuple[str, str]) -> None:
        """Deferred while the bucket's backoff runs (nothing asked of S3); else return: try."""
        with self._lock:
            state = self._failing.get(key)
            if state is None:
                return
            left = state.retry_at - self._clock()
            if left <= 0:
                return
            state.deferred += 1
            raise Deferred(state.reason, left, first=False)

    def failed(self, key: tuple[str, str], reason: str) -> Deferred:
        """Reading the bucket failed: the error to raise (its backoff doubled from the last)."""
        with self._lock:
            state = self._failing.get(key)
            backoff = FIRST_BACKOFF if state is None else min(MAX_BACKOFF, state.backoff * 2)
            deferred = 1 + (state.deferred if state else 0)
            self._failing[key] = _Failing(reason, backoff, self._clock() + backoff, deferred)
            return Deferred(reason, backoff, first=state is None)

    def succeeded(self, key: tuple[str, str]) -> int:
        """Reading the bucket worked: forget its failure; returns how many announcements were
        deferred meanwhile (0: it was not failing)."""
        with self._lock:
            state = self._failing.pop(key, None)
            return 0 if state is None else state.deferred

    def failing(self) -> dict[tuple[str, str], str]:
        with self._lock:
            return {key: state.reason for key, state in self._failing.items()}


#: this process's view of the buckets it reads segments from
buckets = BucketBackoff()
