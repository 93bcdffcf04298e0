"""Agent records stay bounded whatever agent tokens say (issue 13, item 5), on a real control plane.

The review's attack: 600 Hellos with fresh ids, 64 labels and 2,000 invented
`applied_generations` each made 1,176,000 rows, 558 `agent_lost` alerts and a 120 MB database,
and ListAgents failed for good (19.9 MB > 16 MiB). Here the same script runs over real Connect
streams against a control plane with small limits, and shows each bound: labels, agents per
credential, only known deployments stored, agents gone long forgotten with their alerts resolved,
and ListAgents / ListAlerts answered a page at a time (`sluice agents`, `sluice alerts` as real
processes page through all of it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from controlplane.agenthub.agent_input import MAX_LABEL_VALUE, MAX_LABELS
from controlplane.config import AgentsConfig, Config, LimitsConfig, TokenConfig, token_digest
from controlplane.store.models import AgentDeploymentRow, AgentRow, AlertRow, utcnow
from core.client import SluiceClient
from protos import agent_pb2, controlplane_pb2, controlplane_pb2_grpc
from tests.harness import ServerThread, run_cli, start_server, unique
from tests.models import fixture_classifier, make_baseline
from tests.security.scripted_agent import ScriptedAgent
from tests.timing import scaled

pytestmark = pytest.mark.xdist_group("agent-records")

OPS = "ops-secret"
AGENT_TOKENS = {"edge-a": "agent-a-secret", "edge-b": "agent-b-secret"}
CAP = 4  # limits.max_agents_per_credential
FORGET = 1.0  # agents.forget_after_seconds
BEAT = 0.1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[ServerThread]:
    tokens = [TokenConfig(name="ops", role="operator", sha256=token_digest(OPS))]
    tokens += [TokenConfig(name=n, role="agent", sha256=token_digest(t)) for n, t in AGENT_TOKENS.items()]
    config = Config(
        tokens=tokens,
        limits=LimitsConfig(max_agents_per_credential=CAP),
        agents=AgentsConfig(heartbeat_seconds=0.2, lost_after_missed=2, forget_after_seconds=FORGET),
    )
    cp = start_server(tmp_path_factory.mktemp("records"), config=config)
    with SluiceClient(cp.address, token=OPS) as ops:
        ops.register_version("cancer", "v1", fixture_classifier("logreg"), make_baseline(models_dir))
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def connect(server: ServerThread) -> Iterator[Callable[..., ScriptedAgent]]:
    opened: list[ScriptedAgent] = []

    def open_stream(token: str, **hello: Any) -> ScriptedAgent:
        stream = ScriptedAgent(server.address, token=AGENT_TOKENS[token], heartbeat=BEAT, **hello)
        opened.append(stream)
        return stream

    yield open_stream
    for stream in opened:
        stream.close()


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def count(server: ServerThread, model: Any, *where: Any) -> int:
    with server.ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def labels(n: int, size: int) -> dict[str, str]:
    return {f"k{i:02d}": "v" * size for i in range(n)}


def test_hellos_with_fresh_ids_and_big_labels_are_bounded_per_credential(
    server: ServerThread, connect: Callable[..., ScriptedAgent]
) -> None:
    # The review's labels (64 of them, 256 characters each) are refused, naming the limit.
    error = connect("edge-a", labels=labels(64, 256)).refusal()
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and f"at most {MAX_LABELS} labels" in error.details()
    error = connect("edge-a", labels=labels(MAX_LABELS, MAX_LABEL_VALUE)).refusal()  # 32 x 255: too much together
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "characters together" in error.details()

    # Fresh ids: CAP records for this credential, then RESOURCE_EXHAUSTED naming the limit.
    held = [connect("edge-a", labels=labels(16, 200)) for _ in range(CAP)]
    for stream in held:
        stream.next("hello_ack")
    for _ in range(3):
        error = connect("edge-a").refusal()
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"token edge-a already has {CAP} agent records" in error.details()
        assert "limits.max_agents_per_credential" in error.details()
    assert count(server, AgentRow, AgentRow.owner_token == "edge-a") == CAP
    # A known agent reconnecting is no new record; another credential has a place of its own.
    again = connect("edge-a", agent_id=held[0].id, name=held[0].name)
    again.next("hello_ack")
    connect("edge-b").next("hello_ack")


def test_only_deployments_that_exist_are_stored_from_hellos_and_acks(
    server: ServerThread, connect: Callable[..., ScriptedAgent]
) -> None:
    dep = unique("web")
    with SluiceClient(server.address, token=OPS) as ops:
        ops.deploy(dep, "cancer:v1")
    invented = {f"ghost-{i}": 7 for i in range(2000)}
    stream = connect("edge-b", applied_generations={dep: 1, **invented})
    stream.ack(stream.snapshot_with(dep, 1), **invented)
    stream.send(agent_pb2.AgentMessage(nack=agent_pb2.SnapshotNack(snapshot_id=1, reason="x", generations=invented)))
    stream.send(agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat()))
    with SluiceClient(server.address, token=OPS) as ops:
        wait_until(lambda: ops.wait_for_sync(dep, timeout=5).in_sync, "the ACK")
    # Other tests' deployments on this module's server are in the snapshot it ACKed, so they may be
    # stored too (real ones): what matters is that its own is, and not one invented name.
    with server.ctx.db.session() as session:
        stored = set(
            session.scalars(select(AgentDeploymentRow.deployment).where(AgentDeploymentRow.agent_id == stream.id))
        )
    assert dep in stored and not stored & invented.keys(), sorted(stored)[:5]


def test_agents_gone_long_are_forgotten_and_their_alerts_resolve(
    server: ServerThread, connect: Callable[..., ScriptedAgent]
) -> None:
    dep = unique("web")
    with SluiceClient(server.address, token=OPS) as ops:
        ops.deploy(dep, "cancer:v1")
        gone = connect("edge-b")
        gone.ack(gone.snapshot_with(dep, 1))
        wait_until(lambda: count(server, AgentDeploymentRow, AgentDeploymentRow.agent_id == gone.id), "the ACK")
        gone.close()  # no Goodbye: it is lost, and an alert opens
        lost = wait_until(
            lambda: [a for a in ops.alerts() if a.kind == "agent_lost" and gone.name in a.message], "agent_lost"
        )
        # FORGET seconds later the record goes, with what it applied, and the alert resolves.
        wait_until(lambda: not count(server, AgentRow, AgentRow.id == gone.id), "the agent to be forgotten")
        assert count(server, AgentDeploymentRow, AgentDeploymentRow.agent_id == gone.id) == 0
        [alert] = [a for a in ops.alerts(include_resolved=True) if a.id == lost[0].id]
        assert alert.state == controlplane_pb2.ALERT_RESOLVED and "agents.forget_after_seconds" in alert.message
        assert gone.id not in {a.id for a in ops.agents()}


def test_list_agents_and_alerts_answer_a_page_at_a_time_and_the_cli_pages_through(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        now = utcnow()
        agent = {"host": "h", "address": "a", "state": "disconnected", "last_seen": now, "connected_at": now}
        alert = {"deployment": "web", "kind": "probe", "severity": "warning", "state": "open", "updated_at": now}
        with server.ctx.db.session() as session:
            # Names repeat (two agents per name for the first 150): the order goes on by id. The
            # first page's agents carry 16 labels of 240 characters.
            session.add_all(
                AgentRow(
                    id=f"id-{i:04d}",
                    name=f"agent-{i % 300:03d}",
                    labels=labels(16, 240) if i % 300 < 100 else {},
                    last_nack="",
                    **agent,
                )
                for i in range(450)
            )
            session.add_all(
                AlertRow(message=f"probe {i}", opened_at=now - timedelta(seconds=i), **alert) for i in range(1200)
            )
        with grpc.insecure_channel(server.address) as channel:
            stub = controlplane_pb2_grpc.ControlPlaneStub(channel)
            pages, token = [], ""
            while True:
                page = stub.ListAgents(controlplane_pb2.ListAgentsRequest(page_token=token), timeout=30)
                pages.append(page)
                token = page.next_page_token
                if not token:
                    break
            assert [len(p.agents) for p in pages] == [200, 200, 50]
            # A page is far below the message limit whatever its agents' labels: 200 of 16 x 240 here.
            assert pages[0].ByteSize() > 200 * 16 * 240 and max(p.ByteSize() for p in pages) < 2 << 20
            listed = [(a.name, a.id) for p in pages for a in p.agents]
            assert listed == sorted(listed) and len(set(listed)) == 450
            assert len(stub.ListAgents(controlplane_pb2.ListAgentsRequest(page_size=7), timeout=30).agents) == 7
            assert len(stub.ListAgents(controlplane_pb2.ListAgentsRequest(page_size=10**6), timeout=30).agents) == 200
            first = stub.ListAlerts(controlplane_pb2.ListAlertsRequest(), timeout=30)
            assert len(first.alerts) == 500 and first.next_page_token
            for bad in ("not-a-token", first.next_page_token):  # garbage; the other list's token
                with pytest.raises(grpc.RpcError) as refused:
                    stub.ListAgents(controlplane_pb2.ListAgentsRequest(page_token=bad), timeout=30)
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "page_token is not one of ListAgents" in (refused.value.details() or "")

        agents = run_cli("agents", "--json", address=server.address)
        assert agents.returncode == 0, agents.stderr
        assert len({a["id"] for a in json.loads(agents.stdout)}) == 450
        alerts = run_cli("alerts", "--json", address=server.address)
        assert alerts.returncode == 0, alerts.stderr
        ids = [a["id"] for a in json.loads(alerts.stdout)]
        assert len(ids) == 1200 and ids == sorted(ids, reverse=True)
    finally:
        server.stop()
