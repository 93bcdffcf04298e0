"""A deployment's health policy: what it sets over the configuration, validated, audited, and
the thresholds health is judged by (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from controlplane import audit
from controlplane.context import Context
from controlplane.deployment_reads import list_deployments
from controlplane.monitoring.health import deployment_health
from controlplane.monitoring.policy import PolicyChange, get_policy, set_policy
from controlplane.store.models import utcnow
from core.errors import InvalidInput, NotFound
from core.vocabulary import Health, PolicyAction
from tests.controlplane.experiments.support import ALICE, add_window, deployed_pair


def test_a_policy_sets_some_values_and_keeps_the_configurations_for_the_rest(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir)
    default = get_policy(ctx, s.deployment)
    assert (default.action, default.action_after_seconds, default.overridden) == (PolicyAction.ALERT, 300.0, ())
    assert (default.health.error_rate_warning, default.health.error_rate_critical) == (0.01, 0.05)

    change = PolicyChange(
        thresholds={"error_rate_critical": 0.02, "p95_latency_ms_warning": 50.0},
        action=PolicyAction.ROLLBACK_CHAMPION,
        action_after_seconds=120.0,
        reason="tight SLO",
    )
    info = set_policy(ctx, ALICE, s.deployment, change)
    assert info.action == PolicyAction.ROLLBACK_CHAMPION and info.action_after_seconds == 120.0
    assert (info.health.error_rate_warning, info.health.error_rate_critical) == (0.01, 0.02)
    assert info.health.p95_latency_ms_warning == 50.0 and info.health.p95_latency_ms_critical == 200.0
    assert set(info.overridden) == {"error_rate_critical", "p95_latency_ms_warning", "action", "action_after_seconds"}
    assert info.updated_by == "alice" and get_policy(ctx, s.deployment) == info
    (event,) = [e for e in audit.list_audit(ctx.db, target=s.deployment) if e.action == "policy.set"]
    assert event.principal == "alice" and event.details["after"]["error_rate_critical"] == 0.02
    assert event.details["before"] == {} and event.details["reason"] == "tight SLO"

    # reset: back to the configuration's value for one name, then for everything
    info = set_policy(ctx, ALICE, s.deployment, PolicyChange(reset=("p95_latency_ms_warning",)))
    assert info.health.p95_latency_ms_warning == 100.0 and "p95_latency_ms_warning" not in info.overridden
    info = set_policy(ctx, ALICE, s.deployment, PolicyChange(reset=("all",)))
    assert info.overridden == () and info.action == PolicyAction.ALERT


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            PolicyChange(thresholds={"error_rate_critical": 0.005}),
            "error_rate_critical .* must be >= error_rate_warning",
        ),
        (PolicyChange(thresholds={"accuracy_critical": 0.9}), "accuracy_critical .* must be <= accuracy_warning"),
        (PolicyChange(thresholds={"accuracy_warning": 1.5}), "between 0 and 1"),
        (PolicyChange(thresholds={"psi_warning": -1.0}), ">= 0"),
        (PolicyChange(thresholds={"speed": 1.0}), "unknown threshold 'speed'"),
        (PolicyChange(thresholds={"psi_warning": float("nan")}), "finite"),
        (PolicyChange(action_after_seconds=0.0), "more than 0"),
        (PolicyChange(action_after_seconds=1e9), "at most"),
        (PolicyChange(reset=("everything",)), "cannot reset everything"),
    ],
)
def test_bad_policies_are_refused_and_change_nothing(
    ctx: Context, models_dir: Path, change: PolicyChange, message: str
) -> None:
    s = deployed_pair(ctx, models_dir)
    before = get_policy(ctx, s.deployment)
    with pytest.raises(InvalidInput, match=message):
        set_policy(ctx, ALICE, s.deployment, change)
    assert get_policy(ctx, s.deployment) == before
    assert not [e for e in audit.list_audit(ctx.db, target=s.deployment) if e.action == "policy.set"]


def test_an_unknown_deployment_has_no_policy(ctx: Context) -> None:
    with pytest.raises(NotFound):
        get_policy(ctx, "nowhere")
    with pytest.raises(NotFound):
        set_policy(ctx, ALICE, "nowhere", PolicyChange(action=PolicyAction.NONE))


def test_health_is_judged_by_the_deployments_own_thresholds(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir)
    other = deployed_pair(ctx, models_dir)
    now = utcnow()
    for setup in (s, other):  # 3% errors: a warning by the configuration's 1% / 5%
        for second in range(5):
            add_window(
                ctx,
                setup.deployment,
                setup.champion.id,
                "",
                now - timedelta(seconds=5 - second),
                requests=200,
                errors=6,
            )

    def state(name: str) -> Health:
        (dep,) = list_deployments(ctx, name)
        return deployment_health(ctx, dep, 60.0, now).state

    assert state(s.deployment) == state(other.deployment) == Health.WARNING
    set_policy(
        ctx, ALICE, s.deployment, PolicyChange(thresholds={"error_rate_warning": 0.005, "error_rate_critical": 0.02})
    )
    assert state(s.deployment) == Health.CRITICAL
    assert state(other.deployment) == Health.WARNING  # another deployment keeps the configuration's


def test_fallback_is_off_by_default_and_reaches_the_agents_snapshot_in_a_new_generation(
    ctx: Context, models_dir: Path
) -> None:
    from controlplane.agenthub.snapshot import build_snapshot
    from controlplane.deployment_reads import list_history

    s = deployed_pair(ctx, models_dir)
    assert not get_policy(ctx, s.deployment).fallback
    (before,) = list_deployments(ctx, s.deployment)
    assert not before.fallback

    info = set_policy(ctx, ALICE, s.deployment, PolicyChange(fallback=True, reason="keep clients whole"))
    assert info.fallback and "fallback" in info.overridden
    (after,) = list_deployments(ctx, s.deployment)
    assert after.fallback and after.generation == before.generation + 1  # agents apply it like a change
    assert [(x.version.ref, x.weight) for x in after.splits] == [(x.version.ref, x.weight) for x in before.splits]
    history = list_history(ctx, s.deployment)[0]
    assert (history.action, history.reason, history.generation) == ("policy.set", "fallback on", after.generation)
    (snap,) = [d for d in build_snapshot(ctx, 1).deployments if d.name == s.deployment]
    assert snap.fallback and snap.generation == after.generation
    assert snap.tolerance == 0.1  # the configuration's, as the policy sets none
    (event,) = [e for e in audit.list_audit(ctx.db, target=s.deployment) if e.action == "policy.set"]
    assert event.details["after"] == {"fallback": True}

    # the same value again moves nothing; a threshold change moves no generation either
    set_policy(ctx, ALICE, s.deployment, PolicyChange(fallback=True))
    set_policy(ctx, ALICE, s.deployment, PolicyChange(thresholds={"rmse_warning": 0.3}))
    assert list_deployments(ctx, s.deployment)[0].generation == after.generation
    # reset: off again, in a new generation
    info = set_policy(ctx, ALICE, s.deployment, PolicyChange(reset=("fallback",)))
    assert not info.fallback and info.health.rmse_warning == 0.3
    (off,) = list_deployments(ctx, s.deployment)
    assert not off.fallback and off.generation == after.generation + 1
    # the regression tolerance is counted by the agents too: a new generation carries it
    set_policy(ctx, ALICE, s.deployment, PolicyChange(thresholds={"tolerance": 0.25}))
    (wider,) = list_deployments(ctx, s.deployment)
    assert wider.generation == off.generation + 1 and list_history(ctx, s.deployment)[0].reason == "tolerance 0.25"
    (snap,) = [d for d in build_snapshot(ctx, 2).deployments if d.name == s.deployment]
    assert snap.tolerance == 0.25
