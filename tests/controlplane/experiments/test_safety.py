"""The health policy's automatic action, driven by real health verdicts over stored windows
with an injected clock (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from controlplane import audit, deployment_reads, deployments
from controlplane.context import Context
from controlplane.experiments import commands, safety
from controlplane.monitoring import alert_views
from controlplane.monitoring.health import deployment_health
from controlplane.monitoring.policy import PolicyChange, get_policy, set_policy
from core.vocabulary import PolicyAction
from tests.controlplane.experiments.support import ALICE, Setup, add_window, deployed_pair, start

AFTER = 120.0


def failing(ctx: Context, s: Setup, version_id: int, at: datetime, errors: int = 40) -> None:
    """Five one-second windows of 100 requests with `errors` failures each, ending at `at`."""
    for second in range(5):
        add_window(ctx, s.deployment, version_id, "", at - timedelta(seconds=5 - second), requests=100, errors=errors)


def evaluate(ctx: Context, s: Setup, now: datetime) -> safety.Outcome | None:
    """One evaluation round of the deployment, as the monitoring loop runs it."""
    (dep,) = deployment_reads.list_deployments(ctx, s.deployment)
    return safety.act_on_health(ctx, deployment_health(ctx, dep, 60.0, now), now)


def champion(ctx: Context, s: Setup) -> str:
    (dep,) = deployment_reads.list_deployments(ctx, s.deployment)
    assert dep.champion is not None
    return dep.champion.version


def second_champion(ctx: Context, models_dir: Path) -> Setup:
    """v1 deployed, then v2 deployed over it: v1 is the champion a rollback restores."""
    s = deployed_pair(ctx, models_dir)
    deployments.deploy(ctx, ALICE, s.deployment, s.model, "v2")
    return s


def test_a_champion_critical_for_the_configured_time_is_rolled_back_with_its_evidence(
    ctx: Context, models_dir: Path
) -> None:
    s = second_champion(ctx, models_dir)
    policy = PolicyChange(action=PolicyAction.ROLLBACK_CHAMPION, action_after_seconds=AFTER)
    set_policy(ctx, ALICE, s.deployment, policy)
    t0 = deployments.utcnow()
    failing(ctx, s, s.challenger.id, t0)
    assert evaluate(ctx, s, t0) is None  # the clock starts
    assert get_policy(ctx, s.deployment).acts_at == t0 + timedelta(seconds=AFTER)
    later = t0 + timedelta(seconds=AFTER / 2)
    failing(ctx, s, s.challenger.id, later)
    assert evaluate(ctx, s, later) is None and champion(ctx, s) == "v2"

    end = t0 + timedelta(seconds=AFTER + 1)
    failing(ctx, s, s.challenger.id, end)
    outcome = evaluate(ctx, s, end)
    assert outcome is not None and outcome.action == PolicyAction.ROLLBACK_CHAMPION
    assert champion(ctx, s) == "v1"
    assert "rolled back to" in outcome.done and "error_rate 0.4 > 0.05" in outcome.done
    (entry, *_) = deployment_reads.list_history(ctx, s.deployment)
    assert (entry.action, entry.principal) == ("rollback", "health-policy")
    assert "critical for 121 s" in entry.reason and "error_rate" in entry.reason
    (alert,) = [a for a in alert_views.list_alerts(ctx, deployment=s.deployment) if a.kind == safety.ALERT_KIND]
    assert alert.severity == "critical" and "rolled back to" in alert.message
    info = get_policy(ctx, s.deployment)
    assert info.acts_at is None and info.last_action == outcome.done and info.last_action_at == end
    assert [e.principal for e in audit.list_audit(ctx.db, target=s.deployment) if e.action == "rollback"] == [
        "health-policy"
    ]


def test_with_action_alert_nothing_moves(ctx: Context, models_dir: Path) -> None:
    s = second_champion(ctx, models_dir)  # the configuration's default action: alert
    t0 = deployments.utcnow()
    for offset in (0.0, AFTER, 300.0):
        failing(ctx, s, s.challenger.id, t0 + timedelta(seconds=offset))
        outcome = evaluate(ctx, s, t0 + timedelta(seconds=offset))
    assert outcome is not None and outcome.action == PolicyAction.ALERT and "no traffic moved" in outcome.done
    assert champion(ctx, s) == "v2"
    assert [a.kind for a in alert_views.list_alerts(ctx, deployment=s.deployment) if a.kind == safety.ALERT_KIND]


def test_an_operators_change_restarts_the_clock_and_one_calm_round_does_not(ctx: Context, models_dir: Path) -> None:
    s = second_champion(ctx, models_dir)
    set_policy(
        ctx, ALICE, s.deployment, PolicyChange(action=PolicyAction.ROLLBACK_CHAMPION, action_after_seconds=AFTER)
    )
    t0 = deployments.utcnow()
    failing(ctx, s, s.challenger.id, t0)
    evaluate(ctx, s, t0)
    # one calm evaluation (the windows have aged out) inside the stretch: the clock keeps running
    calm = t0 + timedelta(seconds=AFTER / 2)
    assert evaluate(ctx, s, calm) is None
    assert get_policy(ctx, s.deployment).critical_since == t0
    # an operator changes the deployment: the policy does not fight them, its clock starts over
    deployments.set_traffic(ctx, ALICE, s.deployment, [(s.model, "v2", 100)], reason="looking into it")
    end = t0 + timedelta(seconds=AFTER + 1)
    failing(ctx, s, s.challenger.id, end)
    assert evaluate(ctx, s, end) is None and champion(ctx, s) == "v2"
    assert get_policy(ctx, s.deployment).critical_since == end
    # calm for alerts.resolve_after rounds in a row: the clock stops
    for i in range(ctx.config.alerts.resolve_after):
        evaluate(ctx, s, end + timedelta(seconds=100 + i))
    assert get_policy(ctx, s.deployment).critical_since is None


def test_a_critical_challenger_is_rolled_back_or_its_experiment_paused(ctx: Context, models_dir: Path) -> None:
    for action, state in ((PolicyAction.ROLLBACK_CHALLENGER, "rolled_back"), (PolicyAction.PAUSE, "paused")):
        s = deployed_pair(ctx, models_dir)
        set_policy(ctx, ALICE, s.deployment, PolicyChange(action=action, action_after_seconds=AFTER))
        exp = start(ctx, s)
        t0 = deployments.utcnow()
        failing(ctx, s, s.champion.id, t0, errors=0)  # a healthy champion
        failing(ctx, s, s.challenger.id, t0)
        evaluate(ctx, s, t0)
        end = t0 + timedelta(seconds=AFTER + 1)
        failing(ctx, s, s.champion.id, end, errors=0)
        failing(ctx, s, s.challenger.id, end)
        outcome = evaluate(ctx, s, end)
        assert outcome is not None and outcome.action == action
        after = commands.get_experiment(ctx, exp.name)
        assert after.state == state and "health policy" in after.status_reason
        (dep,) = deployment_reads.list_deployments(ctx, s.deployment)
        weights = {sp.version.version: sp.weight for sp in dep.splits}
        assert weights == ({"v1": 100} if state == "rolled_back" else {"v1": 90, "v2": 10})


def test_the_clock_stops_only_after_resolve_after_calm_rounds_in_a_row(ctx: Context, models_dir: Path) -> None:
    """docs (safety.py, OPERATIONS): a critical round in a calm stretch starts the count of calm
    rounds again; only `alerts.resolve_after` calm rounds in a row stop the clock."""
    s = second_champion(ctx, models_dir)
    set_policy(
        ctx, ALICE, s.deployment, PolicyChange(action=PolicyAction.ROLLBACK_CHAMPION, action_after_seconds=AFTER)
    )
    rounds = ctx.config.alerts.resolve_after
    t0 = deployments.utcnow()
    failing(ctx, s, s.challenger.id, t0)
    evaluate(ctx, s, t0)
    for i in range(rounds - 1):  # one calm round short
        assert evaluate(ctx, s, t0 + timedelta(seconds=61 + i)) is None
    again = t0 + timedelta(seconds=70)  # still short of AFTER: nothing fires
    failing(ctx, s, s.challenger.id, again)
    assert evaluate(ctx, s, again) is None
    for i in range(rounds - 1):
        evaluate(ctx, s, again + timedelta(seconds=61 + i))
    assert get_policy(ctx, s.deployment).critical_since == t0  # the critical round restarted the count
    evaluate(ctx, s, again + timedelta(seconds=61 + rounds))
    assert get_policy(ctx, s.deployment).critical_since is None


def test_a_healthy_deployment_under_the_configured_policy_is_left_alone(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir)  # no policy of its own: the configuration's (action alert)
    t0 = deployments.utcnow()
    failing(ctx, s, s.champion.id, t0, errors=0)
    assert evaluate(ctx, s, t0) is None
    assert get_policy(ctx, s.deployment).critical_since is None
    assert not [a for a in alert_views.list_alerts(ctx, deployment=s.deployment) if a.kind == safety.ALERT_KIND]


def test_rollback_challenger_without_an_experiment_leaves_the_champion_alone(ctx: Context, models_dir: Path) -> None:
    """docs (safety.py): `rollback_challenger` without a running experiment puts the champion alone at 100%."""
    s = deployed_pair(ctx, models_dir)
    deployments.set_traffic(ctx, ALICE, s.deployment, [(s.model, "v1", 90), (s.model, "v2", 10)], reason="canary")
    set_policy(
        ctx, ALICE, s.deployment, PolicyChange(action=PolicyAction.ROLLBACK_CHALLENGER, action_after_seconds=AFTER)
    )
    t0 = deployments.utcnow()
    failing(ctx, s, s.champion.id, t0, errors=0)
    failing(ctx, s, s.challenger.id, t0)
    assert evaluate(ctx, s, t0) is None
    end = t0 + timedelta(seconds=AFTER + 1)
    failing(ctx, s, s.champion.id, end, errors=0)
    failing(ctx, s, s.challenger.id, end)
    outcome = evaluate(ctx, s, end)
    assert outcome is not None and outcome.done.startswith("challengers to 0%")
    (dep,) = deployment_reads.list_deployments(ctx, s.deployment)
    assert {sp.version.version: sp.weight for sp in dep.splits} == {"v1": 100}


def test_a_policy_set_to_no_action_stops_a_running_clock(ctx: Context, models_dir: Path) -> None:
    s = second_champion(ctx, models_dir)
    set_policy(
        ctx, ALICE, s.deployment, PolicyChange(action=PolicyAction.ROLLBACK_CHAMPION, action_after_seconds=AFTER)
    )
    t0 = deployments.utcnow()
    failing(ctx, s, s.challenger.id, t0)
    evaluate(ctx, s, t0)
    assert get_policy(ctx, s.deployment).critical_since == t0
    set_policy(ctx, ALICE, s.deployment, PolicyChange(action=PolicyAction.NONE))
    later = t0 + timedelta(seconds=10)
    failing(ctx, s, s.challenger.id, later)
    assert evaluate(ctx, s, later) is None
    assert get_policy(ctx, s.deployment).critical_since is None


def test_the_configurations_no_action_leaves_a_deployment_without_a_policy_of_its_own_alone(
    ctx: Context, models_dir: Path
) -> None:
    """`[policy] action = "none"` in the configuration, and no `sluice policy set` for this
    deployment (no policy row): a champion critical for longer than the wait moves nothing."""
    ctx.config.policy.action = PolicyAction.NONE.value
    s = second_champion(ctx, models_dir)
    t0 = deployments.utcnow()
    failing(ctx, s, s.challenger.id, t0)
    assert evaluate(ctx, s, t0) is None
    end = t0 + timedelta(seconds=ctx.config.policy.action_after_seconds + 1)
    failing(ctx, s, s.challenger.id, end)
    assert evaluate(ctx, s, end) is None
    assert get_policy(ctx, s.deployment).critical_since is None
    assert champion(ctx, s) == "v2"
    assert not [a for a in alert_views.list_alerts(ctx, deployment=s.deployment) if a.kind == safety.ALERT_KIND]
