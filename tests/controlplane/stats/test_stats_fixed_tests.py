"""Fixed-horizon tests, SRM, paired tests, planning and verdicts: exactness and error rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as sps

from controlplane.stats import (
    CHALLENGER_WINS,
    CHAMPION_HOLDS,
    NO_DIFFERENCE,
    Comparison,
    decide,
    mcnemar_test,
    paired_t_test,
    proportion_arrays,
    ratio_score_interval,
    ratio_score_statistic,
    relative_lift,
    sample_size_two_means,
    sample_size_two_proportions,
    score_interval,
    score_statistic,
    sequential_proportion_test,
    srm_check,
    two_proportion_test,
    welch_arrays,
    welch_test,
)
from core.summaries import Moments

RUNS = 2_000
ALPHA = 0.05


def false_positive_band(runs: int, alpha: float = ALPHA) -> tuple[float, float]:
    """alpha ± 3 binomial standard deviations of a rejection rate measured over `runs` simulations.

    numpy does not promise the same Generator stream across versions, so a seeded rate may move by
    sampling noise; the band allows that (a true-size test lands outside it about 3 times in 1000)
    while a test that rejects twice as often as it should still falls far outside.
    """
    half_width = 3 * math.sqrt(alpha * (1 - alpha) / runs)
    assert alpha + half_width < 2 * alpha, f"{runs} runs cannot tell a {alpha} test from a {2 * alpha} one"
    return alpha - half_width, alpha + half_width


def exact_power(p_control: float, p_treatment: float, n: int, alpha: float = ALPHA) -> float:
    """Rejection probability of the z-test, summed over the binomial outcomes (±9 sd)."""

    def support(p: float) -> tuple[np.ndarray, np.ndarray]:
        sd = math.sqrt(n * p * (1 - p))
        k = np.arange(max(0, int(n * p - 9 * sd)), min(n, int(n * p + 9 * sd) + 1) + 1)
        return k, sps.binom.pmf(k, n, p)

    kc, wc = support(p_control)
    kt, wt = support(p_treatment)
    rejects = proportion_arrays(kc[:, None], n, kt[None, :], n).p_value < alpha
    return float(np.sum(wc[:, None] * wt[None, :] * rejects))


# -- two proportions ------------------------------------------------------------------------------


def test_two_proportion_test_is_the_chi_square_test_with_its_score_interval() -> None:
    result = two_proportion_test(800, 1_000, 830, 1_000)
    _, p, _, _ = sps.chi2_contingency([[800, 200], [830, 170]], correction=False)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    assert (result.control, result.treatment) == pytest.approx((0.8, 0.83))
    assert result.difference == pytest.approx(0.03)
    se = math.sqrt(0.8 * 0.2 / 1_000 + 0.83 * 0.17 / 1_000)
    z = sps.norm.ppf(0.975)
    # the interval inverts the pooled test (Mee's score interval): at each end the score
    # statistic, with the restricted estimates of the likelihood, is exactly the critical z
    low, high = result.difference_ci
    for end, target in ((low, z), (high, -z)):
        assert score_statistic(800, 1_000, 830, 1_000, end) == pytest.approx(target, rel=1e-9)
    assert high - low == pytest.approx(2 * z * se, rel=0.01)  # close to Wald's at this size
    # the lift's interval inverts the same family for the ratio: at each end the ratio score
    # statistic is the critical z, and it is near the delta method's at this size
    assert result.relative_lift == pytest.approx(0.0375)
    lift_low, lift_high = result.relative_lift_ci
    for end, target in ((lift_low, z), (lift_high, -z)):
        assert ratio_score_statistic(800, 1_000, 830, 1_000, 1 + end) == pytest.approx(target, rel=1e-9)
    lift_se = math.sqrt(0.83 * 0.17 / 1_000 / 0.8**2 + 0.83**2 * 0.8 * 0.2 / 1_000 / 0.8**4)
    assert lift_high - lift_low == pytest.approx(2 * z * lift_se, rel=0.02)
    assert result.significant is False and result.method == "two_proportion_z"
    assert two_proportion_test(800, 1_000, 860, 1_000).significant


def test_the_ratio_score_test_is_the_pooled_z_test_at_ratio_one_with_restricted_estimates() -> None:
    """Checked against what it should be, not against our own formula: at ratio 1 the statistic
    is scipy's chi-square (signed), and the restricted estimates maximise the binomial likelihood
    on the line p_treatment = ratio * p_control (found here by a bounded numerical search)."""
    _, p, _, _ = sps.chi2_contingency([[800, 200], [830, 170]], correction=False)
    assert float(ratio_score_statistic(800, 1_000, 830, 1_000, 1.0)) == pytest.approx(sps.norm.isf(p / 2), rel=1e-9)
    for ratio in (0.9, 1.05, 1.2):

        def loglik(pc: float, ratio: float = ratio) -> float:
            return -(sps.binom.logpmf(800, 1_000, pc) + sps.binom.logpmf(830, 1_000, ratio * pc))

        best = optimize.minimize_scalar(
            loglik, bounds=(1e-9, min(1.0, 1.0 / ratio) - 1e-9), method="bounded", options={"xatol": 1e-12}
        )
        pc = best.x
        expected = (0.83 - ratio * 0.8) / math.sqrt(
            ratio * pc * (1 - ratio * pc) / 1_000 + ratio**2 * pc * (1 - pc) / 1_000
        )
        assert float(ratio_score_statistic(800, 1_000, 830, 1_000, ratio)) == pytest.approx(expected, rel=1e-6)


def test_lift_intervals_and_p_values_say_one_thing() -> None:
    """Issue 17: the lift's interval excludes 0 exactly when the test is significant, for the
    two-proportion test, Welch's and the sequential tests, over many near-boundary cases."""
    rng = np.random.default_rng(17)
    size = 1_500
    n_c, n_t = rng.integers(200, 12_000, size), rng.integers(200, 12_000, size)
    p = rng.uniform(0.05, 0.95, size)
    s_c = rng.binomial(n_c, p)
    s_t = rng.binomial(n_t, np.minimum(p * rng.uniform(0.97, 1.03, size), 1.0))
    significant = proportion_arrays(s_c, n_c, s_t, n_t).p_value < 0.05
    near = 0
    for i in range(size):
        low, high = ratio_score_interval(int(s_c[i]), int(n_c[i]), int(s_t[i]), int(n_t[i]), 1.959963984540054)
        assert bool(significant[i]) == (not low <= 0 <= high), (s_c[i], n_c[i], s_t[i], n_t[i])
        near += min(abs(low), abs(high)) < 0.002
    assert near > 20  # the check reached cases near the boundary, where the delta method disagreed
    for i in range(0, size, 15):  # the whole comparisons, fixed and sequential
        for result in (
            two_proportion_test(int(s_c[i]), int(n_c[i]), int(s_t[i]), int(n_t[i])),
            sequential_proportion_test(int(s_c[i]), int(n_c[i]), int(s_t[i]), int(n_t[i])),
        ):
            low, high = result.relative_lift_ci
            assert math.isfinite(low) and math.isfinite(high)
            assert result.significant == (not low <= 0 <= high)
            assert result.significant == (not result.difference_ci[0] <= 0 <= result.difference_ci[1])
    # the example: p = 0.056, so no interval of this test may exclude 0
    example = two_proportion_test(9_492, 10_050, 2_485, 2_605)
    assert not example.significant
    assert example.difference_ci[0] <= 0 <= example.difference_ci[1]
    assert example.relative_lift_ci[0] <= 0 <= example.relative_lift_ci[1]
    # means: Fieller's interval at the Welch critical value agrees with Welch's test
    for seed in range(300):
        r = np.random.default_rng(seed)
        a, b = r.exponential(1.0, 80), r.exponential(1.0, 90) * r.uniform(0.8, 1.25)
        result = welch_test(Moments.of(a), Moments.of(b))
        low, high = result.relative_lift_ci
        assert math.isfinite(low) and math.isfinite(high)
        assert result.significant == (not low <= 0 <= high), seed


def test_fieller_interval_holds_the_ratios_the_test_does_not_reject() -> None:
    control, treatment, var_c, var_t, z = 2.0, 2.3, 0.01, 0.02, 1.96
    lift, (low, high) = relative_lift(control, treatment, var_c, var_t, z)
    assert lift == pytest.approx(0.15)
    for end in (low, high):  # at each end |treatment - r control| = z sqrt(var_t + r^2 var_c)
        r = 1 + end
        assert abs(treatment - r * control) == pytest.approx(z * math.sqrt(var_t + r * r * var_c), rel=1e-9)
    # a control mean indistinguishable from 0 leaves the ratio unbounded: no interval
    assert relative_lift(0.01, 0.5, 0.01, 0.01, 1.96)[1] == (pytest.approx(math.nan, nan_ok=True),) * 2
    # the ratio score interval: bounded below by a ratio of 0 when the treatment has no successes
    low, high = ratio_score_interval(50, 100, 0, 100, 1.96)
    assert low == -1.0 and high < 0


def test_fixed_proportion_test_false_positive_rate() -> None:
    rng = np.random.default_rng(40)
    n = 2_000
    draws = rng.binomial(n, 0.8, size=(RUNS, 2))
    significant = proportion_arrays(draws[:, 0], n, draws[:, 1], n).p_value < ALPHA
    rate = float(np.mean(significant))
    # the scalar test decides as the kernel does (a sample: each scalar call also finds two intervals)
    for i in range(0, RUNS, 20):
        assert two_proportion_test(int(draws[i, 0]), n, int(draws[i, 1]), n).significant == significant[i]
    low, high = false_positive_band(RUNS)
    assert low <= rate <= high, rate
    assert exact_power(0.8, 0.8, n) == pytest.approx(0.05, abs=0.002)  # exact size, no noise


def test_array_kernel_agrees_with_the_scalar_test() -> None:
    rng = np.random.default_rng(41)
    n_c, n_t = rng.integers(1, 500, 300), rng.integers(1, 500, 300)
    s_c, s_t = rng.binomial(n_c, 0.6), rng.binomial(n_t, 0.6)
    arrays = proportion_arrays(s_c, n_c, s_t, n_t)
    for i in range(300):
        scalar = two_proportion_test(int(s_c[i]), int(n_c[i]), int(s_t[i]), int(n_t[i]))
        assert scalar.p_value == pytest.approx(float(arrays.p_value[i]), rel=1e-12)


# -- means ----------------------------------------------------------------------------------------


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(42)
    a, b = rng.exponential(1.0, 300), rng.exponential(1.0, 500) + 0.2
    ours = welch_test(Moments.of(a), Moments.of(b))
    reference = sps.ttest_ind(b, a, equal_var=False)
    assert ours.p_value == pytest.approx(float(reference.pvalue), rel=1e-9)
    low, high = reference.confidence_interval(0.95)
    assert ours.difference_ci == pytest.approx((float(low), float(high)), rel=1e-9)
    assert ours.difference == pytest.approx(b.mean() - a.mean())
    assert ours.significant and ours.method == "welch_t"


def test_welch_false_positive_rate() -> None:
    rng = np.random.default_rng(43)
    hits = 0
    for _ in range(RUNS):
        control, treatment = rng.exponential(1.0, 200), rng.exponential(1.0, 200)  # skewed
        hits += welch_test(Moments.of(control), Moments.of(treatment)).significant
    low, high = false_positive_band(RUNS)
    assert low <= hits / RUNS <= high, hits / RUNS


def test_welch_arrays_false_positive_rate_on_many_experiments() -> None:
    rng = np.random.default_rng(44)
    x = rng.normal(3.0, 2.0, size=(20_000, 2, 50))
    mean, var = x.mean(axis=2), x.var(axis=2, ddof=1)
    p = welch_arrays(50, mean[:, 0], var[:, 0], 50, mean[:, 1], var[:, 1]).p_value
    assert np.mean(p < ALPHA) == pytest.approx(0.05, abs=0.005)


# -- degenerate inputs ----------------------------------------------------------------------------


def test_empty_arms_and_zero_variance_never_raise() -> None:
    for result in (two_proportion_test(0, 0, 5, 10), two_proportion_test(0, 0, 0, 0)):
        assert not result.significant and math.isnan(result.p_value)
        assert math.isnan(result.difference) and decide(result, True) == NO_DIFFERENCE
    same = two_proportion_test(10, 10, 20, 20)  # everyone right in both arms
    assert same.p_value == 1.0 and not same.significant and same.difference == 0.0
    zero_baseline = two_proportion_test(0, 100, 3, 100)
    assert math.isnan(zero_baseline.relative_lift) and math.isfinite(zero_baseline.p_value)
    assert not welch_test(Moments(), Moments.of([1.0, 2.0])).significant
    assert math.isnan(welch_test(Moments.of([1.0]), Moments.of([1.0, 2.0])).p_value)
    flat = welch_test(Moments.of([2.0] * 5), Moments.of([3.0] * 5))  # no noise estimate
    assert not flat.significant and math.isnan(flat.p_value) and flat.difference == 1.0
    equal = welch_test(Moments.of([2.0] * 5), Moments.of([2.0] * 5))
    assert equal.p_value == 1.0 and not equal.significant
    with pytest.raises(ValueError):
        two_proportion_test(11, 10, 1, 10)
    with pytest.raises(ValueError):
        two_proportion_test(1, 10, 1, 10, alpha=1.5)


# -- planning and power ---------------------------------------------------------------------------


def test_power_at_the_planned_sample_size() -> None:
    n = sample_size_two_proportions(0.80, 0.03, alpha=ALPHA, power=0.8)
    rng = np.random.default_rng(45)
    control, treatment = rng.binomial(n, 0.80, 20_000), rng.binomial(n, 0.83, 20_000)
    simulated = np.mean(proportion_arrays(control, n, treatment, n).p_value < ALPHA)
    assert simulated >= 0.80, (n, simulated)
    # the first 1,000 of those experiments through the public scalar test give the same calls
    scalar = [
        two_proportion_test(int(c), n, int(t), n).significant
        for c, t in zip(control[:1_000], treatment[:1_000], strict=True)
    ]
    assert np.mean(scalar) >= 0.78
    assert scalar == (proportion_arrays(control[:1_000], n, treatment[:1_000], n).p_value < ALPHA).tolist()
    assert exact_power(0.80, 0.83, n) >= 0.80


@pytest.mark.parametrize(("p_control", "diff"), [(0.8, 0.03), (0.5, 0.03), (0.9, 0.03), (0.2, 0.05), (0.1, -0.03)])
def test_planned_size_reaches_the_power_exactly(p_control: float, diff: float) -> None:
    n = sample_size_two_proportions(p_control, diff)
    assert exact_power(p_control, p_control + diff, n) >= 0.80
    # and it is not wasteful: 10% fewer samples fall short
    assert exact_power(p_control, p_control + diff, int(n * 0.9)) < 0.80


def test_sample_size_inputs() -> None:
    assert sample_size_two_proportions(0.8, 0.03, continuity_correction=False) == 2_629
    assert sample_size_two_proportions(0.8, 0.03) > 2_629
    assert sample_size_two_means(1.0, 0.2) == math.ceil(2 * (1.959964 + 0.841621) ** 2 / 0.04)
    with pytest.raises(ValueError):
        sample_size_two_proportions(0.99, 0.03)
    with pytest.raises(ValueError):
        sample_size_two_proportions(0.5, 0.0)


# -- sample ratio mismatch ------------------------------------------------------------------------


def test_srm_false_alarms_and_detection() -> None:
    rng = np.random.default_rng(46)
    a_a = rng.multinomial(20_000, [0.5, 0.5], size=RUNS)
    alarms = sum(srm_check(c.tolist(), [50, 50]).mismatch for c in a_a)
    assert alarms / RUNS <= 0.002, alarms
    imbalanced = rng.multinomial(20_000, [0.52, 0.48], size=200)
    detected = np.mean([srm_check(c.tolist(), [50, 50]).mismatch for c in imbalanced])
    assert detected >= 0.95, detected
    result = srm_check([10_400, 9_600], [50, 50])
    assert result.mismatch and result.chi2 == pytest.approx(32.0)
    assert result.p_value == pytest.approx(sps.chisquare([10_400, 9_600]).pvalue, rel=1e-9)


def test_srm_shapes_and_edges() -> None:
    three = srm_check([4_950, 2_570, 2_480], [50, 25, 25])
    reference = sps.chisquare([4_950, 2_570, 2_480], [5_000, 2_500, 2_500])
    assert three.p_value == pytest.approx(float(reference.pvalue), rel=1e-9) and not three.mismatch
    assert not srm_check([9_020, 980], [90, 10]).mismatch
    assert srm_check([0, 0], [50, 50]).mismatch is False
    assert math.isnan(srm_check([0, 0], [50, 50]).p_value)
    assert srm_check([100, 3], [100, 0]).mismatch  # traffic where none was configured
    assert not srm_check([100, 0], [100, 0]).mismatch
    with pytest.raises(ValueError):
        srm_check([1, 2, 3], [1, 1])


# -- paired tests --------------------------------------------------------------------------------


def test_mcnemar_exact_and_asymptotic() -> None:
    for b, c in ((0, 3), (2, 12), (5, 5), (11, 13)):  # b + c < 25: exact binomial
        expected = sps.binomtest(min(b, c), b + c, 0.5).pvalue
        assert mcnemar_test(b, c) == pytest.approx(float(expected), rel=1e-9)
    statistic = (abs(40 - 70) - 1) ** 2 / 110
    assert mcnemar_test(40, 70) == pytest.approx(sps.chi2.sf(statistic, 1), rel=1e-9)
    assert mcnemar_test(0, 0) == 1.0 and mcnemar_test(30, 30) == 1.0
    assert mcnemar_test(2, 12) < 0.05 < mcnemar_test(5, 9)
    with pytest.raises(ValueError):
        mcnemar_test(-1, 3)


def test_mcnemar_false_positive_rate_on_shadow_pairs() -> None:
    rng = np.random.default_rng(47)
    discordant = rng.binomial(400, 0.1, RUNS)  # both models equally good
    b = rng.binomial(discordant, 0.5)
    rate = np.mean([mcnemar_test(int(x), int(n - x)) < ALPHA for x, n in zip(b, discordant, strict=True)])
    assert rate <= 0.05, rate


def test_paired_t_matches_scipy() -> None:
    rng = np.random.default_rng(48)
    differences = rng.normal(0.1, 1.0, 400)
    expected = sps.ttest_1samp(differences, 0).pvalue
    assert paired_t_test(Moments.of(differences)) == pytest.approx(float(expected), rel=1e-9)
    assert math.isnan(paired_t_test(Moments.of([1.0])))
    assert paired_t_test(Moments.of([0.0] * 4)) == 1.0
    assert math.isnan(paired_t_test(Moments.of([0.5] * 4)))


# -- verdicts -------------------------------------------------------------------------------------


def comparison(difference: float, significant: bool) -> Comparison:
    ci = (difference - 0.01, difference + 0.01)
    p = 0.001 if significant else 0.5
    return Comparison(0.8, 0.8 + difference, difference, ci, difference / 0.8, ci, p, significant, "t")


def test_decide() -> None:
    assert decide(comparison(0.05, True), higher_is_better=True) == CHALLENGER_WINS
    assert decide(comparison(0.05, True), True, min_improvement=0.05) == CHALLENGER_WINS
    assert decide(comparison(0.05, True), True, min_improvement=0.06) == NO_DIFFERENCE
    assert decide(comparison(-0.05, True), higher_is_better=True) == CHAMPION_HOLDS
    assert decide(comparison(-0.05, True), True, min_improvement=0.5) == CHAMPION_HOLDS
    assert decide(comparison(0.05, False), higher_is_better=True) == NO_DIFFERENCE
    # lower is better (error rate, MAE, latency): a significant drop is a win
    assert decide(comparison(-0.05, True), higher_is_better=False) == CHALLENGER_WINS
    assert decide(comparison(0.05, True), higher_is_better=False) == CHAMPION_HOLDS
    assert decide(comparison(-0.05, True), False, min_improvement=0.1) == NO_DIFFERENCE
    real = two_proportion_test(800, 1_000, 880, 1_000)
    assert decide(real, higher_is_better=True) == CHALLENGER_WINS


def test_decision_and_interval_never_disagree() -> None:
    """10,000 random inputs, many near the boundary: significant exactly when 0 is outside."""
    rng = np.random.default_rng(71)
    n_c, n_t = rng.integers(20, 20_000, 10_000), rng.integers(20, 20_000, 10_000)
    p_c = rng.uniform(0.02, 0.98, 10_000)
    p_t = np.clip(p_c + rng.normal(0, 2.2 * np.sqrt(p_c * (1 - p_c) * (1 / n_c + 1 / n_t))), 0, 1)
    s_c, s_t = rng.binomial(n_c, p_c), rng.binomial(n_t, p_t)
    p = proportion_arrays(s_c, n_c, s_t, n_t).p_value
    low, high = score_interval(s_c, n_c, s_t, n_t, float(sps.norm.ppf(1 - ALPHA / 2)))
    assert np.array_equal((low > 0) | (high < 0), p < ALPHA)
    assert ((p > 0.03) & (p < 0.08)).sum() > 500  # the grid really probes the boundary
    for i in range(0, 10_000, 50):  # the scalar test reports the same interval and decision
        r = two_proportion_test(int(s_c[i]), int(n_c[i]), int(s_t[i]), int(n_t[i]))
        assert r.difference_ci == pytest.approx((low[i], high[i]), abs=1e-12)
        assert (r.difference_ci[0] > 0 or r.difference_ci[1] < 0) == r.significant
    # the example: p = 0.056 beside a Wald interval [-0.0187, -0.0003]; now both say "no"
    r = two_proportion_test(9492, 10_050, 2485, 2605)
    assert r.p_value == pytest.approx(0.0561, abs=1e-4) and not r.significant
    assert r.difference_ci[0] < 0 < r.difference_ci[1]
    flipped = two_proportion_test(2485, 2605, 9492, 10_050)
    assert flipped.difference_ci == pytest.approx((-r.difference_ci[1], -r.difference_ci[0]))
    # Welch: the t interval and the t p-value share the critical value and the df
    for _ in range(300):
        a = Moments.of(rng.exponential(1.0, int(rng.integers(5, 300))))
        b = Moments.of(rng.exponential(float(rng.uniform(0.7, 1.4)), int(rng.integers(5, 300))))
        w = welch_test(a, b)
        assert (w.difference_ci[0] > 0 or w.difference_ci[1] < 0) == w.significant == (w.p_value < ALPHA)
