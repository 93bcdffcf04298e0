"""Drift of a categorical feature: PSI and a chi-square test on category frequencies.

Both compare the live counts of a window with the baseline's counts on the same bins (the
baseline's top-k categories, then "other"; `registry.category_bins`). PSI is `drift.psi` on those
bins. The chi-square test is the test of homogeneity of a 2 x K contingency table (baseline row,
live row): it asks whether both samples come from one distribution of categories, and unlike a
goodness-of-fit test against the baseline's proportions it accounts for the baseline being a
sample too. Bins whose expected count is below `MIN_EXPECTED` in either row are pooled into one,
the usual condition for the chi-square approximation to hold.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

#: expected count below which a bin is pooled with the other small ones
MIN_EXPECTED = 5.0


def pooled_table(expected_counts: np.ndarray, actual_counts: np.ndarray) -> np.ndarray:
    """The 2 x K table (baseline, live) with empty bins dropped and small-expectation bins pooled."""
    baseline = np.asarray(expected_counts, dtype=np.float64).ravel()
    live = np.asarray(actual_counts, dtype=np.float64).ravel()
    if baseline.shape != live.shape:
        raise ValueError(f"bin counts differ in length: {baseline.size} vs {live.size}")
    table = np.vstack([baseline, live])
    table = table[:, table.sum(axis=0) > 0]
    total = table.sum()
    if total <= 0 or table.shape[1] == 0:
        return table
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    small = (expected < MIN_EXPECTED).any(axis=0)
    if small.any() and not small.all():
        table = np.column_stack([table[:, ~small], table[:, small].sum(axis=1)])
    return table


def chi_square_statistic(table: np.ndarray) -> tuple[float, int]:
    """Pearson's statistic sum((O - E)^2 / E) of an R x K table and its degrees of freedom."""
    table = np.asarray(table, dtype=np.float64)
    total = table.sum()
    rows, columns = table.sum(axis=1), table.sum(axis=0)
    if total <= 0 or (rows == 0).any() or (columns == 0).any():
        return math.nan, 0
    expected = np.outer(rows, columns) / total
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, int((table.shape[0] - 1) * (table.shape[1] - 1))


def chi_square_test(expected_counts: np.ndarray, actual_counts: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value) of the homogeneity test of baseline and live category counts.

    (nan, nan) when either side is empty or fewer than two bins remain after pooling: with one
    category there is no distribution to compare.
    """
    table = pooled_table(expected_counts, actual_counts)
    if table.shape[1] < 2 or (table.sum(axis=1) <= 0).any():
        return math.nan, math.nan
    statistic, dof = chi_square_statistic(table)
    if math.isnan(statistic) or dof < 1:
        return math.nan, math.nan
    return statistic, float(sps.chi2.sf(statistic, dof))


def share(part: int, total: int) -> float:
    """part / total, nan when total is 0 (no values: no share to judge)."""
    return part / total if total > 0 else math.nan
