"""Mergeable moments (n, mean, M2): computed per window, merged across windows and agents.

Raw sums of squares lose every significant digit when the mean is large relative to the spread
(latencies in ns, timestamps, ...). Keeping (n, mean, M2) and merging with the pairwise formula of
Chan, Golub & LeVeque stays accurate however many windows are combined.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations from the mean (M2) of a set of values."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values: Iterable[float] | np.ndarray) -> Moments:
        """Two-pass moments of the finite values (NaN/inf would poison every later merge)."""
        array = np.asarray(values, dtype=np.float64).ravel()
        array = array[np.isfinite(array)]
        if array.size == 0:
            return cls()
        mean = float(array.mean())
        deviations = array - mean
        return cls(int(array.size), mean, float(np.dot(deviations, deviations)))

    def merge(self, other: Moments) -> Moments:
        """Chan et al.: n = na+nb, d = mb-ma, mean = ma + d*nb/n, M2 = M2a + M2b + d²·na·nb/n."""
        if other.n <= 0:
            return self
        if self.n <= 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / n
        return Moments(n, mean, m2)

    def __add__(self, other: Moments) -> Moments:
        return self.merge(other)

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1); 0 with fewer than two values rather than a division by 0."""
        if self.n < 2:
            return 0.0
        return max(self.m2, 0.0) / (self.n - 1)

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    @property
    def standard_error(self) -> float:
        """Standard error of the mean; nan with fewer than two values."""
        return math.sqrt(self.variance / self.n) if self.n >= 2 else math.nan
