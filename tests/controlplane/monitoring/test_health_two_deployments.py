"""Health keeps each deployment's evidence to itself: two deployments serving the same version,
and agents that serve one deployment and not the other (issue 19's mutation triage).

Real MetricsRecorder reports of real onnxruntime predictions, ingested with chosen window times,
judged by the evaluator, over real SQL (SQLite and PostgreSQL).
"""

from __future__ import annotations

import io
import math
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from controlplane import deployment_reads, deployments
from controlplane.agenthub import agents
from controlplane.context import Context
from controlplane.domain import SplitInfo
from controlplane.monitoring.evaluator import evaluate_once
from controlplane.monitoring.health import VersionHealth, agents_sync, deployment_health
from controlplane.monitoring.samples import baseline_sample
from controlplane.sample_data import breast_cancer_feature_names
from controlplane.store.models import utcnow
from core.vocabulary import AgentState, ServingRole
from tests.controlplane.monitoring.support import ALICE, AgentStamp, Deployed, deploy_classifier, ingest_at, serve
from tests.harness import unique
from tests.models import breast_cancer_rows


def version_of(ctx: Context, now: datetime, name: str) -> VersionHealth:
    [health] = [h for h in evaluate_once(ctx, now=now) if h.deployment.name == name]
    [version] = health.versions
    return version


def test_drift_of_one_deployment_is_not_read_into_another_serving_the_same_version(
    ctx: Context, models_dir: Path
) -> None:
    """One version deployed twice: one deployment's inputs drift, the other's do not. Each is
    judged on its own inputs, the KS test included (the reservoir is per deployment)."""
    ctx.config.health.window_seconds = 10
    ctx.config.health.min_drift_samples = 200
    calm = deploy_classifier(ctx, models_dir)
    shifted = Deployed(unique("dep"), calm.version, calm.model)
    deployments.deploy(ctx, ALICE, shifted.name, calm.version.model, calm.version.version)
    recorder = calm.recorder(ctx)  # one agent serving both deployments
    stamp = AgentStamp(unique("agent"))
    texture = breast_cancer_feature_names().index("mean_texture")
    t = utcnow() - timedelta(hours=1)

    serve(recorder, calm, breast_cancer_rows(300, seed=20), batch=10)
    rows = breast_cancer_rows(300, seed=21)
    rows[:, texture] *= np.float32(1.6)
    serve(recorder, shifted, rows, batch=10)
    ingest_at(ctx, recorder, stamp, t)

    sample = baseline_sample(ctx, calm.version)
    assert sample is not None and sample.ndim == 2 and sample.shape[1] == 30  # the KS test's side of the baseline

    now = t + timedelta(seconds=1)
    drifted = version_of(ctx, now, shifted.name)
    assert drifted.state == "critical" and [f.feature for f in drifted.drift if f.drifted] == ["mean_texture"]
    v = version_of(ctx, now, calm.name)
    assert v.state == "healthy", v.reasons
    assert len(v.drift) == 30 and not any(f.drifted for f in v.drift)
    # The KS test ran (from this deployment's reservoir and the 2-D baseline sample), not PSI alone.
    assert all(math.isfinite(f.ks_p_value) for f in v.drift)
    assert all(f.ks_p_value > 0.01 / 30 for f in v.drift)


def test_agents_in_sync_count_only_what_they_applied_of_this_deployment(ctx: Context, models_dir: Path) -> None:
    """DeploymentHealth's agents: connected ones that applied this deployment's generation, out of
    all connected ones; lost ones that had served this deployment."""
    first = deploy_classifier(ctx, models_dir)
    second = deploy_classifier(ctx, models_dir)
    deployments.deploy(ctx, ALICE, second.name, second.version.model, second.version.version, reason="again")
    [one] = deployment_reads.list_deployments(ctx, first.name)
    [two] = deployment_reads.list_deployments(ctx, second.name)
    assert two.generation > one.generation > 0

    def agent(applied: dict[str, int], state: AgentState = AgentState.CONNECTED) -> str:
        agent_id = unique("agent")
        agents.agent_connected(ctx, agents.validate_hello(agent_id, agent_id, "test-host", "127.0.0.1:7502", {}, {}))
        if applied:
            agents.record_applied(ctx, agent_id, applied)
        if state != AgentState.CONNECTED:
            agents.set_state(ctx, agent_id, state)
        return agent_id

    before = agents_sync(ctx, one.name, one.generation)
    agent({one.name: one.generation, two.name: two.generation})  # in sync with both
    agent({one.name: one.generation - 1, two.name: two.generation})  # behind on this one, current on the other
    agent({})  # connected, nothing applied yet
    agent({one.name: one.generation}, AgentState.LOST)  # lost, had served this one
    agent({two.name: two.generation}, AgentState.LOST)  # lost, served only the other
    after = agents_sync(ctx, one.name, one.generation)
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == (1, 3, 1)


def test_a_stored_baseline_sample_that_is_not_rows_by_features_is_no_sample(ctx: Context, models_dir: Path) -> None:
    """Registration only stores 2-D samples; one that is not (an older release's, a file edited by
    hand) leaves the KS test out (PSI alone) instead of failing the deployment's health."""
    d = deploy_classifier(ctx, models_dir)
    assert baseline_sample(ctx, d.version) is not None
    for array in (np.arange(60, dtype=np.float64), np.zeros((4, 60, 2))):
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        sha = ctx.artifacts.put_bytes(buffer.getvalue())
        assert baseline_sample(ctx, replace(d.version, baseline_sha256=sha)) is None


def test_a_table_baseline_gives_its_features_in_the_order_the_agents_sample_them(
    ctx: Context, models_dir: Path
) -> None:
    """A CSV baseline: the KS test's sample is its feature columns in feature order (the agents'
    reservoir order), not every numeric column of the file in file order."""
    d = deploy_classifier(ctx, models_dir)
    csv = "b,a,label\n" + "".join(f"{10 + i},{i},{i % 2}\n" for i in range(60))
    sha = ctx.artifacts.put_bytes(csv.encode())
    features = [{"index": 0, "name": "a"}, {"index": 1, "name": "b"}]
    sample = baseline_sample(ctx, replace(d.version, baseline_sha256=sha, baseline={"features": features}))
    assert sample is not None and sample.shape == (60, 2)
    assert sample[:, 0].tolist() == list(range(60)) and sample[:, 1].tolist() == list(range(10, 70))


def test_a_shadow_is_not_counted_in_the_deployment_s_requests_per_second(ctx: Context, models_dir: Path) -> None:
    """The deployment's rate is its answering versions': a shadow (here one that has reported
    nothing yet) scores copies of requests the deployment already answered."""
    d = deploy_classifier(ctx, models_dir)
    quiet = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    t = utcnow() - timedelta(hours=1)
    serve(recorder, d, breast_cancer_rows(120, seed=22), batch=10)
    ingest_at(ctx, recorder, AgentStamp(unique("agent")), t)
    [info] = deployment_reads.list_deployments(ctx, d.name)
    [champion] = info.splits
    with_shadow = replace(info, splits=[champion, SplitInfo(quiet.version, 0, ServingRole.SHADOW)])
    health = deployment_health(ctx, with_shadow, 10.0, now=t + timedelta(seconds=1))
    answering, shadow = (v.requests_per_second for v in health.versions)
    assert answering > 0 and shadow == 0.0
    assert health.requests_per_second == answering
