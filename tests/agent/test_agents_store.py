"""What the control plane records about agents, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from controlplane import deployments, registry
from controlplane.agenthub import agents, fleet
from controlplane.agenthub.identity import Credential
from controlplane.agenthub.snapshot import build_snapshot
from controlplane.config import TokenConfig
from controlplane.context import Context
from controlplane.domain import Principal, Role
from controlplane.monitoring import alerts
from controlplane.store.models import AgentDeploymentRow, AgentReportDropsRow, AgentRow, utcnow
from core.errors import InvalidInput, NotFound, PermissionDenied, ResourceExhausted
from core.vocabulary import AgentState
from protos import common_pb2
from tests.models import make_classifier_onnx

BOB = Principal("bob", Role.OPERATOR)


def _register(ctx: Context, version: str, path: Path) -> None:
    pending = ctx.artifacts.begin_upload()
    pending.write(path.read_bytes())
    registry.register_version(ctx, BOB, registry.NewVersion("cancer", version), pending, None)


def hello(
    agent_id: str, name: str, applied: dict[str, int] | None = None, digests: dict[str, str] | None = None
) -> agents.AgentHello:
    return agents.validate_hello(
        agent_id, name, "host-1", "127.0.0.1:7500", {"zone": "a"}, applied or {}, digests or {}
    )


def test_agents_sync_bookkeeping(ctx: Context, models_dir: Path) -> None:
    _register(ctx, "v1", make_classifier_onnx(models_dir, "logreg"))
    _register(ctx, "v2", make_classifier_onnx(models_dir, "gbm"))
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    assert agents.agent_connected(ctx, hello("a1", "alpha")).previous == ""
    assert agents.agent_connected(ctx, hello("b2", "beta", {"web": 1})).previous == ""

    status = fleet.sync_status(ctx, "web")
    assert (status.generation, status.synced, status.in_sync) == (1, ["beta"], False)
    assert status.lagging == ["alpha (at generation 0)"]

    agents.record_applied(ctx, "a1", {"web": 1})
    assert fleet.sync_status(ctx, "web").in_sync

    deployments.set_traffic(ctx, BOB, "web", [("cancer", "v1", 90), ("cancer", "v2", 10)])
    agents.record_nack(ctx, "b2", "artifact 1234: sha256 mismatch", {"web": 1})
    agents.record_applied(ctx, "a1", {"web": 2})
    status = fleet.sync_status(ctx, "web")
    # The refusal is named, so `traffic set --wait` says why an agent lags.
    assert status.synced == ["alpha"]
    assert status.lagging == ["beta (at generation 1; refused: artifact 1234: sha256 mismatch)"]
    assert fleet.sync_status(ctx, "web", generation=1).in_sync  # an older generation is applied

    listed = {a.name: a for a in fleet.list_agents(ctx)}
    assert listed["beta"].last_nack == "artifact 1234: sha256 mismatch"
    assert [
        (d.deployment, d.applied_generation, d.desired_generation, d.in_sync) for d in listed["beta"].deployments
    ] == [("web", 1, 2, False)]
    assert listed["alpha"].deployments[0].in_sync and listed["alpha"].labels == {"zone": "a"}
    agents.record_applied(ctx, "b2", {"web": 2})  # a later snapshot applied: the refusal is history
    assert {a.name: a for a in fleet.list_agents(ctx)}["beta"].last_nack == ""

    # A lost agent no longer counts for WaitForSync; it is back once it reconnects.
    assert agents.set_state(ctx, "b2", AgentState.LOST) == AgentState.CONNECTED
    assert fleet.sync_status(ctx, "web").in_sync
    assert agents.agent_connected(ctx, hello("b2", "beta", {"web": 2})).previous == AgentState.LOST
    assert fleet.sync_status(ctx, "web").in_sync
    # A reconnecting agent that serves nothing from its cache starts from generation 0.
    agents.agent_connected(ctx, hello("a1", "alpha"))
    assert fleet.sync_status(ctx, "web").lagging == ["alpha (at generation 0)"]


def test_writes_for_a_replaced_stream_change_nothing(ctx: Context, models_dir: Path) -> None:
    """A reconnect while the store is busy: the old stream's 'disconnected' (or 'lost') commits
    after the new stream's connect. It must not mark the connected agent gone (issue 11, #2)."""
    _register(ctx, "v1", make_classifier_onnx(models_dir, "logreg"))
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    old = agents.agent_connected(ctx, hello("a1", "alpha"))
    new = agents.agent_connected(ctx, hello("a1", "alpha", {"web": 1}))
    assert new.epoch != old.epoch and new.previous == AgentState.CONNECTED

    assert agents.set_state(ctx, "a1", AgentState.DISCONNECTED, old.epoch) is None
    assert agents.set_state(ctx, "a1", AgentState.LOST, old.epoch) is None
    (row,) = fleet.list_agents(ctx)
    assert row.state == AgentState.CONNECTED
    assert fleet.sync_status(ctx, "web").synced == ["alpha"]  # WaitForSync still counts it

    # The current stream's own writes apply; a beat gathered before its departure was recorded
    # (the hub's tick runs the write later) does not bring it back.
    assert agents.set_state(ctx, "a1", AgentState.DISCONNECTED, new.epoch) == AgentState.CONNECTED
    agents.touch(ctx, {"a1": old.epoch})  # an old stream's beat: nothing
    assert fleet.list_agents(ctx)[0].state == AgentState.DISCONNECTED
    agents.touch(ctx, {"a1": new.epoch})
    assert fleet.list_agents(ctx)[0].state == AgentState.DISCONNECTED
    assert agents.set_state(ctx, "nobody", AgentState.LOST) is None


def test_an_ack_racing_a_reconnect_is_not_lost(ctx: Context, models_dir: Path) -> None:
    """Two transactions record what one agent applied (an old stream's ACK, a new stream's Hello).
    With select-then-insert both saw no row and the later INSERT failed on the key on PostgreSQL:
    the ACK was lost. Here the first transaction holds its uncommitted row while the second runs."""
    _register(ctx, "v1", make_classifier_onnx(models_dir, "logreg"))
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    agents.agent_connected(ctx, hello("a1", "alpha"))
    errors: list[BaseException] = []

    def ack() -> None:
        try:
            agents.record_applied(ctx, "a1", {"web": 1})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    with ctx.db.session() as first:
        first.execute(
            insert(AgentDeploymentRow).values(
                agent_id="a1", deployment="web", applied_generation=1, refused_generation=0, updated_at=utcnow()
            )
        )
        first.flush()
        racing = threading.Thread(target=ack)
        racing.start()
        racing.join(1.0)  # it waits for the first transaction's lock (or has read nothing yet)
    racing.join(30)
    assert not racing.is_alive() and errors == []
    assert fleet.sync_status(ctx, "web").synced == ["alpha"]


def test_after_a_store_restore_generation_numbers_alone_do_not_count_as_applied(
    ctx: Context, models_dir: Path
) -> None:
    """Issue 11, #3: a database restored from a backup repeats generation numbers. An agent that
    serves generation 3 of the lost timeline is not in sync with the restored generation 1, nor
    with a new generation 3 of other content; it is once it applies (and echoes) the content."""
    _register(ctx, "v1", make_classifier_onnx(models_dir, "logreg"))
    _register(ctx, "v2", make_classifier_onnx(models_dir, "gbm"))
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")

    def digest() -> str:
        (web,) = build_snapshot(ctx, 1).deployments
        return web.digest

    restored_g1 = digest()
    lost_g3 = "f" * 64  # what the agent applied before the restore (content the store never saw)
    agents.agent_connected(ctx, hello("a1", "alpha", {"web": 3}, {"web": lost_g3}))
    status = fleet.sync_status(ctx, "web")
    assert (status.generation, status.synced) == (1, [])  # ahead of the store: not in sync
    assert status.lagging == ["alpha (at generation 3 of other content)"]
    assert not fleet.list_agents(ctx)[0].deployments[0].in_sync

    # It refuses the restored snapshot and keeps serving the lost generation 3: still not in sync.
    agents.record_nack(ctx, "a1", "cannot fetch", {"web": 3}, {"web": 1}, {"web": lost_g3})
    assert fleet.sync_status(ctx, "web").synced == []
    # Two changes later the store is at generation 3 again, with other content.
    deployments.set_traffic(ctx, BOB, "web", [("cancer", "v1", 90), ("cancer", "v2", 10)])
    deployments.set_traffic(ctx, BOB, "web", [("cancer", "v1", 50), ("cancer", "v2", 50)])
    assert fleet.sync_status(ctx, "web").generation == 3 and fleet.sync_status(ctx, "web").synced == []
    assert fleet.fleet_applied(ctx, "web").at is None  # a rollout step would not go live on it
    # Applied and echoed: in sync.
    agents.record_applied(ctx, "a1", {"web": 3}, {"web": digest()})
    assert fleet.sync_status(ctx, "web").synced == ["alpha"]
    assert fleet.fleet_applied(ctx, "web").at is not None
    assert digest() != restored_g1
    # An agent that sends no digests (older) is judged by number, within the store's range.
    agents.agent_connected(ctx, hello("b2", "beta", {"web": 3}))
    assert fleet.sync_status(ctx, "web").synced == ["alpha", "beta"]
    agents.agent_connected(ctx, hello("b2", "beta", {"web": 4}))
    assert fleet.sync_status(ctx, "web").synced == ["alpha"]


def test_sync_status_refuses_bad_questions(ctx: Context, models_dir: Path) -> None:
    _register(ctx, "v1", make_classifier_onnx(models_dir, "logreg"))
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    with pytest.raises(NotFound):
        fleet.sync_status(ctx, "nope")
    with pytest.raises(InvalidInput, match="does not exist yet"):
        fleet.sync_status(ctx, "web", generation=5)
    with pytest.raises(InvalidInput, match="negative"):
        fleet.sync_status(ctx, "web", generation=-1)


@pytest.mark.parametrize(
    ("agent_id", "name", "text"),
    [("", "n", "agent_id"), ("a/b", "n", "agent_id"), ("x" * 65, "n", "agent_id"), ("ok", "has space", "agent")],
)
def test_hello_validation(agent_id: str, name: str, text: str) -> None:
    with pytest.raises(InvalidInput, match=text):
        agents.validate_hello(agent_id, name, "h", "a", {}, {})


def test_snapshot_lists_routes_in_routing_order(ctx: Context, models_dir: Path) -> None:
    _register(ctx, "v1", make_classifier_onnx(models_dir, "logreg"))
    _register(ctx, "v2", make_classifier_onnx(models_dir, "gbm"))
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    info = deployments.set_traffic(ctx, BOB, "web", [("cancer", "v1", 70), ("cancer", "v2", 30)])
    snapshot = build_snapshot(ctx, 42)
    assert snapshot.snapshot_id == 42
    (web,) = snapshot.deployments
    assert (web.name, web.generation, web.salt) == ("web", 2, info.routing_salt)
    assert [(r.version.version, r.weight, r.role) for r in web.routes] == [
        ("v2", 30, common_pb2.ROLE_CHALLENGER),
        ("v1", 70, common_pb2.ROLE_CHAMPION),
    ]
    assert all(len(r.sha256) == 64 and r.task == "classifier" for r in web.routes)


def test_a_restarted_control_plane_forgets_stale_connections(ctx: Context) -> None:
    agents.agent_connected(ctx, hello("a1", "alpha"))
    agents.agent_connected(ctx, hello("b2", "beta"))
    agents.agent_connected(ctx, hello("c3", "gamma"))
    agents.set_state(ctx, "b2", AgentState.DISCONNECTED)
    agents.set_state(ctx, "c3", AgentState.LOST)
    assert sorted(agents.reset_at_start(ctx)) == ["a1", "b2"]  # they may come back
    assert {a.name: a.state for a in fleet.list_agents(ctx)} == {
        "alpha": "disconnected",
        "beta": "disconnected",
        "gamma": "lost",
    }


# ---- issue 13: agents bound to their credential, bounded records --------------------------------


def agent_rows(ctx: Context) -> list[tuple[str, str, str]]:
    with ctx.db.session() as session:
        rows = session.execute(select(AgentRow.id, AgentRow.name, AgentRow.owner_token)).all()
        return sorted((r.id, r.name, r.owner_token) for r in rows)


def test_an_agent_is_bound_to_the_credential_that_registered_it(ctx: Context) -> None:
    ctx.config.tokens = [TokenConfig(name=n, role="agent", token=f"{n}-secret") for n in ("edge-a", "edge-b")]
    a, b = Credential("edge-a"), Credential("edge-b")
    agents.agent_connected(ctx, hello("a1", "alpha"), a)
    for claim in (hello("a1", "mallory"), hello("x9", "alpha"), hello("a1", "alpha")):
        with pytest.raises(PermissionDenied, match="registered to another credential"):
            agents.agent_connected(ctx, claim, b)
    assert agent_rows(ctx) == [("a1", "alpha", "edge-a")]  # a refused Hello records nothing
    agents.agent_connected(ctx, hello("a1", "alpha-2"), a)  # its own credential may rename it

    # A row bound to nobody (from before revision 0007, or made without tokens) is claimed by the
    # first credential that connects under its id; from then on it is that credential's.
    with ctx.db.session() as session:
        session.add(AgentRow(id="old", name="legacy", host="h", address="a", labels={}, state="lost", last_nack=""))
    agents.agent_connected(ctx, hello("old", "legacy"), b)
    with pytest.raises(PermissionDenied):
        agents.agent_connected(ctx, hello("old", "legacy"), a)

    # A token removed from the configuration binds nothing any more: its agents are not locked out.
    ctx.config.tokens = ctx.config.tokens[1:]
    agents.agent_connected(ctx, hello("a1", "alpha-2"), b)
    assert agent_rows(ctx) == [("a1", "alpha-2", "edge-b"), ("old", "legacy", "edge-b")]


def test_agent_records_per_credential_are_capped(ctx: Context) -> None:
    ctx.config.tokens = [TokenConfig(name=n, role="agent", token=f"{n}-secret") for n in ("edge-a", "edge-b")]
    ctx.config.limits.max_agents_per_credential = 2
    a, b = Credential("edge-a"), Credential("edge-b")
    agents.agent_connected(ctx, hello("a1", "alpha"), a)
    agents.agent_connected(ctx, hello("a2", "alpha-2"), a)
    with pytest.raises(ResourceExhausted, match=r"token edge-a already has 2 agent records.*max_agents_per_credential"):
        agents.agent_connected(ctx, hello("a3", "alpha-3"), a)
    agents.agent_connected(ctx, hello("a1", "alpha"), a)  # a known agent reconnects as ever
    agents.agent_connected(ctx, hello("b1", "beta"), b)  # the cap is per credential
    assert [r[0] for r in agent_rows(ctx)] == ["a1", "a2", "b1"]


def test_only_deployments_that_exist_are_recorded(ctx: Context, models_dir: Path) -> None:
    _register(ctx, "v1", make_classifier_onnx(models_dir, "logreg"))
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    invented = {f"ghost-{i}": 1 for i in range(2000)}
    agents.agent_connected(ctx, hello("a1", "alpha", {"web": 1, **invented}))
    agents.record_applied(ctx, "a1", {"web": 1, **invented})
    agents.record_nack(ctx, "a1", "no", invented, invented)
    with ctx.db.session() as session:
        stored = session.execute(select(AgentDeploymentRow.deployment, AgentDeploymentRow.applied_generation)).all()
    assert [tuple(r) for r in stored] == [("web", 1)]
    assert fleet.sync_status(ctx, "web").in_sync


def test_an_agent_away_too_long_is_forgotten_with_what_it_applied_and_its_alerts(
    ctx: Context, models_dir: Path
) -> None:
    _register(ctx, "v1", make_classifier_onnx(models_dir, "logreg"))
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    agents.agent_connected(ctx, hello("a1", "alpha", {"web": 1}))
    agents.agent_connected(ctx, hello("b2", "beta", {"web": 1}))  # stays connected
    agents.set_state(ctx, "a1", AgentState.LOST)
    alerts.open_alert(ctx, deployment="", kind="agent_lost", agent_id="a1", severity="warning", message="silent")
    with ctx.db.session() as session:
        session.add(AgentReportDropsRow(agent_id="a1", dropped=3))
    cutoff = utcnow() + timedelta(seconds=1)  # everything seen so far is older
    assert agents.gone_since(ctx, cutoff) == ["a1"]
    gone = agents.forget(ctx, "a1", cutoff, "resolved: forgotten")
    assert gone is not None and gone.name == "alpha"
    [alert] = gone.alerts
    assert (alert.kind, alert.state, alert.message) == ("agent_lost", "resolved", "silent (resolved: forgotten)")
    assert agent_rows(ctx) == [("b2", "beta", "")]
    with ctx.db.session() as session:
        assert session.scalars(select(AgentDeploymentRow.agent_id)).all() == ["b2"]
        assert session.scalars(select(AgentReportDropsRow.agent_id)).all() == []
    assert agents.forget(ctx, "a1", cutoff, "again") is None  # already gone
    assert agents.forget(ctx, "b2", cutoff, "connected") is None  # never while connected
