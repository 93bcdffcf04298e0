"""The one factor every timing bound of the suite scales by: SLUICE_TEST_TIME_FACTOR (default 1).

The bounds are deadlines on waits for a condition (a child's ready line, agents in sync, a metric
stored), never assertions that something was fast: on a slow or crowded machine a deadline can run
out before the condition holds, and `SLUICE_TEST_TIME_FACTOR=3 make test` gives every wait three
times as long without touching a test. Holds whose length is what a test checks (a link cut for
30 s, a control plane down for 20 s) are not scaled: they are behaviour, not bounds.
"""

from __future__ import annotations

import os


def _factor() -> float:
    raw = os.environ.get("SLUICE_TEST_TIME_FACTOR", "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"SLUICE_TEST_TIME_FACTOR={raw!r} is not a number (e.g. 2 doubles every wait)") from None
    if not 0 < value < 1000:
        raise ValueError(f"SLUICE_TEST_TIME_FACTOR={raw!r} must be above 0 and below 1000")
    return value


TIME_FACTOR = _factor()


def scaled(seconds: float) -> float:
    """A deadline of `seconds` on a quiet machine, times SLUICE_TEST_TIME_FACTOR."""
    return seconds * TIME_FACTOR
