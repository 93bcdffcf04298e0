"""The control plane's AgentHub over real gRPC: the test speaks the agent protocol itself.

A real control plane (fast heartbeats) on loopback; each test opens its own Connect stream and
checks what the control plane sends and records: snapshots, pushes, ACK/NACK bookkeeping,
WaitForSync, ListAgents, loss detection and artifact downloads.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from controlplane.config import AgentsConfig, Config
from core.client import ClientError, SluiceClient
from protos import agent_pb2, agent_pb2_grpc, common_pb2, controlplane_pb2
from tests.harness import ServerThread, start_server, unique
from tests.models import make_baseline, make_classifier_onnx
from tests.timing import scaled

HEARTBEAT = 0.3
MISSED = 2

pytestmark = pytest.mark.xdist_group("agent-hub")


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    config = Config(agents=AgentsConfig(heartbeat_seconds=HEARTBEAT, lost_after_missed=MISSED))
    server = start_server(tmp_path_factory.mktemp("hub"), config=config)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cp(hub_server: ServerThread) -> Iterator[SluiceClient]:
    with SluiceClient(hub_server.address, token="") as client:
        yield client


class ProtocolAgent:
    """One Connect stream driven by the test: send AgentMessages, read ControlMessages."""

    def __init__(self, address: str, name: str, hello: dict[str, Any] | None = None, heartbeats: bool = True) -> None:
        self.id = uuid.uuid4().hex
        self.name = name
        self.channel = grpc.insecure_channel(address)
        self.stub = agent_pb2_grpc.AgentHubStub(self.channel)
        self._up: queue.Queue[agent_pb2.AgentMessage | None] = queue.Queue()
        self.received: queue.Queue[agent_pb2.ControlMessage | BaseException] = queue.Queue()
        fields = {"agent_id": self.id, "name": name, "host": "test-host", "address": "127.0.0.1:1"}
        fields.update(hello or {})
        self.send(agent_pb2.AgentMessage(hello=agent_pb2.Hello(**fields)))
        self.call = self.stub.Connect(iter(self._up.get, None))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._closed = threading.Event()
        if heartbeats:
            threading.Thread(target=self._beat, daemon=True).start()

    def _beat(self) -> None:
        while not self._closed.wait(HEARTBEAT / 3):
            self.send(agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat()))

    def _read(self) -> None:
        try:
            for message in self.call:
                self.received.put(message)
        except grpc.RpcError as exc:
            self.received.put(exc)

    def send(self, message: agent_pb2.AgentMessage) -> None:
        self._up.put(message)

    def next(self, kind: str, timeout: float = 15.0) -> Any:
        timeout = scaled(timeout)
        """The next message of this kind (others, e.g. heartbeats, are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.received.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(item, BaseException):
                raise item
            if item.WhichOneof("body") == kind:
                return getattr(item, kind)

    def snapshot_with(self, deployment: str, generation: int) -> agent_pb2.Snapshot:
        while True:
            snapshot = self.next("snapshot")
            for d in snapshot.deployments:
                if d.name == deployment and d.generation >= generation:
                    return snapshot

    def ack(self, snapshot: agent_pb2.Snapshot) -> None:
        generations = {d.name: d.generation for d in snapshot.deployments}
        self.send(
            agent_pb2.AgentMessage(ack=agent_pb2.SnapshotAck(snapshot_id=snapshot.snapshot_id, generations=generations))
        )

    def close(self) -> None:
        self._closed.set()
        self._up.put(None)
        self.call.cancel()
        self.channel.close()


@pytest.fixture
def connect(hub_server: ServerThread) -> Iterator[Any]:
    opened: list[ProtocolAgent] = []

    def open_agent(name: str | None = None, heartbeats: bool = True, **hello: Any) -> ProtocolAgent:
        agent = ProtocolAgent(hub_server.address, name or unique("agent"), hello, heartbeats)
        opened.append(agent)
        return agent

    yield open_agent
    for agent in opened:
        agent.close()


def agent_info(cp: SluiceClient, agent_id: str) -> Any:
    return next(a for a in cp.agents() if a.id == agent_id)


def wait_until(predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def versions(hub_server: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    models = tmp_path_factory.mktemp("hub-models")
    model = unique("m")
    with SluiceClient(hub_server.address, token="") as client:
        v1 = client.register_version(model, "v1", make_classifier_onnx(models), make_baseline(models))
        client.register_version(model, "v2", make_classifier_onnx(models, "gbm"))
    return model, v1.sha256, str(models)


def test_connect_gets_a_full_snapshot_and_pushes_after_each_change(
    cp: SluiceClient, connect: Any, versions: tuple[str, str, str]
) -> None:
    model, v1_sha, _ = versions
    dep = unique("d")
    cp.deploy(dep, f"{model}:v1")
    agent = connect(labels={"zone": "a"})
    ack = agent.next("hello_ack")
    assert ack.heartbeat_seconds == HEARTBEAT and ack.report_seconds > 0
    snapshot = agent.snapshot_with(dep, 1)
    mine = next(d for d in snapshot.deployments if d.name == dep)
    assert [r.version.version for r in mine.routes] == ["v1"]
    route = mine.routes[0]
    assert route.sha256 == v1_sha and route.weight == 100 and route.role == common_pb2.ROLE_CHAMPION
    assert route.task == "classifier" and route.baseline.n_rows > 0
    assert mine.salt

    cp.set_traffic(dep, {f"{model}:v1": 90, f"{model}:v2": 10})
    pushed = agent.snapshot_with(dep, 2)
    mine = next(d for d in pushed.deployments if d.name == dep)
    assert pushed.snapshot_id > snapshot.snapshot_id
    # Newest first: the routing order of the cumulative bucket ranges.
    assert [(r.version.version, r.weight, r.role) for r in mine.routes] == [
        ("v2", 10, common_pb2.ROLE_CHALLENGER),
        ("v1", 90, common_pb2.ROLE_CHAMPION),
    ]

    info = agent_info(cp, agent.id)
    assert info.state == "connected" and info.labels == {"zone": "a"} and info.host == "test-host"


def test_acks_make_agents_in_sync_and_wait_for_sync_names_laggards(
    cp: SluiceClient, connect: Any, versions: tuple[str, str, str]
) -> None:
    model = versions[0]
    dep = unique("d")
    cp.deploy(dep, f"{model}:v1")
    fast, slow = connect(unique("fast")), connect(unique("slow"))
    for agent in (fast, slow):
        agent.ack(agent.snapshot_with(dep, 1))
    assert cp.wait_for_sync(dep, timeout=10).in_sync

    deployment = cp.set_traffic(dep, {f"{model}:v1": 50, f"{model}:v2": 50})
    fast.ack(fast.snapshot_with(dep, deployment.generation))
    pending = slow.snapshot_with(dep, deployment.generation)  # received, not applied yet
    result = cp.wait_for_sync(dep, deployment.generation, timeout=0.5)
    assert not result.in_sync
    assert fast.name in result.synced_agents
    assert [name.split(" ")[0] for name in result.lagging_agents] == [slow.name]
    info = agent_info(cp, slow.id)
    sync = next(d for d in info.deployments if d.deployment == dep)
    assert (sync.applied_generation, sync.desired_generation, sync.in_sync) == (1, 2, False)

    # WaitForSync returns as soon as the last agent ACKs (it does not sleep out its timeout).
    waiter: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: waiter.update(r=cp.wait_for_sync(dep, 0, timeout=60)))
    thread.start()
    time.sleep(0.3)
    slow.ack(pending)
    thread.join(30)
    assert waiter["r"].in_sync and waiter["r"].generation == deployment.generation
    info = agent_info(cp, slow.id)
    assert next(d for d in info.deployments if d.deployment == dep).in_sync


def test_nack_is_recorded_with_its_reason(cp: SluiceClient, connect: Any, versions: tuple[str, str, str]) -> None:
    model = versions[0]
    dep = unique("d")
    cp.deploy(dep, f"{model}:v1")
    agent = connect()
    snapshot = agent.snapshot_with(dep, 1)
    agent.send(
        agent_pb2.AgentMessage(
            nack=agent_pb2.SnapshotNack(
                snapshot_id=snapshot.snapshot_id, reason="sha256 mismatch on purpose", generations={dep: 0}
            )
        )
    )
    info = wait_until(lambda: (a := agent_info(cp, agent.id)).last_nack and a)
    assert "sha256 mismatch on purpose" in info.last_nack
    assert not next(d for d in info.deployments if d.deployment == dep).in_sync


def test_wait_for_sync_ends_at_a_refusal_and_forgets_it_once_applied(
    cp: SluiceClient, connect: Any, versions: tuple[str, str, str]
) -> None:
    model = versions[0]
    dep = unique("d")
    cp.deploy(dep, f"{model}:v1")
    good, bad = connect(unique("good")), connect(unique("bad"))
    for agent in (good, bad):
        agent.ack(agent.snapshot_with(dep, 1))
    changed = cp.set_traffic(dep, {f"{model}:v1": 50, f"{model}:v2": 50})
    good.ack(good.snapshot_with(dep, changed.generation))
    refused = bad.snapshot_with(dep, changed.generation)
    bad.send(
        agent_pb2.AgentMessage(
            nack=agent_pb2.SnapshotNack(snapshot_id=refused.snapshot_id, reason="cannot open v2", generations={dep: 1})
        )
    )
    # Nobody left to wait for: the answer comes at the refusal, long before the 120 s timeout.
    waiter: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: waiter.update(r=cp.wait_for_sync(dep, changed.generation, timeout=120)))
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "WaitForSync waited out its timeout although the agent had refused"
    result = waiter["r"]
    assert not result.in_sync and list(result.refused_agents) == [bad.name]
    assert result.synced_agents == [good.name] and "refused: cannot open v2" in result.lagging_agents[0]

    # An agent that is only slow is waited for: its refusal of an older generation does not count.
    again = cp.set_traffic(dep, {f"{model}:v1": 60, f"{model}:v2": 40})
    good.ack(good.snapshot_with(dep, again.generation))
    pending = bad.snapshot_with(dep, again.generation)
    slow = cp.wait_for_sync(dep, again.generation, timeout=0.5)
    assert not slow.in_sync and not slow.refused_agents
    bad.ack(pending)
    assert cp.wait_for_sync(dep, again.generation, timeout=30).in_sync
    assert agent_info(cp, bad.id).last_nack == ""  # applied since: the refusal is history


def test_a_second_agent_under_a_connected_name_is_refused(cp: SluiceClient, connect: Any) -> None:
    first = connect(unique("twin"))
    first.next("hello_ack")
    second = connect(first.name)  # another id, the same name
    with pytest.raises(grpc.RpcError) as refused:
        second.next("hello_ack")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"an agent named {first.name!r} is already connected" in (refused.value.details() or "")
    assert [a.id for a in cp.agents() if a.name == first.name] == [first.id]
    # Its id under another name cannot replace its live stream either (issue 13): refused, and
    # the first agent's stream stays up (its record keeps its name).
    renamed = connect(unique("renamed"), agent_id=first.id)
    with pytest.raises(grpc.RpcError) as refused:
        renamed.next("hello_ack")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"agent id {first.id} is connected as {first.name!r}" in (refused.value.details() or "")
    while not first.received.empty():  # what came before the refusal
        first.received.get_nowait()
    assert first.next("heartbeat").at.seconds > 0  # a beat sent since: its stream is up
    assert agent_info(cp, first.id).name == first.name
    # The same agent (same id) reconnecting is not a twin: its new stream replaces the old one.
    again = connect(first.name, agent_id=first.id)
    again.next("hello_ack")


def test_a_silent_agent_is_marked_lost_and_comes_back(cp: SluiceClient, connect: Any, hub_server: ServerThread) -> None:
    agent = connect(heartbeats=False)
    agent.next("hello_ack")
    assert agent_info(cp, agent.id).state == "connected"
    # No heartbeats from the agent: after MISSED heartbeats the control plane gives up on it.
    wait_until(lambda: agent_info(cp, agent.id).state == "lost", timeout=10 * HEARTBEAT * MISSED + 10)
    lost = wait_until(lambda: [a for a in cp.alerts() if a.kind == "agent_lost" and agent.name in a.message])
    assert lost[0].state == controlplane_pb2.ALERT_OPEN
    again = connect(agent.name, agent_id=agent.id)
    again.next("hello_ack")
    assert agent_info(cp, agent.id).state == "connected"
    # It came back: the alert resolves.
    assert not [a for a in cp.alerts() if a.kind == "agent_lost" and agent.name in a.message]
    resolved = [a for a in cp.alerts(include_resolved=True) if a.id == lost[0].id]
    assert resolved[0].state == controlplane_pb2.ALERT_RESOLVED


def test_heartbeats_keep_an_agent_connected(cp: SluiceClient, connect: Any) -> None:
    agent = connect()
    agent.next("hello_ack")
    assert agent.next("heartbeat").at.seconds > 0  # the control plane beats too
    time.sleep(HEARTBEAT * MISSED * 4)
    assert agent_info(cp, agent.id).state == "connected"
    agent.close()
    wait_until(lambda: agent_info(cp, agent.id).state in ("disconnected", "lost"))


def test_fetch_artifact_streams_verified_bytes(hub_server: ServerThread, versions: tuple[str, str, str]) -> None:
    _model, sha, models = versions
    with grpc.insecure_channel(hub_server.address) as channel:
        stub = agent_pb2_grpc.AgentHubStub(channel)
        chunks = list(stub.FetchArtifact(agent_pb2.FetchArtifactRequest(sha256=sha)))
        data = b"".join(c.data for c in chunks)
        assert hashlib.sha256(data).hexdigest() == sha
        assert chunks[0].total_size == len(data) and chunks[0].offset == 0
        assert data == (Path(models) / "classifier-logreg-0.onnx").read_bytes()
        tail = list(stub.FetchArtifact(agent_pb2.FetchArtifactRequest(sha256=sha, offset=100)))
        assert b"".join(c.data for c in tail) == data[100:]

        cases = [
            ("not-a-sha", 0, grpc.StatusCode.INVALID_ARGUMENT, "is not a sha256"),
            ("0" * 64, 0, grpc.StatusCode.NOT_FOUND, "no artifact"),
            (sha, len(data) + 1, grpc.StatusCode.INVALID_ARGUMENT, "past the end"),
        ]
        for bad, offset, code, text in cases:
            with pytest.raises(grpc.RpcError) as info:
                list(stub.FetchArtifact(agent_pb2.FetchArtifactRequest(sha256=bad, offset=offset)))
            assert info.value.code() == code and text in info.value.details()


def test_bad_streams_and_requests_are_refused(
    cp: SluiceClient, hub_server: ServerThread, versions: tuple[str, str, str]
) -> None:
    with grpc.insecure_channel(hub_server.address) as channel:
        stub = agent_pb2_grpc.AgentHubStub(channel)
        heartbeat_first = [agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat())]
        with pytest.raises(grpc.RpcError) as info:
            list(stub.Connect(iter(heartbeat_first)))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "first message" in info.value.details()
        bad_id = [agent_pb2.AgentMessage(hello=agent_pb2.Hello(agent_id="a/b", name="x"))]
        with pytest.raises(grpc.RpcError) as info:
            list(stub.Connect(iter(bad_id)))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "agent_id" in info.value.details()
    before = len(cp.agents())
    assert len(cp.agents()) == before  # nothing was recorded for the refused streams

    with pytest.raises(ClientError) as err:
        cp.wait_for_sync(unique("missing"), timeout=1)
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    dep = unique("d")
    cp.deploy(dep, f"{versions[0]}:v1")
    with pytest.raises(ClientError) as err:
        cp.wait_for_sync(dep, generation=99, timeout=1)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "does not exist yet" in err.value.message
    with pytest.raises(ClientError) as err:
        cp.wait_for_sync(dep, timeout=-1)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_metric_reports_are_stored_then_acknowledged_and_replays_are_harmless(
    cp: SluiceClient, connect: Any, versions: tuple[str, str, str], hub_server: ServerThread
) -> None:
    from sqlalchemy import func, select

    from controlplane.store.models import MetricReceiptRow, MetricWindowRow

    model = versions[0]
    dep = unique("d")
    cp.deploy(dep, f"{model}:v1")
    agent = connect()
    agent.next("hello_ack")
    window = agent_pb2.VersionWindow(
        deployment=dep,
        version=common_pb2.VersionRef(model=model, version="v1"),
        role=common_pb2.ROLE_CHAMPION,
        requests=7,
        rows=7,
    )
    report = agent_pb2.MetricReport(agent_id=agent.id, seq=41, window_seconds=1.0, windows=[window])
    report.window_start.GetCurrentTime()
    for _ in range(2):  # the second is a replay (e.g. after a reconnect): acknowledged, not counted
        agent.send(agent_pb2.AgentMessage(report=report))
        assert agent.next("report_ack").seq == 41

    def stored(model_: Any, *where: Any) -> int:
        with hub_server.ctx.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(model_).where(*where)) or 0)

    assert stored(MetricReceiptRow, MetricReceiptRow.agent_id == agent.id) == 1
    assert stored(MetricWindowRow, MetricWindowRow.deployment == dep) == 1


def test_only_agent_tokens_may_connect(tmp_path: Path) -> None:
    from controlplane.config import TokenConfig

    config = Config(
        tokens=[
            TokenConfig(name="edge", role="agent", token="agent-secret"),
            TokenConfig(name="eve", role="viewer", token="viewer-secret"),
        ]
    )
    server = start_server(tmp_path, config=config)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = agent_pb2_grpc.AgentHubStub(channel)
            hello = agent_pb2.AgentMessage(hello=agent_pb2.Hello(agent_id="a1", name="edge-1"))
            for token, code in (
                ("viewer-secret", grpc.StatusCode.PERMISSION_DENIED),
                ("", grpc.StatusCode.UNAUTHENTICATED),
            ):
                metadata = [("authorization", f"Bearer {token}")] if token else []
                with pytest.raises(grpc.RpcError) as info:
                    next(iter(stub.Connect(iter([hello]), metadata=metadata, timeout=10)))
                assert info.value.code() == code
            call = stub.Connect(iter([hello]), metadata=[("authorization", "Bearer agent-secret")], timeout=10)
            assert next(iter(call)).WhichOneof("body") == "hello_ack"
            call.cancel()
    finally:
        server.stop()
