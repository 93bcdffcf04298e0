"""No metric is lost or counted twice when the control plane is SIGKILLed under traffic.

A client sends predictions to two real agents without pause; the control plane (a real process)
is killed with SIGKILL, stays down for 20 s, and starts again on the same database and port. The
agents buffer their windows meanwhile and resend every unacknowledged report; replays of reports
that were committed just before the kill are no-ops. Afterwards the request count the control
plane reports (`sluice status --json`) equals exactly what the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.client import SluiceClient
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import SluiceProcess, bound_address, run_cli, start_controlplane_process, unique
from tests.models import breast_cancer_rows, make_baseline, make_classifier_onnx

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("metrics-no-loss")]

DOWN_SECONDS = 20.0


class Traffic:
    """Predictions to both agents, one row each, until stopped; counts what was answered."""

    def __init__(self, agents: list[AgentProcess], deployment: str) -> None:
        self.agents = agents
        self.deployment = deployment
        self.sent = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._rows = breast_cancer_rows(500, seed=31)
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            agent = self.agents[i % len(self.agents)]
            row = self._rows[i % self._rows.shape[0]]
            try:
                agent.predict(self.deployment, row[None, :].astype(np.float32), key=f"user-{i}")
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(exc))
            i += 1
            time.sleep(0.01)  # ~100 a second: thousands in the run, and a core left for the rest

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        return self.sent


def counted_requests(address: str, deployment: str) -> int:
    """What the control plane counts, asked in-process (polled: a CLI process per poll would
    cost a core)."""
    with SluiceClient(address, token="") as client:
        [status] = client.status(deployment, window_seconds=3600)
    return sum(int(v.requests) for v in status.versions)


def reported_requests(address: str, deployment: str) -> int:
    """What `sluice status --json` reports: the figure an operator reads."""
    result = run_cli("status", deployment, "--window", "3600", "--json", address=address)
    assert result.returncode == 0, result.stderr
    [status] = json.loads(result.stdout)
    return sum(int(v.get("requests", 0)) for v in status["versions"])


def test_sigkill_of_the_controlplane_loses_no_metric(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    cp: SluiceProcess | None = start_controlplane_process(tmp_path, "127.0.0.1:0", "cp-1.log")
    address = bound_address(cp)
    agents: list[AgentProcess] = []
    traffic: Traffic | None = None
    try:
        model, dep = unique("m"), unique("d")
        with SluiceClient(address, token="") as client:
            client.register_version(model, "v1", make_classifier_onnx(models), make_baseline(models))
            client.register_version(model, "v2", make_classifier_onnx(models, "gbm"), make_baseline(models))
            client.deploy(dep, f"{model}:v1")
            client.set_traffic(dep, {f"{model}:v1": 70, f"{model}:v2": 30})
        for i in range(2):
            name = unique(f"agent{i}")
            agents.append(AgentProcess(address, name, tmp_path / name, tmp_path / f"{name}.log"))
        with SluiceClient(address, token="") as client:
            wait_for_agents(client, dep, [a.name for a in agents])  # in_sync alone is vacuous before a connect

        traffic = Traffic(agents, dep)
        wait_until(lambda: counted_requests(address, dep) > 0, timeout=30, what="first windows stored")
        assert cp is not None
        cp.kill()  # SIGKILL while reports are in flight
        cp.close()
        cp = None
        down_since = time.monotonic()
        sent_while_down_start = traffic.sent
        time.sleep(DOWN_SECONDS)
        assert time.monotonic() - down_since >= DOWN_SECONDS
        assert traffic.sent > sent_while_down_start  # the agents kept serving
        cp = start_controlplane_process(tmp_path, address, "cp-2.log")
        time.sleep(2.0)  # traffic continues across the restart
        sent = traffic.stop()
        assert not traffic.errors, traffic.errors[:5]  # the agents answered every request
        traffic = None
        assert sent > 0

        def settled() -> bool:
            return counted_requests(address, dep) >= sent

        wait_until(settled, timeout=90, what=f"{sent} requests reported by the control plane")
        time.sleep(3.0)  # any late duplicate would show up now
        assert reported_requests(address, dep) == sent
        with SluiceClient(address, token="") as client:
            [status] = client.status(dep, window_seconds=3600)
            by_version = {v.version.version: v.requests for v in status.versions}
            assert sum(by_version.values()) == sent and set(by_version) == {"v1", "v2"}
            assert 0.15 < by_version["v2"] / sent < 0.45
            assert all(v.errors == 0 for v in status.versions)
    finally:
        if traffic is not None:
            traffic.stop()
        for agent in agents:
            agent.stop()
        if cp is not None:
            cp.terminate()
            cp.close()
