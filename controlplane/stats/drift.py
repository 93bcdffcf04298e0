"""Drift: PSI on bins fixed from the baseline, KS on raw samples, bounded reservoir samples.

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


def ks_features(
    baseline_2d: np.ndarray, current_2d: np.ndarray, alpha: float = 0.05
) -> list[FeatureKS]:
    """KS per feature; a feature drifted when p < alpha / n_features (Bonferroni).

    Without the correction, 20 independent features at alpha 0.05 would raise a false drift
    alarm in 64% of healthy windows.
    """
    baseline = np.asarray(baseline_2d, dtype=np.float64)
    current = np.asarray(current_2d, dtype=np.float64)
    if baseline.ndim != 2 or current.ndim != 2:
        raise ValueError("ks_features expects 2-D (rows, features) arrays")
    if baseline.shape[1] != current.shape[1]:
        raise ValueError(
            f"feature counts differ: baseline {baseline.shape[1]}, current {current.shape[1]}"
        )
    n_features = baseline.shape[1]
    threshold = alpha / max(n_features, 1)
    results = []
    for i in range(n_features):
        statistic, p_value = ks_test(baseline[:, i], current[:, i])
        drifted = not math.isnan(p_value) and p_value < threshold
        results.append(FeatureKS(i, statistic, p_value, drifted, threshold))
    return results


class Reservoir:
    """A uniform random sample of at most ``capacity`` rows of a stream (algorithm R, batched).

    Agents keep one per window so the control plane can run KS on raw values without ever
    receiving every row; reservoirs from several windows or agents merge into a uniform sample
    of the union.
    """

    def __init__(
        self, capacity: int, n_features: int | None = None, seed: int | np.random.Generator | None = None
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = int(capacity)
        self.n_features = n_features
        self.seen = 0
        self._rows: np.ndarray | None = (
            None if n_features is None else np.empty((0, n_features), dtype=np.float64)
        )
        self._rng = np.random.default_rng(seed)

    @classmethod
    def from_sample(
        cls,
        sample: np.ndarray,
        seen: int,
        capacity: int | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> Reservoir:
        """Wrap a uniform sample of a stream of ``seen`` rows (e.g. one an agent reported)."""
        rows = np.atleast_2d(np.asarray(sample, dtype=np.float64))
        if seen < rows.shape[0]:
            raise ValueError("seen cannot be smaller than the sample")
        reservoir = cls(capacity or max(rows.shape[0], 1), rows.shape[1], seed)
        if rows.shape[0] > reservoir.capacity:
            keep = reservoir._rng.choice(rows.shape[0], size=reservoir.capacity, replace=False)
            rows = rows[np.sort(keep)]
        reservoir._rows = rows.copy()
        reservoir.seen = int(seen)
        return reservoir

    def _check(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1) if self.n_features not in (None, 1) else rows.reshape(-1, 1)
        if rows.ndim != 2:
            raise ValueError(f"expected 2-D rows, got shape {rows.shape}")
        if self.n_features is None:
            self.n_features = rows.shape[1]
            self._rows = np.empty((0, rows.shape[1]), dtype=np.float64)
        elif rows.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {rows.shape[1]}")
        return rows

    def add_rows(self, rows: np.ndarray) -> None:
        """Algorithm R for a whole batch: row number t (1-based) replaces slot j ~ U{0..t-1}
        when j < capacity; later rows win ties, exactly as in the row-by-row algorithm."""
        rows = self._check(rows)
        assert self._rows is not None
        if rows.shape[0] == 0:
            return
        free = self.capacity - self._rows.shape[0]
        if free > 0:
            self._rows = np.vstack([self._rows, rows[:free]])
            self.seen += min(free, rows.shape[0])
            rows = rows[free:]
            if rows.shape[0] == 0:
                return
        positions = self.seen + 1 + np.arange(rows.shape[0], dtype=np.int64)
        slots = self._rng.integers(0, positions)
        chosen = np.flatnonzero(slots < self.capacity)
        if chosen.size:
            # keep only the last row written to each slot
            reversed_slots = slots[chosen][::-1]
            _, first_in_reversed = np.unique(reversed_slots, return_index=True)
            winners = chosen[::-1][first_in_reversed]
            self._rows[slots[winners]] = rows[winners]
        self.seen += rows.shape[0]

    def sample(self) -> np.ndarray:
        """A copy of the current sample, shape (min(seen, capacity), n_features)."""
        if self._rows is None:
            return np.empty((0, 0), dtype=np.float64)
        return self._rows.copy()

    def __len__(self) -> int:
        return 0 if self._rows is None else self._rows.shape[0]

    def merge(self, other: Reservoir) -> None:
        """Become a uniform sample of the union of both streams, weighted by their seen counts.

        A uniform sample of size k from the union holds a hypergeometric number of rows from
        each stream; those rows are drawn uniformly from each side's own uniform sample.
        """
        if other.seen == 0 or other._rows is None:
            return
        mine = self.sample() if self._rows is not None else None
        if mine is not None and self.n_features is not None and other.n_features != self.n_features:
            raise ValueError(f"cannot merge {other.n_features} features into {self.n_features}")
        if self.seen == 0 or mine is None:
            self.n_features = other.n_features
            rows = other.sample()
            if rows.shape[0] > self.capacity:
                keep = self._rng.choice(rows.shape[0], size=self.capacity, replace=False)
                rows = rows[np.sort(keep)]
            self._rows, self.seen = rows, other.seen
            return
        theirs = other.sample()
        size = min(self.capacity, mine.shape[0] + theirs.shape[0])
        from_mine = int(self._rng.hypergeometric(self.seen, other.seen, size))
        # a side cannot give more rows than it holds (only when capacities differ)
        from_mine = min(max(from_mine, size - theirs.shape[0]), mine.shape[0])
        from_theirs = size - from_mine
        pick_mine = self._rng.choice(mine.shape[0], size=from_mine, replace=False)
        pick_theirs = self._rng.choice(theirs.shape[0], size=from_theirs, replace=False)
        self._rows = np.vstack([mine[np.sort(pick_mine)], theirs[np.sort(pick_theirs)]])
        self.seen += other.seen
