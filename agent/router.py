"""Sticky routing of requests to the versions of a deployment (pure: no I/O, no gRPC).

A routing key is hashed with the deployment's salt into one of 10,000 buckets. The live routes
take cumulative bucket ranges in snapshot order (newest version first), so raising the newest
version's weight only widens its range from the bottom: a key it already had stays with it at every
higher share. Requests without a key are split at random by weight. Shadow routes never answer.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.vocabulary import ServingRole

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
    """One segment rule: the attribute's value is in `values`, or (has_range) within [low, high]."""

    attribute: str
    values: frozenset[str] = frozenset()
    has_range: bool = False
    low: float = -math.inf
    high: float = math.inf

    def matches(self, attributes: Mapping[str, str]) -> bool:
        raw = attributes.get(self.attribute)
        if raw is None:
            return False
        if self.has_range:
            try:
                number = float(raw)
            except ValueError:
                return False
            return self.low <= number <= self.high
        return raw in self.values


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
        #: the route of every batch row whatever its key (batch rows carry no segment attributes)
        self.fixed = self.champion if self.segments else self.single

    def in_segment(self, attributes: Mapping[str, str]) -> bool:
        return all(rule.matches(attributes) for rule in self.segments)

    def _from_bucket(self, b: int) -> int:
        for index, bound in zip(self.live, self.bounds, strict=True):
            if b < bound:
                return index
        return self.live[-1]

    def route(self, key: str = "", attributes: Mapping[str, str] | None = None) -> int:
        """Index of the route that answers this request."""
        if self.segments and not self.in_segment(attributes or {}):
            return self.champion
        if self.single >= 0:
            return self.single
        b = bucket(key, self.salt) if key else random.randrange(BUCKETS)
        return self._from_bucket(b)

    def route_many(self, keys: Sequence[str], n: int) -> np.ndarray:
        """Route indices for n rows; `keys` is empty (random split) or one key per row.

        Batch rows carry no attributes, so with segment rules every row is outside the segment.
        """
        if self.segments:
            return np.full(n, self.champion, dtype=np.int64)
        if self.single >= 0:
            return np.full(n, self.single, dtype=np.int64)
        if keys:
            buckets = np.fromiter(
                (bucket(k, self.salt) if k else random.randrange(BUCKETS) for k in keys),
                dtype=np.int64,
                count=n,
            )
        else:
            buckets = np.random.randint(0, BUCKETS, size=n, dtype=np.int64)
        positions = np.searchsorted(self._bounds_array, buckets, side="right")
        return self._live_array[positions]


def share_of(router: Router, index: int) -> float:
    """The fraction of buckets that route `index` answers (for tests and displays)."""
    previous = 0
    for live, bound in zip(router.live, router.bounds, strict=True):
        if live == index:
            return (bound - previous) / BUCKETS
        previous = bound
    return 0.0
