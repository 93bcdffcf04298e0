"""A DDSketch-style latency sketch: relative-error quantiles, mergeable by adding bucket counts.

Agents cannot ship every latency, and averages of per-window percentiles are meaningless, so each
window carries a sketch whose buckets can simply be added. With relative accuracy ``a``,
``gamma = (1+a)/(1-a)``; a value ``x > 0`` falls in bucket ``k = ceil(log(x) / log(gamma))``,
i.e. ``gamma**(k-1) < x <= gamma**k``, and the bucket is represented by ``2*gamma**k/(1+gamma)``,
which is within a relative error ``a`` of every value in the bucket. A quantile is the
representative of the bucket holding the exact order statistic, so it inherits the guarantee.

Values at or below ``MIN_VALUE`` (including any negative value) are counted in a zero bucket and
reported as 0. NaN and infinite values are ignored: they carry no latency information. Values
above ``MAX_VALUE`` count in the bucket of ``MAX_VALUE``: keys stay within ``key_range()``, so a
representative is always a finite float (a key of 100000 from a hostile report would make
``gamma**key`` overflow in every quantile that merges it). `from_parts` folds keys outside that
range into its ends; the control plane refuses such a window on ingest before it gets there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

MIN_VALUE = 1e-9
#: far above any latency (31.7 million years in ms) and far below float overflow
MAX_VALUE = 1e18
MAX_BUCKETS = 2048
DEFAULT_ACCURACY = 0.01


class LatencySketch:
    """Mergeable quantile sketch with a relative-error guarantee and bounded memory.

    Past ``max_buckets`` buckets, the lowest buckets are folded into one: only the low tail loses
    accuracy, the percentiles that matter for latency (p50/p95/p99) keep theirs. With a = 1% and
    2048 buckets that only happens when the values span more than ~17 orders of magnitude.
    """

    def __init__(
        self, relative_accuracy: float = DEFAULT_ACCURACY, max_buckets: int = MAX_BUCKETS
    ) -> None:
        if not 0.0 < relative_accuracy < 1.0:
            raise ValueError(f"relative_accuracy must be in (0, 1), got {relative_accuracy!r}")
        if max_buckets < 2:
            raise ValueError("max_buckets must be at least 2")
        self.relative_accuracy = float(relative_accuracy)
        self.gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
        self._log_gamma = math.log(self.gamma)
        self.min_key = math.floor(math.log(MIN_VALUE) / self._log_gamma)
        self.max_key = math.ceil(math.log(MAX_VALUE) / self._log_gamma)
        self.max_buckets = int(max_buckets)
        self.bins: dict[int, int] = {}
        self.zero_count = 0
        self.sum = 0.0
        self.min = math.nan
        self.max = math.nan

    # -- keys -------------------------------------------------------------------------------------

    def key(self, value: float) -> int:
        """Bucket index of a positive value (same arithmetic as add_many, so both agree)."""
        return int(self._keys(np.asarray([value], dtype=np.float64))[0])

    def key_range(self) -> tuple[int, int]:
        """The lowest and highest key a value can have (both representatives are finite)."""
        return self.min_key, self.max_key

    def _keys(self, positive: np.ndarray) -> np.ndarray:
        keys = np.ceil(np.log(positive) / self._log_gamma).astype(np.int64)
        return np.minimum(keys, self.max_key)  # above MAX_VALUE: the last bucket

    def value_of(self, key: int) -> float:
        """Representative of a bucket: within the relative accuracy of everything in it."""
        return 2.0 * self.gamma**key / (1.0 + self.gamma)

    # -- adding -----------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return self.zero_count + sum(self.bins.values())

    @property
    def mean(self) -> float:
        n = self.count
        return self.sum / n if n else math.nan

    def add(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value):
            return
        if value <= MIN_VALUE:
            self.zero_count += 1
        else:
            k = self.key(value)
            self.bins[k] = self.bins.get(k, 0) + 1
            if len(self.bins) > self.max_buckets:
                self._collapse()
        self._track(value, value, value)

    def add_many(self, values: Iterable[float] | np.ndarray) -> None:
        """Vectorised add: one log and one np.unique per batch instead of a loop per value."""
        array = np.asarray(values, dtype=np.float64).ravel()
        array = array[np.isfinite(array)]
        if array.size == 0:
            return
        positive = array[array > MIN_VALUE]
        self.zero_count += int(array.size - positive.size)
        if positive.size:
            unique, counts = np.unique(self._keys(positive), return_counts=True)
            bins = self.bins
            for k, c in zip(unique.tolist(), counts.tolist(), strict=True):
                bins[k] = bins.get(k, 0) + c
            self._collapse()
        self._track(float(array.min()), float(array.max()), float(array.sum()))

    def merge(self, other: LatencySketch) -> None:
        """Add another sketch's buckets into this one (in place); accuracies must match."""
        if not math.isclose(other.relative_accuracy, self.relative_accuracy, rel_tol=1e-12):
            raise ValueError(
                "cannot merge sketches of different relative accuracy "
                f"({self.relative_accuracy} vs {other.relative_accuracy})"
            )
        if other.count == 0:
            return
        bins = self.bins
        for k, c in other.bins.items():
            bins[k] = bins.get(k, 0) + c
        self.zero_count += other.zero_count
        self._collapse()
        self._track(other.min, other.max, other.sum)

    def copy(self) -> LatencySketch:
        twin = LatencySketch(self.relative_accuracy, self.max_buckets)
        twin.bins = dict(self.bins)
        twin.zero_count, twin.sum, twin.min, twin.max = (
            self.zero_count,
            self.sum,
            self.min,
            self.max,
        )
        return twin

    def _track(self, low: float, high: float, total: float) -> None:
        self.sum += total
        if not math.isnan(low):
            self.min = low if math.isnan(self.min) else min(self.min, low)
        if not math.isnan(high):
            self.max = high if math.isnan(self.max) else max(self.max, high)

    def _collapse(self) -> None:
        """Fold the lowest buckets into the lowest surviving one so at most max_buckets remain."""
        excess = len(self.bins) - self.max_buckets
        if excess <= 0:
            return
        keys = sorted(self.bins)
        folded = sum(self.bins.pop(k) for k in keys[:excess])
        self.bins[keys[excess]] += folded

    # -- reading ----------------------------------------------------------------------------------

    def quantile(self, q: float) -> float:
        """The q-quantile as the lower order statistic of rank floor(q*(n-1)); nan when empty.

        The estimate is clamped to the exact [min, max] seen, which can only bring it closer.
        """
        total = self.count
        if total == 0 or not 0.0 <= q <= 1.0:
            return math.nan
        rank = math.floor(q * (total - 1))
        if rank < self.zero_count:
            return 0.0
        seen = self.zero_count
        estimate = math.nan
        for k in sorted(self.bins):
            seen += self.bins[k]
            if seen > rank:
                estimate = self.value_of(k)
                break
        if math.isnan(estimate):  # only reachable through inconsistent counts
            estimate = self.value_of(max(self.bins))
        if math.isfinite(self.min) and math.isfinite(self.max) and self.min <= self.max:
            estimate = min(max(estimate, self.min), self.max)
        return estimate

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        return [self.quantile(q) for q in qs]

    # -- plain parts (wire / SQL) -----------------------------------------------------------------

    def to_parts(self) -> tuple[list[int], list[int], int]:
        """(sorted keys, their counts, zero count): what goes on the wire or into SQL."""
        keys = sorted(self.bins)
        return keys, [self.bins[k] for k in keys], self.zero_count

    @classmethod
    def from_parts(
        cls,
        relative_accuracy: float,
        keys: Iterable[int],
        counts: Iterable[int],
        zero_count: int = 0,
        sum: float = 0.0,
        min: float = math.nan,
        max: float = math.nan,
    ) -> LatencySketch:
        """Rebuild a sketch; a relative_accuracy of 0 (an unset protobuf field) means the default.

        ``sum``/``min``/``max`` shadow builtins on purpose: they are the wire field names.

        An empty sketch gets min/max reset to nan, so a serialised placeholder (min=max=0) cannot
        pollute the range of the sketches it is merged with later.
        """
        sketch = cls(relative_accuracy or DEFAULT_ACCURACY)
        key_list, count_list = list(keys), list(counts)
        if len(key_list) != len(count_list):
            raise ValueError("keys and counts differ in length")
        low, high = sketch.key_range()
        for k, c in zip(key_list, count_list, strict=True):
            c = int(c)
            if c < 0:
                raise ValueError("bucket counts must not be negative")
            if c:
                key = low if int(k) < low else high if int(k) > high else int(k)  # never overflows
                # (min/max are this method's parameters: the wire field names)
                sketch.bins[key] = sketch.bins.get(key, 0) + c
        if int(zero_count) < 0:
            raise ValueError("zero_count must not be negative")
        sketch.zero_count = int(zero_count)
        sketch._collapse()
        if sketch.count:
            sketch.sum, sketch.min, sketch.max = float(sum), float(min), float(max)
        return sketch

    def __repr__(self) -> str:
        return (
            f"LatencySketch(relative_accuracy={self.relative_accuracy}, count={self.count}, "
            f"buckets={len(self.bins)}, min={self.min}, max={self.max})"
        )
