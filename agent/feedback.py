"""Joining label feedback to the predictions it is about.

Feedback arrives later than the prediction: every prediction's request ids are remembered for a
time to live (at most `capacity` rows) so a label can be joined to the version that answered and
to a shadow's answer for the same request. The id index is built lazily, when feedback arrives,
so serving without labels costs nothing for it.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.window import VersionKey, Window


@dataclass(eq=False, slots=True)
class Batch:
    """The answers of one prediction call, kept for feedback joins until it expires."""

    deployment: str
    key: VersionKey
    ids: Sequence[str]
    labels: np.ndarray | None
    values: np.ndarray | None
    expires: float
    shadow: bool = False
    # Shadow pairs: who answered the caller, and their labels.
    champion: VersionKey | None = None
    champion_labels: np.ndarray | None = None
    index: dict[str, int] | None = None
    alive: bool = True
    #: a classifier with string classes: their names, in the order of its class indices
    classes: Sequence[str] | None = None

    def class_index(self, name: str) -> int:
        """The index of a class named by feedback; -1 (never a prediction) when the model lacks it."""
        if self.classes is None:  # integer classes: the name is the number
            return int(name) if name.strip().lstrip("+-").isdigit() and len(name) < 20 else -1
        try:
            return list(self.classes).index(name)
        except ValueError:
            return -1

    def position(self, request_id: str) -> int | None:
        if len(self.ids) == 1:
            return 0 if self.ids[0] == request_id else None
        if self.index is None:
            self.index = {rid: i for i, rid in enumerate(self.ids)}
        return self.index.get(request_id)


class FeedbackCache:
    """request id -> the batches that answered it, bounded by age and by total rows.

    Recording a prediction only appends its batch; the id index is brought up to date when
    feedback arrives, so an agent that never receives labels never pays for one.
    """

    def __init__(self, ttl: float, capacity: int) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self.batches: deque[Batch] = deque()
        self.rows = 0
        self.unindexed = 0  # batches at the tail of `batches` not in the index yet
        self.primary: dict[str, Batch] = {}
        self.shadows: dict[str, list[Batch]] = {}

    def add(self, batch: Batch, now: float) -> None:
        self.batches.append(batch)
        self.unindexed += 1
        self.rows += len(batch.ids)
        if self.rows > self.capacity or self.batches[0].expires <= now:
            self.evict(now)

    def evict(self, now: float) -> None:
        dropped = False
        while self.batches and (self.batches[0].expires <= now or self.rows > self.capacity):
            old = self.batches.popleft()
            old.alive = False
            self.rows -= len(old.ids)
            dropped = True
        self.unindexed = min(self.unindexed, len(self.batches))
        if dropped and len(self.primary) + len(self.shadows) > 2 * max(self.rows, 1024):
            self._rebuild()

    def _rebuild(self) -> None:
        """Drop the index entries of expired batches: lazily and in bulk."""
        self.primary = {rid: batch for rid, batch in self.primary.items() if batch.alive}
        self.shadows = {rid: live for rid, batches in self.shadows.items() if (live := [b for b in batches if b.alive])}

    def _index(self) -> None:
        if not self.unindexed:
            return
        tail = list(itertools.islice(reversed(self.batches), self.unindexed))
        self.unindexed = 0
        for batch in reversed(tail):  # oldest first: a newer answer to a reused id wins
            if batch.shadow:
                for rid in batch.ids:
                    self.shadows.setdefault(rid, []).append(batch)
            else:
                self.primary.update(zip(batch.ids, itertools.repeat(batch)))

    def take(self, deployment: str, request_id: str, now: float) -> list[tuple[Batch, int]]:
        """Every live answer to this request id, removed so a label counts once."""
        self.evict(now)
        self._index()
        found: list[tuple[Batch, int]] = []
        batch = self.primary.get(request_id)
        if batch is not None and batch.alive and batch.deployment == deployment:
            position = batch.position(request_id)
            if position is not None:
                found.append((batch, position))
                del self.primary[request_id]
        others = self.shadows.get(request_id)
        if others:
            keep = []
            for shadow in others:
                if shadow.alive and shadow.deployment == deployment:
                    position = shadow.position(request_id)
                    if position is not None:
                        found.append((shadow, position))
                        continue
                keep.append(shadow)
            if keep:
                self.shadows[request_id] = keep
            else:
                del self.shadows[request_id]
        return found


def join(window: Window, batch: Batch, position: int, label: int | None, value: float | None, tolerance: float) -> bool:
    """Count the true label/value of row `position` of `batch` in `window`; False when it cannot be."""
    if batch.champion is not None:  # a shadow pair
        truth = _class_of(label, value)
        if truth is None or batch.champion_labels is None or batch.labels is None:
            return False
        champion_ok = int(batch.champion_labels[position]) == truth
        shadow_ok = int(batch.labels[position]) == truth
        window.labeled_pairs += 1
        window.champion_only_correct += int(champion_ok and not shadow_ok)
        window.challenger_only_correct += int(shadow_ok and not champion_ok)
        return True
    if batch.labels is not None:
        truth = _class_of(label, value)
        if truth is None:
            return False
        window.n_labeled += 1
        window.n_correct += int(int(batch.labels[position]) == truth)
        return True
    if batch.values is not None:
        target = float(value) if value is not None else float(label)  # type: ignore[arg-type]
        if not math.isfinite(target):
            return False
        error = abs(float(batch.values[position]) - target)
        window.n_labeled += 1
        window.sum_abs_error += error
        window.sum_squared_error += error * error
        window.n_within_tolerance += int(error <= tolerance)
        window.abs_errors.append(error)
        return True
    return False


def _class_of(label: int | None, value: float | None) -> int | None:
    if label is not None:
        return int(label)
    if value is not None and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None
