"""Control-loop correctness: regressions of defects an outside review reproduced (issue 11).

Each test drives a real control plane (in this process, on loopback, with a real SQLite store)
and, where agents matter, real `sluice agent` processes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.agenthub import hub as hub_module
from controlplane.config import AgentsConfig, Config
from core.client import SluiceClient
from core.errors import Unavailable
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import ServerThread, start_server, unique
from tests.models import make_baseline, make_classifier_onnx

pytestmark = [pytest.mark.slow]


class FailingBuilds:
    """Wraps `build_snapshot`: the next `failures` builds raise Unavailable (a busy or lost store)."""

    def __init__(self, build: Callable[..., Any]) -> None:
        self.build = build
        self.failures = 0
        self.failed = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self.failures > 0:
                self.failures -= 1
                self.failed += 1
                raise Unavailable("the database is unavailable: injected by the test")
        return self.build(*args, **kwargs)


@pytest.fixture
def failing_builds(monkeypatch: pytest.MonkeyPatch) -> FailingBuilds:
    wrapper = FailingBuilds(hub_module.build_snapshot)
    monkeypatch.setattr(hub_module, "build_snapshot", wrapper)
    return wrapper


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    started = start_server(tmp_path / "cp", config=Config(agents=AgentsConfig(heartbeat_seconds=0.5)))
    yield started
    started.stop()


def applied_generation(client: SluiceClient, agent: str, deployment: str) -> int:
    for status in client.agents():
        if status.name == agent:
            for d in status.deployments:
                if d.deployment == deployment:
                    return int(d.applied_generation)
    return 0


def test_a_failed_snapshot_rebuild_is_retried_until_the_change_reaches_every_agent(
    server: ServerThread, failing_builds: FailingBuilds, tmp_path: Path, models_dir: Path
) -> None:
    model, dep = unique("m"), unique("web")
    agents: list[AgentProcess] = []
    try:
        with SluiceClient(server.address, token="") as client:
            client.register_version(model, "v1", make_classifier_onnx(models_dir), make_baseline(models_dir))
            client.register_version(model, "v2", make_classifier_onnx(models_dir, "constant"))
            first = client.deploy(dep, f"{model}:v1").generation
            agents.append(AgentProcess(server.address, "first", tmp_path / "a1", tmp_path / "a1.log"))
            wait_for_agents(client, dep, ["first"], timeout=60)  # WaitForSync alone: vacuous before a connect
            assert client.wait_for_sync(dep, first, timeout=60).in_sync

            # The rebuild after this commit fails: the change must still reach the agent.
            failing_builds.failures = 1
            second = client.set_traffic(dep, {f"{model}:v1": 50, f"{model}:v2": 50}).generation
            assert client.wait_for_sync(dep, second, timeout=30).in_sync
            assert failing_builds.failed == 1

            # Two more failures, then an agent connects: it must be handed the newest commit
            # (refused while the store cannot build it), never the stale snapshot.
            failing_builds.failures = 2
            third = client.deploy(dep, f"{model}:v2").generation
            agents.append(AgentProcess(server.address, "second", tmp_path / "a2", tmp_path / "a2.log"))
            wait_until(lambda: applied_generation(client, "second", dep) == third, 30, "the new agent at generation 3")
            assert client.wait_for_sync(dep, third, timeout=30).in_sync
            assert failing_builds.failed == 3
            # The new agent never applied the stale generation ("applied snapshot N: DEP@GEN").
            log = (tmp_path / "a2.log").read_text()
            assert f"{dep}@{third}" in log and f"{dep}@{second}" not in log
    finally:
        for agent in agents:
            agent.stop()


def test_agents_echo_the_content_digest_they_serve(server: ServerThread, tmp_path: Path, models_dir: Path) -> None:
    """Sync is judged by content, not by generation number alone (a restored store repeats
    numbers): a real agent echoes each deployment's digest in its ACK and in its next Hello."""
    from controlplane.agenthub import fleet

    model, dep = unique("m"), unique("web")
    agent = AgentProcess(server.address, "echo", tmp_path / "a", tmp_path / "a.log")
    try:
        with SluiceClient(server.address, token="") as client:
            client.register_version(model, "v1", make_classifier_onnx(models_dir), make_baseline(models_dir))
            generation = client.deploy(dep, f"{model}:v1").generation
            wait_for_agents(client, dep, ["echo"], timeout=60)  # WaitForSync alone: vacuous before a connect
            assert client.wait_for_sync(dep, generation, timeout=60).in_sync

        def mine() -> fleet.DeploymentSync:
            (status,) = [a for a in fleet.list_agents(server.ctx) if a.name == "echo"]
            (sync,) = [d for d in status.deployments if d.deployment == dep]
            return sync

        sync = mine()
        assert len(sync.desired_digest) == 64 and sync.applied_digest == sync.desired_digest and sync.in_sync
        agent.restart()  # the Hello of the new run carries the digest of what its cache serves
        wait_until(lambda: mine().applied_digest == sync.desired_digest and mine().in_sync, 30, "the echo")
    finally:
        agent.stop()
