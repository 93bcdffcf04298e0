"""What an agent may report: the routes of the snapshots sent to it, with a grace for those it was
told to drop (pure, on a test clock)."""

from __future__ import annotations

from controlplane.agenthub.routes import RouteLedger, RouteLedgers, routes_of
from protos import agent_pb2, common_pb2

V1 = ("web", "m", "v1")
V2 = ("web", "m", "v2")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_routes_of_a_snapshot() -> None:
    snapshot = agent_pb2.Snapshot(
        deployments=[
            agent_pb2.DeploymentSnapshot(
                name="web",
                routes=[agent_pb2.Route(version=common_pb2.VersionRef(model="m", version=v)) for v in ("v1", "v2")],
            )
        ]
    )
    assert routes_of(snapshot) == {V1, V2}


def test_a_dropped_route_is_reportable_for_the_grace_then_refused() -> None:
    clock = Clock()
    ledger = RouteLedger(grace_seconds=60.0, clock=clock)
    assert ledger.allowed() == frozenset()  # nothing sent yet: nothing to report
    ledger.sent({V1})
    assert ledger.allowed() == {V1}
    clock.now += 3600  # a current route never expires
    ledger.sent({V2})  # v1 dropped: its last windows and buffered reports may still come
    assert ledger.allowed() == {V1, V2}
    clock.now += 59
    assert V1 in ledger.allowed()
    clock.now += 2
    assert ledger.allowed() == {V2}
    ledger.sent({V1, V2})  # added back: current again
    clock.now += 1000
    assert ledger.allowed() == {V1, V2}


def test_a_nack_restarts_the_grace_of_what_the_agent_keeps_serving() -> None:
    clock = Clock()
    ledger = RouteLedger(grace_seconds=60.0, clock=clock)
    ledger.sent({V1})
    ledger.sent({V2})
    clock.now += 50
    ledger.refused()  # it could not apply {V2}: it still serves V1
    clock.now += 50
    assert V1 in ledger.allowed()
    clock.now += 11
    assert V1 not in ledger.allowed()


def test_ledgers_outlive_a_reconnect_and_are_dropped_a_while_after_the_agent_left() -> None:
    clock = Clock()
    ledgers = RouteLedgers(grace_seconds=60.0, keep_seconds=300.0, max_departed=2, clock=clock)
    first = ledgers.open("a")
    first.sent({V1})
    ledgers.left("a")
    clock.now += 200
    assert ledgers.open("a") is first and first.allowed() == {V1}  # its buffered reports still count
    ledgers.left("a")
    clock.now += 301
    ledgers.prune()
    assert len(ledgers) == 0
    assert ledgers.open("a").allowed() == frozenset()
    for agent in ("b", "c", "d"):  # departed agents beyond max_departed: the oldest go first
        ledgers.open(agent)
        ledgers.left(agent)
        clock.now += 1
    assert len(ledgers) == 3  # "a" is connected, two departed kept
    assert ledgers.open("b").allowed() == frozenset() and len(ledgers) == 4
