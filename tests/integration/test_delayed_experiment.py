"""An experiment judged on delayed labels, end to end (issue 16 item 4): a control-plane process,
an agent process, real predictions with request ids, the labels imported later with `sluice labels
import`. Before the labels arrive the experiment waits and says so per arm; after, it judges the
two arms on the labelled predictions older than the declared delay and promotes the better
challenger. No Feedback is sent: the agents' windows carry no label at all."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controlplane.sample_data import breast_cancer_arrays
from core.client import SluiceClient, predict_request
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.controlplane.experiments.support import make_weak_classifier_onnx
from tests.harness import SluiceProcess, bound_address, run_cli, start_controlplane_process, unique
from tests.models import make_classifier_onnx

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("delayed-experiment")]

CONFIG = """
[agents]
heartbeat_seconds = 0.5
lost_after_missed = 10

[rollout]
tick_seconds = 0.5
default_hold_seconds = 0.5
"""

PREDICTIONS = 500
WINDOW_SECONDS = 1.0  # an agent's metric window (agent/server.py)
MIN_SAMPLES = 120


@dataclass
class Plant:
    address: str
    cp: SluiceProcess
    root: Path

    def cli(self, *args: str) -> Any:
        done = run_cli(*args, address=self.address)
        assert done.returncode == 0, done.stderr
        return done


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plant]:
    root = tmp_path_factory.mktemp("delayed")
    cp = start_controlplane_process(root, "127.0.0.1:0", "cp.log", config=CONFIG)
    try:
        yield Plant(bound_address(cp), cp, root)
    finally:
        cp.terminate()
        cp.close()


def experiment(plant: Plant, name: str) -> dict[str, Any]:
    return json.loads(plant.cli("experiment", "status", name, "--json").stdout)


def test_an_experiment_on_delayed_labels_waits_for_them_then_promotes_the_better_challenger(
    plant: Plant, models_dir: Path
) -> None:
    model, deployment, name = unique("cancer"), unique("late"), unique("exp")
    with SluiceClient(plant.address, token="") as client:
        client.register_version(model, "weak", make_weak_classifier_onnx(models_dir))
        client.register_version(model, "good", make_classifier_onnx(models_dir))
    plant.cli("deploy", deployment, f"{model}:weak")
    agent = AgentProcess(plant.address, unique("agent"), plant.root / "agent", plant.root / "agent.log")
    try:
        with SluiceClient(plant.address, token="") as client:
            wait_for_agents(client, deployment, [agent.name])
        started = plant.cli(
            "experiment", "start", name, "--deployment", deployment, "--challenger", f"{model}:good",
            "--traffic", "50", "--metric", "accuracy", "--labels", "joined", "--label-delay", "2s",
            "--min-samples", str(MIN_SAMPLES), "--auto-promote", "--json",
        )  # fmt: skip
        config = json.loads(started.stdout)["config"]
        assert config["label_source"] == "joined" and config["label_delay_seconds"] == 2.0
        with SluiceClient(plant.address, token="") as client:
            generation = client.get_deployment(deployment).generation
            assert client.wait_for_sync(deployment, generation, timeout=30).in_sync
        # A step counts the challenger's rows of the agent windows that began after the step went
        # live (rollout.step_exposure); the burst below takes well under a second, so it must not
        # fall in the 1 s window that was open at that moment: wait until the step is live and held
        # (its 0.5 s hold over), then until that window has surely closed.
        wait_until(
            lambda: "hold over" in experiment(plant, name)["status_reason"], timeout=30, what="the step live and held"
        )
        held_at = time.monotonic()
        wait_until(
            lambda: time.monotonic() > held_at + WINDOW_SECONDS, timeout=10, what="the window open at the start closed"
        )

        X, y = breast_cancer_arrays()
        rng = np.random.default_rng(5)
        rows = rng.integers(0, len(X), PREDICTIONS)
        served: dict[str, str] = {}  # request id -> version that answered
        right: dict[str, bool] = {}
        assert agent.stub is not None
        for i, row in enumerate(rows):
            request_id = f"late-{i}"
            request = predict_request(
                deployment, X[row : row + 1].astype(np.float32), request_id=request_id, routing_key=uuid.uuid4().hex
            )
            answer = agent.stub.Predict(request, timeout=30)
            served[request_id] = answer.served_by.version
            right[request_id] = int(answer.labels[0]) == int(y[row])
        logged = {v: sum(1 for s in served.values() if s == v) for v in ("weak", "good")}
        assert min(logged.values()) >= MIN_SAMPLES  # a 50/50 split of 500

        # No label yet: every logged prediction of each arm is waiting, and the experiment holds.
        def all_logged() -> dict[str, Any] | None:
            shown = experiment(plant, name)
            arms = {a["version"]["version"]: a for a in shown["analysis"]["arms"]}
            counts = {v: int(arms.get(v, {}).get("logged", 0)) for v in logged}
            return shown if counts == logged else None

        waiting = wait_until(all_logged, timeout=60, what=f"{logged} logged predictions in the experiment")
        analysis = waiting["analysis"]
        assert waiting["state"] == "EXPERIMENT_RUNNING"
        assert analysis["label_source"] == "joined" and analysis["label_delay_seconds"] == 2.0
        assert analysis["decision"] == "not_enough_data"
        for arm in analysis["arms"]:
            version = arm["version"]["version"]
            not_due, overdue = int(arm.get("labels_not_due", 0)), int(arm.get("labels_overdue", 0))
            assert not_due + overdue == logged[version]
            assert int(arm.get("n", 0)) == 0
        table = plant.cli("experiment", "show", name).stdout
        assert "waiting for labels: champion" in table and "waiting for labels: challenger" in table

        # Once every prediction is older than the delay, all of them are due and still unlabelled.
        def all_due() -> bool:
            arms = experiment(plant, name)["analysis"]["arms"]
            return all(int(a["labels_overdue"]) == logged[a["version"]["version"]] for a in arms)

        wait_until(all_due, timeout=60, what="every prediction due (older than the 2 s delay)")

        # The truth arrives later from a batch job, for every prediction.
        csv = plant.root / f"{name}.csv"
        csv.write_text("request_id,label\n" + "".join(f"late-{i},{int(y[row])}\n" for i, row in enumerate(rows)))
        imported = json.loads(plant.cli("labels", "import", deployment, str(csv), "--json").stdout)
        assert imported["accepted"] == PREDICTIONS

        last: list[dict[str, Any]] = []

        def promoted() -> dict[str, Any] | None:
            shown = experiment(plant, name)
            last[:] = [shown]
            return shown if shown["state"] == "EXPERIMENT_PROMOTED" else None

        try:
            done = wait_until(promoted, timeout=90, what="the challenger promoted")
        except AssertionError as exc:  # say where the experiment stood
            raise AssertionError(f"{exc}; the experiment last: {json.dumps(last, indent=1)[:4000]}") from None
        with SluiceClient(plant.address, token="") as client:
            champion = [s for s in client.get_deployment(deployment).splits if s.weight == 100]
        assert [s.version.version for s in champion] == ["good"]
        # The verdict was judged on the labelled predictions, as the test counts them itself.
        arms = {a["version"]["version"]: a for a in done["analysis"]["arms"]}
        assert done["analysis"]["decision"] == "challenger_wins"
        for version in ("weak", "good"):
            ids = [r for r, v in served.items() if v == version]
            assert int(arms[version]["n"]) == len(ids)
            assert arms[version]["metric"] == pytest.approx(sum(right[r] for r in ids) / len(ids), abs=1e-12)
    finally:
        agent.stop()


def test_policy_set_reads_accuracy_from_joined_labels_with_a_delay(plant: Plant, models_dir: Path) -> None:
    model, deployment = unique("cancer"), unique("pol")
    with SluiceClient(plant.address, token="") as client:
        client.register_version(model, "v1", make_classifier_onnx(models_dir))
    plant.cli("deploy", deployment, f"{model}:v1")
    shown = json.loads(
        plant.cli("policy", "set", deployment, "accuracy_source=joined", "label_delay=6h", "--json").stdout
    )
    assert shown["accuracy_source"] == "joined" and shown["label_delay_seconds"] == 6 * 3600
    assert {"accuracy_source", "label_delay_seconds"} <= set(shown["overridden"])
    table = plant.cli("policy", "show", deployment).stdout
    assert "accuracy from    joined *, label delay 21600 s *" in table
    # Bad values are refused by the CLI in one line, and nothing changes.
    for bad, message in (
        ("accuracy_source=later", "accuracy_source is live or joined"),
        ("label_delay=soon", "not a duration"),
    ):
        done = run_cli("policy", "set", deployment, bad, address=plant.address)
        assert done.returncode != 0 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    again = json.loads(plant.cli("policy", "show", deployment, "--json").stdout)
    assert again["accuracy_source"] == "joined" and again["label_delay_seconds"] == 6 * 3600
    back = json.loads(plant.cli("policy", "set", deployment, "--reset", "accuracy_source", "--json").stdout)
    assert back["accuracy_source"] == "live"
