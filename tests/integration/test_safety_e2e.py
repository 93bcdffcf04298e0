"""Safety on real failures end to end (issue 15 items 1, 3, 4, 5): one control-plane process, one
agent process, real models, deployments of their own per test.

- Fallback: with `sluice policy set D fallback=on`, a challenger that fails (NaN) on about half its
  inputs never fails a client: the champion answers those requests, and the challenger's failures
  are still counted against it (`sluice status --json`, errors by code).
- Deadlines: a model slower than the caller's deadline counts DEADLINE_EXCEEDED against its
  version, inline (a single row) and on a worker thread (a batch of THREAD_ROWS rows).
- Regression: a ridge regressor's MAE, RMSE and within-tolerance share in `sluice status --json`
  equal the test's own computation from the answers and the true values it sent; an experiment
  with metric mae between ridge and gradient boosting promotes the better one.
- Prediction drift: inputs of one class only change the class mix of the answers; the version's
  prediction PSI against its baseline predictions goes critical and a prediction_drift alert opens,
  while unshifted traffic stays near 0.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from agent.services import THREAD_ROWS
from controlplane.sample_data import breast_cancer_arrays
from core.client import SluiceClient, batch_request
from protos import common_pb2, controlplane_pb2, inference_pb2
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import SluiceProcess, bound_address, run_cli, start_controlplane_process, unique
from tests.integration.test_error_rate_e2e import make_failing_challenger
from tests.models import (
    make_baseline,
    make_classifier_onnx,
    make_regressor_onnx,
    make_slow_loop_onnx,
    regression_target,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("safety-e2e")]

CONFIG = """
[agents]
heartbeat_seconds = 0.5
lost_after_missed = 10

[rollout]
tick_seconds = 0.5
default_hold_seconds = 2.0

[alerts]
evaluate_seconds = 0.5

[health]
window_seconds = 600.0
min_samples = 30
min_drift_samples = 100
"""
TOLERANCE = 0.25  # the regression tolerance the test's policy sets (the configuration's is 0.1)
#: Loop steps of the slow model for one request: far longer than the deadlines below (about 1 us a step)
SLOW_STEPS = 400_000


@dataclass
class Plant:
    address: str
    model: str  # classifiers: v1 (logreg, with a baseline), nan (fails below the median of feature 0)
    regressor: str  # ridge and gbr, with baselines
    slow: str  # loop: slow on large inputs
    process: SluiceProcess
    agent: AgentProcess

    def client(self) -> SluiceClient:
        return SluiceClient(self.address, token="")

    def deploy(self, deployment: str, version: str) -> None:
        done = run_cli("deploy", deployment, version, address=self.address)
        assert done.returncode == 0, done.stderr
        with self.client() as client:  # WaitForSync alone is vacuous before the agent's first connect
            wait_for_agents(client, deployment, [self.agent.name])

    def status(self, deployment: str) -> dict[str, dict[str, Any]]:
        """`sluice status D --json`: per version ref, its figures."""
        done = run_cli("status", deployment, "--json", "--window", "600", address=self.address)
        assert done.returncode == 0, done.stderr
        (shown,) = json.loads(done.stdout)
        return {f"{v['version']['model']}:{v['version']['version']}": v for v in shown["versions"]}


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plant]:
    root = tmp_path_factory.mktemp("safety")
    models = root / "models"
    models.mkdir()
    X, _ = breast_cancer_arrays()
    champion = make_classifier_onnx(models)
    failing = make_failing_challenger(champion, models / "nan-below-median.onnx", float(np.median(X[:, 0])))
    baseline = make_baseline(models)
    cp = start_controlplane_process(root, "127.0.0.1:0", "cp.log", config=CONFIG)
    address = bound_address(cp)
    agent: AgentProcess | None = None
    try:
        model, regressor, slow = unique("cancer"), unique("score"), unique("slow")
        with SluiceClient(address, token="") as client:
            client.register_version(model, "v1", champion, baseline)
            client.register_version(model, "nan", failing)
            client.register_version(regressor, "ridge", make_regressor_onnx(models), baseline)
            client.register_version(regressor, "gbr", gbr_regressor(models), baseline)
            client.register_version(slow, "loop", make_slow_loop_onnx(models))
            client.deploy(unique("warm"), f"{model}:v1")
        agent = AgentProcess(address, unique("agent"), root / "agent", root / "agent.log")
        yield Plant(address, model, regressor, slow, cp, agent)
    finally:
        if agent is not None:
            agent.stop()
        cp.terminate()
        cp.close()


def gbr_regressor(directory: Path) -> Path:
    """Gradient boosting on the ridge regressor's data: a lower MAE on these rows."""
    from controlplane.onnx_export import export_onnx
    from controlplane.training import train_model

    path = directory / "regressor-gbr.onnx"
    if not path.exists():
        X, _ = breast_cancer_arrays()
        export_onnx(train_model(X, regression_target(), "gbr", 0), X.shape[1], path)
    return path


def predict(agent: AgentProcess, deployment: str, row: np.ndarray, key: str, **kw: Any) -> Any:
    assert agent.stub is not None
    request = inference_pb2.PredictRequest(
        deployment=deployment,
        input=inference_pb2.Tensor(shape=[1, row.shape[0]], values=row.tolist()),
        routing_key=key,
    )
    return agent.stub.Predict(request, **({"timeout": 30} | kw))


# ---- fallback ----


def test_with_fallback_on_a_failing_challengers_requests_are_answered_by_the_champion(plant: Plant) -> None:
    deployment = unique("fallback")
    plant.deploy(deployment, f"{plant.model}:v1")
    with plant.client() as client:
        wait_for_agents(client, deployment, [plant.agent.name])
    done = run_cli("traffic", "set", deployment, f"{plant.model}:v1=50", f"{plant.model}:nan=50", address=plant.address)
    assert done.returncode == 0, done.stderr
    done = run_cli("policy", "set", deployment, "fallback=on", address=plant.address)
    assert done.returncode == 0, done.stderr
    assert "fallback         on *" in done.stdout
    with plant.client() as client:
        d = client.get_deployment(deployment)
        assert client.wait_for_sync(deployment, d.generation, timeout=30).in_sync
        entry = client.history(deployment)[0]
        assert (entry.action, entry.reason) == ("policy.set", "fallback on")

    X, _ = breast_cancer_arrays()
    rng = np.random.default_rng(3)
    served: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    sent = 240
    for n in range(sent):
        i = int(rng.integers(X.shape[0]))
        try:
            served[predict(plant.agent, deployment, X[i], f"user-{n}").served_by.version] += 1
        except grpc.RpcError as exc:
            failed[exc.code().name] += 1
    assert not failed, failed  # the client never sees the challenger fail
    assert served["v1"] > 0 and served["nan"] > 0, served

    champion, challenger = f"{plant.model}:v1", f"{plant.model}:nan"

    def counted() -> dict[str, dict[str, Any]] | None:
        versions = plant.status(deployment)
        c = versions.get(challenger, {})
        answered = int(c.get("requests", 0)) - int(c.get("errors", 0))
        done = int(versions.get(champion, {}).get("requests", 0)) == served["v1"] and answered == served["nan"]
        return versions if done else None

    versions = wait_until(counted, timeout=30, what="every answer counted in `sluice status`")
    fell_back = int(versions[challenger]["errors"])
    assert fell_back > 0  # the challenger's failures are its errors...
    assert versions[challenger]["errors_by_code"] == {"INTERNAL": fell_back}
    assert versions[champion]["errors"] == 0  # ...and the champion answered them
    print(f"fallback: clients {dict(served)} answered, 0 failed; challenger errors {fell_back}")

    # Off again: the challenger's failures reach the client.
    done = run_cli("policy", "set", deployment, "--fallback", "off", address=plant.address)
    assert done.returncode == 0, done.stderr
    with plant.client() as client:
        assert client.wait_for_sync(deployment, client.get_deployment(deployment).generation, timeout=30).in_sync
    failures = 0
    for n in range(60):
        i = int(rng.integers(X.shape[0]))
        try:
            predict(plant.agent, deployment, X[i], f"user-{n}")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INTERNAL
            failures += 1
    assert failures > 0


# ---- deadlines ----


def test_a_model_slower_than_the_callers_deadline_counts_deadline_exceeded_against_its_version(plant: Plant) -> None:
    deployment = unique("deadline")
    plant.deploy(deployment, f"{plant.slow}:loop")
    ref = f"{plant.slow}:loop"
    quick = predict(plant.agent, deployment, np.array([3.0, 4.0], np.float32), "k")
    assert list(quick.values) == [7.0]
    slow_row = np.array([float(SLOW_STEPS), 0.0], np.float32)

    def exceeded(where: str, call: Any) -> Any:
        def attempt() -> int | None:
            with pytest.raises(grpc.RpcError) as caught:
                call()
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            codes = plant.status(deployment).get(ref, {}).get("errors_by_code") or {}
            return int(codes.get("DEADLINE_EXCEEDED", 0)) or None

        return wait_until(attempt, timeout=60, what=f"a DEADLINE_EXCEEDED counted {where}")

    # inline: a single row runs on the event loop; the deadline is checked once the model ran
    inline = exceeded("inline", lambda: predict(plant.agent, deployment, slow_row, "k", timeout=0.05))
    # on a worker thread: a batch of THREAD_ROWS rows (gRPC cancels the waiting handler at the deadline)
    rows = np.zeros((THREAD_ROWS, 2), np.float32)
    rows[0] = slow_row
    assert plant.agent.stub is not None
    stub = plant.agent.stub

    def batch_call() -> None:
        stub.PredictBatch(batch_request(deployment, rows, ()), timeout=0.05)

    def more_than_inline() -> int | None:
        with pytest.raises(grpc.RpcError):
            batch_call()
        codes = plant.status(deployment).get(ref, {}).get("errors_by_code") or {}
        seen = int(codes.get("DEADLINE_EXCEEDED", 0))
        return seen if seen > inline else None

    total = wait_until(more_than_inline, timeout=60, what="a batch's DEADLINE_EXCEEDED counted")
    versions = plant.status(deployment)
    # A deadline that passes while the batch runs on its worker thread may be seen first as the
    # call's cancellation: either way the failure is charged to the version, never as a refusal.
    codes = set(versions[ref]["errors_by_code"])
    assert "DEADLINE_EXCEEDED" in codes and codes <= {"DEADLINE_EXCEEDED", "CANCELLED"}, codes
    assert versions[ref]["rejected_inputs"] == 0  # not a refused input
    print(f"deadline exceeded counted {total} times against {ref}")


# ---- regression ----


class Feedback:
    """Predicts, then the true value of each answer (Feedback), in bursts until stopped; keeps
    (answer, truth) per version. A burst's Feedback calls go out together: the agent keeps the
    labels of concurrent calls in one batch for the control plane's label store (one batch per
    sequential call would queue hundreds of label imports ahead of the metric reports)."""

    BURST = 25

    def __init__(self, plant: Plant, deployment: str, seed: int) -> None:
        self.plant = plant
        self.deployment = deployment
        self.X, _ = breast_cancer_arrays()
        self.y = regression_target()
        self.rng = np.random.default_rng(seed)
        self.stop_event = threading.Event()
        self.pairs: dict[str, list[tuple[float, float]]] = {}
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, name="feedback", daemon=True)

    def __enter__(self) -> Feedback:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(30)

    def send(self, bursts: int) -> None:
        for _ in range(bursts):
            self.burst()

    def burst(self) -> None:
        agent = self.plant.agent
        assert agent.stub is not None
        answers = []
        for _ in range(self.BURST):
            i = int(self.rng.integers(self.X.shape[0]))
            try:
                answer = predict(agent, self.deployment, self.X[i], f"user-{self.rng.integers(1 << 62)}")
            except grpc.RpcError as exc:
                self.errors.append(f"{exc.code().name}: {exc.details()}")
                continue
            answers.append((answer, float(self.y[i])))
        calls = [
            agent.stub.Feedback.future(
                inference_pb2.FeedbackRequest(deployment=self.deployment, request_id=answer.request_id, value=truth),
                timeout=10,
            )
            for answer, truth in answers
        ]
        for call, (answer, truth) in zip(calls, answers, strict=True):
            try:
                call.result()
            except grpc.RpcError as exc:
                self.errors.append(f"{exc.code().name}: {exc.details()}")
                continue
            self.pairs.setdefault(answer.served_by.version, []).append((float(answer.values[0]), truth))

    def _run(self) -> None:
        # Paced: the control plane writes each label batch as a label import (a file and a row)
        # on the agent's stream, ahead of its ACKs and reports; back to back bursts would keep a
        # queue of them in front of the experiment's evidence.
        while not self.stop_event.wait(0.3):
            self.burst()


def test_a_regressors_mae_rmse_and_within_tolerance_equal_our_own_computation(plant: Plant) -> None:
    deployment = unique("regression")
    plant.deploy(deployment, f"{plant.regressor}:ridge")
    done = run_cli("policy", "set", deployment, "--tolerance", str(TOLERANCE), address=plant.address)
    assert done.returncode == 0, done.stderr
    with plant.client() as client:  # the agents count "within" with the policy's tolerance
        assert client.wait_for_sync(deployment, client.get_deployment(deployment).generation, timeout=30).in_sync
    traffic = Feedback(plant, deployment, seed=5)
    traffic.send(12)  # 300 labelled predictions, in 12 label batches
    assert traffic.errors == []
    pairs = np.asarray(traffic.pairs["ridge"], dtype=np.float64)
    errors = np.abs(pairs[:, 0] - pairs[:, 1])
    mae = float(errors.mean())
    rmse = float(math.sqrt(float(np.mean(errors**2))))
    within = float(np.mean(errors <= TOLERANCE))
    ref = f"{plant.regressor}:ridge"

    def joined() -> dict[str, dict[str, Any]] | None:
        versions = plant.status(deployment)
        return versions if int(versions.get(ref, {}).get("n_labeled") or 0) == len(pairs) else None

    versions = wait_until(joined, timeout=30, what="every label joined in `sluice status`")
    shown = versions[ref]
    assert shown["mae"] == pytest.approx(mae, rel=1e-9)
    assert shown["rmse"] == pytest.approx(rmse, rel=1e-9)
    assert shown["within_tolerance"] == pytest.approx(within, rel=1e-9)
    assert rmse >= mae
    # the predictions' PSI against the baseline's predictions (value bins): same inputs, no drift
    assert shown["prediction_psi"] < 0.1
    print(f"ridge: mae {mae:.4f}, rmse {rmse:.4f}, within {within:.3f} (n={len(pairs)})")


def test_an_experiment_on_mae_promotes_the_better_regressor(plant: Plant) -> None:
    deployment = unique("regression-experiment")
    plant.deploy(deployment, f"{plant.regressor}:ridge")
    name = unique("gbr-on-mae")
    with Feedback(plant, deployment, seed=9) as traffic:
        with plant.client() as client:
            client.start_experiment(
                name,
                controlplane_pb2.ExperimentConfig(
                    deployment=deployment,
                    challenger=common_pb2.VersionRef(model=plant.regressor, version="gbr"),
                    plan=[50, 100],
                    hold_seconds=2.0,
                    min_samples=30,
                    metric="mae",
                    auto_promote=True,
                ),
            )

        def ended() -> controlplane_pb2.Experiment | None:
            with plant.client() as client:
                e = client.get_experiment(name)
            return e if e.state != controlplane_pb2.EXPERIMENT_RUNNING else None

        done = wait_until(ended, timeout=90, what="the experiment's decision")
    assert done.state == controlplane_pb2.EXPERIMENT_PROMOTED, done.status_reason
    assert done.analysis.decision == "challenger_wins"
    assert traffic.errors == []
    ours = {v: float(np.mean([abs(a - t) for a, t in p])) for v, p in traffic.pairs.items()}
    assert ours["gbr"] < ours["ridge"]
    with plant.client() as client:
        splits = client.get_deployment(deployment).splits
    assert [(s.version.version, s.weight) for s in splits] == [("gbr", 100)]
    print(f"mae experiment promoted gbr: our MAE per version {ours}")


# ---- prediction drift ----


def test_inputs_that_change_the_class_mix_raise_a_prediction_drift_alert(plant: Plant) -> None:
    steady, shifted = unique("steady"), unique("shifted")
    X, y = breast_cancer_arrays()
    ref = f"{plant.model}:v1"
    for deployment in (steady, shifted):
        plant.deploy(deployment, ref)
    with plant.client() as client:
        version = client.get_version(ref)
    assert len(version.baseline.prediction_counts) == 2  # the baseline's predictions, per class
    assert plant.agent.stub is not None
    plant.agent.stub.PredictBatch(batch_request(steady, X, ()), timeout=30)  # the baseline's own rows
    malignant = X[y == 0]  # one class only: the answers' class mix moves far from the baseline's
    plant.agent.stub.PredictBatch(batch_request(shifted, np.concatenate([malignant, malignant]), ()), timeout=30)

    def judged(deployment: str) -> Any:
        def ready() -> dict[str, Any] | None:
            shown = plant.status(deployment).get(ref, {})
            return shown if shown.get("prediction_psi") is not None else None

        return wait_until(ready, timeout=30, what=f"the prediction PSI of {deployment}")

    assert judged(steady)["prediction_psi"] < 0.01
    assert judged(shifted)["prediction_psi"] >= 0.25

    def alert() -> dict[str, Any] | None:
        done = run_cli("alerts", "--deployment", shifted, "--json", address=plant.address)
        assert done.returncode == 0, done.stderr
        found = [a for a in json.loads(done.stdout) if a["kind"] == "prediction_drift"]
        return found[0] if found else None

    raised = wait_until(alert, timeout=30, what="the prediction_drift alert")
    assert "CRITICAL" in str(raised["severity"]).upper(), raised
    assert "predictions drifted" in raised["message"]
    quiet = json.loads(run_cli("alerts", "--deployment", steady, "--json", address=plant.address).stdout)
    assert not [a for a in quiet if a["kind"] == "prediction_drift"]
