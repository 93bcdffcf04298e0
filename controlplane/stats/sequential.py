"""Always-valid comparisons: confidence sequences that stay valid however often one peeks.

The experiment engine evaluates a running experiment after every window; a fixed-horizon test
looked at that often rejects far more than alpha of the time. The asymptotic confidence sequence
of Waudby-Smith et al. covers the true difference at every sample size at once, so a sequential
experiment may stop the first time it excludes 0. The kernels broadcast over numpy arrays like
those of :mod:`controlplane.stats.fixed`, whose per-arm estimates they reuse.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import special as spf

from controlplane.stats.fixed import (
    NAN,
    ArrayLike,
    Comparison,
    DifferenceArrays,
    agree_with_test,
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
    a: DifferenceArrays,
    se: float,
    n_total: int,
    alpha: float,
    n_star: int,
    method: str,
    design: SequentialDesign | None = None,
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
    if design is None:
        half = float(confidence_sequence_half_width(se, n_total, alpha, n_star))
        p = float(always_valid_p_value(diff, se, n_total, n_star))
    else:
        if design.alpha != alpha:
            raise ValueError(f"the design is for alpha {design.alpha}, the test asked for {alpha}")
        half_a, p_a = design_arrays(design, diff, se)
        half, p = float(half_a), float(p_a)
        method += "_planned"
    var_c, var_t = float(a.var_control), float(a.var_treatment)
    lift, lift_ci = relative_lift(control, treatment, var_c, var_t, half / se)
    ci = (diff - half, diff + half)
    significant = bool(ci[0] > 0 or ci[1] < 0)
    if all(math.isfinite(x) for x in lift_ci):  # Fieller's at r = 1 is this test: agree to the last bit
        lift_ci = agree_with_test(lift_ci, significant)
    return Comparison(control, treatment, diff, ci, lift, lift_ci, p, significant, method)


def sequential_proportion_test(
    successes_c: int,
    n_c: int,
    successes_t: int,
    n_t: int,
    alpha: float = 0.05,
    n_star: int = 5000,
    design: SequentialDesign | None = None,
) -> Comparison:
    """Always-valid comparison of proportions: safe to evaluate after every window.

    With a ``design`` (an experiment planned for a minimum detectable effect) the planned
    O'Brien-Fleming boundary judges it; without one, the confidence sequence with ``n_star``.

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
    return _sequential(a, se, n_c + n_t, alpha, n_star, "sequential_proportion", design)


def sequential_mean_test(
    control: Moments,
    treatment: Moments,
    alpha: float = 0.05,
    n_star: int = 5000,
    design: SequentialDesign | None = None,
) -> Comparison:
    """Always-valid comparison of means from (n, mean, M2) per arm (``design`` as above)."""
    check_alpha(alpha)
    a = welch_from_moments(control, treatment)
    n_total = control.n + treatment.n
    return _sequential(a, float(a.se), n_total, alpha, n_star, "sequential_mean", design)


# -- the planned design: a continuously monitored O'Brien-Fleming boundary ---------------------
#
# With the difference estimate d, its standard error se and the information fraction
# t = (planned_se / se)² (1 at the planned sample size), B(t) = sqrt(t) d / se behaves like a
# Brownian motion with drift mu t under the alternative the plan is built for. Rejecting when
# |B(t)| >= c for some t <= 1 is the O'Brien-Fleming boundary monitored continuously (the limit of
# Lan-DeMets' O'Brien-Fleming spending as the looks become dense), so it holds its level however
# many looks there are and whenever they fall. Past the planned size the rest of alpha goes to
# a normal-mixture confidence sequence tuned to that size, so looking on stays valid.

#: the share of alpha kept for looks after the planned sample size
TAIL_SHARE = 0.1
_SERIES_TERMS = 12


def _sup_abs_brownian_exceeds(w: np.ndarray) -> np.ndarray:
    """P(sup over [0, 1] of |B(t)| >= w) for a standard Brownian motion, w >= 0.

    The two classical series (reflection and Fourier), each used where it converges fast.
    """
    w = np.asarray(w, dtype=np.float64)
    large = np.maximum(w, 1.0)
    k = np.arange(-_SERIES_TERMS, _SERIES_TERMS + 1)[:, None]
    signs = np.where(k % 2 == 0, 1.0, -1.0)
    inside = np.sum(
        signs * (spf.ndtr((2 * k + 1) * large.ravel()) - spf.ndtr((2 * k - 1) * large.ravel())),
        axis=0,
    ).reshape(large.shape)
    by_reflection = 1.0 - inside
    small = np.clip(w, 1e-3, 1.0)
    j = np.arange(_SERIES_TERMS)[:, None]
    terms = (
        np.where(j % 2 == 0, 1.0, -1.0)
        / (2 * j + 1)
        * np.exp(-((2 * j + 1) ** 2) * np.pi**2 / (8 * small.ravel() ** 2))
    )
    by_fourier = 1.0 - 4.0 / np.pi * terms.sum(axis=0).reshape(small.shape)
    return np.clip(np.where(w >= 1.0, by_reflection, by_fourier), 0.0, 1.0)


def obf_constant(alpha: float) -> float:
    """c with P(sup over [0, 1] of |B(t)| >= c) = alpha: the continuous O'Brien-Fleming boundary."""
    check_alpha(alpha)
    return float(
        optimize.brentq(lambda c: float(_sup_abs_brownian_exceeds(np.asarray(c))) - alpha, 0.5, 40.0, xtol=1e-14)
    )


def obf_power(drift: float, c: float) -> float:
    """P(B(t) + drift t reaches c for some t <= 1): the power of the boundary (the far side,
    below e^{-2 drift c}, is left out)."""
    far = math.exp(2 * drift * c + float(spf.log_ndtr(-drift - c)))
    return float(spf.ndtr(drift - c)) + far


def _tail_half_width(se: np.ndarray, t: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The confidence sequence of ``confidence_sequence_half_width`` with N* the planned size,
    written in the information fraction t = N / N*."""
    log_term = -2.0 * np.log(alpha)
    x = t * (log_term + np.log1p(log_term))
    with np.errstate(divide="ignore", invalid="ignore"):
        return se * np.sqrt((x + 1.0) / x * (np.log1p(x) + log_term))


@dataclass(frozen=True)
class SequentialDesign:
    """A sequential test planned for one experiment.

    ``planned_se`` is the standard error of the difference at the planned sample size (the
    minimum detectable effect over the drift the plan needs for its power), ``boundary`` the
    O'Brien-Fleming constant for (1 - TAIL_SHARE) alpha.
    """

    alpha: float
    planned_se: float

    @property
    def boundary(self) -> float:
        return _obf_constant_cached(self.alpha * (1.0 - TAIL_SHARE))


@functools.lru_cache(maxsize=64)
def _obf_constant_cached(alpha: float) -> float:
    return obf_constant(alpha)


def design_arrays(design: SequentialDesign, difference: ArrayLike, se: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(half-width, p-value) of the planned test, broadcast over arrays.

    The interval difference ± half-width is exactly the set of differences the test would not
    reject, so the decision and the interval cannot disagree; ``p <= alpha`` exactly when the
    interval excludes 0. Up to the planned size the p-value is the boundary's crossing
    probability at the observed |B(t)| over its share of alpha; past it, the confidence
    sequence's always-valid p-value over the tail's share.
    """
    d, s = np.broadcast_arrays(np.abs(np.asarray(difference, dtype=np.float64)), np.asarray(se, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (design.planned_se / s) ** 2
        main = t <= 1.0
        c = design.boundary
        half_main = c * s / np.sqrt(t)
        p_main = _sup_abs_brownian_exceeds(np.where(main, d / s * np.sqrt(t), 0.0)) / (1.0 - TAIL_SHARE)
        tail_alpha = np.asarray(design.alpha * TAIL_SHARE)
        half_tail = _tail_half_width(s, t, tail_alpha)
        lo = np.full(d.shape, _LOG_ALPHA_MIN)
        hi = np.full(d.shape, math.log(_ALPHA_MAX))
        for _ in range(_BISECTION_STEPS):
            mid = (lo + hi) / 2.0
            excludes = _tail_half_width(s, t, np.exp(mid)) < d
            hi = np.where(excludes, mid, hi)
            lo = np.where(excludes, lo, mid)
        p_tail = np.where(_tail_half_width(s, t, np.asarray(_ALPHA_MAX)) >= d, 1.0, np.exp(hi))
        p_tail = p_tail / TAIL_SHARE
    half = np.where(main, half_main, half_tail)
    p = np.minimum(np.where(main, p_main, p_tail), 1.0)
    # the decision is the interval: make p agree with it where rounding could split them
    excludes_zero = d > half
    above = np.where(p <= design.alpha, np.nextafter(design.alpha, 1.0), p)
    p = np.where(excludes_zero, np.minimum(p, design.alpha), above)
    p = np.where(s > 0, p, np.where(d == 0, 1.0, NAN))
    p = np.where(np.isfinite(d) & np.isfinite(s), p, NAN)
    half = np.where(s > 0, half, np.where(d == 0, 0.0, NAN))
    return half, p
