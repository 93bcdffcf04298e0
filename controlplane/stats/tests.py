"""Hypothesis tests for experiments, as pure functions over aggregated summaries.

Every test takes what agents can send (counts, (n, mean, M2) moments) rather than raw rows.
Degenerate inputs (an empty arm, zero variance, a zero baseline) give nan and a non-significant
result instead of an exception or a division by zero: the experiment engine calls these on every
window, including the first ones.

The arithmetic lives in array kernels (``proportion_arrays``, ``welch_arrays``,
``confidence_sequence_half_width``, ``always_valid_p_value``) that broadcast over numpy arrays, so
the same code serves one experiment or a simulation of thousands; the scalar functions that
return a :class:`Comparison` are thin wrappers over them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import special as spf
from scipy import stats as sps

from core.summaries import Moments

NAN = math.nan
ArrayLike = float | int | np.ndarray | Sequence[float]

CHALLENGER_WINS = "challenger_wins"
CHAMPION_HOLDS = "champion_holds"
NO_DIFFERENCE = "no_significant_difference"

#: widest alpha searched by the always-valid p-value (alpha = 1 is degenerate: rho = 0)
_ALPHA_MAX = 1.0 - 1e-9
_LOG_ALPHA_MIN = -700.0  # exp(-700) ~ 1e-304: below any p-value worth reporting
_BISECTION_STEPS = 64


@dataclass(frozen=True)
class Comparison:
    """Champion (control) vs challenger (treatment) on one metric."""

    control: float
    treatment: float
    difference: float  # treatment - control
    difference_ci: tuple[float, float]
    relative_lift: float  # treatment / control - 1
    relative_lift_ci: tuple[float, float]
    p_value: float
    significant: bool
    method: str


def _empty(control: float, treatment: float, method: str) -> Comparison:
    return Comparison(control, treatment, NAN, (NAN, NAN), NAN, (NAN, NAN), NAN, False, method)


# -- array kernels ----------------------------------------------------------------------------


class DifferenceArrays(NamedTuple):
    """Per-arm estimates, their difference, its standard error and a two-sided p-value.

    ``var_control``/``var_treatment`` are the variances of each arm's estimate (not of a unit).
    """

    control: np.ndarray
    treatment: np.ndarray
    difference: np.ndarray
    var_control: np.ndarray
    var_treatment: np.ndarray
    se: np.ndarray
    df: np.ndarray
    p_value: np.ndarray


def proportion_arrays(
    successes_c: ArrayLike, n_c: ArrayLike, successes_t: ArrayLike, n_t: ArrayLike
) -> DifferenceArrays:
    """Two-proportion z-test, broadcast over arrays.

    The p-value uses the pooled standard error (exactly the uncorrected 2x2 chi-square test);
    ``se`` is the unpooled one, right for an interval around a non-zero difference.
    Entries with an empty arm get nan.
    """
    sc, nc, st, nt = (np.asarray(x, dtype=np.float64) for x in (successes_c, n_c, successes_t, n_t))
    if np.any((sc < 0) | (st < 0) | (sc > nc) | (st > nt)):
        raise ValueError("successes must lie between 0 and the number of trials")
    valid = (nc > 0) & (nt > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pc = np.where(nc > 0, sc / nc, NAN)
        pt = np.where(nt > 0, st / nt, NAN)
        diff = pt - pc
        var_c = pc * (1.0 - pc) / nc
        var_t = pt * (1.0 - pt) / nt
        se = np.sqrt(var_c + var_t)
        pooled = (sc + st) / (nc + nt)
        se_pooled = np.sqrt(pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nt))
        p = 2.0 * spf.ndtr(-np.abs(diff / se_pooled))
    # a pooled se of 0 means every trial succeeded (or none did): no difference to see
    p = np.where(se_pooled > 0, p, 1.0)
    p = np.where(valid, p, NAN)
    df = np.full(np.shape(p), np.inf)
    return DifferenceArrays(pc, pt, diff, var_c, var_t, se, df, p)


def welch_arrays(
    n_c: ArrayLike,
    mean_c: ArrayLike,
    var_c: ArrayLike,
    n_t: ArrayLike,
    mean_t: ArrayLike,
    var_t: ArrayLike,
) -> DifferenceArrays:
    """Welch's t-test from per-arm (n, mean, sample variance), broadcast over arrays.

    Welch-Satterthwaite degrees of freedom. Arms with n < 2 give nan; zero standard error gives
    p = 1 when the means agree and nan (undecidable) otherwise.
    """
    nc, mc, vc, nt, mt, vt = (
        np.asarray(x, dtype=np.float64) for x in (n_c, mean_c, var_c, n_t, mean_t, var_t)
    )
    valid = (nc >= 2) & (nt >= 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_mean_c = np.where(valid, vc / nc, NAN)
        var_mean_t = np.where(valid, vt / nt, NAN)
        total = var_mean_c + var_mean_t
        se = np.sqrt(total)
        df = total**2 / (var_mean_c**2 / (nc - 1.0) + var_mean_t**2 / (nt - 1.0))
        diff = np.where(valid, mt - mc, NAN)
        p = 2.0 * spf.stdtr(df, -np.abs(diff / se))
    p = np.where(se > 0, p, np.where(diff == 0, 1.0, NAN))
    p = np.where(valid, p, NAN)
    control = np.where(nc > 0, mc, NAN)
    treatment = np.where(nt > 0, mt, NAN)
    return DifferenceArrays(control, treatment, diff, var_mean_c, var_mean_t, se, df, p)


def _half_width(se: np.ndarray, n: np.ndarray, alpha: np.ndarray, n_star: float) -> np.ndarray:
    log_term = -2.0 * np.log(alpha)
    rho2 = (log_term + np.log1p(log_term)) / n_star
    with np.errstate(divide="ignore", invalid="ignore"):
        x = n * rho2
        # sqrt(2 (x+1) / (N² rho²) * ln(sqrt(x+1) / a)), rewritten to stay exact for small x
        width = se * np.sqrt((x + 1.0) * (np.log1p(x) + log_term) / (n * rho2))
    return np.where(n > 0, width, np.inf)


def confidence_sequence_half_width(
    se: ArrayLike, n_total: ArrayLike, alpha: ArrayLike = 0.05, n_star: float = 5000
) -> np.ndarray | float:
    """Half-width of the asymptotic confidence sequence of Waudby-Smith et al.

    With sigma = se*sqrt(N) the per-unit standard deviation and
    rho² = (-2 ln a + ln(-2 ln a + 1)) / N*, the half-width is
    sigma * sqrt(2 (N rho² + 1) / (N² rho²) * ln(sqrt(N rho² + 1) / a)); difference ± half-width
    covers the true difference at every N simultaneously with probability >= 1 - a
    (asymptotically), which is what makes peeking after every window safe. N* is the sample size
    where the boundary is tightest. Returns inf when N <= 0; a float for scalar inputs.
    """
    se_a, n_a, alpha_a = (np.asarray(x, dtype=np.float64) for x in (se, n_total, alpha))
    if np.any((alpha_a <= 0) | (alpha_a >= 1)):
        raise ValueError("alpha must be in (0, 1)")
    if n_star <= 0:
        raise ValueError("n_star must be positive")
    width = _half_width(se_a, n_a, alpha_a, n_star)
    return float(width) if width.ndim == 0 else width


def always_valid_p_value(
    difference: ArrayLike, se: ArrayLike, n_total: ArrayLike, n_star: float = 5000
) -> np.ndarray | float:
    """Smallest alpha whose confidence sequence excludes 0 (bisection on log alpha).

    The half-width shrinks monotonically as alpha grows, so ``p <= alpha`` exactly when the
    alpha-level confidence sequence excludes 0. 1 when even alpha -> 1 does not exclude 0;
    nan when the standard error is undefined, or 0 with a non-zero difference.
    """
    if n_star <= 0:
        raise ValueError("n_star must be positive")
    d, s, n = np.broadcast_arrays(
        np.abs(np.asarray(difference, dtype=np.float64)),
        np.asarray(se, dtype=np.float64),
        np.asarray(n_total, dtype=np.float64),
    )
    lo = np.full(d.shape, _LOG_ALPHA_MIN)
    hi = np.full(d.shape, math.log(_ALPHA_MAX))
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2.0
        excludes = _half_width(s, n, np.exp(mid), n_star) < d
        hi = np.where(excludes, mid, hi)
        lo = np.where(excludes, lo, mid)
    p = np.exp(hi)
    p = np.where(_half_width(s, n, np.asarray(_ALPHA_MAX), n_star) >= d, 1.0, p)
    p = np.where(s > 0, p, np.where(d == 0, 1.0, NAN))
    p = np.where(np.isfinite(d) & np.isfinite(s) & (n > 0), p, NAN)
    return float(p) if p.ndim == 0 else p


# -- scalar tests returning a Comparison --------------------------------------------------------


def _f(x: np.ndarray) -> float:
    return float(x)


def _lift(
    control: float, treatment: float, var_c: float, var_t: float, multiplier: float
) -> tuple[float, tuple[float, float]]:
    """Relative lift treatment/control - 1 with a delta-method interval.

    var(mT/mC) ≈ var_t/mC² + mT²·var_c/mC⁴ (the STATS.md formula with var = s²/n per arm).
    """
    if not (math.isfinite(control) and math.isfinite(treatment)) or control == 0:
        return NAN, (NAN, NAN)
    lift = treatment / control - 1.0
    variance = var_t / control**2 + treatment**2 * var_c / control**4
    if not math.isfinite(variance) or not math.isfinite(multiplier):
        return lift, (NAN, NAN)
    half = multiplier * math.sqrt(max(variance, 0.0))
    return lift, (lift - half, lift + half)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def _undecided(a: DifferenceArrays, method: str) -> Comparison:
    """Estimates without inference: the difference is known but its noise is not."""
    control, treatment, diff = _f(a.control), _f(a.treatment), _f(a.difference)
    lift, _ = _lift(control, treatment, 0.0, 0.0, 0.0)
    return Comparison(control, treatment, diff, (NAN, NAN), lift, (NAN, NAN), NAN, False, method)


def _fixed(a: DifferenceArrays, alpha: float, method: str) -> Comparison:
    control, treatment, diff, p = _f(a.control), _f(a.treatment), _f(a.difference), _f(a.p_value)
    if math.isnan(diff):
        return _empty(control, treatment, method)
    if math.isnan(p):
        return _undecided(a, method)
    df = _f(a.df)
    critical = (
        float(spf.ndtri(1.0 - alpha / 2.0))
        if math.isinf(df)
        else float(spf.stdtrit(df, 1.0 - alpha / 2.0))
    )
    se = _f(a.se)
    half = critical * se if se > 0 else 0.0
    lift, lift_ci = _lift(control, treatment, _f(a.var_control), _f(a.var_treatment), critical)
    return Comparison(
        control, treatment, diff, (diff - half, diff + half), lift, lift_ci, p, p < alpha, method
    )


def two_proportion_test(
    successes_c: int, n_c: int, successes_t: int, n_t: int, alpha: float = 0.05
) -> Comparison:
    """Fixed-horizon comparison of two proportions (accuracy, error rate).

    Pooled z-test for the p-value (equal to the 2x2 chi-square), unpooled Wald interval for the
    difference, delta-method interval for the relative lift.
    """
    _check_alpha(alpha)
    return _fixed(proportion_arrays(successes_c, n_c, successes_t, n_t), alpha, "two_proportion_z")


def _welch_from_moments(control: Moments, treatment: Moments) -> DifferenceArrays:
    return welch_arrays(
        control.n, control.mean, control.variance, treatment.n, treatment.mean, treatment.variance
    )


def welch_test(control: Moments, treatment: Moments, alpha: float = 0.05) -> Comparison:
    """Fixed-horizon Welch t-test of means from (n, mean, M2) per arm (MAE, numeric metrics)."""
    _check_alpha(alpha)
    return _fixed(_welch_from_moments(control, treatment), alpha, "welch_t")


def _sequential(
    a: DifferenceArrays, se: float, n_total: int, alpha: float, n_star: int, method: str
) -> Comparison:
    control, treatment, diff = _f(a.control), _f(a.treatment), _f(a.difference)
    if math.isnan(diff) or not math.isfinite(se) or n_total <= 0:
        return _empty(control, treatment, method)
    if se == 0:
        if diff != 0:  # no noise estimate at all: refuse to call it
            return _undecided(a, method)
        lift, _ = _lift(control, treatment, 0.0, 0.0, 0.0)
        flat = (lift, lift)
        return Comparison(control, treatment, 0.0, (0.0, 0.0), lift, flat, 1.0, False, method)
    half = float(confidence_sequence_half_width(se, n_total, alpha, n_star))
    p = float(always_valid_p_value(diff, se, n_total, n_star))
    lift, lift_ci = _lift(control, treatment, _f(a.var_control), _f(a.var_treatment), half / se)
    ci = (diff - half, diff + half)
    significant = bool(ci[0] > 0 or ci[1] < 0)
    return Comparison(control, treatment, diff, ci, lift, lift_ci, p, significant, method)


def sequential_proportion_test(
    successes_c: int,
    n_c: int,
    successes_t: int,
    n_t: int,
    alpha: float = 0.05,
    n_star: int = 5000,
) -> Comparison:
    """Always-valid comparison of proportions: safe to evaluate after every window.

    ``significant`` means the alpha-level confidence sequence on the difference excludes 0; the
    p-value is the smallest alpha for which it would. When both arms are all-or-nothing (unpooled
    se 0) the pooled standard error stands in, so a 100%-vs-0% split is still judged.
    """
    _check_alpha(alpha)
    a = proportion_arrays(successes_c, n_c, successes_t, n_t)
    se = _f(a.se)
    if se == 0 and n_c > 0 and n_t > 0:
        pooled = (successes_c + successes_t) / (n_c + n_t)
        se = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    return _sequential(a, se, n_c + n_t, alpha, n_star, "sequential_proportion")


def sequential_mean_test(
    control: Moments, treatment: Moments, alpha: float = 0.05, n_star: int = 5000
) -> Comparison:
    """Always-valid comparison of means from (n, mean, M2) per arm."""
    _check_alpha(alpha)
    a = _welch_from_moments(control, treatment)
    return _sequential(a, _f(a.se), control.n + treatment.n, alpha, n_star, "sequential_mean")


# -- sample ratio mismatch, paired tests, rank test ---------------------------------------------


@dataclass(frozen=True)
class SrmResult:
    chi2: float
    p_value: float
    mismatch: bool


def srm_check(
    observed: Sequence[int], weights: Sequence[float], threshold: float = 0.001
) -> SrmResult:
    """Sample ratio mismatch: chi-square goodness of fit of arm counts against the weights.

    A mismatch means assignment or logging is broken, so no comparison of the arms can be
    trusted. The strict threshold (p < 0.001) keeps false alarms rare over many checks. Counts
    in an arm of weight 0 are a mismatch outright. No observations: nan, no mismatch.
    """
    counts = np.asarray(observed, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    if counts.shape != w.shape:
        raise ValueError(f"{counts.size} observed counts for {w.size} weights")
    if np.any(counts < 0) or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("counts and weights must be non-negative")
    total = counts.sum()
    if total == 0 or w.sum() == 0:
        return SrmResult(NAN, NAN, False)
    live = w > 0
    if np.any(counts[~live] > 0):
        return SrmResult(math.inf, 0.0, True)
    dof = int(live.sum()) - 1
    if dof == 0:
        return SrmResult(0.0, 1.0, False)
    expected = total * w[live] / w[live].sum()
    chi2 = float(np.sum((counts[live] - expected) ** 2 / expected))
    p_value = float(spf.chdtrc(dof, chi2))
    return SrmResult(chi2, p_value, p_value < threshold)


def mcnemar_test(b: int, c: int) -> float:
    """Two-sided McNemar p-value from the discordant pairs of a paired (shadow) comparison.

    b = pairs only the first model got right, c = only the second. Exact binomial when
    b + c < 25, otherwise chi-square with Edwards' continuity correction. 1.0 with no
    discordant pairs (no evidence either way).
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must not be negative")
    n = b + c
    if n == 0:
        return 1.0
    if n < 25:
        return float(min(1.0, 2.0 * spf.bdtr(min(b, c), n, 0.5)))
    statistic = max(abs(b - c) - 1, 0) ** 2 / n
    return float(spf.chdtrc(1, statistic))


def paired_t_test(differences: Moments) -> float:
    """Two-sided one-sample t-test that the mean paired difference is 0 (shadow MAE etc.).

    nan with fewer than two pairs, or with zero variance and a non-zero mean (undecidable).
    """
    if differences.n < 2:
        return NAN
    se = differences.standard_error
    if se == 0:
        return 1.0 if differences.mean == 0 else NAN
    return float(2.0 * spf.stdtr(differences.n - 1, -abs(differences.mean / se)))


def mann_whitney(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value (scipy); nan for an empty side, 1 if all values tie."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if x.size == 0 or y.size == 0:
        return NAN
    if np.all(x == x[0]) and np.all(y == x[0]):
        return 1.0
    return float(sps.mannwhitneyu(x, y, alternative="two-sided").pvalue)


# -- planning -------------------------------------------------------------------------------------


def sample_size_two_proportions(
    p_control: float,
    min_detectable_diff: float,
    alpha: float = 0.05,
    power: float = 0.8,
    continuity_correction: bool = True,
) -> int:
    """Samples per arm for a two-sided test to detect p_control -> p_control + diff.

    The normal-approximation size (Fleiss) with, by default, the Fleiss-Tytun-Ury continuity
    correction: the uncorrected size gives the pooled z-test a power of almost exactly the
    target, the correction buys a small margin against the binomial's discreteness.
    """
    _check_alpha(alpha)
    p_t = p_control + min_detectable_diff
    if not (0 < p_control < 1 and 0 < p_t < 1) or min_detectable_diff == 0:
        raise ValueError("proportions must stay within (0, 1) and the difference must not be 0")
    if not 0 < power < 1:
        raise ValueError("power must be in (0, 1)")
    p_bar = (p_control + p_t) / 2
    z_a, z_b = float(spf.ndtri(1 - alpha / 2)), float(spf.ndtri(power))
    root = z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(
        p_control * (1 - p_control) + p_t * (1 - p_t)
    )
    delta = abs(min_detectable_diff)
    n = root**2 / delta**2
    if continuity_correction:
        n = n / 4 * (1 + math.sqrt(1 + 4 / (n * delta))) ** 2
    return math.ceil(n - 1e-9)


def sample_size_two_means(
    std: float, min_detectable_diff: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Samples per arm to detect a shift of the mean with a two-sided test (normal approx.)."""
    _check_alpha(alpha)
    if std <= 0 or min_detectable_diff == 0:
        raise ValueError("std must be positive and the difference must not be 0")
    z_a, z_b = float(spf.ndtri(1 - alpha / 2)), float(spf.ndtri(power))
    return math.ceil(2 * (z_a + z_b) ** 2 * std**2 / min_detectable_diff**2 - 1e-9)


# -- verdicts -------------------------------------------------------------------------------------


def decide(comparison: Comparison, higher_is_better: bool, min_improvement: float = 0.0) -> str:
    """Verdict of an experiment on its primary metric.

    'champion_holds' when the challenger is significantly worse; 'challenger_wins' only when it
    is significantly better by at least ``min_improvement`` (absolute, in the metric's units,
    measured in the good direction); otherwise 'no_significant_difference'.
    """
    diff = comparison.difference
    if not comparison.significant or not math.isfinite(diff):
        return NO_DIFFERENCE
    gain = diff if higher_is_better else -diff
    if gain < 0:
        return CHAMPION_HOLDS
    return CHALLENGER_WINS if gain > 0 and gain >= min_improvement else NO_DIFFERENCE


_MAX_SHIFT_SAMPLES = 1000  # per side: at most 1e6 pairwise differences


def shift_classification(
    control_samples: np.ndarray | Sequence[float],
    treatment_samples: np.ndarray | Sequence[float],
    tolerance: float = 0.25,
    confidence: float = 0.98,
) -> str:
    """Kayenta-style canary judgement of one metric: 'high', 'low' or 'pass'.

    The Hodges-Lehmann shift of treatment against control gets a distribution-free confidence
    interval by inverting the Mann-Whitney test. For positive metrics (latencies) the shift is
    taken on the log scale, i.e. as a ratio. 'high'/'low' only when the whole interval of the
    relative shift lies beyond +tolerance/-tolerance: a significant but small shift passes, and
    so does a large but noisy one. With a zero baseline the band collapses to 0.
    """
    if not 0 < confidence < 1 or tolerance < 0:
        raise ValueError("confidence must be in (0, 1) and tolerance non-negative")
    x = np.asarray(control_samples, dtype=np.float64).ravel()
    y = np.asarray(treatment_samples, dtype=np.float64).ravel()
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size < 2 or y.size < 2:
        return "pass"
    rng = np.random.default_rng(0)  # deterministic thinning of very large samples
    if x.size > _MAX_SHIFT_SAMPLES:
        x = rng.choice(x, _MAX_SHIFT_SAMPLES, replace=False)
    if y.size > _MAX_SHIFT_SAMPLES:
        y = rng.choice(y, _MAX_SHIFT_SAMPLES, replace=False)
    ratio_scale = bool(np.all(x > 0) and np.all(y > 0))
    if ratio_scale:
        x, y = np.log(x), np.log(y)
    pairs = np.subtract.outer(y, x).ravel()
    m = pairs.size
    z = float(spf.ndtri(0.5 + confidence / 2))
    # 1-based lower order statistic C = floor(nm/2 - z*sd(U)), upper nm + 1 - C (Hollander-Wolfe)
    c = math.floor(m / 2 - z * math.sqrt(x.size * y.size * (x.size + y.size + 1) / 12))
    k = min(max(c - 1, 0), (m - 1) // 2)
    ordered = np.partition(pairs, [k, m - 1 - k])
    low, high = float(ordered[k]), float(ordered[m - 1 - k])
    if ratio_scale:
        low, high = math.expm1(low), math.expm1(high)
        band = tolerance
    else:
        scale = abs(float(np.median(x))) or abs(float(np.mean(x)))
        if scale == 0:
            band = 0.0
        else:
            low, high, band = low / scale, high / scale, tolerance
    if low > band:
        return "high"
    if high < -band:
        return "low"
    return "pass"
