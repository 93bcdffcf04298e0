"""The rollout engine over real SQL (SQLite and PostgreSQL) with seeded simulated windows.

The windows are written as agents' reports are stored (MetricWindowRow via WindowSummary), the
engine reads them through the monitoring area's arm_summary, and the statistics are the real ones.
Time is the engine's injected clock, so holds are judged without sleeping.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from controlplane import audit, deployment_reads, deployments
from controlplane.artifacts import ArtifactStore
from controlplane.config import Config
from controlplane.context import Context
from controlplane.events import EventBus
from controlplane.experiments import commands
from controlplane.experiments.rollout import RolloutEngine
from controlplane.experiments.spec import ExperimentSpec
from controlplane.monitoring.alert_views import AlertInfo, list_alerts
from controlplane.monitoring.alerts import acknowledge
from controlplane.store.db import Database
from core.errors import FailedPrecondition
from tests.controlplane.experiments.support import (
    ALICE,
    HOLD,
    Setup,
    add_window,
    deployed_pair,
    fleet_serves_everything,
    simulate_step,
    start,
    tick,
)
from tests.harness import unique


def splits(ctx: Context, deployment: str) -> dict[str, tuple[int, str]]:
    info = deployment_reads.list_deployments(ctx, deployment)[0]
    return {s.version.version: (s.weight, s.role) for s in info.splits}


def start_and_fail(ctx: Context, s: Setup) -> AlertInfo:
    """An experiment on `s` whose accuracy guardrail fails: its gate alert."""
    exp = start(ctx, s, guardrails=[("accuracy", 0.05)])
    simulate_step(ctx, s, exp.name, exp.step_started_at, percent=10, requests=1500, accuracy=(0.97, 0.63), seed=1)
    tick(ctx, exp.step_started_at + timedelta(seconds=HOLD + 1))
    (alert,) = [a for a in list_alerts(ctx, deployment=s.deployment) if a.kind == "rollout_gate_failed"]
    return alert


def test_failed_gate_rolls_back_opens_an_alert_and_audits_the_gate(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir, "logreg", "constant")
    exp = start(ctx, s, guardrails=[("accuracy", 0.05)])
    assert splits(ctx, s.deployment) == {"v1": (90, "champion"), "v2": (10, "challenger")}
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=10, requests=1500, accuracy=(0.97, 0.63), seed=1)

    assert tick(ctx, t0 + timedelta(seconds=30)) == []  # fixed horizon: no judgement inside the hold
    assert commands.get_experiment(ctx, exp.name).state == "running"

    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 1))
    assert transition.kind == "rolled_back"
    after = commands.get_experiment(ctx, exp.name)
    assert after.state == "rolled_back" and after.ended_at is not None
    assert "guardrail accuracy" in after.status_reason
    assert after.analysis is not None and after.analysis["decision"] == "champion_holds"
    assert splits(ctx, s.deployment) == {"v1": (100, "champion")}
    assert deployment_reads.list_deployments(ctx, s.deployment)[0].experiment == ""

    alerts = [a for a in list_alerts(ctx, deployment=s.deployment) if a.kind == "rollout_gate_failed"]
    assert len(alerts) == 1 and alerts[0].severity == "critical" and alerts[0].version == "v2"
    assert "guardrail accuracy" in alerts[0].message

    gate_events = [e for e in audit.list_audit(ctx.db, target=exp.name) if e.action == "experiment.gate_failed"]
    assert len(gate_events) == 1
    assert gate_events[0].details["gate"] == "guardrail accuracy"
    assert gate_events[0].principal == "rollout-engine"
    history = deployment_reads.list_history(ctx, s.deployment)
    assert history[0].action == "experiment.rollback" and "gate failed" in history[0].reason

    # The deployment's audit holds its own changes, its experiment's and its alerts' acks, newest first.
    acknowledge(ctx, ALICE, alerts[0].id)
    other = deployed_pair(ctx, models_dir, "logreg", "constant")
    acknowledge(ctx, ALICE, start_and_fail(ctx, other).id)
    actions = [(e.action, e.target) for e in audit.list_audit(ctx.db, deployment=s.deployment)]
    assert actions == [
        ("alert.ack", f"alert:{alerts[0].id}"),
        ("experiment.gate_failed", exp.name),
        ("experiment.rollback", s.deployment),
        ("experiment.start", s.deployment),
        ("deploy", s.deployment),
    ]
    exact = [e.action for e in audit.list_audit(ctx.db, target=s.deployment)]
    assert exact == ["experiment.rollback", "experiment.start", "deploy"]

    assert tick(ctx, t0 + timedelta(seconds=HOLD + 5)) == []  # an ended experiment stays ended


def test_better_challenger_walks_the_plan_and_is_promoted(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s, auto_promote=True, guardrails=[("p95_latency", 0.25)])
    seen = []
    for i, percent in enumerate((10, 50, 100)):
        info = commands.get_experiment(ctx, exp.name)
        assert (info.step_index, info.current_percent, info.state) == (i, percent, "running")
        challenger_weight = splits(ctx, s.deployment)["v2"]
        assert challenger_weight == (percent, "challenger")
        started = info.step_started_at
        simulate_step(ctx, s, exp.name, started, percent=percent, requests=1000, accuracy=(0.78, 0.95), seed=10 + i)
        (transition,) = tick(ctx, started + timedelta(seconds=HOLD + 20))
        seen.append(transition.kind)
    assert seen == ["step", "step", "promoted"]

    done = commands.get_experiment(ctx, exp.name)
    assert done.state == "promoted"
    assert done.analysis is not None and done.analysis["decision"] == "challenger_wins"
    dep = deployment_reads.list_deployments(ctx, s.deployment)[0]
    assert [(sp.version.version, sp.weight, sp.role) for sp in dep.splits] == [("v2", 100, "champion")]
    assert dep.previous_champion is not None and dep.previous_champion.version == "v1"
    actions = [h.action for h in reversed(deployment_reads.list_history(ctx, s.deployment))]
    assert actions == ["deploy", "experiment.start", "experiment.step", "experiment.step", "promote"]
    (event,) = [e for e in audit.list_audit(ctx.db, target=s.deployment) if e.action == "promote"]
    assert (event.principal, event.details["decision"], event.details["gate"]) == (
        "rollout-engine",
        "challenger_wins",
        "passed",
    )
    with pytest.raises(FailedPrecondition, match="already promoted"):
        commands.promote(ctx, ALICE, exp.name)


def test_a_step_needs_its_own_exposure_before_its_gate(ctx: Context, models_dir: Path) -> None:
    """Issue 11, #5: after the move to 50% the control plane was down for 10 minutes (past the
    hold); the first tick after the outage moved 50% -> 100% with zero samples at 50%."""
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s)
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=10, requests=1000, accuracy=(0.78, 0.95), seed=21)
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 20))
    assert transition.kind == "step"
    at_fifty = commands.get_experiment(ctx, exp.name)
    assert at_fifty.current_percent == 50 and at_fifty.step_live_at is None
    t1 = at_fifty.step_started_at

    # The agents never applied the 50% generation: the step is not live, its hold has not begun.
    engine_only = RolloutEngine(ctx, clock=lambda: t1 + timedelta(seconds=600))
    assert engine_only.tick() == []
    waiting = commands.get_experiment(ctx, exp.name)
    assert "waiting for the agents to serve it" in waiting.status_reason
    assert waiting.hold_remaining_seconds == HOLD

    # Applied, but no traffic at 50% (an outage past the hold): the gate waits for this step's own samples.
    assert tick(ctx, t1 + timedelta(seconds=600)) == []
    stalled = commands.get_experiment(ctx, exp.name)
    assert stalled.current_percent == 50 and stalled.step_live_at == t1
    assert "waiting for samples at this step: challenger 0/50" in stalled.status_reason

    simulate_step(ctx, s, exp.name, t1, percent=50, requests=1000, accuracy=(0.78, 0.95), seed=22)
    (transition,) = tick(ctx, t1 + timedelta(seconds=601))
    assert transition.kind == "step" and commands.get_experiment(ctx, exp.name).current_percent == 100


def test_the_hold_counts_from_when_the_agents_applied_the_step(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    spec = ExperimentSpec(
        deployment=s.deployment, challenger=(s.model, "v2"), plan=[10, 50, 100], hold_seconds=HOLD, min_samples=50
    )
    exp = commands.start_experiment(ctx, ALICE, unique("exp"), spec)
    t0 = exp.step_started_at
    late = RolloutEngine(ctx, clock=lambda: t0 + timedelta(seconds=HOLD + 1))
    assert late.tick() == []  # no agent serves it yet: no hold has passed, whatever the clock says
    assert commands.get_experiment(ctx, exp.name).step_live_at is None
    fleet_serves_everything(ctx)  # the ACK
    acked = deployments.utcnow()
    RolloutEngine(ctx, clock=lambda: acked).tick()
    live = commands.get_experiment(ctx, exp.name, fresh=False)
    assert live.step_live_at is not None and t0 <= live.step_live_at <= acked
    # A restarted engine keeps that clock: half a hold after the ACK, half a hold is left.
    half = RolloutEngine(ctx, clock=lambda: live.step_live_at + timedelta(seconds=HOLD / 2))
    assert half.tick() == []
    until = live.step_live_at + timedelta(seconds=HOLD)
    assert f"holding until {until:%H:%M:%S} UTC" in commands.get_experiment(ctx, exp.name).status_reason


def test_inconclusive_last_gate_pauses_for_a_person(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir)
    exp = start(ctx, s, plan=[50], auto_promote=True)
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=50, requests=600, accuracy=(0.9, 0.9), seed=3)
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 1))
    assert transition.kind == "paused"
    paused = commands.get_experiment(ctx, exp.name)
    assert paused.state == "paused" and "inconclusive" in paused.status_reason
    assert splits(ctx, s.deployment) == {"v1": (50, "champion"), "v2": (50, "challenger")}  # traffic kept
    assert tick(ctx, t0 + timedelta(seconds=HOLD + 30)) == []  # waits for a person

    resumed = commands.resume_experiment(ctx, ALICE, exp.name, reason="more data")
    assert resumed.state == "running" and resumed.step_started_at > t0
    with pytest.raises(FailedPrecondition, match="not paused"):
        commands.resume_experiment(ctx, ALICE, exp.name)
    aborted = commands.abort_experiment(ctx, ALICE, exp.name, reason="no winner")
    assert aborted.state == "aborted"
    assert splits(ctx, s.deployment) == {"v1": (100, "champion")}
    with pytest.raises(FailedPrecondition, match="aborted"):
        commands.promote(ctx, ALICE, exp.name)


def test_an_operator_pause_keeps_the_traffic_stops_the_clock_and_resume_continues_the_plan(
    ctx: Context, models_dir: Path
) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s)
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=10, requests=1000, accuracy=(0.78, 0.95), seed=21)
    assert tick(ctx, deployments.utcnow()) == []  # the step goes live, its hold starts
    paused = commands.pause_experiment(ctx, ALICE, exp.name, reason="incident elsewhere")
    assert paused.state == "paused" and paused.paused_at is not None
    assert "paused by alice: incident elsewhere" in paused.status_reason
    assert 0 < paused.hold_remaining_seconds <= HOLD
    with pytest.raises(FailedPrecondition, match="already paused"):
        commands.pause_experiment(ctx, ALICE, exp.name)

    # long past the hold: no gate, no step while paused, and the traffic stays as it was
    assert tick(ctx, t0 + timedelta(seconds=10 * HOLD)) == []
    assert commands.get_experiment(ctx, exp.name).state == "paused"
    assert splits(ctx, s.deployment) == {"v1": (90, "champion"), "v2": (10, "challenger")}
    assert [e.principal for e in audit.list_audit(ctx.db, target=exp.name) if e.action == "experiment.pause"] == [
        "alice"
    ]

    resumed = commands.resume_experiment(ctx, ALICE, exp.name)
    assert resumed.state == "running" and resumed.step_index == 0 and resumed.paused_at is None
    assert "hold continues" in resumed.status_reason
    # the clock skipped the pause: the hold left is what it was when paused (less the test's own time)
    assert paused.hold_remaining_seconds - 5 <= resumed.hold_remaining_seconds <= paused.hold_remaining_seconds
    assert resumed.step_live_at is not None and exp.step_started_at == resumed.step_started_at
    assert tick(ctx, resumed.step_live_at + timedelta(seconds=HOLD - 5)) == []  # still holding
    (transition,) = tick(ctx, resumed.step_live_at + timedelta(seconds=HOLD + 1))
    assert transition.kind == "step"  # the plan goes on from where it was
    assert splits(ctx, s.deployment) == {"v1": (50, "champion"), "v2": (50, "challenger")}

    stopped = commands.stop_experiment(ctx, ALICE, exp.name)
    assert stopped.state == "stopped"
    for action in (commands.pause_experiment, commands.resume_experiment):
        with pytest.raises(FailedPrecondition, match="stopped"):
            action(ctx, ALICE, exp.name)


def test_hold_over_but_too_few_samples_keeps_waiting(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir)
    exp = start(ctx, s, min_samples=500)
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=10, requests=1000, accuracy=(0.9, 0.9), seed=4)
    assert tick(ctx, t0 + timedelta(seconds=HOLD + 1)) == []
    info = commands.get_experiment(ctx, exp.name, fresh=False)
    assert info.state == "running" and info.step_index == 0
    assert "waiting for samples" in info.status_reason
    assert info.analysis is not None and info.analysis["decision"] == "not_enough_data"


def test_a_restarted_engine_resumes_the_same_step_and_hold_clock(
    ctx: Context, db_url: str, tmp_path: Path, models_dir: Path
) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s, plan=[10, 50])
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=10, requests=1000, accuracy=(0.78, 0.95), seed=5)
    assert tick(ctx, t0 + timedelta(seconds=20)) == []  # mid-hold when the "process dies"

    def fresh_context() -> Context:
        return Context(Database(db_url), ArtifactStore(tmp_path / "artifacts"), Config(), EventBus())

    second = fresh_context()
    try:
        assert RolloutEngine(second, clock=lambda: t0 + timedelta(seconds=40)).tick() == []
        kept = commands.get_experiment(second, exp.name)
        assert (kept.step_index, kept.current_percent, kept.step_started_at) == (0, 10, t0)
        assert kept.hold_remaining_seconds <= HOLD
        (transition,) = RolloutEngine(second, clock=lambda: t0 + timedelta(seconds=HOLD + 1)).tick()
        assert transition.kind == "step"
    finally:
        second.db.dispose()
    moved = commands.get_experiment(ctx, exp.name)
    assert (moved.step_index, moved.current_percent) == (1, 50)
    assert moved.step_started_at == t0 + timedelta(seconds=HOLD + 1)


def test_sample_ratio_mismatch_pauses_and_blocks_promotion(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s, plan=[10], auto_promote=True)
    t0 = exp.step_started_at
    # a broken router: half the traffic reaches the challenger although it should get 10%
    simulate_step(ctx, s, exp.name, t0, percent=50, requests=1000, accuracy=(0.78, 0.95), seed=6)
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 20))
    assert transition.kind == "paused"
    info = commands.get_experiment(ctx, exp.name, fresh=False)
    assert info.state == "paused" and "sample ratio mismatch" in info.status_reason
    assert info.analysis is not None and info.analysis["decision"] == "srm_detected"
    assert info.analysis["srm_p_value"] < 0.001
    assert splits(ctx, s.deployment)["v2"] == (10, "challenger")  # not promoted


def test_sequential_testing_rolls_back_a_harmful_challenger_inside_the_hold(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir, "logreg", "constant")
    exp = start(ctx, s, sequential=True, hold_seconds=3600.0)
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=10, requests=1500, accuracy=(0.97, 0.63), seed=7)
    (transition,) = tick(ctx, t0 + timedelta(seconds=30))
    assert transition.kind == "rolled_back"
    info = commands.get_experiment(ctx, exp.name)
    assert info.analysis is not None and info.analysis["sequential"] is True
    assert "primary metric accuracy" in info.status_reason


def test_latency_guardrail_names_itself_when_it_fails(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir)
    exp = start(ctx, s, metric="accuracy", guardrails=[("p95_latency", 0.25)])
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=10, requests=2000, accuracy=(0.9, 0.9), seed=8, latency=(0.005, 0.015))
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 20))
    assert transition.kind == "rolled_back"
    info = commands.get_experiment(ctx, exp.name)
    assert info.status_reason.startswith("gate failed at step 1/3 (10%): guardrail p95_latency")
    assert "primary metric" not in info.status_reason
    (event,) = [e for e in audit.list_audit(ctx.db, target=exp.name) if e.action == "experiment.gate_failed"]
    assert event.details["gate"] == "guardrail p95_latency"


def test_shadow_step_compares_paired_answers_then_goes_live(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s, shadow=True, plan=[100], auto_promote=True)
    assert exp.steps == [0, 100] and exp.current_percent == 0
    assert splits(ctx, s.deployment) == {"v1": (100, "champion"), "v2": (0, "shadow")}
    t0 = exp.step_started_at
    rng = np.random.default_rng(9)
    for w in range(5):
        at = t0 + timedelta(seconds=5 + w)
        add_window(ctx, s.deployment, s.champion.id, exp.name, at, requests=100, n_labeled=100, n_correct=78)
        b, c = int(rng.integers(0, 3)), int(rng.integers(15, 20))  # discordant pairs favour the shadow
        shadow = (100, 80, 100, b, c)
        add_window(ctx, s.deployment, s.challenger.id, exp.name, at, role="shadow", requests=100, shadow=shadow)
    info = commands.get_experiment(ctx, exp.name)
    assert info.analysis is not None
    assert info.analysis["paired"] is True and info.analysis["shadow_pairs"] == 500
    assert info.analysis["method"] == "mcnemar" and info.analysis["decision"] == "challenger_wins"
    assert info.analysis["shadow_agreement"] == pytest.approx(0.8)
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 20))
    assert transition.kind == "step"
    assert splits(ctx, s.deployment) == {"v1": (0, "champion"), "v2": (100, "challenger")}
    live = commands.get_experiment(ctx, exp.name)
    assert live.current_percent == 100 and "live_since" in live.config

    # Blue-green: at 100% the champion gets no traffic, so its shadow-phase windows are the baseline.
    t1 = live.step_started_at
    for w in range(5):
        at = t1 + timedelta(seconds=65 + w)  # past the window slack: only the challenger reports now
        add_window(ctx, s.deployment, s.challenger.id, exp.name, at, role="challenger", requests=100,
                   n_labeled=100, n_correct=95)
    (transition,) = tick(ctx, t1 + timedelta(seconds=HOLD + 80))
    assert transition.kind == "promoted", transition
    assert splits(ctx, s.deployment) == {"v2": (100, "champion")}


def test_completed_without_auto_promote_then_promoted_by_hand(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s, plan=[30])
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=30, requests=1000, accuracy=(0.78, 0.95), seed=11)
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 20))
    assert transition.kind == "completed"
    assert splits(ctx, s.deployment) == {"v1": (70, "champion"), "v2": (30, "challenger")}
    dep = commands.promote(ctx, ALICE, exp.name, reason="looks good")
    assert [(sp.version.version, sp.weight) for sp in dep.splits] == [("v2", 100)]
    assert commands.get_experiment(ctx, exp.name).state == "promoted"
    (event,) = [e for e in audit.list_audit(ctx.db, target=s.deployment) if e.action == "promote"]
    assert event.principal == "alice" and event.details["reason"] == "looks good"
    assert (event.details["decision"], event.details["against_analysis"]) == ("challenger_wins", False)

    # Promoting before the analysis supports it is allowed, and the audit says so.
    early = deployed_pair(ctx, models_dir, "weak", "gbm")
    commands.promote(ctx, ALICE, start(ctx, early).name, reason="on my call")
    (event,) = [e for e in audit.list_audit(ctx.db, target=early.deployment) if e.action == "promote"]
    assert (event.details["decision"], event.details["against_analysis"]) == ("not_enough_data", True)


def test_a_completed_experiment_is_not_promoted_over_a_newer_running_one(ctx: Context, models_dir: Path) -> None:
    """Issue 11, #4: promoting A (completed) while B runs on the same deployment left B alive,
    and aborting B later restored B's champion: the promotion was silently undone."""
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    first = start(ctx, s, plan=[30])
    t0 = first.step_started_at
    simulate_step(ctx, s, first.name, t0, percent=30, requests=1000, accuracy=(0.78, 0.95), seed=11)
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 20))
    assert transition.kind == "completed"
    second = start(ctx, s, plan=[30])  # the same challenger again, to collect more
    before = splits(ctx, s.deployment)

    with pytest.raises(FailedPrecondition, match=f"experiment {second.name!r} \\(running\\) is active on"):
        commands.promote(ctx, ALICE, first.name)
    assert splits(ctx, s.deployment) == before  # nothing changed
    assert commands.get_experiment(ctx, first.name).state == "completed"
    assert commands.get_experiment(ctx, second.name).state == "running"
    # Promoting the running one is the way: it ends it, and nothing is left to undo it.
    dep = commands.promote(ctx, ALICE, second.name)
    assert [(sp.version.version, sp.weight) for sp in dep.splits] == [("v2", 100)]
    assert deployment_reads.list_deployments(ctx, s.deployment)[0].experiment == ""
    assert commands.get_experiment(ctx, second.name).state == "promoted"


def test_a_manual_traffic_change_ends_the_experiment_and_the_engine_leaves_it(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir)
    exp = start(ctx, s)
    killed = deployments.set_traffic(ctx, ALICE, s.deployment, [(s.model, "v1", 100)], reason="kill switch")
    assert killed.ended_experiment == exp.name and killed.experiment == ""
    assert commands.get_experiment(ctx, exp.name).state == "aborted"
    # The history says what the change did to the experiment, beside the operator's reason.
    assert deployment_reads.list_history(ctx, s.deployment)[0].reason == f"kill switch; ends experiment {exp.name}"
    assert tick(ctx, exp.step_started_at + timedelta(seconds=HOLD + 1)) == []
    with pytest.raises(FailedPrecondition):
        commands.stop_experiment(ctx, ALICE, exp.name)
