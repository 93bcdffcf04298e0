"""Which (deployment, version) routes an agent may report windows for: those of the snapshots
the control plane sent it.

An agent serves what its last applied snapshot says, also while the control plane is out of
reach (static stability), so a route stays reportable from the first snapshot sent with it until
a snapshot without it was sent, and for a grace period after that: the windows it served before
applying the change, and the reports it buffered meanwhile, arrive then. A NACK means the agent
keeps serving what it had: the grace of the routes it was told to drop starts again.

One ledger per agent id, kept by the AgentHub across the agent's reconnects (its buffered reports
arrive on the new stream) and dropped a while after it left. In memory: after a control-plane
restart an agent may report the routes of the snapshot it is sent on connecting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from controlplane.domain import Route
from protos import agent_pb2

Clock = Callable[[], float]


def routes_of(snapshot: agent_pb2.Snapshot) -> set[Route]:
    return {(d.name, r.version.model, r.version.version) for d in snapshot.deployments for r in d.routes}


@dataclass
class RouteLedger:
    """The routes one agent was sent: the current ones, and those retired (when)."""

    grace_seconds: float
    clock: Clock = time.monotonic
    current: set[Route] = field(default_factory=set)
    #: route -> when a snapshot without it was sent (or the agent last NACKed since)
    retired: dict[Route, float] = field(default_factory=dict)
    #: when the agent's last stream ended (None while one is open)
    left_at: float | None = None

    def sent(self, routes: Iterable[Route]) -> None:
        """A snapshot with these routes was queued for the agent."""
        now = self.clock()
        new = set(routes)
        for route in self.current - new:
            self.retired[route] = now
        for route in new:
            self.retired.pop(route, None)
        self.current = new
        self._prune(now)

    def refused(self) -> None:
        """The agent NACKed a snapshot: it keeps serving its previous routes, so their grace restarts."""
        now = self.clock()
        self._prune(now)
        for route in self.retired:
            self.retired[route] = now

    def allowed(self) -> frozenset[Route]:
        """What the agent may report now: a copy, for the ingest that runs in a worker thread."""
        now = self.clock()
        return frozenset(self.current).union(r for r, at in self.retired.items() if now - at <= self.grace_seconds)

    def _prune(self, now: float) -> None:
        for route, at in list(self.retired.items()):
            if now - at > self.grace_seconds:
                del self.retired[route]


class RouteLedgers:
    """The AgentHub's ledgers by agent id. A departed agent's ledger is kept `keep_seconds` (it may
    reconnect and send what it buffered meanwhile), at most `max_departed` of them."""

    def __init__(
        self, grace_seconds: float, keep_seconds: float, max_departed: int = 10_000, clock: Clock = time.monotonic
    ) -> None:
        self.grace_seconds = grace_seconds
        self.keep_seconds = keep_seconds
        self.max_departed = max_departed
        self.clock = clock
        self._ledgers: dict[str, RouteLedger] = {}

    def open(self, agent_id: str) -> RouteLedger:
        """The ledger of an agent whose stream opens (its previous one, if it was kept)."""
        ledger = self._ledgers.get(agent_id)
        if ledger is None:
            ledger = self._ledgers[agent_id] = RouteLedger(self.grace_seconds, self.clock)
        ledger.left_at = None
        return ledger

    def left(self, agent_id: str) -> None:
        ledger = self._ledgers.get(agent_id)
        if ledger is not None:
            ledger.left_at = self.clock()
        self.prune()

    def prune(self) -> None:
        now = self.clock()
        departed = sorted(
            ((ledger.left_at, agent_id) for agent_id, ledger in self._ledgers.items() if ledger.left_at is not None),
        )
        excess = len(departed) - self.max_departed
        for i, (left_at, agent_id) in enumerate(departed):
            if i < excess or now - left_at > self.keep_seconds:
                del self._ledgers[agent_id]

    def __len__(self) -> int:
        return len(self._ledgers)
