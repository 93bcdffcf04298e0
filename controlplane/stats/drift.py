"""Drift: PSI on bins fixed from the baseline, KS on raw samples (of `core.reservoir`).

Bins are computed once from the version's baseline sample and never refit on live data: refitting
on the current window would make every bin equally full again and force PSI toward 0.

Bin convention (shared with the agent, which uses the same ``searchsorted(side="left")``): with
inner edges e[0] < ... < e[m-1], bin 0 is (-inf, e[0]], bin i is (e[i-1], e[i]], bin m is
(e[m-1], +inf). Right-closed bins keep a point mass at the lowest edge (e.g. many zeros) in its
own bin instead of merging it with everything above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

PSI_EPSILON = 1e-4
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25


def baseline_bin_edges(sample: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Inner quantile edges of a 1-D baseline sample, duplicates dropped (outer: -inf/+inf).

    Non-finite values are ignored; an empty sample gives no edges (a single bin).
    """
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    values = np.asarray(sample, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0 or n_bins == 1:
        return np.array([], dtype=np.float64)
    inner = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.unique(np.quantile(values, inner))


def baseline_bin_edges_2d(sample: np.ndarray, n_bins: int = 10) -> list[np.ndarray]:
    """Per-feature inner edges of a (rows, features) baseline."""
    array = np.asarray(sample, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D (rows, features) sample, got shape {array.shape}")
    return [baseline_bin_edges(array[:, i], n_bins) for i in range(array.shape[1])]


def histogram_counts(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Counts in len(inner_edges)+1 right-closed bins (see module doc); NaN is not counted."""
    edges = np.asarray(inner_edges, dtype=np.float64).ravel()
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[~np.isnan(array)]
    index = np.searchsorted(edges, array, side="left")
    return np.bincount(index, minlength=edges.size + 1).astype(np.int64)


def psi(expected_counts: np.ndarray, actual_counts: np.ndarray, eps: float = PSI_EPSILON) -> float:
    """Population stability index sum((p - q) * ln(p / q)), proportions clipped at eps.

    q are the baseline (expected) proportions, p the current ones; nan when either side is empty.
    """
    expected = np.asarray(expected_counts, dtype=np.float64).ravel()
    actual = np.asarray(actual_counts, dtype=np.float64).ravel()
    if expected.shape != actual.shape:
        raise ValueError(f"bin counts differ in length: {expected.size} vs {actual.size}")
    expected_total, actual_total = expected.sum(), actual.sum()
    if expected_total <= 0 or actual_total <= 0:
        return math.nan
    p = np.clip(actual / actual_total, eps, None)
    q = np.clip(expected / expected_total, eps, None)
    return float(np.sum((p - q) * np.log(p / q)))


def prediction_histogram(
    answers: np.ndarray, task: str, n_classes: int = 0, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """(counts, inner edges) of a version's predictions on its baseline rows: what its live
    predictions are compared with (prediction drift).

    A classifier's answers are class indices: counts per class (at least `n_classes` of them), no
    edges. A regressor's values get quantile edges of their own, as a feature's do, so the agent
    counts live values on the same right-closed bins.
    """
    values = np.asarray(answers).ravel()
    if task == "classifier":
        labels = values.astype(np.int64)
        labels = labels[labels >= 0]
        return np.bincount(labels, minlength=n_classes).astype(np.int64), np.array([], dtype=np.float64)
    edges = baseline_bin_edges(values.astype(np.float64), n_bins)
    return histogram_counts(values, edges), edges


def prediction_psi(baseline_counts: np.ndarray, live_counts: np.ndarray) -> float:
    """PSI of live prediction counts against the baseline's (classes or value bins); a class
    one side never saw counts as 0 there (so a new class drifts instead of failing). NaN when a
    side is empty."""
    expected = np.asarray(baseline_counts, dtype=np.float64).ravel()
    actual = np.asarray(live_counts, dtype=np.float64).ravel()
    size = max(expected.size, actual.size)
    expected = np.pad(expected, (0, size - expected.size))
    actual = np.pad(actual, (0, size - actual.size))
    return psi(expected, actual)


def psi_level(value: float) -> str:
    """Conventional reading: < 0.1 none, < 0.25 moderate, otherwise significant (nan: none)."""
    if math.isnan(value) or value < PSI_MODERATE:
        return "none"
    return "moderate" if value < PSI_SIGNIFICANT else "significant"


def ks_test(baseline: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov (statistic, p-value) via scipy; NaN values are dropped.

    Returns (nan, nan) when either side has no values.
    """
    a = np.asarray(baseline, dtype=np.float64).ravel()
    b = np.asarray(current, dtype=np.float64).ravel()
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return math.nan, math.nan
    result = sps.ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class FeatureKS:
    """KS result of one feature; ``drifted`` uses the Bonferroni threshold of the whole set."""

    index: int
    statistic: float
    p_value: float
    drifted: bool
    threshold: float = math.nan


def ks_features(baseline_2d: np.ndarray, current_2d: np.ndarray, alpha: float = 0.05) -> list[FeatureKS]:
    """KS per feature; a feature drifted when p < alpha / n_features (Bonferroni).

    Without the correction, 20 independent features at alpha 0.05 would raise a false drift
    alarm in 64% of healthy windows.
    """
    baseline = np.asarray(baseline_2d, dtype=np.float64)
    current = np.asarray(current_2d, dtype=np.float64)
    if baseline.ndim != 2 or current.ndim != 2:
        raise ValueError("ks_features expects 2-D (rows, features) arrays")
    if baseline.shape[1] != current.shape[1]:
        raise ValueError(f"feature counts differ: baseline {baseline.shape[1]}, current {current.shape[1]}")
    n_features = baseline.shape[1]
    threshold = alpha / max(n_features, 1)
    results = []
    for i in range(n_features):
        statistic, p_value = ks_test(baseline[:, i], current[:, i])
        drifted = not math.isnan(p_value) and p_value < threshold
        results.append(FeatureKS(i, statistic, p_value, drifted, threshold))
    return results
