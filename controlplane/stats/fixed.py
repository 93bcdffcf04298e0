"""Fixed-horizon comparisons of two arms, as pure functions over aggregated summaries.

Every test takes what agents can send (counts, (n, mean, M2) moments) rather than raw rows.
Degenerate inputs (an empty arm, zero variance, a zero baseline) give nan and a non-significant
result instead of an exception or a division by zero: the experiment engine calls these on every
window, including the first ones.

The arithmetic lives in array kernels (``proportion_arrays``, ``welch_arrays``) that broadcast
over numpy arrays, so the same code serves one experiment or a simulation of thousands; the
scalar functions that return a :class:`Comparison` are thin wrappers over them. The kernels, the
:class:`Comparison` and its helpers are shared with the always-valid tests in
:mod:`controlplane.stats.sequential`; :func:`decide` turns either kind into a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import optimize
from scipy import special as spf

from core.summaries import Moments

NAN = math.nan
ArrayLike = float | int | np.ndarray | Sequence[float]

_BISECTION_STEPS = 64
_LOG_RATIO_BOUND = 50.0  # ratios searched: e**-50 .. e**50

CHALLENGER_WINS = "challenger_wins"
CHAMPION_HOLDS = "champion_holds"
NO_DIFFERENCE = "no_significant_difference"


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


def no_comparison(control: float, treatment: float, method: str) -> Comparison:
    """Nothing to compare yet (an arm is empty): every estimate nan, never significant."""
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


def _restricted_mle(
    sc: np.ndarray, nc: np.ndarray, st: np.ndarray, nt: np.ndarray, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(p_control, p_treatment) of greatest likelihood with p_treatment - p_control = delta.

    The closed-form root of Farrington and Manning's cubic; at delta = 0 it is the pooled
    proportion, which is how the score test below contains the pooled z-test.
    """
    p1, p2, ratio = st / nt, sc / nc, nc / nt
    a = 1.0 + ratio
    b = -(1.0 + ratio + p1 + ratio * p2 + delta * (ratio + 2.0))
    c = delta**2 + delta * (2.0 * p1 + ratio + 1.0) + p1 + ratio * p2
    d = -p1 * delta * (1.0 + delta)
    v = b**3 / (27.0 * a**3) - b * c / (6.0 * a**2) + d / (2.0 * a)
    u = np.sign(v) * np.sqrt(np.maximum(b**2 / (9.0 * a**2) - c / (3.0 * a), 0.0))
    cosine = np.clip(v / np.where(u == 0, 1.0, u) ** 3, -1.0, 1.0)
    w = (np.pi + np.arccos(cosine)) / 3.0
    treatment = np.clip(2.0 * u * np.cos(w) - b / (3.0 * a), 0.0, 1.0)
    return np.clip(treatment - delta, 0.0, 1.0), treatment


def score_statistic(
    successes_c: ArrayLike, n_c: ArrayLike, successes_t: ArrayLike, n_t: ArrayLike, delta: ArrayLike
) -> np.ndarray:
    """Score statistic of H0: p_treatment - p_control = delta (Mee's; the pooled z at delta 0)."""
    sc, nc, st, nt, dl = (np.asarray(x, dtype=np.float64) for x in (successes_c, n_c, successes_t, n_t, delta))
    pc, pt = _restricted_mle(sc, nc, st, nt, dl)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (st / nt - sc / nc - dl) / np.sqrt(pc * (1.0 - pc) / nc + pt * (1.0 - pt) / nt)


def score_interval(
    successes_c: ArrayLike, n_c: ArrayLike, successes_t: ArrayLike, n_t: ArrayLike, critical: float
) -> tuple[np.ndarray, np.ndarray]:
    """The differences the pooled z-test's family (the score test) does not reject at |z| < critical.

    The inversion of the test the p-value comes from, so "significant" and "the interval
    excludes 0" are one statement; found by bisection (the statistic falls as delta grows).
    """
    sc, nc, st, nt = (np.asarray(x, dtype=np.float64) for x in (successes_c, n_c, successes_t, n_t))
    diff = st / nt - sc / nc
    ends = []
    for lo, hi, target in ((np.full_like(diff, -1.0), diff, critical), (diff, np.full_like(diff, 1.0), -critical)):
        for _ in range(_BISECTION_STEPS):
            mid = (lo + hi) / 2.0
            beyond = score_statistic(sc, nc, st, nt, mid) > target  # mid still below the limit
            lo, hi = np.where(beyond, mid, lo), np.where(beyond, hi, mid)
        ends.append((lo + hi) / 2.0)
    return ends[0], ends[1]


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
    nc, mc, vc, nt, mt, vt = (np.asarray(x, dtype=np.float64) for x in (n_c, mean_c, var_c, n_t, mean_t, var_t))
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


def welch_from_moments(control: Moments, treatment: Moments) -> DifferenceArrays:
    """``welch_arrays`` of two arms' (n, mean, M2) summaries."""
    return welch_arrays(control.n, control.mean, control.variance, treatment.n, treatment.mean, treatment.variance)


# -- scalar tests returning a Comparison --------------------------------------------------------


def _f(x: np.ndarray) -> float:
    return float(x)


def relative_lift(
    control: float, treatment: float, var_c: float, var_t: float, multiplier: float
) -> tuple[float, tuple[float, float]]:
    """Relative lift treatment/control - 1 with Fieller's interval for the ratio of two means.

    The lifts r - 1 whose ratio r the test of H0: treatment = r * control does not reject at
    |z| < multiplier, with z = (treatment - r control) / sqrt(var_t + r² var_c) and var = s²/n per
    arm. At r = 1 that is the test of the difference with the same multiplier, so "the lift's
    interval excludes 0" and "the difference is significant" are one statement (the delta-method
    interval this replaces could disagree near the boundary). When the control's own interval
    reaches 0 the set of ratios is unbounded: the lift's interval is then (nan, nan), and a
    guardrail judges the absolute difference instead.
    """
    if not (math.isfinite(control) and math.isfinite(treatment)) or control == 0:
        return NAN, (NAN, NAN)
    lift = treatment / control - 1.0
    if not (math.isfinite(multiplier) and math.isfinite(var_c) and math.isfinite(var_t)):
        return lift, (NAN, NAN)
    c2 = multiplier * multiplier
    a = control * control - c2 * max(var_c, 0.0)
    b = -2.0 * treatment * control
    c = treatment * treatment - c2 * max(var_t, 0.0)
    disc = b * b - 4.0 * a * c
    if a <= 0 or disc < 0:
        return lift, (NAN, NAN)
    root = math.sqrt(disc)
    # the two roots, computed without cancellation
    q = -0.5 * (b + math.copysign(root, b))
    r1, r2 = (q / a, c / q) if q != 0 else (0.0, 0.0)
    low, high = sorted((r1, r2))
    return lift, (min(low - 1.0, lift), max(high - 1.0, lift))


def _ratio_restricted_mle(
    sc: np.ndarray, nc: np.ndarray, st: np.ndarray, nt: np.ndarray, ratio: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(p_control, p_treatment) of greatest likelihood with p_treatment = ratio * p_control.

    Miettinen and Nurminen's closed form; at ratio 1 it is the pooled proportion.
    """
    a = (nc + nt) * ratio
    b = -(nt * ratio + st + nc + sc * ratio)
    c = sc + st
    with np.errstate(divide="ignore", invalid="ignore"):
        pc = (-b - np.sqrt(np.maximum(b * b - 4.0 * a * c, 0.0))) / (2.0 * a)
    pc = np.clip(pc, 0.0, 1.0)
    return pc, np.clip(pc * ratio, 0.0, 1.0)


def ratio_score_statistic(
    successes_c: ArrayLike, n_c: ArrayLike, successes_t: ArrayLike, n_t: ArrayLike, ratio: ArrayLike
) -> np.ndarray:
    """Score statistic of H0: p_treatment = ratio * p_control (the pooled z at ratio 1)."""
    sc, nc, st, nt, r = (np.asarray(x, dtype=np.float64) for x in (successes_c, n_c, successes_t, n_t, ratio))
    pc, pt = _ratio_restricted_mle(sc, nc, st, nt, r)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (st / nt - r * sc / nc) / np.sqrt(pt * (1.0 - pt) / nt + r * r * pc * (1.0 - pc) / nc)


def ratio_score_interval(
    successes_c: int, n_c: int, successes_t: int, n_t: int, critical: float
) -> tuple[float, float]:
    """The relative lifts (ratio - 1) the score test does not reject at |z| < critical.

    The inversion of the same family as the p-value (the pooled z-test is its member at ratio 1),
    so the lift's interval excludes 0 exactly when the difference is significant. Brent's method on
    log(ratio); an end the data cannot bound is -1 (a ratio of 0) or +inf.
    """
    if n_c <= 0 or n_t <= 0 or successes_c <= 0:
        return NAN, NAN

    def z(log_ratio: float) -> float:
        value = float(ratio_score_statistic(successes_c, n_c, successes_t, n_t, math.exp(log_ratio)))
        return 0.0 if math.isnan(value) else value  # 0/0: the ratio observed, with no variance left

    if successes_t == 0:
        # no successes at all: nothing rules out a ratio of 0; the upper end is the ratio where
        # the statistic reaches -critical, searched up from a ratio of a fraction of one success
        start = math.log(0.5 / (n_t * successes_c / n_c))
        while z(start) <= -critical and start > -_LOG_RATIO_BOUND:
            start -= 1.0
        return -1.0, math.expm1(optimize.brentq(lambda x: z(x) + critical, start, _LOG_RATIO_BOUND, xtol=1e-13))
    middle = math.log((successes_t / n_t) / (successes_c / n_c))
    # z falls as the ratio grows: the lower end is where it comes down to +critical, the upper
    # end where it reaches -critical; an end the data cannot bound is a ratio of 0 or infinity.
    low = -1.0
    if z(-_LOG_RATIO_BOUND) > critical:
        low = math.expm1(optimize.brentq(lambda x: z(x) - critical, -_LOG_RATIO_BOUND, middle, xtol=1e-13))
    high = math.inf
    if z(_LOG_RATIO_BOUND) < -critical:
        high = math.expm1(optimize.brentq(lambda x: z(x) + critical, middle, _LOG_RATIO_BOUND, xtol=1e-13))
    return low, high


def check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def estimates_only(a: DifferenceArrays, method: str) -> Comparison:
    """Estimates without inference: the difference is known but its noise is not."""
    control, treatment, diff = _f(a.control), _f(a.treatment), _f(a.difference)
    lift, _ = relative_lift(control, treatment, 0.0, 0.0, 0.0)
    return Comparison(control, treatment, diff, (NAN, NAN), lift, (NAN, NAN), NAN, False, method)


def _fixed(
    a: DifferenceArrays, alpha: float, method: str, counts: tuple[int, int, int, int] | None = None
) -> Comparison:
    control, treatment, diff, p = _f(a.control), _f(a.treatment), _f(a.difference), _f(a.p_value)
    if math.isnan(diff):
        return no_comparison(control, treatment, method)
    if math.isnan(p):
        return estimates_only(a, method)
    df = _f(a.df)
    critical = float(spf.ndtri(1.0 - alpha / 2.0)) if math.isinf(df) else float(spf.stdtrit(df, 1.0 - alpha / 2.0))
    se = _f(a.se)
    half = critical * se if se > 0 else 0.0
    ci = (diff - half, diff + half)
    if counts is not None:
        low, high = score_interval(*counts, critical)
        ci = (min(_f(low), diff), max(_f(high), diff))
    lift, lift_ci = relative_lift(control, treatment, _f(a.var_control), _f(a.var_treatment), critical)
    if counts is not None and math.isfinite(lift):
        lift_low, lift_high = ratio_score_interval(*counts, critical)
        lift_ci = (min(lift_low, lift), max(lift_high, lift))
    significant = bool(p < alpha)
    # one statement, even where a bisection's last bit or a rounding could split them
    if counts is not None:
        ci = agree_with_test(ci, significant)
    if all(math.isfinite(x) for x in lift_ci):
        lift_ci = agree_with_test(lift_ci, significant)
    return Comparison(control, treatment, diff, ci, lift, lift_ci, p, significant, method)


def agree_with_test(ci: tuple[float, float], significant: bool) -> tuple[float, float]:
    """Move an interval's end that sits within rounding of 0 to the side the test decided."""
    low, high = ci
    if significant and low <= 0 <= high:
        return (low, -0.0) if abs(high) < abs(low) else (0.0, high)
    if not significant and (low > 0 or high < 0):
        return (0.0, high) if low > 0 else (low, 0.0)
    return ci


def two_proportion_test(successes_c: int, n_c: int, successes_t: int, n_t: int, alpha: float = 0.05) -> Comparison:
    """Fixed-horizon comparison of two proportions (accuracy, error rate).

    Pooled z-test for the p-value (equal to the 2x2 chi-square) and, for the difference, the
    interval that inverts it (Mee's score interval, Farrington-Manning restricted estimates), so
    the p-value and the interval never disagree; for the relative lift the score interval of the
    ratio (Miettinen-Nurminen estimates), which also contains the pooled z-test.
    """
    check_alpha(alpha)
    a = proportion_arrays(successes_c, n_c, successes_t, n_t)
    return _fixed(a, alpha, "two_proportion_z", (successes_c, n_c, successes_t, n_t))


def welch_test(control: Moments, treatment: Moments, alpha: float = 0.05) -> Comparison:
    """Fixed-horizon Welch t-test of means from (n, mean, M2) per arm (MAE, numeric metrics)."""
    check_alpha(alpha)
    return _fixed(welch_from_moments(control, treatment), alpha, "welch_t")


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
