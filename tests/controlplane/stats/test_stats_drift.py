"""Drift: baseline bins, PSI and KS against direct numpy/scipy computations, reservoirs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from controlplane.stats import (
    FeatureKS,
    baseline_bin_edges,
    baseline_bin_edges_2d,
    histogram_counts,
    ks_features,
    ks_test,
    prediction_histogram,
    prediction_psi,
    psi,
    psi_level,
)
from core.reservoir import Reservoir


def direct_psi(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    """sum((p - q) * ln(p / q)) written out term by term, independently of the implementation."""
    total_e, total_a = float(sum(expected)), float(sum(actual))
    value = 0.0
    for e, a in zip(expected, actual, strict=True):
        p = max(a / total_a, eps)
        q = max(e / total_e, eps)
        value += (p - q) * math.log(p / q)
    return value


def test_baseline_edges_are_inner_quantiles_without_duplicates() -> None:
    sample = np.random.default_rng(30).normal(size=5_000)
    edges = baseline_bin_edges(sample, 10)
    assert edges.shape == (9,)
    np.testing.assert_allclose(edges, np.quantile(sample, np.arange(1, 10) / 10), rtol=1e-12)
    lumpy = np.array([0.0] * 90 + [1.0] * 10)
    assert baseline_bin_edges(lumpy, 10).tolist() == pytest.approx([0.0, 0.1])  # 9 -> 2 distinct
    assert baseline_bin_edges(np.array([]), 10).size == 0
    assert baseline_bin_edges(np.array([np.nan, 1.0, 2.0]), 2).tolist() == [1.5]
    table = np.random.default_rng(31).normal(size=(1_000, 3)) * [1, 10, 100]
    per_feature = baseline_bin_edges_2d(table, 5)
    assert len(per_feature) == 3
    for i, edges_i in enumerate(per_feature):
        assert np.array_equal(edges_i, baseline_bin_edges(table[:, i], 5))


def test_histogram_bins_are_right_closed_and_skip_nan() -> None:
    edges = np.array([1.0, 2.0, 4.0])
    values = np.array([-np.inf, 0.0, 1.0, 1.5, 2.0, 2.0, 3.0, 4.0, 4.5, np.inf, np.nan])
    counts = histogram_counts(values, edges)
    assert counts.dtype == np.int64
    # (-inf, 1], (1, 2], (2, 4], (4, inf)
    assert counts.tolist() == [3, 3, 2, 2]
    rng = np.random.default_rng(32)
    data = rng.integers(0, 10, 5_000).astype(float)  # lands on the edges often
    inner = np.array([2.0, 5.0, 7.0])
    full = np.concatenate([[-np.inf], inner, [np.inf]])
    direct = [int(np.sum((data > lo) & (data <= hi))) for lo, hi in itertools.pairwise(full)]
    assert histogram_counts(data, inner).tolist() == direct
    assert histogram_counts(np.array([3.0, np.nan]), np.array([])).tolist() == [1]


def test_psi_equals_direct_computation() -> None:
    rng = np.random.default_rng(33)
    baseline = rng.normal(0, 1, 20_000)
    edges = baseline_bin_edges(baseline, 10)
    expected = histogram_counts(baseline, edges)
    for shift, scale in ((0.0, 1.0), (0.3, 1.0), (1.0, 2.0), (4.0, 0.2)):  # the last empties bins
        actual = histogram_counts(rng.normal(shift, scale, 3_000), edges)
        assert psi(expected, actual) == pytest.approx(direct_psi(expected, actual), abs=1e-9)
        assert psi(actual, expected) == pytest.approx(psi(expected, actual), abs=1e-12)
    assert psi(expected, expected) == pytest.approx(0.0, abs=1e-12)
    assert psi([10, 0, 0], [0, 0, 10], eps=1e-3) == pytest.approx(
        direct_psi([10, 0, 0], [0, 0, 10], eps=1e-3), abs=1e-12
    )


def test_psi_grows_with_the_shift_and_reads_conventionally() -> None:
    rng = np.random.default_rng(34)
    baseline = rng.normal(0, 1, 50_000)
    edges = baseline_bin_edges(baseline, 10)
    expected = histogram_counts(baseline, edges)
    values = [psi(expected, histogram_counts(rng.normal(s, 1, 50_000), edges)) for s in (0, 0.5, 1)]
    assert values[0] < 0.01 < values[1] < values[2]
    assert psi_level(values[0]) == "none" and psi_level(values[2]) == "significant"
    assert [psi_level(v) for v in (0.0999, 0.1, 0.2499, 0.25)] == [
        "none",
        "moderate",
        "moderate",
        "significant",
    ]
    assert psi_level(math.nan) == "none"


def test_psi_edge_cases() -> None:
    assert math.isnan(psi([0, 0], [1, 2])) and math.isnan(psi([1, 2], [0, 0]))
    with pytest.raises(ValueError, match="differ"):
        psi([1, 2, 3], [1, 2])


def test_ks_equals_scipy() -> None:
    rng = np.random.default_rng(35)
    for n, m, shift in ((40, 30, 0.0), (800, 600, 0.2), (5_000, 200, 0.0)):
        a, b = rng.normal(size=n), rng.normal(shift, 1, size=m)
        statistic, p = ks_test(a, b)
        reference = sps.ks_2samp(a, b)
        assert statistic == pytest.approx(float(reference.statistic), abs=1e-9)
        assert p == pytest.approx(float(reference.pvalue), abs=1e-9)
    assert all(math.isnan(x) for x in ks_test(np.array([]), np.ones(3)))
    a = rng.normal(size=100)
    assert ks_test(np.append(a, np.nan), a) == pytest.approx(ks_test(a, a))


def test_ks_features_uses_bonferroni() -> None:
    rng = np.random.default_rng(36)
    baseline = rng.normal(size=(1_000, 8))
    current = rng.normal(size=(700, 8))
    current[:, 5] += 0.4
    results = ks_features(baseline, current, alpha=0.05)
    assert [r.index for r in results] == list(range(8))
    for r in results:
        assert isinstance(r, FeatureKS) and r.threshold == pytest.approx(0.05 / 8)
        reference = sps.ks_2samp(baseline[:, r.index], current[:, r.index]).pvalue
        assert r.p_value == pytest.approx(float(reference), abs=1e-9)
        assert r.drifted == (reference < 0.05 / 8)
    assert [r.index for r in results if r.drifted] == [5]
    with pytest.raises(ValueError, match="feature counts"):
        ks_features(baseline, current[:, :3])


def test_bonferroni_keeps_family_wise_false_alarms_near_alpha() -> None:
    rng = np.random.default_rng(37)
    windows, features = 150, 10
    alarms = sum(
        any(r.drifted for r in ks_features(rng.normal(size=(200, features)), rng.normal(size=(100, features))))
        for _ in range(windows)
    )
    assert alarms / windows <= 0.08  # per-feature alpha 0.05 would alarm in ~40% of windows


def test_reservoir_is_bounded_and_uniform_over_the_stream() -> None:
    rows, capacity, trials = 5_000, 50, 400
    hits = np.zeros(10)
    for trial in range(trials):
        reservoir = Reservoir(capacity, n_features=2, seed=trial)
        stream = np.column_stack([np.arange(rows), -np.arange(rows)]).astype(float)
        for batch in np.array_split(stream, [10, 30, 49, 51, 400, 2_000, 2_001]):
            reservoir.add_rows(batch)
        sample = reservoir.sample()
        assert sample.shape == (capacity, 2) and reservoir.seen == rows
        assert np.array_equal(sample[:, 1], -sample[:, 0])  # rows stay whole
        assert len(np.unique(sample[:, 0])) == capacity  # without replacement
        hits += np.bincount((sample[:, 0] // (rows // 10)).astype(int), minlength=10)
    # every tenth of the stream equally likely to be kept, head and tail alike
    assert sps.chisquare(hits).pvalue > 0.001, hits


def test_reservoir_small_streams_and_shapes() -> None:
    reservoir = Reservoir(10, seed=1)
    reservoir.add_rows(np.arange(4.0))  # 1-D: four rows of one feature
    assert reservoir.sample().tolist() == [[0.0], [1.0], [2.0], [3.0]] and reservoir.seen == 4
    with pytest.raises(ValueError, match="features"):
        reservoir.add_rows(np.ones((2, 3)))
    assert Reservoir(5).sample().size == 0 and len(Reservoir(5)) == 0
    twin_a, twin_b = Reservoir(20, 1, seed=7), Reservoir(20, 1, seed=7)
    for r in (twin_a, twin_b):
        r.add_rows(np.arange(1_000.0).reshape(-1, 1))
    assert np.array_equal(twin_a.sample(), twin_b.sample())  # seeded: reproducible


def test_reservoir_merge_is_weighted_by_what_each_side_saw() -> None:
    shares = []
    for seed in range(200):
        small = Reservoir(100, 1, seed=seed)
        small.add_rows(np.zeros((10_000, 1)))
        large = Reservoir(100, 1, seed=seed + 1_000)
        large.add_rows(np.ones((30_000, 1)))
        small.merge(large)
        assert small.seen == 40_000 and small.sample().shape == (100, 1)
        shares.append(small.sample().mean())
    assert np.mean(shares) == pytest.approx(0.75, abs=0.01)  # 30k of 40k rows
    reported = Reservoir.from_sample(np.arange(6.0).reshape(3, 2), seen=900, capacity=50)
    empty = Reservoir(50, seed=3)
    empty.merge(reported)
    assert empty.seen == 900 and empty.sample().shape == (3, 2)
    with pytest.raises(ValueError, match="merge"):
        empty.merge(Reservoir.from_sample(np.ones((2, 5)), seen=2))


def test_a_classifiers_baseline_predictions_are_counts_per_class() -> None:
    counts, edges = prediction_histogram(np.array([0, 2, 2, 1, 2]), "classifier", n_classes=4)
    assert counts.tolist() == [1, 1, 3, 0] and edges.size == 0  # a class never predicted still has a bin


def test_a_regressors_baseline_predictions_are_counted_on_their_own_quantile_bins() -> None:
    values = np.random.default_rng(0).normal(size=1000)
    counts, edges = prediction_histogram(values, "regressor", n_bins=10)
    assert edges.tolist() == baseline_bin_edges(values, 10).tolist()
    assert counts.tolist() == histogram_counts(values, edges).tolist() and counts.sum() == 1000
    # what the agent counts live (numpy searchsorted on the same edges, right-closed bins)
    live = np.random.default_rng(1).normal(0.5, 1.0, size=800)
    agent_counts = np.bincount(np.searchsorted(edges, live, side="left"), minlength=edges.size + 1)
    assert agent_counts.tolist() == histogram_counts(live, edges).tolist()


def test_prediction_psi_is_the_psi_of_the_class_mix_and_pads_classes_one_side_never_saw() -> None:
    baseline = np.array([370, 200])
    assert prediction_psi(baseline, baseline * 3) == pytest.approx(0.0, abs=1e-12)
    shifted = np.array([100, 470])
    assert prediction_psi(baseline, shifted) == pytest.approx(direct_psi(baseline, shifted), rel=1e-12)
    # a third class the baseline never predicted: counted as 0 there (drift), not an error
    assert prediction_psi(baseline, np.array([370, 200, 50])) == pytest.approx(
        direct_psi(np.array([370, 200, 0]), np.array([370, 200, 50])), rel=1e-12
    )
    assert math.isnan(prediction_psi(baseline, np.zeros(2)))
