"""Counts no agent can serve in a window are refused (pure)."""

from __future__ import annotations

from controlplane.monitoring.plausibility import Rates, implausible
from controlplane.monitoring.summary import WindowSummary
from core.sketch import LatencySketch
from core.summaries import Moments

RATES = Rates(requests_per_second=50_000, rows_per_second=1_000_000)


def summary(requests: int = 100, **kw: object) -> WindowSummary:
    s = WindowSummary(requests=requests, rows=requests, n_labeled=requests, n_correct=requests // 2)
    for name, value in kw.items():
        setattr(s, name, value)
    return s


def test_an_honest_window_passes() -> None:
    latency = LatencySketch(0.01)
    latency.add_many([0.002] * 100)
    assert implausible(summary(errors={"INTERNAL": 3}, latency=latency), 1.0, RATES) is None
    assert implausible(summary(50_000, rows=1_000_000, n_labeled=1_000_000), 1.0, RATES) is None


def test_the_reviews_billion_labels_in_one_second_are_refused() -> None:
    why = implausible(summary(10**9), 1.0, RATES)
    assert why == "1000000000 requests in 1 s (at most 50000/s)"
    assert "labels" in (implausible(summary(10, n_labeled=2_000_000, n_correct=0), 1.0, RATES) or "")


def test_the_bound_grows_with_the_window_and_assumes_at_least_a_second() -> None:
    assert implausible(summary(60 * 50_000), 60.0, RATES) is None
    assert implausible(summary(60 * 50_000 + 1), 60.0, RATES) is not None
    assert implausible(summary(50_000), 0.004, RATES) is None  # a last, short window
    assert implausible(summary(50_000), float("nan"), RATES) is None
    assert implausible(summary(50_001), 0.004, RATES) is not None


def test_errors_and_latencies_cannot_exceed_requests() -> None:
    assert implausible(summary(10, errors={"INTERNAL": 11}), 1.0, RATES) == "11 failed requests of 10"
    latency = LatencySketch(0.01)
    latency.add_many([0.001] * 11)
    assert implausible(summary(10, latency=latency), 1.0, RATES) == "11 latencies for 10 requests"
    assert "shadow pairs" in (implausible(summary(10, shadow_pairs=2_000_000), 1.0, RATES) or "")
    assert "absolute errors" in (implausible(summary(10, abs_error=Moments(n=2_000_000)), 1.0, RATES) or "")
