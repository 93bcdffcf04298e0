"""Always-valid tests: peeking after every window keeps the false positive rate at alpha."""

from __future__ import annotations

import math

import numpy as np
import pytest

from controlplane.stats import (
    SequentialDesign,
    SequentialPlan,
    always_valid_p_value,
    confidence_sequence_half_width,
    design_arrays,
    proportion_arrays,
    sample_size_two_proportions,
    sequential_mean_test,
    sequential_plan,
    sequential_plan_two_proportions,
    sequential_proportion_test,
    two_proportion_test,
    welch_arrays,
    welch_test,
)
from controlplane.stats.sequential import obf_constant
from core.summaries import Moments

RUNS = 2_000
LOOKS = 20
PER_LOOK = 250  # per arm and window
ALPHA = 0.05
CHECKED = 40  # runs replayed through the scalar API at every look


def stats_md_half_width(se: float, n: int, alpha: float, n_star: int = 5_000) -> float:
    """The formula exactly as STATS.md writes it."""
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n_star)
    inner = 2 * (n * rho**2 + 1) / (n**2 * rho**2) * math.log(math.sqrt(n * rho**2 + 1) / alpha)
    return se * math.sqrt(n) * math.sqrt(inner)


def test_half_width_is_the_published_formula() -> None:
    for se, n, alpha, n_star in (
        (0.01, 10_000, 0.05, 5_000),
        (0.3, 17, 0.01, 500),
        (2.0, 10**7, 0.2, 5_000),
    ):
        expected = stats_md_half_width(se, n, alpha, n_star)
        assert confidence_sequence_half_width(se, n, alpha, n_star) == pytest.approx(expected, rel=1e-12)
    assert confidence_sequence_half_width(0.1, 0, 0.05) == math.inf
    widths = confidence_sequence_half_width(0.01, 10_000, np.geomspace(1e-10, 0.99, 500))
    assert np.all(np.diff(widths) < 0)  # monotone in alpha: what the p-value bisection needs


def proportion_peeking(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative successes per (run, look, arm) of A/A experiments and the per-arm n per look."""
    rng = np.random.default_rng(seed)
    successes = rng.binomial(PER_LOOK, 0.8, size=(RUNS, LOOKS, 2)).cumsum(axis=1)
    n = PER_LOOK * np.arange(1, LOOKS + 1)
    return successes[..., 0], successes[..., 1], n


def test_sequential_proportion_test_survives_peeking_where_the_fixed_one_does_not() -> None:
    control, treatment, n = proportion_peeking(seed=50)
    arrays = proportion_arrays(control, n, treatment, n)
    half = confidence_sequence_half_width(arrays.se, 2 * n, ALPHA)
    sequential = np.abs(arrays.difference) > half  # (run, look): CS excludes 0
    naive = arrays.p_value < ALPHA
    sequential_rate = sequential.any(axis=1).mean()
    naive_rate = naive.any(axis=1).mean()
    assert sequential_rate <= 0.05, sequential_rate
    assert naive_rate > 0.08, naive_rate  # ~25% with 20 looks
    assert naive[:, -1].mean() == pytest.approx(0.05, abs=0.012)  # one look alone is fine
    # the public scalar functions make exactly the same calls, look by look
    for run in range(CHECKED):
        for look in range(LOOKS):
            args = (int(control[run, look]), int(n[look]), int(treatment[run, look]), int(n[look]))
            seq = sequential_proportion_test(*args)
            assert seq.significant == sequential[run, look]
            assert (seq.p_value <= ALPHA) == seq.significant
            assert two_proportion_test(*args).significant == naive[run, look]


def moments_peeking(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-window (mean, M2) per (run, look, arm) of A/A experiments on a skewed metric."""
    rng = np.random.default_rng(seed)
    mean = np.empty((RUNS, LOOKS, 2))
    m2 = np.empty((RUNS, LOOKS, 2))
    for look in range(LOOKS):  # one window at a time keeps memory small
        values = rng.exponential(1.0, size=(RUNS, 2, PER_LOOK))  # e.g. absolute errors
        mean[:, look] = values.mean(axis=2)
        m2[:, look] = ((values - mean[:, look, :, None]) ** 2).sum(axis=2)
    return mean, m2


def test_sequential_mean_test_survives_peeking() -> None:
    mean, m2 = moments_peeking(seed=51)
    # cumulative Chan merge of the windows, vectorised over runs
    n_cum = np.zeros((RUNS, 2))
    mean_cum = np.zeros((RUNS, 2))
    m2_cum = np.zeros((RUNS, 2))
    significant = np.zeros((RUNS, LOOKS), dtype=bool)
    naive = np.zeros((RUNS, LOOKS), dtype=bool)
    for look in range(LOOKS):
        n_new = n_cum + PER_LOOK
        delta = mean[:, look] - mean_cum
        mean_cum = mean_cum + delta * PER_LOOK / n_new
        m2_cum = m2_cum + m2[:, look] + delta**2 * n_cum * PER_LOOK / n_new
        n_cum = n_new
        var = m2_cum / (n_cum - 1)
        arrays = welch_arrays(n_cum[:, 0], mean_cum[:, 0], var[:, 0], n_cum[:, 1], mean_cum[:, 1], var[:, 1])
        half = confidence_sequence_half_width(arrays.se, n_cum.sum(axis=1), ALPHA)
        significant[:, look] = np.abs(arrays.difference) > half
        naive[:, look] = arrays.p_value < ALPHA
    assert significant.any(axis=1).mean() <= 0.05
    assert naive.any(axis=1).mean() > 0.08
    for run in range(CHECKED):  # Moments.merge + the scalar test agree with the simulation
        control, treatment = Moments(), Moments()
        for look in range(LOOKS):
            window = [Moments(PER_LOOK, mean[run, look, a], m2[run, look, a]) for a in (0, 1)]
            control, treatment = control.merge(window[0]), treatment.merge(window[1])
            assert sequential_mean_test(control, treatment).significant == significant[run, look]
            assert welch_test(control, treatment).significant == naive[run, look]


def test_sequential_test_still_detects_a_real_difference() -> None:
    rng = np.random.default_rng(52)
    looks, per_look = 40, 500
    control = rng.binomial(per_look, 0.80, size=(1_000, looks)).cumsum(axis=1)
    treatment = rng.binomial(per_look, 0.83, size=(1_000, looks)).cumsum(axis=1)
    n = per_look * np.arange(1, looks + 1)
    arrays = proportion_arrays(control, n, treatment, n)
    detected = np.abs(arrays.difference) > confidence_sequence_half_width(arrays.se, 2 * n, ALPHA)
    assert detected.any(axis=1).mean() >= 0.9  # 20k per arm by the last look
    result = sequential_proportion_test(8_000, 10_000, 8_300, 10_000)
    fixed = two_proportion_test(8_000, 10_000, 8_300, 10_000)
    assert result.significant and result.difference_ci[0] > 0 and result.p_value < ALPHA
    assert result.difference == fixed.difference
    # the price of looking any time: a wider interval than the fixed-horizon one
    width = result.difference_ci[1] - result.difference_ci[0]
    assert width > fixed.difference_ci[1] - fixed.difference_ci[0]
    assert result.relative_lift_ci[0] < result.relative_lift < result.relative_lift_ci[1]


def test_always_valid_p_value_is_the_alpha_where_the_sequence_touches_zero() -> None:
    rng = np.random.default_rng(53)
    diff, se, n = (
        rng.normal(0, 0.02, 200),
        rng.uniform(0.002, 0.01, 200),
        rng.integers(50, 10**6, 200),
    )
    p = always_valid_p_value(diff, se, n)
    inside = (p > 1e-300) & (p < 1.0)
    assert inside.sum() > 50
    touching = confidence_sequence_half_width(se[inside], n[inside], p[inside])
    np.testing.assert_allclose(touching, np.abs(diff[inside]), rtol=1e-9)
    at_one = p == 1.0
    assert np.all(confidence_sequence_half_width(se[at_one], n[at_one], 1 - 1e-9) >= np.abs(diff[at_one]))
    for alpha in (0.01, 0.05, 0.2):  # p <= alpha exactly when the alpha-level sequence excludes 0
        excludes = np.abs(diff) > confidence_sequence_half_width(se, n, alpha)
        assert np.array_equal(p <= alpha, excludes)


def test_sequential_edge_cases() -> None:
    empty = sequential_proportion_test(0, 0, 0, 0)
    assert not empty.significant and math.isnan(empty.p_value) and math.isnan(empty.difference)
    assert not sequential_mean_test(Moments(), Moments()).significant
    same = sequential_proportion_test(50, 50, 80, 80)  # zero variance, no difference
    assert same.p_value == 1.0 and not same.significant
    split = sequential_proportion_test(200, 200, 0, 200)  # 100% vs 0%: pooled se stands in
    assert split.significant and split.difference == -1.0
    flat = sequential_mean_test(Moments.of([1.0] * 10), Moments.of([2.0] * 10))
    assert not flat.significant and math.isnan(flat.p_value) and flat.difference == 1.0
    assert math.isnan(always_valid_p_value(0.1, math.nan, 100))
    with pytest.raises(ValueError):
        confidence_sequence_half_width(0.1, 100, 0.0)


# -- the planned design ---------------------------------------------------------------------------


def planned_looks(
    plan: SequentialPlan, p_control: float, p_treatment: float, n_per_arm: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    step = math.ceil(n_per_arm / LOOKS)
    control = rng.binomial(step, p_control, size=(RUNS, LOOKS)).cumsum(axis=1)
    treatment = rng.binomial(step, p_treatment, size=(RUNS, LOOKS)).cumsum(axis=1)
    n = step * np.arange(1, LOOKS + 1)
    arrays = proportion_arrays(control, n, treatment, n)
    half, p = design_arrays(plan.design, arrays.difference, arrays.se)
    assert np.array_equal(np.abs(arrays.difference) > half, p <= ALPHA)  # one statement
    return np.abs(arrays.difference) > half, control, treatment, n


def test_planned_design_spends_its_alpha_and_keeps_the_power_it_promises() -> None:
    plan = sequential_plan_two_proportions(0.80, 0.03, alpha=ALPHA, power=0.8)
    fixed_n = sample_size_two_proportions(0.80, 0.03, alpha=ALPHA, power=0.8)
    assert plan.expected_power == pytest.approx(0.8, abs=0.005)
    assert fixed_n < plan.n_control < 1.25 * fixed_n  # the price of looking: about 1.17x
    a_a, control, treatment, n = planned_looks(plan, 0.80, 0.80, plan.n_control, seed=60)
    assert 0.02 <= a_a.any(axis=1).mean() <= 0.05  # valid, and not wastefully conservative
    longer, *_ = planned_looks(plan, 0.80, 0.80, 2 * plan.n_control, seed=61)
    assert longer.any(axis=1).mean() <= 0.05  # looking on past the planned size stays valid
    found, *_ = planned_looks(plan, 0.80, 0.83, plan.n_control, seed=62)
    assert found.any(axis=1).mean() == pytest.approx(plan.expected_power, abs=0.035)
    at_125, *_ = planned_looks(plan, 0.80, 0.83, math.ceil(1.25 * fixed_n), seed=63)
    assert at_125.any(axis=1).mean() >= 0.75
    for run in range(CHECKED):  # the scalar test is the kernel, look by look
        for look in range(0, LOOKS, 3):
            args = (int(control[run, look]), int(n[look]), int(treatment[run, look]), int(n[look]))
            result = sequential_proportion_test(*args, alpha=ALPHA, design=plan.design)
            assert result.significant == a_a[run, look]
            assert (result.p_value <= ALPHA) == result.significant
            assert result.method == "sequential_proportion_planned"


def test_planned_design_boundary_and_plan_inputs() -> None:
    # the continuous O'Brien-Fleming constant: P(sup |B| >= c on [0, 1]) = alpha
    assert obf_constant(0.05) == pytest.approx(2.2414, abs=1e-4)
    means = sequential_plan(1.0, 1.0, 0.1, treatment_share=0.1)
    assert means.n_treatment * 9 == pytest.approx(means.n_control, rel=1e-3)
    with pytest.raises(ValueError):
        sequential_plan_two_proportions(0.99, 0.03)
    with pytest.raises(ValueError):
        sequential_proportion_test(1, 10, 2, 10, alpha=0.1, design=SequentialDesign(0.05, 0.01))
