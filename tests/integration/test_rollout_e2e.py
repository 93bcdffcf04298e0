"""Progressive rollouts end to end: a control-plane process, two agent processes, real traffic.

A traffic thread sends single-row predictions to both agents with fresh routing keys and reports
the true label of each answer (Feedback), so the agents' windows carry real accuracy. On one
deployment:

1. a better challenger (gradient boosting against a deliberately weak champion) walks
   10 -> 50 -> 100 and is promoted automatically; the control plane is SIGKILLed during the hold of
   the 50% step and, once restarted, carries on at the same step with the same hold clock; no
   prediction fails meanwhile and the control plane counts exactly the requests the agents answered;
2. a broken challenger that always answers one class is rolled back at its first gate, with a
   critical alert and an audit entry naming the failed gate;
3. `sluice history` tells both stories.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pytest
from sqlalchemy import func, select

from controlplane.sample_data import breast_cancer_arrays
from controlplane.store.db import Database
from controlplane.store.models import MetricWindowRow
from core.client import SluiceClient
from protos import common_pb2, controlplane_pb2, inference_pb2
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.controlplane.experiments.support import make_weak_classifier_onnx
from tests.harness import SluiceProcess, bound_address, run_cli, start_controlplane_process, unique
from tests.models import make_classifier_onnx

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("rollout-e2e")]

CONFIG = """
[agents]
heartbeat_seconds = 0.5
lost_after_missed = 3

[rollout]
tick_seconds = 0.5
default_hold_seconds = 2.0
"""


@dataclass
class Cluster:
    root: Path
    port: int  # 0 until the first start reports the port it bound; restarts reuse it
    model: str
    deployment: str
    agents: list[AgentProcess] = field(default_factory=list)
    cp: SluiceProcess | None = None
    starts: int = 0
    answered: int = 0  # predictions the agents answered, over every test of the module

    def requests_recorded(self) -> int:
        """Requests in the control plane's stored metric windows of the deployment."""
        database = Database(f"sqlite:///{self.root / 'cp.db'}", run_migrations=False)
        try:
            with database.session() as session:
                total = session.scalar(
                    select(func.sum(MetricWindowRow.requests)).where(
                        MetricWindowRow.deployment == self.deployment, MetricWindowRow.resolution == "raw"
                    )
                )
            return int(total or 0)
        finally:
            database.dispose()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start_cp(self) -> None:
        self.starts += 1
        self.cp = start_controlplane_process(self.root, self.address, f"cp-{self.starts}.log", config=CONFIG)
        self.port = int(bound_address(self.cp).rsplit(":", 1)[1])

    def client(self) -> SluiceClient:
        return SluiceClient(self.address, token="")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("rollout-e2e")
    models = root / "models"
    c = Cluster(root, 0, unique("cancer"), unique("checkout"))
    try:
        c.start_cp()
        with c.client() as client:
            client.register_version(c.model, "weak", make_weak_classifier_onnx(models))
            client.register_version(c.model, "gbm", make_classifier_onnx(models, "gbm"))
            client.register_version(c.model, "constant", make_classifier_onnx(models, "constant"))
            client.deploy(c.deployment, f"{c.model}:weak", reason="first release")
        for i in range(2):
            name = unique(f"agent{i}")
            c.agents.append(AgentProcess(c.address, name, root / name, root / f"{name}.log"))
        with c.client() as client:
            wait_for_agents(client, c.deployment, [a.name for a in c.agents])  # in_sync is vacuous before a connect
        yield c
    finally:
        for agent in c.agents:
            agent.stop()
        if c.cp is not None:
            c.cp.terminate()
            c.cp.close()


class Traffic:
    """Predict + Feedback in a loop over both agents until stopped; counts every failure."""

    def __init__(self, cluster: Cluster, seed: int) -> None:
        self.cluster = cluster
        self.X, self.y = breast_cancer_arrays()
        self.rng = np.random.default_rng(seed)
        self.stop_event = threading.Event()
        self.sent = 0
        self.answered = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(30)
        self.cluster.answered += self.answered

    def _run(self) -> None:
        deployment = self.cluster.deployment
        while not self.stop_event.is_set():
            agent = self.cluster.agents[self.sent % 2]
            i = int(self.rng.integers(self.X.shape[0]))
            try:
                answer = agent.predict(deployment, self.X[i : i + 1], key=f"user-{self.rng.integers(1 << 62)}")
                self.answered += 1
                assert agent.stub is not None
                agent.stub.Feedback(
                    inference_pb2.FeedbackRequest(
                        deployment=deployment, request_id=answer.request_id, label=int(self.y[i])
                    ),
                    timeout=10,
                )
            except grpc.RpcError as exc:
                self.errors.append(f"{exc.code().name}: {exc.details()}")
            self.sent += 1
            time.sleep(0.003)


def experiment_config(
    cluster: Cluster, challenger: str, hold: float, **kw: object
) -> controlplane_pb2.ExperimentConfig:
    return controlplane_pb2.ExperimentConfig(
        deployment=cluster.deployment,
        challenger=common_pb2.VersionRef(model=cluster.model, version=challenger),
        plan=[10, 50, 100],
        hold_seconds=hold,
        min_samples=30,
        **kw,  # type: ignore[arg-type]
    )


def state_of(cluster: Cluster, name: str) -> controlplane_pb2.Experiment:
    with cluster.client() as client:
        return client.get_experiment(name)


def end_what_another_test_left(client: SluiceClient, cluster: Cluster) -> None:
    """The tests share one deployment: an experiment a failed test left running or paused would
    refuse the next one's start and hide its own result behind that refusal."""
    left = client.get_deployment(cluster.deployment).experiment
    if left:
        client.experiment_action("AbortExperiment", left, reason="left by an earlier test of the module")


def test_a_better_challenger_is_promoted_across_a_controlplane_kill(cluster: Cluster) -> None:
    name = unique("gbm-rollout")
    hold = 8.0
    with cluster.client() as client:  # after the constant test (random order) gbm is champion: undo it
        end_what_another_test_left(client, cluster)
        if client.get_deployment(cluster.deployment).splits[0].version.version != "weak":
            deployed = client.deploy(cluster.deployment, f"{cluster.model}:weak", reason="champion for this test")
            assert client.wait_for_sync(cluster.deployment, deployed.generation, timeout=30).in_sync
        earlier = len(client.history(cluster.deployment))  # what other tests of the module did
    with Traffic(cluster, seed=1) as traffic:
        with cluster.client() as client:
            started = client.start_experiment(
                name,
                experiment_config(
                    cluster,
                    "gbm",
                    hold,
                    auto_promote=True,
                    guardrails=[controlplane_pb2.Guardrail(metric="error_rate", max_degradation=0.05)],
                ),
                reason="gbm beats the weak model offline",
            )
        assert started.current_percent == 10

        at_fifty = wait_until(
            lambda: (e := state_of(cluster, name)).step_index == 1 and e, timeout=40, what="the 50% step"
        )
        assert at_fifty.state == controlplane_pb2.EXPERIMENT_RUNNING and at_fifty.current_percent == 50
        assert cluster.cp is not None
        cluster.cp.kill()  # SIGKILL in the middle of the 50% hold
        cluster.cp.close()
        cluster.start_cp()

        after = state_of(cluster, name)
        assert after.step_index == 1 and after.current_percent == 50
        assert after.step_started_at == at_fifty.step_started_at  # the same hold clock
        assert after.state == controlplane_pb2.EXPERIMENT_RUNNING

        done = wait_until(
            lambda: (e := state_of(cluster, name)).state != controlplane_pb2.EXPERIMENT_RUNNING and e,
            timeout=45,
            what="the end of the rollout",
        )
    assert done.state == controlplane_pb2.EXPERIMENT_PROMOTED, done.status_reason
    assert done.analysis.decision == "challenger_wins"
    assert traffic.errors == []  # zero failed predictions, the kill included
    # No metric window lost or counted twice across the kill: the control plane's request count is
    # exactly what the agents answered.
    wait_until(lambda: cluster.requests_recorded() >= cluster.answered, timeout=60, what=f"{cluster.answered} requests")
    time.sleep(2.0)  # a late duplicate would show up now
    assert cluster.requests_recorded() == cluster.answered
    with cluster.client() as client:
        deployment = client.get_deployment(cluster.deployment)
        assert [(s.version.version, s.weight) for s in deployment.splits] == [("gbm", 100)]
        assert deployment.previous_champion.version == "weak"
        history = [
            (h.action, {s.version.version: s.weight for s in h.splits}) for h in client.history(cluster.deployment)
        ]
    walk = [entry for entry in list(reversed(history))[earlier:] if entry[0] != "deploy"]
    assert walk == [
        ("experiment.start", {"weak": 90, "gbm": 10}),
        ("experiment.step", {"weak": 50, "gbm": 50}),
        ("experiment.step", {"weak": 0, "gbm": 100}),
        ("promote", {"gbm": 100}),
    ]


def test_a_constant_challenger_is_rolled_back_at_its_first_gate(cluster: Cluster) -> None:
    name = unique("constant-rollout")
    with cluster.client() as client:  # run alone (or first), the champion is not gbm yet: make it so
        end_what_another_test_left(client, cluster)
        if client.get_deployment(cluster.deployment).splits[0].version.version != "gbm":
            deployed = client.deploy(cluster.deployment, f"{cluster.model}:gbm", reason="champion for this test")
            generation = deployed.generation
            assert client.wait_for_sync(cluster.deployment, generation, timeout=30).in_sync
    with Traffic(cluster, seed=2) as traffic:
        with cluster.client() as client:
            client.start_experiment(
                name,
                experiment_config(
                    cluster,
                    "constant",
                    2.0,
                    auto_promote=True,
                    guardrails=[controlplane_pb2.Guardrail(metric="accuracy", max_degradation=0.05)],
                ),
                reason="try the constant model",
            )
        done = wait_until(
            lambda: (e := state_of(cluster, name)).state != controlplane_pb2.EXPERIMENT_RUNNING and e,
            timeout=40,
            what="the first gate",
        )
        with cluster.client() as client:
            assert client.wait_for_sync(cluster.deployment, timeout=30).in_sync
    assert done.state == controlplane_pb2.EXPERIMENT_ROLLED_BACK, done.status_reason
    assert done.step_index == 0 and done.current_percent == 10
    assert "guardrail accuracy" in done.status_reason
    assert traffic.errors == []
    with cluster.client() as client:
        deployment = client.get_deployment(cluster.deployment)
        assert [(s.version.version, s.weight) for s in deployment.splits] == [("gbm", 100)]
        alerts = [a for a in client.alerts(deployment=cluster.deployment) if a.kind == "rollout_gate_failed"]
        assert len(alerts) == 1 and alerts[0].version.version == "constant"
        gate = [e for e in client.audit(target=name) if e.action == "experiment.gate_failed"]
        assert len(gate) == 1 and '"gate": "guardrail accuracy"' in gate[0].details_json

    history = run_cli("history", cluster.deployment, address=cluster.address)
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    for action in ("experiment.rollback", "experiment.start", "deploy"):
        assert any(f" {action} " in line for line in lines), history.stdout
    rollback = next(line for line in lines if " experiment.rollback " in line)
    assert "rollout-engine" in rollback and "gate failed" in rollback
