"""An agent token cannot take over another agent (issue 13, item 2), against a real control plane.

The review's attack: a viewer reads an agent's id from ListAgents; with an agent token one stream
says Hello with that id under another name (the real stream was closed), another takes the real
name (the real agent was then refused on every retry), and after a deploy WaitForSync answered
"in sync" because the impostor ACKed while the real agent served the old version. Here the
attacker's script runs over real Connect streams with a token (or, under mutual TLS, a client
certificate) of its own; the agent it attacks is a scripted, well-behaved agent with another one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from controlplane.config import AgentsConfig, Config, TlsConfig, TokenConfig, token_digest
from controlplane.store.models import AgentRow
from core.client import SluiceClient
from tests.harness import OPENSSL, Pki, ServerThread, start_server, unique
from tests.models import fixture_classifier, make_baseline
from tests.security.scripted_agent import ScriptedAgent

pytestmark = pytest.mark.xdist_group("agent-identity")

TOKENS = {"eve": ("viewer", "viewer-secret"), "ops": ("operator", "ops-secret")}
AGENT_TOKENS = {"edge-a": "agent-a-secret", "edge-b": "agent-b-secret"}
BEAT = 0.1  # the scripted agents' heartbeats: well within the control plane's 0.5 s x 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[ServerThread]:
    root = tmp_path_factory.mktemp("identity")
    tokens = [TokenConfig(name=n, role=role, sha256=token_digest(t)) for n, (role, t) in TOKENS.items()]
    tokens += [TokenConfig(name=n, role="agent", sha256=token_digest(t)) for n, t in AGENT_TOKENS.items()]
    cp = start_server(root, config=Config(tokens=tokens, agents=AgentsConfig(heartbeat_seconds=0.5)))
    with SluiceClient(cp.address, token=TOKENS["ops"][1]) as ops:
        ops.register_version("cancer", "v1", fixture_classifier("logreg"), make_baseline(models_dir))
        ops.register_version("cancer", "v2", fixture_classifier("constant"))
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def streams() -> Iterator[list[ScriptedAgent]]:
    opened: list[ScriptedAgent] = []
    yield opened
    for stream in opened:
        stream.close()


def refused(stream: ScriptedAgent, code: grpc.StatusCode, *fragments: str) -> None:
    error = stream.refusal()
    assert error.code() == code, error
    for fragment in fragments:
        assert fragment in (error.details() or ""), error.details()


def rows_named(server: ServerThread, *names: str) -> list[tuple[str, str, str]]:
    with server.ctx.db.session() as session:
        rows = session.execute(
            select(AgentRow.id, AgentRow.name, AgentRow.owner_token).where(AgentRow.name.in_(names))
        ).all()
        return sorted((r.id, r.name, r.owner_token) for r in rows)


def test_an_agent_token_can_neither_take_over_nor_lock_out_another_agent_and_wait_for_sync_tells_the_truth(
    server: ServerThread, streams: list[ScriptedAgent]
) -> None:
    def connect(token: str, **hello: Any) -> ScriptedAgent:
        stream = ScriptedAgent(server.address, token=AGENT_TOKENS[token], heartbeat=BEAT, **hello)
        streams.append(stream)
        return stream

    dep = unique("web")
    with SluiceClient(server.address, token=TOKENS["ops"][1]) as ops:
        ops.deploy(dep, "cancer:v1")
        real = connect("edge-a", name=unique("real"))
        real.ack(real.snapshot_with(dep, 1))
        with SluiceClient(server.address, token=TOKENS["eve"][1]) as viewer:  # a viewer reads the id
            listed = next(a for a in viewer.agents() if a.name == real.name)
        assert listed.id == real.id

        # The real agent's id under another name, with another agent's token: refused, and the
        # real stream is not closed. Its name under a fresh id: refused. Both at once: refused.
        impostor = unique("impostor")
        denied = grpc.StatusCode.PERMISSION_DENIED
        refused(connect("edge-b", agent_id=real.id, name=impostor), denied, f"agent id {real.id} is registered to")
        refused(connect("edge-b", name=real.name), denied, f"the agent name {real.name!r} is registered to")
        refused(connect("edge-b", agent_id=real.id, name=real.name), denied)
        assert rows_named(server, real.name, impostor) == [(real.id, real.name, "edge-a")]

        # The real agent is still connected: it gets the next change pushed on its own stream, and
        # WaitForSync tells the truth while it has not applied it, then once it has.
        changed = ops.set_traffic(dep, {"cancer:v1": 50, "cancer:v2": 50})
        pushed = real.snapshot_with(dep, changed.generation)
        behind = ops.wait_for_sync(dep, changed.generation, timeout=0.5)
        assert not behind.in_sync and list(behind.synced_agents) == []
        assert [line.split(" ")[0] for line in behind.lagging_agents] == [real.name]
        real.ack(pushed)
        synced = ops.wait_for_sync(dep, changed.generation, timeout=20)
        assert synced.in_sync and list(synced.synced_agents) == [real.name]

        # The binding outlives the stream: with the real agent gone, its id and name stay its own,
        # and it comes back (same id, name and token) without a hitch.
        real.close()
        refused(connect("edge-b", agent_id=real.id, name=real.name), denied)
        back = connect("edge-a", agent_id=real.id, name=real.name)
        back.next("hello_ack")
        [info] = [a for a in ops.agents() if a.name == real.name]
        assert (info.id, info.state) == (real.id, "connected")


@pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed: cannot make test certificates")
def test_under_mutual_tls_the_client_certificate_binds_the_agent(tmp_path: Path) -> None:
    """Without tokens, the client certificate's common name is the credential."""
    pki = Pki(tmp_path / "pki")
    own, agent_a, agent_b = pki.issue("controlplane"), pki.issue("agent-a"), pki.issue("agent-b")
    tls = TlsConfig(cert_file=str(own.cert), key_file=str(own.key), client_ca_file=str(pki.ca.cert))
    server = start_server(tmp_path, config=Config(tls=tls, agents=AgentsConfig(heartbeat_seconds=0.5)))
    opened: list[ScriptedAgent] = []

    def connect(cert: Any, **hello: Any) -> ScriptedAgent:
        credentials = grpc.ssl_channel_credentials(
            pki.ca.cert.read_bytes(), cert.key.read_bytes(), cert.cert.read_bytes()
        )
        stream = ScriptedAgent(server.address, credentials=credentials, heartbeat=BEAT, **hello)
        opened.append(stream)
        return stream

    try:
        real = connect(agent_a, name="alpha")
        real.next("hello_ack")
        refused(connect(agent_b, agent_id=real.id, name="mallory"), grpc.StatusCode.PERMISSION_DENIED, "agent id")
        refused(connect(agent_b, name="alpha"), grpc.StatusCode.PERMISSION_DENIED, "the agent name 'alpha'")
        with server.ctx.db.session() as session:
            row = session.get(AgentRow, real.id)
            assert row is not None and (row.name, row.owner_certificate, row.owner_token) == ("alpha", "agent-a", "")
        # The same agent reconnecting (same certificate, id and name) replaces its own stream.
        again = connect(agent_a, agent_id=real.id, name="alpha")
        again.next("hello_ack")
        assert isinstance(real.ended(), EOFError)  # its old stream, closed by the control plane
    finally:
        for stream in opened:
            stream.close()
        server.stop()
