"""Rollout gates written from the spec: sample-ratio mismatch in a multi-step plan, and every
transition judged also by the event it publishes (agents learn of a change only through it).

Over real SQL (SQLite and PostgreSQL) with seeded simulated windows, like test_engine.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from controlplane import deployment_reads
from controlplane.context import Context
from controlplane.events import Event, EventBus
from controlplane.experiments import commands
from controlplane.experiments.rollout import RolloutEngine
from controlplane.store.models import AgentDeploymentRow
from tests.controlplane.experiments.support import (
    ALICE,
    FLEET_AGENT,
    HOLD,
    deployed_pair,
    fleet_serves_everything,
    simulate_step,
    start,
    tick,
)


class RecordingBus(EventBus):
    """The real bus, keeping what was published (the server's bus has no loop in these tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[Event] = []

    def publish(self, kind: str, deployment: str = "", summary: str = "") -> Event:
        event = super().publish(kind, deployment, summary)
        self.published.append(event)
        return event


@pytest.fixture
def bus(ctx: Context) -> RecordingBus:
    ctx.events = RecordingBus()
    return ctx.events


def generation(ctx: Context, deployment: str) -> int:
    return deployment_reads.list_deployments(ctx, deployment)[0].generation


def announced(bus: RecordingBus, deployment: str, since: int) -> list[Event]:
    return [e for e in bus.published[since:] if e.deployment == deployment]


def test_sample_ratio_mismatch_pauses_a_multi_step_plan_instead_of_advancing(
    ctx: Context, models_dir: Path, bus: RecordingBus
) -> None:
    """Steps 10 -> 50 -> 100 with a broken router: half the traffic reaches the challenger at the
    10% step, and the challenger looks much better. The gate must pause, not advance to 50%."""
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s, auto_promote=True)
    t0 = exp.step_started_at
    before = generation(ctx, s.deployment)
    simulate_step(ctx, s, exp.name, t0, percent=50, requests=2000, accuracy=(0.78, 0.95), seed=31)
    seen = len(bus.published)
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 20))
    assert transition.kind == "paused"
    info = commands.get_experiment(ctx, exp.name, fresh=False)
    assert (info.state, info.step_index, info.current_percent) == ("paused", 0, 10)
    assert "sample ratio mismatch" in info.status_reason
    assert info.analysis is not None and info.analysis["decision"] == "srm_detected"
    weights = {sp.version.version: sp.weight for sp in deployment_reads.list_deployments(ctx, s.deployment)[0].splits}
    assert weights == {"v1": 90, "v2": 10}
    assert generation(ctx, s.deployment) == before  # the traffic did not move
    (event,) = announced(bus, s.deployment, seen)
    assert event.kind == "experiment" and f"experiment {exp.name} paused" in event.summary
    # Paused stays paused: later ticks do not advance it either.
    assert tick(ctx, t0 + timedelta(seconds=2 * HOLD + 40)) == []
    assert commands.get_experiment(ctx, exp.name, fresh=False).current_percent == 10


def test_each_step_and_the_promotion_publish_the_generation_they_made(
    ctx: Context, models_dir: Path, bus: RecordingBus
) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s, auto_promote=True)
    for i, percent in enumerate((10, 50, 100)):
        info = commands.get_experiment(ctx, exp.name)
        simulate_step(
            ctx, s, exp.name, info.step_started_at, percent=percent, requests=1000, accuracy=(0.78, 0.95), seed=40 + i
        )
        seen = len(bus.published)
        (transition,) = tick(ctx, info.step_started_at + timedelta(seconds=HOLD + 20))
        now = generation(ctx, s.deployment)
        events = announced(bus, s.deployment, seen)
        assert [e.kind for e in events] == ["experiment"], transition
        assert f"generation {now}:" in events[0].summary, (transition.kind, events[0].summary)
    assert transition.kind == "promoted"


def test_a_rollback_by_its_gate_publishes_the_generation_that_took_the_challenger_out(
    ctx: Context, models_dir: Path, bus: RecordingBus
) -> None:
    s = deployed_pair(ctx, models_dir, "logreg", "constant")
    exp = start(ctx, s, guardrails=[("accuracy", 0.05)])
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=10, requests=1500, accuracy=(0.97, 0.63), seed=45)
    before = generation(ctx, s.deployment)
    seen = len(bus.published)
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 1))
    assert transition.kind == "rolled_back"
    after = generation(ctx, s.deployment)
    assert after == before + 1
    experiment_events = [e for e in announced(bus, s.deployment, seen) if e.kind == "experiment"]
    assert len(experiment_events) == 1 and f"generation {after}: experiment {exp.name} rolled back" in (
        experiment_events[0].summary
    )


@pytest.mark.parametrize("action", ["stop", "abort", "promote"])
def test_operator_commands_publish_the_generation_they_made(
    ctx: Context, models_dir: Path, bus: RecordingBus, action: str
) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s)
    seen = len(bus.published)
    {"stop": commands.stop_experiment, "abort": commands.abort_experiment, "promote": commands.promote}[action](
        ctx, ALICE, exp.name
    )
    now = generation(ctx, s.deployment)
    events = announced(bus, s.deployment, seen)
    assert events and all(e.kind == "experiment" for e in events)
    assert any(f"generation {now}:" in e.summary for e in events), [e.summary for e in events]


def test_a_step_found_live_and_held_at_one_tick_judges_its_split_from_when_it_went_live(
    ctx: Context, models_dir: Path
) -> None:
    """The 50% step of a 10 -> 50 -> 100 plan reaches the fleet 30 s after it began (a control
    plane killed before pushing it, a slow agent); meanwhile the agents still route at 10%. The
    first tick that sees it (a control plane just restarted) finds it live and already held: its
    sample ratio must be judged on the windows since it went live (50/50, as the weights say),
    not since it began (which mixes in the 10% windows: a false mismatch that paused rollouts
    after a restart under load)."""
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s, auto_promote=True)
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=10, requests=1000, accuracy=(0.78, 0.95), seed=51)
    (first,) = tick(ctx, t0 + timedelta(seconds=HOLD + 20))
    assert first.kind == "step"
    at_fifty = commands.get_experiment(ctx, exp.name, fresh=False)
    t1 = at_fifty.step_started_at
    assert at_fifty.current_percent == 50 and at_fifty.step_live_at is None
    live = t1 + timedelta(seconds=30)
    fleet_serves_everything(ctx)  # the ACK of the 50% generation, recorded as of `live`
    with ctx.db.session() as session:
        session.execute(
            update(AgentDeploymentRow)
            .where(AgentDeploymentRow.agent_id == FLEET_AGENT, AgentDeploymentRow.deployment == s.deployment)
            .values(updated_at=live)
        )
    # 25 windows still at the old weights, then 10 at the step's own
    simulate_step(ctx, s, exp.name, t1, percent=10, requests=2500, accuracy=(0.78, 0.95), seed=52, windows=25)
    simulate_step(ctx, s, exp.name, live, percent=50, requests=2000, accuracy=(0.78, 0.95), seed=53)
    (second,) = RolloutEngine(ctx, clock=lambda: live + timedelta(seconds=HOLD + 20)).tick()
    info = commands.get_experiment(ctx, exp.name, fresh=False)
    assert second.kind == "step", info.status_reason
    assert info.current_percent == 100
    assert info.analysis is not None and not info.analysis["srm_detected"]
