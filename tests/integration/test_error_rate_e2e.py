"""Errors counted per version end to end: a control-plane process, an agent process, real traffic.

The challenger is the champion's own graph with one change: its probabilities are multiplied by
sqrt(feature 0 - its median) * 0 + 1, which is 1 for rows at or above the median and NaN below it.
So it fails (INTERNAL, a model failure) on about half the rows and answers the others exactly as
the champion does. Started with `sluice experiment start ... --guardrail error_rate:0.01` at 50%,
its error_rate guardrail rolls it back; `sluice status` and the control plane's /metrics show its
errors per version while the champion's stay at 0.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from controlplane.sample_data import breast_cancer_arrays
from core.client import SluiceClient
from protos import common_pb2, controlplane_pb2
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import CP_READY, SluiceProcess, bound_address, run_cli, unique
from tests.models import make_classifier_onnx

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("error-rate-e2e")]

CONFIG = """
[agents]
heartbeat_seconds = 0.5
lost_after_missed = 3

[rollout]
tick_seconds = 0.5
default_hold_seconds = 2.0

[alerts]
evaluate_seconds = 0.5

[health]
window_seconds = 10.0
min_samples = 30
"""
HOLD = 15


def make_failing_challenger(champion: Path, out: Path, threshold: float) -> Path:
    """The champion's graph, with NaN probabilities for rows whose feature 0 is below `threshold`."""
    model = onnx.load(str(champion))
    graph = model.graph
    (source,) = [n for n in graph.node if "probabilities" in n.output]
    source.output[list(source.output).index("probabilities")] = "probabilities_ok"
    input_name = graph.input[0].name
    graph.initializer.extend(
        [
            helper.make_tensor("gate_start", TensorProto.INT64, [1], [0]),
            helper.make_tensor("gate_end", TensorProto.INT64, [1], [1]),
            helper.make_tensor("gate_axis", TensorProto.INT64, [1], [1]),
            helper.make_tensor("gate_threshold", TensorProto.FLOAT, [], [threshold]),
            helper.make_tensor("gate_zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("gate_one", TensorProto.FLOAT, [], [1.0]),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Slice", [input_name, "gate_start", "gate_end", "gate_axis"], ["gate_feature"]),
            helper.make_node("Sub", ["gate_feature", "gate_threshold"], ["gate_shifted"]),
            helper.make_node("Sqrt", ["gate_shifted"], ["gate_root"]),  # NaN below the threshold
            helper.make_node("Mul", ["gate_root", "gate_zero"], ["gate_nan_or_zero"]),
            helper.make_node("Add", ["gate_nan_or_zero", "gate_one"], ["gate"]),  # NaN or 1, shape [N, 1]
            helper.make_node("Mul", ["probabilities_ok", "gate"], ["probabilities"]),
        ]
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


class Traffic:
    """Single-row Predicts with fresh routing keys until stopped; counts failures by status."""

    def __init__(self, agent: AgentProcess, deployment: str) -> None:
        self.agent = agent
        self.deployment = deployment
        self.X, _ = breast_cancer_arrays()
        self.rng = np.random.default_rng(7)
        self.stop_event = threading.Event()
        self.answered: Counter[str] = Counter()  # by served version
        self.failed: Counter[str] = Counter()  # by status code
        self.thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(30)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            i = int(self.rng.integers(self.X.shape[0]))
            try:
                answer = self.agent.predict(
                    self.deployment, self.X[i : i + 1], key=f"user-{self.rng.integers(1 << 62)}"
                )
                self.answered[answer.served_by.version] += 1
            except grpc.RpcError as exc:
                self.failed[exc.code().name] += 1
            time.sleep(0.003)


@dataclass
class Plant:
    """A control-plane process with the healthy champion (v1) and the failing model (nan) registered."""

    address: str
    metrics_port: int
    model: str
    process: SluiceProcess


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plant]:
    """One control plane for the module: each test uses deployments of its own."""
    tmp_path = tmp_path_factory.mktemp("plant")
    models = tmp_path / "models"
    models.mkdir()
    champion = make_classifier_onnx(models)
    X, _ = breast_cancer_arrays()
    challenger = make_failing_challenger(champion, models / "nan-below-median.onnx", float(np.median(X[:, 0])))
    model = unique("cancer")
    (tmp_path / "cp.toml").write_text(CONFIG)
    cp = SluiceProcess(
        [
            "controlplane",
            "--listen",
            "127.0.0.1:0",
            "--db",
            f"sqlite:///{tmp_path / 'cp.db'}",
            "--artifacts",
            str(tmp_path / "artifacts"),
            "--config",
            str(tmp_path / "cp.toml"),  # no --metrics-port: with --listen port 0, any free one
        ],
        tmp_path / "cp.log",
        ready_pattern=CP_READY,
    )
    address = bound_address(cp)  # both ports are the ones the control plane bound and reported
    metrics_port = int(cp.wait_for(r"control-plane metrics on http://[^:]+:(\d+)/metrics", 30).group(1))
    try:
        for version, path in (("v1", champion), ("nan", challenger)):
            done = run_cli("version", "register", model, str(path), "--version", version, address=address)
            assert done.returncode == 0, done.stderr
        yield Plant(address, metrics_port, model, cp)
    finally:
        cp.terminate()
        cp.close()


def test_a_challenger_failing_on_half_its_inputs_is_rolled_back_by_its_error_rate_guardrail(
    tmp_path: Path, plant: Plant
) -> None:
    address, metrics_port, model = plant.address, plant.metrics_port, plant.model
    deployment = unique("checkout")
    agent: AgentProcess | None = None
    try:
        done = run_cli("deploy", deployment, f"{model}:v1", address=address)
        assert done.returncode == 0, done.stderr
        agent = AgentProcess(address, unique("agent"), tmp_path / "agent", tmp_path / "agent.log")
        with SluiceClient(address, token="") as client:
            wait_for_agents(client, deployment, [agent.name])
        name = unique("nan-rollout")
        with Traffic(agent, deployment) as traffic:
            started = time.monotonic()
            done = run_cli(
                "experiment",
                "start",
                name,
                "--deployment",
                deployment,
                "--challenger",
                f"{model}:nan",
                "--plan",
                "50,100",
                "--hold",
                str(HOLD),
                "--metric",
                "error_rate",
                "--min-samples",
                "30",
                "--guardrail",
                "error_rate:0.01",
                "--auto-promote",
                address=address,
            )
            assert done.returncode == 0, done.stderr

            # sluice status during the 50% step: the challenger's error rate per version, the
            # champion's 0 (the gate is judged when the hold ends)
            def challenger_errors() -> tuple[str, str, str] | None:
                status = run_cli("status", deployment, "--window", "600", address=address)
                assert status.returncode == 0, status.stderr
                lines = status.stdout.splitlines()
                header = next(line.split() for line in lines if line.startswith("VERSION"))
                rows = {line.split()[0]: line.split() for line in lines if line.startswith(model)}
                at, requests = header.index("ERRORS"), header.index("REQUESTS")
                challenger = rows.get(f"{model}:nan")
                # enough of its requests reported for a rate (the first window may hold just one)
                if challenger is None or not challenger[requests].isdigit() or int(challenger[requests]) < 40:
                    return None
                return rows[f"{model}:v1"][at], rows[f"{model}:nan"][at], status.stdout

            champion_errors, challenger_errors, shown = wait_until(
                challenger_errors, timeout=HOLD, what="the challenger's errors in `sluice status`"
            )
            assert champion_errors == "0.00%", shown
            assert 30 < float(challenger_errors.rstrip("%")) < 70, shown

            def ended() -> controlplane_pb2.Experiment | None:
                with SluiceClient(address, token="") as client:
                    e = client.get_experiment(name)
                return e if e.state != controlplane_pb2.EXPERIMENT_RUNNING else None

            experiment = wait_until(ended, timeout=60, what="the rollback")
            took = time.monotonic() - started
        assert experiment.state == controlplane_pb2.EXPERIMENT_ROLLED_BACK, experiment.status_reason
        assert "guardrail error_rate" in experiment.status_reason
        assert traffic.failed and set(traffic.failed) == {"INTERNAL"}
        assert traffic.answered["v1"] > 0

        # the control plane's /metrics: the challenger's failed calls by status code, none of the champion
        def failures() -> dict[str, float] | None:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as page:
                text = page.read().decode()
            series = re.findall(r'^sluice_predictions_total\{code="(\w+)",[^}]*version="([^"]+)"\} (\S+)$', text, re.M)
            found = {f"{version} {code}": float(value) for code, version, value in series}
            return found if found.get(f"{model}:nan INTERNAL") == traffic.failed["INTERNAL"] else None

        counted = wait_until(failures, timeout=20, what="each failed call once in /metrics")
        assert {key for key in counted if not key.endswith(" OK")} == {f"{model}:nan INTERNAL"}
        print(
            f"rolled back in {took:.1f} s; clients: {dict(traffic.answered)} answered, "
            f"{dict(traffic.failed)} failed; status errors: champion {champion_errors}, "
            f"challenger {challenger_errors}"
        )
    finally:
        if agent is not None:
            agent.stop()


def test_a_champion_critical_for_the_policys_delay_is_rolled_back_by_the_policy(tmp_path: Path, plant: Plant) -> None:
    """Issue 15: v1 serves, then the failing model is deployed over it as champion. Its health goes
    critical on its error rate; with `sluice policy set --action rollback_champion --after 3` the
    control plane rolls back to v1 by itself, with a history entry and an alert that say why."""
    address, model = plant.address, plant.model
    deployment = unique("policy")
    agent: AgentProcess | None = None
    try:
        for version in ("v1", "nan"):
            done = run_cli("deploy", deployment, f"{model}:{version}", address=address)
            assert done.returncode == 0, done.stderr
        done = run_cli("policy", "set", deployment, "--action", "rollback_champion", "--after", "3", address=address)
        assert done.returncode == 0, done.stderr
        assert "rollback_champion * after 3 s * critical" in done.stdout
        agent = AgentProcess(address, unique("agent"), tmp_path / "agent", tmp_path / "agent.log")
        with SluiceClient(address, token="") as client:
            wait_for_agents(client, deployment, [agent.name])
        with Traffic(agent, deployment) as traffic:

            def rolled_back() -> controlplane_pb2.Deployment | None:
                with SluiceClient(address, token="") as client:
                    d = client.get_deployment(deployment)
                champion = next(s for s in d.splits if s.role == common_pb2.ROLE_CHAMPION)
                return d if champion.version.version == "v1" else None

            wait_until(rolled_back, timeout=90, what="the policy's rollback to v1")
        assert traffic.failed["INTERNAL"] > 0  # the failing champion did serve (and fail) first
        history = run_cli("history", deployment, "--json", address=address)
        entry = json.loads(history.stdout)[0]
        assert (entry["action"], entry["principal"]) == ("rollback", "health-policy"), entry
        assert "health policy: critical for" in entry["reason"] and "error_rate" in entry["reason"]
        alerts = json.loads(run_cli("alerts", "--deployment", deployment, "--json", address=address).stdout)
        (alert,) = [a for a in alerts if a["kind"] == "sustained_critical"]
        assert "rolled back to " in alert["message"] and f"{model}:v1" in alert["message"]
        shown = run_cli("policy", "show", deployment, address=address)
        assert "last action" in shown.stdout and "rolled back to" in shown.stdout
    finally:
        if agent is not None:
            agent.stop()
