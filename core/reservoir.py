"""A uniform random sample of a stream, bounded in size and mergeable (algorithm R, batched).

Agents keep one per metric window; the control plane merges them and runs KS on raw values
without ever receiving every row. numpy only: it runs on agent hosts.
"""

from __future__ import annotations

import numpy as np


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
