"""Alerts follow their condition across champion changes.

With real servers: a control plane and an agent process serving drifted traffic; the drift alert
keeps its id, acknowledgement and start across a promotion and a rollback. In process, at chosen
times: the deployment's health does not look healthy while such an alert is open, and an alert
that the versions now serving never show again resolves after one health window.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from controlplane import deployments
from controlplane.config import Config
from controlplane.context import Context
from controlplane.monitoring import alert_views, alerts
from controlplane.monitoring.evaluator import evaluate_once
from controlplane.sample_data import breast_cancer_feature_names
from controlplane.store.models import utcnow
from core.client import SluiceClient
from protos import common_pb2, controlplane_pb2
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.controlplane.monitoring.support import ALICE, AgentStamp, deploy_classifier, ingest_at, serve
from tests.harness import start_server, unique
from tests.models import breast_cancer_rows, make_baseline, make_classifier_onnx

SHIFTED = breast_cancer_feature_names().index("mean_texture")  # the feature the traffic shifts


def drift_alerts(client: SluiceClient, deployment: str) -> list[controlplane_pb2.Alert]:
    """The drift alerts on the shifted feature (an .npy baseline names its features f0, f1, ...).
    Only that one is asserted on: an unshifted feature, sampled at random from the baseline's own
    rows, can come near the PSI warning line by chance on a loaded machine (few rows a window) and
    raise an alert of its own: another condition, another alert."""
    return [
        a
        for a in client.alerts(include_resolved=True, deployment=deployment)
        if a.kind == "drift" and a.subject == f"f{SHIFTED}"
    ]


def the_drift_alert(client: SluiceClient, deployment: str, **expect: object) -> controlplane_pb2.Alert | None:
    found = drift_alerts(client, deployment)
    if len(found) != 1:
        return None
    alert = found[0]
    ok = all(getattr(alert, k) == v for k, v in expect.items())
    return alert if ok else None


@pytest.fixture
def drifting(tmp_path: Path, models_dir: Path) -> Iterator[tuple[SluiceClient, str, str, AgentProcess]]:
    """A control plane judging every 0.3 s and an agent that is sent drifted rows until the end."""
    config = Config()
    config.alerts.evaluate_seconds = 0.3
    config.health.window_seconds = 20
    config.health.min_drift_samples = 100
    server = start_server(tmp_path, config=config)
    agent: AgentProcess | None = None
    stop = threading.Event()
    sender: threading.Thread | None = None
    try:
        with SluiceClient(server.address, token="") as client:
            model, dep = unique("cancer"), unique("dep")
            baseline = make_baseline(models_dir)
            client.register_version(model, "v1", make_classifier_onnx(models_dir, "logreg", 0), baseline)
            client.register_version(model, "v2", make_classifier_onnx(models_dir, "gbm", 0), baseline)
            client.deploy(dep, f"{model}:v1")
            agent = AgentProcess(server.address, "drift-agent", tmp_path / "cache", tmp_path / "agent.log")
            wait_for_agents(client, dep, ["drift-agent"])
            running = agent

            def send() -> None:
                seed = 0
                while not stop.is_set():
                    rows = breast_cancer_rows(50, seed=seed)
                    rows[:, SHIFTED] *= np.float32(1.8)
                    running.predict_batch(dep, rows, [f"k{seed}-{i}" for i in range(len(rows))])
                    seed += 1
                    stop.wait(0.05)

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            yield client, model, dep, agent
    finally:
        stop.set()
        if sender is not None:
            sender.join(10)
        if agent is not None:
            agent.stop()
        server.stop()


@pytest.mark.slow
def test_a_drift_alert_keeps_its_id_and_ack_across_a_promotion_and_a_rollback(
    drifting: tuple[SluiceClient, str, str, AgentProcess],
) -> None:
    client, model, dep, _agent = drifting
    first = wait_until(
        lambda: the_drift_alert(client, dep, severity=common_pb2.HEALTH_CRITICAL), 60, "a critical drift alert"
    )
    assert first.subject and first.version.version == "v1"
    client.ack_alert(first.id)

    experiment = unique("exp")
    challenger = common_pb2.VersionRef(model=model, version="v2")
    client.start_experiment(
        experiment, controlplane_pb2.ExperimentConfig(deployment=dep, challenger=challenger, plan=[50])
    )
    client.experiment_action("Promote", experiment)
    # right after the change the header does not say healthy: the drift goes on
    assert client.status(dep)[0].health == common_pb2.HEALTH_CRITICAL
    seen = first.occurrences

    def moved_to(version: str) -> controlplane_pb2.Alert | None:
        alert = the_drift_alert(client, dep)
        if alert is None or alert.version.version != version or alert.occurrences <= seen:
            return None
        return alert

    after_promote = wait_until(lambda: moved_to("v2"), 60, "the drift seen on the promoted v2")
    assert after_promote.id == first.id and after_promote.subject == first.subject
    assert after_promote.state == controlplane_pb2.ALERT_ACKNOWLEDGED and after_promote.acknowledged_by
    assert after_promote.opened_at == first.opened_at

    rolled_back = client.rollback(dep)
    assert [(s.version.version, s.weight) for s in rolled_back.splits] == [("v1", 100)]
    assert client.status(dep)[0].health == common_pb2.HEALTH_CRITICAL
    seen = after_promote.occurrences
    after_rollback = wait_until(lambda: moved_to("v1"), 60, "the drift seen on v1 again")
    assert after_rollback.id == first.id and after_rollback.opened_at == first.opened_at
    assert after_rollback.state == controlplane_pb2.ALERT_ACKNOWLEDGED
    assert len(drift_alerts(client, dep)) == 1  # one condition, one alert: nothing resolved, nothing reopened


def test_health_stays_at_the_open_alert_while_a_new_champion_has_too_few_samples(
    ctx: Context, models_dir: Path
) -> None:
    ctx.config.health.window_seconds = 10
    ctx.config.health.min_drift_samples = 200
    d = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    t = utcnow() - timedelta(seconds=3)  # alerts are stamped with the real clock
    rows = breast_cancer_rows(300, seed=3)
    rows[:, SHIFTED] *= np.float32(1.8)
    serve(recorder, d, rows, batch=10)
    ingest_at(ctx, recorder, AgentStamp("agent-c"), t)
    [health] = [h for h in evaluate_once(ctx, now=t + timedelta(seconds=1)) if h.deployment.name == d.name]
    assert health.state == "critical"
    [alert] = alert_views.list_alerts(ctx, deployment=d.name)
    assert (alert.kind, alert.subject) == ("drift", breast_cancer_feature_names()[SHIFTED])

    other = deploy_classifier(ctx, models_dir, kind="gbm")  # a second version of another model...
    deployments.deploy(ctx, ALICE, d.name, other.version.model, other.version.version)  # ...now the champion
    [health] = [h for h in evaluate_once(ctx, now=utcnow()) if h.deployment.name == d.name]
    assert [v.state for v in health.versions] == ["unknown"]  # no sample of the new champion yet
    assert health.state == "critical" and health.held_by and f"alert {alert.id}" in health.held_by[0][1]
    assert [a.id for a in alert_views.list_alerts(ctx, deployment=d.name)] == [alert.id]

    # never seen on the versions serving now for a whole health window: resolved
    evaluate_once(ctx, now=utcnow() + timedelta(seconds=12))
    assert alert_views.list_alerts(ctx, deployment=d.name) == []
    [resolved] = alert_views.list_alerts(ctx, include_resolved=True, deployment=d.name)
    assert "not seen on the versions serving the deployment" in resolved.message


def test_the_condition_is_bad_while_any_version_is(ctx: Context, models_dir: Path) -> None:
    d = deploy_classifier(ctx, models_dir)
    key = {"deployment": d.name, "kind": "accuracy", "subject": "accuracy"}
    alerts.open_alert(ctx, severity="warning", message="v1 low", version_id=d.version.id, **key)
    other = deploy_classifier(ctx, models_dir, kind="gbm")
    alerts.open_alert(ctx, severity="warning", message="v2 low", version_id=other.version.id, **key)
    [alert] = alert_views.list_alerts(ctx)
    assert (alert.version_id, alert.occurrences, alert.message) == (other.version.id, 2, "v2 low")
    # keyed by version (no subject): another version is another alert
    alerts.open_alert(
        ctx, deployment=d.name, kind="rollout_gate_failed", severity="critical", message="g", version_id=d.version.id
    )
    alerts.open_alert(
        ctx,
        deployment=d.name,
        kind="rollout_gate_failed",
        severity="critical",
        message="g",
        version_id=other.version.id,
    )
    assert len(alert_views.list_alerts(ctx)) == 3
