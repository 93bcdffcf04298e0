"""The control plane's per-bucket backoff when it cannot read an agent's S3 bucket: the first
failure is marked first (the one log line), the backoff doubles to its cap, an announcement
during it is deferred without asking S3, and a read that works forgets it all."""

from __future__ import annotations

from itertools import pairwise

import pytest

from controlplane.predlog.s3backoff import FIRST_BACKOFF, MAX_BACKOFF, BucketBackoff, Deferred


def test_the_backoff_doubles_to_its_cap_defers_meanwhile_and_resets_on_success() -> None:
    now = [1000.0]
    backoff = BucketBackoff(clock=lambda: now[0])
    key = ("http://s3", "logs")
    backoff.check(key)  # never failed: try
    first = backoff.failed(key, "denied")
    assert (first.retry_after, first.first, str(first)) == (FIRST_BACKOFF, True, "denied")
    now[0] += FIRST_BACKOFF / 2
    with pytest.raises(Deferred) as during:
        backoff.check(key)
    assert during.value.retry_after == pytest.approx(FIRST_BACKOFF / 2) and not during.value.first
    assert backoff.check(("http://s3", "other")) is None  # another bucket is not held back
    waits = []
    for _ in range(8):
        now[0] += 10 * MAX_BACKOFF
        backoff.check(key)  # the backoff ran out: try again
        again = backoff.failed(key, "denied")
        assert not again.first
        waits.append(again.retry_after)
    assert waits[0] == 2 * FIRST_BACKOFF and waits[-1] == MAX_BACKOFF
    assert all(b == min(MAX_BACKOFF, 2 * a) for a, b in pairwise(waits))
    assert backoff.failing() == {key: "denied"}
    assert backoff.succeeded(key) == 10  # the failures and the deferral above
    assert backoff.failing() == {} and backoff.succeeded(key) == 0
    assert backoff.failed(key, "down").first  # a new outage is said again
