"""The regression feedback of a window summary: the sum of squared errors (RMSE) survives merge,
storage and rollups, and a window cannot claim a negative or non-finite one."""

from __future__ import annotations

import math

import pytest

from controlplane.monitoring.summary import WindowSummary
from protos import agent_pb2, common_pb2


def window(n: int, abs_sum: float, squared_sum: float) -> agent_pb2.VersionWindow:
    return agent_pb2.VersionWindow(
        deployment="d",
        version=common_pb2.VersionRef(model="m", version="v1"),
        requests=n,
        feedback=agent_pb2.Feedback(n_labeled=n, sum_abs_error=abs_sum, sum_squared_error=squared_sum),
    )


def test_the_sum_of_squared_errors_merges_and_is_stored() -> None:
    a = WindowSummary.from_window(window(2, 0.5, 0.17))  # errors 0.1 and 0.4
    b = WindowSummary.from_window(window(1, 0.3, 0.09))
    merged = a.merge(b)
    assert merged.sum_squared_error == pytest.approx(0.26)
    stored = WindowSummary.from_row(merged.requests, 0, merged.n_labeled, 0, merged.to_json())
    assert stored.sum_squared_error == pytest.approx(0.26)
    assert math.sqrt(stored.sum_squared_error / stored.n_labeled) == pytest.approx(math.sqrt(0.26 / 3))
    # a summary stored before the field existed reads as 0
    old = merged.to_json()
    del old["feedback"]["sum_squared_error"]
    assert WindowSummary.from_row(3, 0, 3, 0, old).sum_squared_error == 0.0


@pytest.mark.parametrize("squared", [-1.0, math.inf, math.nan])
def test_a_window_with_an_impossible_sum_of_squared_errors_is_refused(squared: float) -> None:
    with pytest.raises(ValueError):
        WindowSummary.from_window(window(2, 0.5, squared))
