"""The recorder's vectorised batch counting gives exactly the numbers of row-by-row recording.

`count_features` sorts each column once and searches the bin edges in it (float32 rows against
edges rounded down to float32); `count_rowwise` is the plain binary search per value on float64.
Both, and a recorder fed 1,024-row batches against one fed single rows, must agree to the count,
including values sitting exactly on an edge or on the float32 neighbour of a float64 edge.
"""

from __future__ import annotations

import numpy as np
import pytest

from agent.binning import count_features, count_rowwise, float32_edges
from agent.recorder import MetricsRecorder
from agent.window import FOLD_ROWS, RouteInfo
from protos import agent_pb2
from tests.controlplane.monitoring.test_recorder import DEP, snapshot


def random_info(rng: np.random.Generator) -> RouteInfo:
    edges = []
    for _ in range(int(rng.integers(1, 6))):
        inner = np.sort(rng.normal(0.0, 1.0, int(rng.integers(0, 7))))
        if inner.size > 1 and rng.random() < 0.3:
            inner[1] = inner[0]  # repeated quantiles give repeated edges
        low = (inner.min() if inner.size else 0.0) - rng.random()
        high = (inner.max() if inner.size else 0.0) + rng.random()
        edges.append(np.asarray([np.nextafter(low, -np.inf), *inner, high]))
    return RouteInfo(DEP, "m", "v1", "champion", "", "classifier", tuple(edges))


def rows_on_the_edges(rng: np.random.Generator, info: RouteInfo, n: int) -> np.ndarray:
    rows = rng.normal(0.0, 1.5, (n, info.n_features)).astype(np.float32)
    for i, edges in enumerate(info.extended_edges):
        near = np.concatenate([edges.astype(np.float32), float32_edges(edges), np.nextafter(float32_edges(edges), 9)])
        k = min(n, near.size)
        rows[:k, i] = near[:k]
    return rows


def same(a: tuple[list[np.ndarray], np.ndarray], b: tuple[list[np.ndarray], np.ndarray]) -> bool:
    if len(a[0]) != len(b[0]):
        return False
    return all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True)) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("seed", range(40))
def test_sorted_counting_equals_the_per_value_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    info = random_info(rng)
    rows = rows_on_the_edges(rng, info, int(rng.integers(1, 400)))
    if seed % 3 == 0:
        rows[0, 0] = np.nan  # sorts last: above the max, like searchsorted puts it
        rows[-1, -1] = np.inf
        rows[rows.shape[0] // 2, 0] = -np.inf
        rows[-1, 0] = -0.0
    for variant in (rows, rows.astype(np.float64), np.asfortranarray(rows)):
        before = variant.copy()
        assert same(count_features(info, variant), count_rowwise(info, variant))
        assert np.array_equal(variant, before, equal_nan=True)  # the caller's rows are not sorted


def test_float32_edges_round_down_and_keep_the_float32_comparisons_exact() -> None:
    edges = np.asarray([0.1, -0.1, 1.0, 3.4028235e38 * 2, -1e39, 1e-46])
    down = float32_edges(edges)
    assert down.dtype == np.float32 and np.all(down.astype(np.float64) <= edges)
    for e, d in zip(edges, down, strict=True):
        with np.errstate(over="ignore"):  # the neighbour of the largest float32 is inf
            values = np.asarray([d, np.nextafter(d, np.float32(np.inf)), np.nextafter(d, np.float32(-np.inf))])
        assert ((values <= d) == (values.astype(np.float64) <= e)).all()


def features(window: agent_pb2.VersionWindow) -> list[tuple[int, list[int], int]]:
    return [(f.index, list(f.counts), f.out_of_range) for f in window.features]


def test_batches_and_single_rows_give_the_same_window() -> None:
    rng = np.random.default_rng(7)
    snap = snapshot(("m", "v1", 100, "champion"))
    batched, single = MetricsRecorder(), MetricsRecorder()
    batched.configure(snap)
    single.configure(snap)
    bins = snap.deployments[0].routes[0].baseline.features
    edges = tuple(np.asarray([np.nextafter(f.min, -np.inf), *f.inner_edges, f.max]) for f in bins)
    info = RouteInfo(DEP, "m", "v1", "champion", "", "classifier", edges)
    # More rows than FOLD_ROWS, so the batched recorder folds early as well as at the flush.
    n_batches = FOLD_ROWS // 1024 + 3
    rows = rows_on_the_edges(rng, info, 1024 * n_batches)
    rows[: rows.shape[0] // 2] *= np.float32(rng.uniform(0.5, 1.5, 30))  # partly out of range
    labels = rng.integers(0, 2, rows.shape[0]).astype(np.int64)
    for b in range(n_batches):
        part = slice(b * 1024, (b + 1) * 1024)
        batched.record_prediction(DEP, "m", "v1", "champion", rows[part], labels[part], None, 0.002)
    for i in range(rows.shape[0]):
        single.record_prediction(DEP, "m", "v1", "champion", rows[i : i + 1], labels[i : i + 1], None, 0.002)
    a, b = batched.flush(), single.flush()
    assert a is not None and b is not None
    (wa,), (wb,) = a.windows, b.windows
    assert wa.rows == wb.rows == rows.shape[0]
    assert (wa.requests, wb.requests) == (n_batches, rows.shape[0])
    assert list(wa.prediction_counts) == list(wb.prediction_counts) == np.bincount(labels, minlength=2).tolist()
    assert features(wa) == features(wb)
    expected = count_rowwise(info, rows)
    assert [c for _, c, _ in features(wa)] == [c.tolist() for c in expected[0]]
    assert [o for _, _, o in features(wa)] == expected[1].tolist()
    assert wa.reservoir_features == wb.reservoir_features == 30
