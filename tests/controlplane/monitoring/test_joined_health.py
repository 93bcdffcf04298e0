"""Health and alerts judged on label-joined figures (issue 16 item 3): with the policy's
`accuracy_source = joined` and a label delay, the health evaluation judges the accuracy of the
logged predictions old enough to have their label (the real segment store, the real label store,
DuckDB), and the alert names that source; predictions younger than the delay are not judged, and
with the live source the same labels raise nothing (no agent fed them back)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controlplane.context import Context
from controlplane.labels.incoming import LabelInput
from controlplane.monitoring import alert_views, policy
from controlplane.monitoring.evaluator import evaluate_once
from controlplane.store.models import utcnow
from core.errors import InvalidInput
from core.vocabulary import MetricSource
from tests.controlplane.experiments.support import ALICE
from tests.controlplane.labels.support import deployed, import_labels
from tests.controlplane.predlog.test_joined import log_predictions, serving

HOURS = 3600.0


def accuracy_alerts(ctx: Context, deployment: str) -> list[alert_views.AlertInfo]:
    return [a for a in alert_views.active_alerts(ctx, deployment) if a.kind == "accuracy"]


def test_accuracy_below_threshold_on_joined_labels_raises_an_alert_naming_the_source(
    ctx: Context, models_dir: Path, tmp_path: Path
) -> None:
    deployment = deployed(ctx, models_dir)
    route = serving(ctx, deployment)
    now = time.time()
    # 200 predictions made 2.5 hours ago, 120 of them wrong once their labels arrive (accuracy 0.4);
    # 200 made just now, all right: younger than the 2 h delay, so not judged.
    old = [f"old-{i}" for i in range(200)]
    new = [f"new-{i}" for i in range(200)]
    log_predictions(ctx, tmp_path, deployment, route, old, labels=["1"] * 200, ts=now - 2.5 * HOURS)
    log_predictions(ctx, tmp_path, deployment, route, new, labels=["1"] * 200, ts=now - 60)
    truth = [LabelInput(r, label="0" if i < 120 else "1") for i, r in enumerate(old)]
    import_labels(ctx, deployment, "late", truth + [LabelInput(r, label="1") for r in new])

    # Live source (the default): no agent fed these labels back, so accuracy is not judged.
    evaluate_once(ctx, utcnow())
    assert accuracy_alerts(ctx, deployment) == []

    policy.set_policy(
        ctx,
        ALICE,
        deployment,
        policy.PolicyChange(accuracy_source=MetricSource.JOINED, label_delay_seconds=2 * HOURS),
    )
    evaluate_once(ctx, utcnow())
    [alert] = accuracy_alerts(ctx, deployment)
    assert alert.severity == "critical" and alert.value == pytest.approx(80 / 200, abs=1e-12)
    assert "accuracy 0.4 < 0.75 (critical) on 200 label-joined" in alert.message
    assert "made 3h to 2h ago" in alert.message

    # With no delay the window is the last hour: the 200 fresh right answers are judged, healthy.
    policy.set_policy(ctx, ALICE, deployment, policy.PolicyChange(label_delay_seconds=0.0))
    shown = policy.get_policy(ctx, deployment)
    assert shown.health.accuracy_source == "joined" and "accuracy from joined labels, 0 s delay" in policy.describe(
        shown
    )
    for _ in range(ctx.config.alerts.resolve_after):
        evaluate_once(ctx, utcnow())
    assert accuracy_alerts(ctx, deployment) == []


def test_a_bad_label_delay_is_refused_and_nothing_changes(ctx: Context, models_dir: Path) -> None:
    deployment = deployed(ctx, models_dir)
    before = policy.get_policy(ctx, deployment)
    for delay in (-1.0, float("nan"), 400 * 86400.0):
        with pytest.raises(InvalidInput, match="label_delay_seconds must be 0 to"):
            policy.set_policy(ctx, ALICE, deployment, policy.PolicyChange(label_delay_seconds=delay))
    assert policy.get_policy(ctx, deployment) == before
