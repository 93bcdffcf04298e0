"""The agent's category-frequency windows (issue 14 item 5): bounded bins, missing and unseen counts.

The real recorder configured by a snapshot whose baseline carries category bins, fed the string
columns a batch's feeds hold, and the MetricReport it closes the window with.
"""

from __future__ import annotations

import numpy as np

from agent.categories import CategoryLookup, count_values
from agent.recorder import MetricsRecorder
from agent.window import FOLD_ROWS
from protos import agent_pb2, common_pb2


def _snapshot(known_complete: bool = True) -> agent_pb2.Snapshot:
    baseline = common_pb2.Baseline(
        n_rows=100,
        categories=[
            common_pb2.CategoryBins(
                index=0,
                name="plan",
                categories=["free", "pro"],
                counts=[60, 30, 10],
                known=["team"],
                known_complete=known_complete,
            )
        ],
    )
    route = agent_pb2.Route(
        version=common_pb2.VersionRef(model="m", version="v1"),
        weight=100,
        role=common_pb2.ROLE_CHAMPION,
        task="classifier",
        baseline=baseline,
    )
    return agent_pb2.Snapshot(deployments=[agent_pb2.DeploymentSnapshot(name="d", routes=[route])])


def _column(values: list[str]) -> np.ndarray:
    out = np.empty((len(values), 1), dtype=object)
    out[:, 0] = values
    return out


def _record(recorder: MetricsRecorder, values: list[str]) -> None:
    rows = np.empty((len(values), 0), dtype=np.float32)
    recorder.record_prediction(
        "d", "m", "v1", "champion", rows, np.zeros(len(values), np.int64), None, 0.001, texts={"plan": _column(values)}
    )


def test_values_count_on_the_top_k_bins_with_missing_and_unseen_apart() -> None:
    recorder = MetricsRecorder()
    recorder.configure(_snapshot())
    _record(recorder, ["free", "free", "pro", "team", "", "enterprise"])
    _record(recorder, ["enterprise", "pro"])
    report = recorder.flush()
    assert report is not None
    [window] = report.windows
    [plan] = window.categories
    # free, pro, other (team is known, enterprise unseen: both "other")
    assert (list(plan.counts), plan.missing, plan.unseen) == ([2, 2, 3], 1, 2)


def test_unseen_is_not_counted_when_the_baseline_list_was_cut() -> None:
    lookup = CategoryLookup("plan", {"free": 0}, frozenset(), track_unseen=False)
    counted = count_values(lookup, [_column(["free", "brand-new", ""])])
    assert (counted.counts.tolist(), counted.missing, counted.unseen) == ([1, 1], 1, 0)


def test_many_rows_fold_early_and_count_the_same() -> None:
    recorder = MetricsRecorder()
    recorder.configure(_snapshot())
    batch = ["free", "pro", "x"] * 1000
    for _ in range(FOLD_ROWS // len(batch) + 2):
        _record(recorder, batch)
    report = recorder.flush()
    assert report is not None
    [plan] = report.windows[0].categories
    batches = FOLD_ROWS // len(batch) + 2
    assert list(plan.counts) == [1000 * batches] * 3 and plan.unseen == 1000 * batches
