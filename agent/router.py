"""Sticky routing of requests to the versions of a deployment (pure: no I/O, no gRPC).

A routing key is hashed with the deployment's salt into one of 10,000 buckets. The live routes
take cumulative bucket ranges in snapshot order (newest version first), so raising the newest
version's weight only widens its range from the bottom: a key it already had stays with it at every
higher share. Requests without a key are split at random by weight. Shadow routes never answer.

Segment rules (an experiment's `--segment`) keep every request outside the segment on the
champion. A rule tests a request attribute or a feature of the rows (`SegmentSource`): a Predict
call takes part when every one of its rows matches; each row of a batch is routed on its own
features and key, so one batch may be answered by several versions.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.vocabulary import SegmentSource, ServingRole, segment_number

BUCKETS = 10_000


def bucket(key: str, salt: str) -> int:
    """Stable across processes, hosts and Python versions (never Python's salted `hash()`)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, key=salt.encode()[:64]).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True)
class RouteSpec:
    """What the router needs of one route: its weight (percent) and role."""

    weight: int
    role: ServingRole


@dataclass(frozen=True)
class Segment:
    """One segment rule: the value is in `values`, or (has_range) within [low, high].

    `attribute` is the name without its prefix; `source` says whether it names a request
    attribute, a feature of the rows, or either (the attribute when the request sends one)."""

    attribute: str
    values: frozenset[str] = frozenset()
    has_range: bool = False
    low: float = -math.inf
    high: float = math.inf
    source: SegmentSource = SegmentSource.EITHER
    #: `values` read as numbers, for numeric and bool features (`9`, `true`)
    numbers: frozenset[float] = field(init=False)

    def __post_init__(self) -> None:
        parsed = (segment_number(v) for v in self.values)
        object.__setattr__(self, "numbers", frozenset(x for x in parsed if x is not None))

    def test(self, value: Any) -> bool:
        """One value: an attribute's text, or a feature's text, number, bool or None (missing)."""
        if value is None:
            return False
        if isinstance(value, str):
            if not self.has_range:
                return value in self.values
            try:
                number = float(value)
            except ValueError:
                return False
        else:
            number = float(value)
            if not self.has_range:
                return number in self.numbers
        return self.low <= number <= self.high  # NaN (a missing number) is in no range

    def mask(self, column: np.ndarray) -> np.ndarray:
        """Which entries of a feature column (one value per row) match."""
        if column.dtype.kind in "fiub":  # numbers and bools: vectorised
            x = column.astype(np.float64, copy=False)
            if self.has_range:
                return (x >= self.low) & (x <= self.high)
            return np.isin(x, np.fromiter(self.numbers, dtype=np.float64, count=len(self.numbers)))
        return np.fromiter((self.test(v) for v in column.tolist()), dtype=bool, count=column.shape[0])

    def matches(self, attributes: Mapping[str, str], features: Mapping[str, np.ndarray] | None = None) -> bool:
        """Whether a request matches: its attribute, else (unless the rule names an attribute)
        its feature column, every row of it."""
        if self.source != SegmentSource.FEATURE:
            raw = attributes.get(self.attribute)
            if raw is not None:
                return self.test(raw)
            if self.source == SegmentSource.ATTRIBUTE:
                return False
        column = features.get(self.attribute) if features is not None else None
        if column is None or not column.shape[0]:
            return False
        return bool(self.mask(column).all())


class Router:
    """Chooses a route index for a request; built once per snapshot, then read-only."""

    def __init__(self, routes: Sequence[RouteSpec], salt: str, segments: Sequence[Segment] = ()) -> None:
        self.salt = salt
        self.segments = tuple(segments)
        self.champion = next((i for i, r in enumerate(routes) if r.role == ServingRole.CHAMPION), -1)
        self.shadows = tuple(i for i, r in enumerate(routes) if r.role == ServingRole.SHADOW)
        live = [(i, r.weight) for i, r in enumerate(routes) if r.role != ServingRole.SHADOW and r.weight > 0]
        total = sum(w for _, w in live)
        if not live:  # weights are > 0, so any live route makes a positive total
            if self.champion < 0:
                raise ValueError("a deployment needs a champion or a route with a positive weight")
            live, total = [(self.champion, 100)], 100
        self.live = tuple(i for i, _ in live)
        bounds: list[int] = []
        running = 0
        for _, weight in live:
            running += weight
            # Scale to 10,000 buckets; the last bound is exactly BUCKETS (weights sum to 100).
            bounds.append(running * BUCKETS // total)
        bounds[-1] = BUCKETS
        self.bounds = tuple(bounds)
        self._bounds_array = np.asarray(bounds, dtype=np.int64)
        self._live_array = np.asarray(self.live, dtype=np.int64)
        if self.champion < 0:
            self.champion = self.live[-1]
        self.single = self.live[0] if len(self.live) == 1 else -1
        #: the route of every batch row whatever its key and features (-1: rows are routed)
        self.fixed = self.single if not self.segments or self.single == self.champion else -1
        #: the feature names segment rules may test (request features are read only for these)
        self.features = tuple(sorted({s.attribute for s in self.segments if s.source != SegmentSource.ATTRIBUTE}))

    def in_segment(self, attributes: Mapping[str, str], features: Mapping[str, np.ndarray] | None = None) -> bool:
        return all(rule.matches(attributes, features) for rule in self.segments)

    def in_segment_many(self, features: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Which of n batch rows are in the segment, by their feature columns (no attributes)."""
        inside = np.ones(n, dtype=bool)
        for rule in self.segments:
            column = features.get(rule.attribute) if rule.source != SegmentSource.ATTRIBUTE else None
            if column is None or column.shape[0] != n:
                return np.zeros(n, dtype=bool)
            inside &= rule.mask(column)
        return inside

    def _from_bucket(self, b: int) -> int:
        for index, bound in zip(self.live, self.bounds, strict=True):
            if b < bound:
                return index
        return self.live[-1]

    def route(
        self,
        key: str = "",
        attributes: Mapping[str, str] | None = None,
        features: Mapping[str, np.ndarray] | None = None,
    ) -> int:
        """Index of the route that answers this request (`features`: the columns of its rows)."""
        if self.segments and not self.in_segment(attributes or {}, features):
            return self.champion
        if self.single >= 0:
            return self.single
        b = bucket(key, self.salt) if key else random.randrange(BUCKETS)
        return self._from_bucket(b)

    def route_many(self, keys: Sequence[str], n: int, features: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Route indices for n rows; `keys` is empty (random split) or one key per row.

        With segment rules, each row is routed on its own `features` (columns of n values by
        name): a row outside the segment goes to the champion. Batch rows carry no attributes.
        """
        if self.fixed >= 0:
            return np.full(n, self.fixed, dtype=np.int64)
        if self.single >= 0:
            chosen = np.full(n, self.single, dtype=np.int64)
        else:
            if keys:
                buckets = np.fromiter(
                    (bucket(k, self.salt) if k else random.randrange(BUCKETS) for k in keys),
                    dtype=np.int64,
                    count=n,
                )
            else:
                buckets = np.random.randint(0, BUCKETS, size=n, dtype=np.int64)
            positions = np.searchsorted(self._bounds_array, buckets, side="right")
            chosen = self._live_array[positions]
        if self.segments:
            chosen = np.where(self.in_segment_many(features or {}, n), chosen, self.champion)
        return chosen


def share_of(router: Router, index: int) -> float:
    """The fraction of buckets that route `index` answers (for tests and displays)."""
    previous = 0
    for live, bound in zip(router.live, router.bounds, strict=True):
        if live == index:
            return (bound - previous) / BUCKETS
        previous = bound
    return 0.0
