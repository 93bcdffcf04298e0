"""The recorder's vectorised batch counting gives exactly the numbers of row-by-row recording.

`count_features` compares every value with every edge of its feature at once (float32 rows against
edges rounded down to float32) and adds the comparisons up eight at a time; `count_rowwise` is the
plain binary search per value on float64, and `plain_counts` below a loop over values and edges
that states the rule. All three, and a recorder fed 1,024-row batches against one fed single rows,
must agree to the count, including values sitting exactly on an edge or on the float32 neighbour of
a float64 edge, NaN, infinities and -0.0.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import Executor, Future

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import binning
from agent.binning import GROUP_ROWS, count_features, count_rowwise, float32_edges
from agent.recorder import MAX_PENDING_FOLDS, MetricsRecorder
from agent.window import FOLD_ROWS, RouteInfo, count_chunks
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
        rows[0, 0] = np.nan  # a missing value: counted in no bin and not out of range
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


def plain_counts(edges: tuple[np.ndarray, ...], rows: np.ndarray) -> tuple[list[list[int]], list[int]]:
    """The rule, one value and one edge at a time: a value's place is how many edges lie below it.

    Place 0 is below the baseline's min (counted in the first bin), place len(edges) above its max
    (the last bin); both are out of range. NaN (a missing value) counts nowhere. Compared as
    float64, exactly.
    """
    counts: list[list[int]] = []
    outside: list[int] = []
    for i, feature_edges in enumerate(edges):
        bins = [0] * (len(feature_edges) - 1)
        out = 0
        for value in rows[:, i].tolist():
            if math.isnan(value):
                continue
            place = sum(1 for e in feature_edges if e < value)
            if place == 0 or place == len(feature_edges):
                out += 1
            bins[min(max(place - 1, 0), len(bins) - 1)] += 1
        counts.append(bins)
        outside.append(out)
    return counts, outside


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)


@st.composite
def edges_and_rows(draw: st.DrawFn) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    edges = []
    for _ in range(draw(st.integers(1, 4))):
        inner = sorted(draw(st.lists(finite | st.sampled_from([0.0, -0.0, 0.1, 1e-40]), max_size=6)))
        if inner and draw(st.booleans()):
            inner.insert(0, inner[0])  # repeated quantiles give repeated edges
        low = min(inner, default=0.0) - draw(st.floats(0, 10))
        high = max(inner, default=0.0) + draw(st.floats(0, 10))
        edges.append(np.asarray([np.nextafter(low, -np.inf), *inner, high], dtype=np.float64))
    # Values on the edges, on their float32 neighbours, anywhere, and the special ones.
    near = [float(v) for e in edges for x in float32_edges(e) for v in (x, np.nextafter(x, np.float32(9)))]
    special = [math.nan, math.inf, -math.inf, -0.0, 0.0]
    value = st.sampled_from(near + special) | finite | st.floats(width=32)
    n = draw(st.integers(1, GROUP_ROWS + 40))
    pool = np.asarray(draw(st.lists(value, min_size=1, max_size=64)), dtype=np.float32)
    picks = draw(st.lists(st.integers(0, pool.size - 1), min_size=n * len(edges), max_size=n * len(edges)))
    return tuple(edges), pool[np.asarray(picks)].reshape(n, len(edges))


@settings(max_examples=60, deadline=None)
@given(edges_and_rows(), st.sampled_from([0, 1, 2]))
def test_counting_equals_the_plain_rule(case: tuple[tuple[np.ndarray, ...], np.ndarray], blocks: int) -> None:
    edges, rows = case
    info = RouteInfo(DEP, "m", "v1", "champion", "", "classifier", edges)
    expected = plain_counts(edges, rows)
    # blocks=1: the rows are compared one GROUP_ROWS block at a time, as they are in a wide model
    previous = binning.BLOCK_BYTES
    binning.BLOCK_BYTES = previous if blocks == 0 else 1
    try:
        for variant in (rows, rows.astype(np.float64)) if blocks != 2 else (np.asfortranarray(rows),):
            counts, outside = count_features(info, variant)
            assert [c.tolist() for c in counts] == expected[0]
            assert outside.tolist() == expected[1]
    finally:
        binning.BLOCK_BYTES = previous
    reference = count_rowwise(info, rows)
    assert [c.tolist() for c in reference[0]] == expected[0] and reference[1].tolist() == expected[1]


def test_the_sample_holds_the_rows_and_never_the_padding() -> None:
    rng = np.random.default_rng(3)
    info = random_info(rng)
    rows = rng.normal(0.0, 1.0, (5, info.n_features)).astype(np.float32)
    counts, _, _, sample, seen, _ = count_chunks(info, [rows[:2], rows[2:]], 200, rng)
    assert seen == 5 and np.array_equal(sample, rows)
    assert counts is not None and int(counts.sum()) == 5 * info.n_features
    _, _, _, sample, seen, _ = count_chunks(info, [rows] * 300, 200, rng)
    assert seen == 1500 and sample.shape == (200, info.n_features) and not np.isnan(sample).any()


def test_folds_on_the_worker_thread_count_what_folds_on_the_caller_count() -> None:
    """Early folds handed to the recorder's worker thread (and, past MAX_PENDING_FOLDS, folded by
    the caller) end up in the window they were recorded in: a window closed right after the last
    call holds the same histograms, out-of-range counts and sample size as a recorder that folds
    every batch on the caller's thread, and the counts of the plain rule."""
    rng = np.random.default_rng(11)
    snap = snapshot(("m", "v1", 100, "champion"))
    background, inline = MetricsRecorder(), MetricsRecorder(background_folds=False)
    for recorder in (background, inline):
        recorder.configure(snap)
    bins = snap.deployments[0].routes[0].baseline.features
    edges = tuple(np.asarray([np.nextafter(f.min, -np.inf), *f.inner_edges, f.max]) for f in bins)
    info = RouteInfo(DEP, "m", "v1", "champion", "", "classifier", edges)
    # Enough folds at once that some wait for the worker and some are folded by the caller.
    n_batches = (MAX_PENDING_FOLDS + 3) * (FOLD_ROWS // 1024) + 5
    rows = rows_on_the_edges(rng, info, 1024 * n_batches)
    rows[::3] *= np.float32(2.5)  # a third out of range
    labels = rng.integers(0, 2, rows.shape[0]).astype(np.int64)
    for recorder in (background, inline):
        for b in range(n_batches):
            part = slice(b * 1024, (b + 1) * 1024)
            recorder.record_prediction(DEP, "m", "v1", "champion", rows[part], labels[part], None, 0.002)
    a, b = background.flush(), inline.flush()
    assert a is not None and b is not None
    (wa,), (wb,) = a.windows, b.windows
    assert wa.rows == wb.rows == rows.shape[0]
    assert features(wa) == features(wb)
    expected = count_rowwise(info, rows)
    assert [c for _, c, _ in features(wa)] == [c.tolist() for c in expected[0]]
    assert [o for _, _, o in features(wa)] == expected[1].tolist()
    assert len(wa.reservoir) == len(wb.reservoir)
    # After close() the recorder still records, folding on the caller's thread.
    background.close()
    for b in range(FOLD_ROWS // 1024 + 1):
        part = slice(b * 1024, (b + 1) * 1024)
        background.record_prediction(DEP, "m", "v1", "champion", rows[part], labels[part], None, 0.002)
    after = background.flush()
    assert after is not None
    expected = count_rowwise(info, rows[: (FOLD_ROWS // 1024 + 1) * 1024])
    assert [c for _, c, _ in features(after.windows[0])] == [c.tolist() for c in expected[0]]


class _InlineExecutor(Executor):
    """Runs each job at once, so its future is done before the recorder attaches its callback."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: Future[object] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_a_fold_done_before_its_callback_is_attached_does_not_block_the_caller() -> None:
    """A fold the worker finishes before `submit` returns (a fast worker, a slow caller) calls its
    done callback on the caller's thread: the caller must not hold the lock that callback takes."""
    snap = snapshot(("m", "v1", 100, "champion"))
    recorder = MetricsRecorder()
    recorder.configure(snap)
    recorder._folds = _InlineExecutor()  # type: ignore[assignment]
    rows = np.random.default_rng(3).normal(0.0, 1.0, (1024, 30)).astype(np.float32)
    labels = np.zeros(1024, dtype=np.int64)

    def record() -> None:
        for _ in range(2 * FOLD_ROWS // 1024):
            recorder.record_prediction(DEP, "m", "v1", "champion", rows, labels, None, 0.002)

    caller = threading.Thread(target=record, daemon=True)
    caller.start()
    caller.join(30)
    assert not caller.is_alive(), "recording a fold that finished at once deadlocked"
    report = recorder.flush()
    assert report is not None and report.windows[0].rows == 2 * FOLD_ROWS
