"""Checks beside the two-arm comparison: sample ratio mismatch and paired tests.

``srm_check`` tells whether the arm counts fit the configured weights (if not, assignment or
logging is broken and no comparison can be trusted); ``mcnemar_test`` and ``paired_t_test`` judge
paired data, where both models saw the same rows (shadow steps, the offline gate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special as spf

from core.summaries import Moments

NAN = math.nan


@dataclass(frozen=True)
class SrmResult:
    chi2: float
    p_value: float
    mismatch: bool


def srm_check(observed: Sequence[int], weights: Sequence[float], threshold: float = 0.001) -> SrmResult:
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
