"""Retraining triggers: when a run is due, the rate limits, and a real run end to end."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from controlplane.config import AlertsConfig, Config, RetrainingConfig
from controlplane.context import Context
from controlplane.monitoring import retraining
from controlplane.monitoring.state import state_of
from controlplane.sample_data import write_breast_cancer_csv
from controlplane.store.models import ModelVersionRow, utcnow
from core.client import SluiceClient
from tests.controlplane.monitoring.support import AgentStamp, Deployed, deploy_classifier, ingest_at, label_all, serve
from tests.harness import run_cli, start_server, unique
from tests.models import breast_cancer_rows, make_baseline, make_classifier_onnx


def labels(ctx: Context, d: Deployed, n: int, at: datetime) -> None:
    recorder = d.recorder(ctx)
    rows = breast_cancer_rows(n, seed=n)
    ids = [f"{at.timestamp()}-{i}" for i in range(n)]
    predicted = serve(recorder, d, rows, ids=ids, batch=10)
    label_all(recorder, d.name, ids, predicted)
    ingest_at(ctx, recorder, AgentStamp(unique("agent")), at)


def test_triggers_and_rate_limits(ctx: Context, models_dir: Path) -> None:
    d = deploy_classifier(ctx, models_dir)
    rc = RetrainingConfig(deployment=d.name, command="true", new_labeled_samples=50, min_hours_between=1, max_per_day=2)
    # Everything happens in the past: ingest clamps future window times to now.
    t0 = utcnow() - timedelta(days=3)
    with ctx.db.session() as s:
        s.execute(update(ModelVersionRow).where(ModelVersionRow.id == d.version.id).values(created_at=t0))
    assert retraining.start_if_due(ctx, rc, t0) is None  # no labels yet
    labels(ctx, d, 60, t0 + timedelta(minutes=1))
    first = retraining.start_if_due(ctx, rc, t0 + timedelta(minutes=2))
    assert first is not None and "60 new labeled samples" in first.reason
    assert retraining.start_if_due(ctx, rc, t0 + timedelta(minutes=3)) is None  # one is running
    retraining.finish_run(ctx, first.id, "succeeded", "done")
    labels(ctx, d, 70, t0 + timedelta(minutes=4))
    assert retraining.start_if_due(ctx, rc, t0 + timedelta(minutes=30)) is None  # min_hours_between
    second = retraining.start_if_due(ctx, rc, t0 + timedelta(hours=1, minutes=3))
    assert second is not None and "70 new labeled samples" in second.reason
    retraining.finish_run(ctx, second.id, "failed", "exit 1")
    labels(ctx, d, 80, t0 + timedelta(hours=2))
    assert retraining.start_if_due(ctx, rc, t0 + timedelta(hours=3)) is None  # max_per_day = 2
    third = retraining.start_if_due(ctx, rc, t0 + timedelta(hours=24, minutes=3))
    assert third is not None and "80 new labeled samples" in third.reason
    runs = retraining.list_runs(ctx, d.name)
    assert [(r.id, r.state) for r in runs] == [(third.id, "running"), (second.id, "failed"), (first.id, "succeeded")]
    assert retraining.list_runs(ctx, unique("other")) == []
    assert retraining.abandon_running(ctx) == 1
    assert retraining.list_runs(ctx, d.name)[0].state == "failed"


def test_age_and_critical_health_triggers(ctx: Context, models_dir: Path) -> None:
    d = deploy_classifier(ctx, models_dir)
    created = d.version.created_at
    by_age = RetrainingConfig(deployment=d.name, command="true", max_age_hours=2, min_hours_between=0)
    assert retraining.start_if_due(ctx, by_age, created + timedelta(hours=1)) is None
    run = retraining.start_if_due(ctx, by_age, created + timedelta(hours=2, minutes=1))
    assert run is not None and f"champion {d.version.ref} is 2.02 h old" in run.reason
    retraining.finish_run(ctx, run.id, "succeeded", "ok")
    # The age restarts with the last run.
    assert retraining.start_if_due(ctx, by_age, created + timedelta(hours=3)) is None
    assert "the last retraining" in retraining.start_if_due(ctx, by_age, created + timedelta(hours=4, minutes=2)).reason

    other = deploy_classifier(ctx, models_dir)
    on_critical = RetrainingConfig(deployment=other.name, command="true", on_critical=True)
    assert retraining.start_if_due(ctx, on_critical) is None
    state_of(ctx).deployment_health[other.name] = "critical"
    run = retraining.start_if_due(ctx, on_critical)
    assert run is not None and "health is critical" in run.reason
    missing = RetrainingConfig(deployment=unique("gone"), command="true", on_critical=True)
    assert retraining.start_if_due(ctx, missing) is None


def test_a_trigger_runs_the_trainer_registers_the_version_and_respects_its_rate_limit(
    tmp_path: Path, models_dir: Path
) -> None:
    data = tmp_path / "cancer.csv"
    write_breast_cancer_csv(data)
    deployment = unique("retrain")
    config = Config(
        alerts=AlertsConfig(evaluate_seconds=0.2),
        retraining=[
            RetrainingConfig(
                deployment=deployment,
                command=f"{sys.executable} -m cli train --data {data} --kind gbm",
                max_age_hours=0.0001,  # due almost at once, and again 0.36 s after each run
                min_hours_between=0,
                max_per_day=1,
            )
        ],
    )
    server = start_server(tmp_path, config=config)
    try:
        model = unique("cancer")
        with SluiceClient(server.address, token="") as client:
            client.register_version(model, "v1", make_classifier_onnx(models_dir), make_baseline(models_dir))
            client.deploy(deployment, f"{model}:v1")
            deadline = time.monotonic() + 180
            runs = []
            while time.monotonic() < deadline:
                runs = client.retraining_runs(deployment)
                if runs and runs[0].state != "running":
                    break
                time.sleep(0.2)
            [run] = runs
            assert run.state == "succeeded", run.detail
            assert run.produced.model == model and run.produced.version.startswith("retrain-")
            assert "is 0.00" in run.reason or "old" in run.reason
            produced = client.get_version(f"{model}:{run.produced.version}")
            assert produced.task == "classifier" and produced.baseline.n_rows > 0
            if retraining.experiments_engine() is None:
                assert "the experiments engine is not available" in run.detail
            else:  # started as a challenger beside the champion
                assert f"started experiment {deployment}-{run.produced.version}" in run.detail, run.detail
                experiment = client.get_experiment(f"{deployment}-{run.produced.version}")
                assert experiment.config.challenger.version == run.produced.version
            # Many more evaluation rounds: the trigger still holds but max_per_day = 1 holds it back.
            time.sleep(3)
            assert len(client.retraining_runs(deployment)) == 1
        listed = run_cli("version", "list", model, "--json", address=server.address)
        assert listed.returncode == 0, listed.stderr
        versions = [v["ref"]["version"] for v in json.loads(listed.stdout)]
        assert versions == ["v1", run.produced.version]
        table = run_cli("retraining", deployment, address=server.address)
        assert table.returncode == 0 and run.produced.version in table.stdout
    finally:
        server.stop()
