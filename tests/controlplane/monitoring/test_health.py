"""Health states from real windows, alert hysteresis, and drift that opens and resolves.

Every window here is a real MetricsRecorder report of real onnxruntime predictions, ingested into
the store with the window time the test chooses, then judged by the evaluator at a chosen `now`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from agent.recorder import MetricsRecorder
from controlplane.context import Context
from controlplane.monitoring import alert_views
from controlplane.monitoring.evaluator import evaluate_once
from controlplane.monitoring.health import VersionHealth
from controlplane.sample_data import breast_cancer_arrays, breast_cancer_feature_names
from controlplane.store.models import utcnow
from tests.controlplane.monitoring.support import AgentStamp, Deployed, deploy_classifier, ingest_at, label_all, serve
from tests.models import breast_cancer_rows


def only_version(ctx: Context, now: datetime, name: str) -> VersionHealth:
    [health] = [h for h in evaluate_once(ctx, now=now) if h.deployment.name == name]
    [version] = health.versions
    return version


def labeled_window(
    ctx: Context, d: Deployed, recorder: MetricsRecorder, stamp: AgentStamp, n: int, wrong: float, at: datetime
) -> None:
    """n predictions on real rows; the first `wrong` share get a label that disagrees."""
    X, _ = breast_cancer_arrays()
    rows = X[np.random.default_rng(n).choice(X.shape[0], n)]
    ids = [f"{at.timestamp()}-{i}" for i in range(n)]
    labels = serve(recorder, d, rows, ids=ids)
    truth = labels.copy()
    flip = round(wrong * n)
    truth[:flip] = 1 - truth[:flip]
    label_all(recorder, d.name, ids, truth)
    ingest_at(ctx, recorder, stamp, at)


def test_accuracy_health_waits_for_samples_escalates_and_resolves_with_hysteresis(
    ctx: Context, models_dir: Path
) -> None:
    ctx.config.health.min_samples = 50
    ctx.config.health.min_drift_samples = 10**9  # drift has its own test
    ctx.config.health.window_seconds = 10
    ctx.config.alerts.resolve_after = 2
    d = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    stamp = AgentStamp("agent-h")
    t = utcnow() - timedelta(hours=1)

    labeled_window(ctx, d, recorder, stamp, 40, 1.0, t)
    v = only_version(ctx, t + timedelta(seconds=1), d.name)
    assert (v.state, v.n_labeled, v.accuracy) == ("unknown", 40, 0.0)  # too few to judge
    assert alert_views.list_alerts(ctx) == []

    labeled_window(ctx, d, recorder, stamp, 160, 0.22, t + timedelta(seconds=2))
    v = only_version(ctx, t + timedelta(seconds=3), d.name)
    assert v.n_labeled == 200 and abs(v.accuracy - (1 - (40 + 35) / 200)) < 1e-12
    assert v.state == "critical" and any("accuracy" in r for r in v.reasons)
    [alert] = alert_views.list_alerts(ctx)
    assert (alert.kind, alert.severity, alert.version) == ("accuracy", "critical", d.version.version)

    t2 = t + timedelta(seconds=100)  # the earlier windows have left the 10 s health window
    labeled_window(ctx, d, recorder, stamp, 100, 0.22, t2)
    v = only_version(ctx, t2 + timedelta(seconds=1), d.name)
    assert v.state == "warning" and abs(v.accuracy - 0.78) < 1e-12
    [alert] = alert_views.list_alerts(ctx)
    assert alert.severity == "critical" and alert.occurrences == 2  # never de-escalates while open

    t3 = t + timedelta(seconds=200)
    labeled_window(ctx, d, recorder, stamp, 100, 0.05, t3)
    assert only_version(ctx, t3 + timedelta(seconds=1), d.name).state == "healthy"
    assert [a.state for a in alert_views.list_alerts(ctx)] == ["open"]  # one healthy look is not enough
    assert only_version(ctx, t3 + timedelta(seconds=2), d.name).state == "healthy"
    assert alert_views.list_alerts(ctx) == []
    [resolved] = alert_views.list_alerts(ctx, include_resolved=True)
    assert resolved.state == "resolved" and resolved.resolved_at is not None


def test_error_rate_and_latency_thresholds(ctx: Context, models_dir: Path) -> None:
    ctx.config.health.min_samples = 100
    ctx.config.health.min_drift_samples = 10**9
    ctx.config.health.window_seconds = 10
    d = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    stamp = AgentStamp("agent-e")
    t = utcnow() - timedelta(hours=1)
    serve(recorder, d, breast_cancer_rows(90, seed=1), latency=0.150)
    for _ in range(10):
        v = d.version
        recorder.record_prediction(d.name, v.model, v.version, "champion", None, None, None, 0.0, "INTERNAL")
    ingest_at(ctx, recorder, stamp, t)
    v = only_version(ctx, t + timedelta(seconds=1), d.name)
    assert v.requests == 100 and v.errors == 10 and abs(v.error_rate - 0.10) < 1e-12
    assert abs(v.latency_p95_ms - 150.0) <= 1.5
    judged = {j.name: j.state for j in v.judgements}
    assert judged["error_rate"] == "critical" and judged["latency_p95"] == "warning"
    kinds = {(a.kind, a.severity) for a in alert_views.list_alerts(ctx)}
    assert kinds == {("error_rate", "critical"), ("latency_p95", "warning")}


def test_drift_opens_an_alert_naming_the_feature_and_resolves_when_the_stream_is_normal_again(
    ctx: Context, models_dir: Path
) -> None:
    ctx.config.health.window_seconds = 10
    ctx.config.health.min_drift_samples = 200
    ctx.config.alerts.resolve_after = 2
    d = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    stamp = AgentStamp("agent-d")
    names = breast_cancer_feature_names()
    shifted_feature = names.index("mean_texture")
    t = utcnow() - timedelta(hours=1)

    def stream(at: datetime, seed: int, shift: float = 1.0) -> None:
        rows = breast_cancer_rows(300, seed=seed)
        rows[:, shifted_feature] *= np.float32(shift)
        serve(recorder, d, rows, batch=10)
        ingest_at(ctx, recorder, stamp, at)

    stream(t, seed=10)
    v = only_version(ctx, t + timedelta(seconds=1), d.name)
    assert v.state == "healthy", v.reasons
    assert len(v.drift) == 30 and not any(f.drifted for f in v.drift)

    t1 = t + timedelta(seconds=30)
    stream(t1, seed=11, shift=1.6)
    v = only_version(ctx, t1 + timedelta(seconds=1), d.name)
    assert v.state == "critical"
    assert v.worst_feature == "mean_texture"
    assert [f.feature for f in v.drift if f.drifted] == ["mean_texture"]
    [alert] = alert_views.list_alerts(ctx)
    assert alert.kind == "drift" and alert.severity == "critical"
    assert "mean_texture" in alert.message

    t2 = t + timedelta(seconds=60)
    stream(t2, seed=12)
    v = only_version(ctx, t2 + timedelta(seconds=1), d.name)
    assert v.state == "healthy" and not any(f.drifted for f in v.drift)
    assert len(alert_views.list_alerts(ctx)) == 1  # hysteresis: one healthy look
    only_version(ctx, t2 + timedelta(seconds=2), d.name)
    assert alert_views.list_alerts(ctx) == []
