"""Static stability: agents keep serving through a control-plane crash, and restart from cache.

The control plane runs as a real process so it can be SIGKILLed and started again on the same
database file and port.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import numpy as np
import pytest
from sqlalchemy import func, select

from controlplane.store.db import Database
from controlplane.store.models import MetricWindowRow
from core.client import SluiceClient
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import SluiceProcess, bound_address, run_cli, start_controlplane_process, unique
from tests.models import breast_cancer_rows, make_baseline, make_classifier_onnx

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("agents-static")]

SERVED: dict[str, int] = {}


def serve_many(agent: AgentProcess, deployment: str, rows: np.ndarray) -> dict[str, int]:
    """One Predict per row; returns the versions that answered (raises on any error)."""
    counts: dict[str, int] = {}
    SERVED[deployment] = SERVED.get(deployment, 0) + rows.shape[0]
    for i in range(rows.shape[0]):
        version = agent.predict(deployment, rows[i : i + 1], key=f"k{i}").served_by.version
        counts[version] = counts.get(version, 0) + 1
    return counts


def test_agents_survive_a_controlplane_crash_and_reconverge(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    cp = start_controlplane_process(tmp_path, "127.0.0.1:0", "cp-1.log")
    address = bound_address(cp)
    agents: list[AgentProcess] = []
    restarted_cp: SluiceProcess | None = None
    try:
        model, dep = unique("m"), unique("d")
        with SluiceClient(address, token="") as client:
            client.register_version(model, "v1", make_classifier_onnx(models), make_baseline(models))
            client.register_version(model, "v2", make_classifier_onnx(models, "gbm"))
            client.deploy(dep, f"{model}:v1")
            client.set_traffic(dep, {f"{model}:v1": 80, f"{model}:v2": 20})
        for i in range(2):
            name = unique(f"agent{i}")
            agents.append(AgentProcess(address, name, tmp_path / name, tmp_path / f"{name}.log"))
        with SluiceClient(address, token="") as client:
            wait_for_agents(client, dep, [a.name for a in agents])  # in_sync alone is vacuous before a connect
        rows = breast_cancer_rows(1000, seed=11)
        before = serve_many(agents[0], dep, rows[:200])

        cp.kill()  # SIGKILL: no goodbye to anyone

        # 1,000 predictions to each agent afterwards, zero errors, same sticky split.
        for agent in agents:
            counts = serve_many(agent, dep, rows)
            assert sum(counts.values()) == 1000 and set(counts) == {"v1", "v2"}
        assert serve_many(agents[1], dep, rows[:200]) == before

        # An agent restarted while the control plane is still down serves from its cache alone.
        agents[1].restart()
        assert serve_many(agents[1], dep, rows[:200]) == before
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        assert agents[1].channel is not None
        health = health_pb2_grpc.HealthStub(agents[1].channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING

        # The control plane comes back on the same database: both agents reconnect, in sync.
        restarted_cp = start_controlplane_process(tmp_path, address, "cp-2.log")

        def all_in_sync() -> bool:
            result = run_cli("agents", "--json", address=address)
            assert result.returncode == 0, result.stderr
            listed = {a["name"]: a for a in json.loads(result.stdout)}
            return all(
                listed[a.name]["state"] == "connected" and all(d["in_sync"] for d in listed[a.name]["deployments"])
                for a in agents
            )

        wait_until(all_in_sync, timeout=60, what="both agents reconnected and in sync")
        with SluiceClient(address, token="") as client:
            client.set_traffic(dep, {f"{model}:v1": 50, f"{model}:v2": 50})
            result = client.wait_for_sync(dep, timeout=30)
        assert result.in_sync and sorted(result.synced_agents) == sorted(a.name for a in agents)
        for agent in agents:
            counts = serve_many(agent, dep, rows[:400])
            assert abs(counts.get("v2", 0) / 400 - 0.5) < 0.12

        # Every prediction reached the control plane's metrics exactly once: those made while it
        # was down were buffered (and kept in the cache across the agent's restart), then resent.
        database = Database(f"sqlite:///{tmp_path / 'cp.db'}", run_migrations=False)
        try:

            def recorded() -> int:
                with database.session() as session:
                    total = session.scalar(
                        select(func.sum(MetricWindowRow.requests)).where(
                            MetricWindowRow.deployment == dep, MetricWindowRow.resolution == "raw"
                        )
                    )
                return int(total or 0)

            wait_until(lambda: recorded() >= SERVED[dep], timeout=60, what="every prediction in the metrics")
            assert recorded() == SERVED[dep]
        finally:
            database.dispose()
    except grpc.RpcError as exc:
        logs = "\n".join(a.log.read_text()[-2000:] for a in agents)
        raise AssertionError(f"{exc.code()}: {exc.details()}\n{logs}") from exc
    finally:
        for agent in agents:
            agent.stop()
        cp.close()
        if restarted_cp is not None:
            restarted_cp.terminate()
            restarted_cp.close()
