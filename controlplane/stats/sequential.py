"""Always-valid comparisons: confidence sequences that stay valid however often one peeks.

The experiment engine evaluates a running experiment after every window; a fixed-horizon test
looked at that often rejects far more than alpha of the time. The asymptotic confidence sequence
of Waudby-Smith et al. covers the true difference at every sample size at once, so a sequential
experiment may stop the first time it excludes 0. The kernels broadcast over numpy arrays like
those of :mod:`controlplane.stats.fixed`, whose per-arm estimates they reuse.
"""

from __future__ import annotations

import math

import numpy as np

from controlplane.stats.fixed import (
    NAN,
    ArrayLike,
    Comparison,
    DifferenceArrays,
    check_alpha,
    estimates_only,
    no_comparison,
    proportion_arrays,
    relative_lift,
    welch_from_moments,
)
from core.summaries import Moments

#: widest alpha searched by the always-valid p-value (alpha = 1 is degenerate: rho = 0)
_ALPHA_MAX = 1.0 - 1e-9
_LOG_ALPHA_MIN = -700.0  # exp(-700) ~ 1e-304: below any p-value worth reporting
_BISECTION_STEPS = 64


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


def _sequential(
    a: DifferenceArrays, se: float, n_total: int, alpha: float, n_star: int, method: str
) -> Comparison:
    control, treatment, diff = float(a.control), float(a.treatment), float(a.difference)
    if math.isnan(diff) or not math.isfinite(se) or n_total <= 0:
        return no_comparison(control, treatment, method)
    if se == 0:
        if diff != 0:  # no noise estimate at all: refuse to call it
            return estimates_only(a, method)
        lift, _ = relative_lift(control, treatment, 0.0, 0.0, 0.0)
        flat = (lift, lift)
        return Comparison(control, treatment, 0.0, (0.0, 0.0), lift, flat, 1.0, False, method)
    half = float(confidence_sequence_half_width(se, n_total, alpha, n_star))
    p = float(always_valid_p_value(diff, se, n_total, n_star))
    var_c, var_t = float(a.var_control), float(a.var_treatment)
    lift, lift_ci = relative_lift(control, treatment, var_c, var_t, half / se)
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
    check_alpha(alpha)
    a = proportion_arrays(successes_c, n_c, successes_t, n_t)
    se = float(a.se)
    if se == 0 and n_c > 0 and n_t > 0:
        pooled = (successes_c + successes_t) / (n_c + n_t)
        se = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    return _sequential(a, se, n_c + n_t, alpha, n_star, "sequential_proportion")


def sequential_mean_test(
    control: Moments, treatment: Moments, alpha: float = 0.05, n_star: int = 5000
) -> Comparison:
    """Always-valid comparison of means from (n, mean, M2) per arm."""
    check_alpha(alpha)
    a = welch_from_moments(control, treatment)
    return _sequential(a, float(a.se), control.n + treatment.n, alpha, n_star, "sequential_mean")
