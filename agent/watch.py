"""The caller's side of one request: its deadline and whether it gave up.

A request the caller abandoned while a version worked on it counts against that version
(`DeadlineExceeded`, `Cancelled`); `abandoned_error` is that error.
"""

from __future__ import annotations

import time

from core.errors import Cancelled, DeadlineExceeded, SluiceError


class Watch:
    """The caller's side of one request: its deadline and whether it gave up, so a request the
    caller abandoned while a version worked on it counts against that version.

    The servicer makes one when the call has a deadline (checked once the model has run: a model
    slower than the caller's deadline is a DEADLINE_EXCEEDED of that version) or when the model
    runs on a worker thread (the servicer's task is cancelled when the caller cancels or its
    deadline passes; `gone` then names the status). A small request runs inline on the event loop,
    where gRPC cannot tell it of a cancellation before the answer is sent: only its deadline is
    seen.
    """

    __slots__ = ("deadline", "gone")

    def __init__(self, remaining: float | None) -> None:
        #: time.monotonic() when the caller's deadline passes (None: the call has none)
        self.deadline = time.monotonic() + remaining if remaining is not None else None
        #: the status name once the caller is known to be gone ("CANCELLED", "DEADLINE_EXCEEDED")
        self.gone = ""

    def abandoned(self) -> str:
        """The status name of a caller that gave up, "" while it still waits."""
        if self.gone:
            return self.gone
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "DEADLINE_EXCEEDED"
        return ""


def abandoned_error(code: str, deployment: str, label: str) -> SluiceError:
    """The typed error of a request its caller gave up on while `label` worked on it."""
    if code == "CANCELLED":
        return Cancelled(f"deployment {deployment}: the call was cancelled while {label} answered it")
    return DeadlineExceeded(f"deployment {deployment}: the deadline passed while {label} answered; allow more time")
