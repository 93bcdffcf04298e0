"""The rollout engine at its edges, written from the spec (issue 11, issue 19's mutation triage):
a step's own exposure at exactly `min_samples`, the agent a waiting reason leaves out named by
its name, and an operator's command landing between the engine's evaluation and its
auto-promotion.

Over real SQL (SQLite and PostgreSQL) with windows written as agents' reports are stored, the
engine's clock injected, like test_engine.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from controlplane import deployment_reads
from controlplane.agenthub import agents
from controlplane.context import Context
from controlplane.experiments import commands
from controlplane.experiments.analysis import Analysis
from controlplane.experiments.rollout import RolloutEngine, Transition
from controlplane.experiments.spec import ExperimentInfo
from core.vocabulary import AgentState
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


def weights(ctx: Context, s: Setup) -> dict[str, int]:
    return {sp.version.version: sp.weight for sp in deployment_reads.list_deployments(ctx, s.deployment)[0].splits}


def exact_window(ctx: Context, s: Setup, experiment: str, at: datetime, *, champion: int, challenger: int) -> None:
    """One window with exactly these rows per arm, every one labeled (the champion right 78% of
    the time, the challenger 95%), latencies around 5 ms."""
    rng = np.random.default_rng(champion * 1000 + challenger)
    for version_id, role, n, accuracy in (
        (s.champion.id, "champion", champion, 0.78),
        (s.challenger.id, "challenger", challenger, 0.95),
    ):
        add_window(
            ctx,
            s.deployment,
            version_id,
            experiment,
            at,
            role=role,
            requests=n,
            n_labeled=n,
            n_correct=round(n * accuracy),
            latencies=rng.lognormal(np.log(0.005), 0.3, n),
        )


def advance_first_step(
    ctx: Context, s: Setup, experiment: ExperimentInfo, agent_names: tuple[str, ...] = ("",)
) -> datetime:
    """Plenty of evidence at 10% (a better challenger), the tick that moves to 50%: its start."""
    t0 = experiment.step_started_at
    for seed, agent in enumerate(agent_names):
        simulate_step(
            ctx, s, experiment.name, t0, percent=10, requests=1000, accuracy=(0.78, 0.95), seed=40 + seed, agent=agent
        )
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 20))
    assert transition.kind == "step"
    at_fifty = commands.get_experiment(ctx, experiment.name, fresh=False)
    assert at_fifty.current_percent == 50
    return at_fifty.step_started_at


def test_a_step_goes_on_at_exactly_min_samples_challenger_rows_and_not_one_before(
    ctx: Context, models_dir: Path
) -> None:
    """`min_samples` is the least a step needs: 49 challenger rows at 50% wait, the 50th row lets
    the gate move the plan on (the whole experiment's analysis is ready from the 10% step)."""
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s)  # min_samples 50
    t1 = advance_first_step(ctx, s, exp)

    exact_window(ctx, s, exp.name, t1 + timedelta(seconds=5), champion=49, challenger=49)
    assert tick(ctx, t1 + timedelta(seconds=HOLD + 20)) == []
    waiting = commands.get_experiment(ctx, exp.name, fresh=False)
    assert waiting.current_percent == 50
    assert "waiting for samples at this step: challenger 49/50 rows since the agents applied it" in (
        waiting.status_reason
    )

    exact_window(ctx, s, exp.name, t1 + timedelta(seconds=6), champion=1, challenger=1)
    (transition,) = tick(ctx, t1 + timedelta(seconds=HOLD + 21))
    assert transition.kind == "step"
    assert commands.get_experiment(ctx, exp.name, fresh=False).current_percent == 100


def test_a_step_waiting_for_samples_names_the_agent_it_leaves_out(ctx: Context, models_dir: Path) -> None:
    """With two agents the step needs its samples without the one that sent the most; the reason
    names that agent by its name (the one a person knows), not the other agent."""
    big, small = unique("agent-big"), unique("agent-small")
    for agent_id, name in ((big, "rack-7-big"), (small, "rack-9-small")):
        agents.agent_connected(ctx, agents.validate_hello(agent_id, name, "test-host", "127.0.0.1:7501", {}, {}))
        agents.set_state(ctx, agent_id, AgentState.DISCONNECTED)  # known by name, not part of the fleet's ACKs
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s)
    t1 = advance_first_step(ctx, s, exp, (big, small))

    for agent, n in ((big, 400), (small, 20)):
        for version_id, role in ((s.champion.id, "champion"), (s.challenger.id, "challenger")):
            add_window(
                ctx,
                s.deployment,
                version_id,
                exp.name,
                t1 + timedelta(seconds=5),
                role=role,
                requests=n,
                n_labeled=n,
                n_correct=round(n * (0.95 if role == "challenger" else 0.78)),
                latencies=np.full(n, 0.005),
                agent=agent,
            )
    assert tick(ctx, t1 + timedelta(seconds=HOLD + 20)) == []
    info = commands.get_experiment(ctx, exp.name, fresh=False)
    assert info.current_percent == 50
    assert (
        "waiting for samples at this step: challenger 20/50 rows since the agents applied it without the agent "
        "that sent the most (rack-7-big)" in info.status_reason
    )


class OperatorPausesMidway(RolloutEngine):
    """The engine, with an operator's pause landing after its evaluation and before its promotion."""

    def _auto_promote(self, info: ExperimentInfo, analysis: Analysis, step: str) -> Transition:
        commands.pause_experiment(self.ctx, ALICE, info.name, "looking at the dashboards first")
        return super()._auto_promote(info, analysis, step)


def test_an_operator_pause_between_evaluation_and_auto_promotion_wins(ctx: Context, models_dir: Path) -> None:
    """The engine judged a winner, then a person paused the experiment: the promotion must not
    happen behind the person's back (a paused experiment can still be promoted by hand)."""
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s, plan=[50], auto_promote=True)
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=50, requests=1000, accuracy=(0.78, 0.95), seed=45)
    fleet_serves_everything(ctx)
    assert OperatorPausesMidway(ctx, clock=lambda: t0 + timedelta(seconds=HOLD + 20)).tick() == []
    info = commands.get_experiment(ctx, exp.name, fresh=False)
    assert info.state == "paused"
    assert weights(ctx, s) == {"v1": 50, "v2": 50}
    assert "promote" not in [h.action for h in deployment_reads.list_history(ctx, s.deployment)]


def test_an_advance_says_which_step_it_moved_to_and_which_guardrails_held(ctx: Context, models_dir: Path) -> None:
    """The reason of a step (the experiment's status and the deployment's history): the new step
    as "step i/n", and the guardrails the gate checked, or that there were none."""
    guarded = deployed_pair(ctx, models_dir, "weak", "gbm")
    plain = deployed_pair(ctx, models_dir, "weak", "gbm")
    for s, guardrails in ((guarded, [("p95_latency", 0.25)]), (plain, [])):
        exp = start(ctx, s, guardrails=guardrails)
        advance_first_step(ctx, s, exp)
        info = commands.get_experiment(ctx, exp.name, fresh=False)
        assert info.status_reason == "step 2/3: challenger at 50%"
        reason = deployment_reads.list_history(ctx, s.deployment)[0].reason
        assert info.analysis is not None
        details = [g["detail"] for g in info.analysis["guardrails"]]
        assert len(details) == len(guardrails)
        assert reason.endswith(f"; guardrails: {details[0]}" if details else "; guardrails: no guardrails"), reason


def test_a_pause_by_the_engine_keeps_the_experiment_open_and_a_completion_ends_it(
    ctx: Context, models_dir: Path
) -> None:
    inconclusive = deployed_pair(ctx, models_dir)
    better = deployed_pair(ctx, models_dir, "weak", "gbm")
    for s, plan, accuracy, kind in (
        (inconclusive, [50], (0.9, 0.9), "paused"),
        (better, [30], (0.78, 0.95), "completed"),
    ):
        exp = start(ctx, s, plan=plan)
        t0 = exp.step_started_at
        simulate_step(ctx, s, exp.name, t0, percent=plan[0], requests=1000, accuracy=accuracy, seed=46)
        at = t0 + timedelta(seconds=HOLD + 20)
        (transition,) = tick(ctx, at)
        assert transition.kind == kind
        info = commands.get_experiment(ctx, exp.name, fresh=False)
        assert info.state == kind and info.active == (kind == "paused")
        assert info.ended_at == (None if kind == "paused" else at)


def test_from_a_shadow_step_to_one_percent_the_evidence_counts_from_going_live(ctx: Context, models_dir: Path) -> None:
    """The smallest live step after a shadow one (1%) records when the challenger went live: its
    gate must not read the shadow phase's paired answers as live evidence."""
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s, shadow=True, plan=[1, 100])
    assert exp.steps == [0, 1, 100] and "live_since" not in exp.config
    t0 = exp.step_started_at
    rng = np.random.default_rng(47)
    for w in range(5):
        at = t0 + timedelta(seconds=5 + w)
        add_window(ctx, s.deployment, s.champion.id, exp.name, at, requests=100, n_labeled=100, n_correct=78)
        shadow = (100, 80, 100, int(rng.integers(0, 3)), int(rng.integers(15, 20)))  # favour the shadow
        add_window(ctx, s.deployment, s.challenger.id, exp.name, at, role="shadow", requests=100, shadow=shadow)
    went_live = t0 + timedelta(seconds=HOLD + 20)
    (transition,) = tick(ctx, went_live)
    assert transition.kind == "step"
    live = commands.get_experiment(ctx, exp.name, fresh=False)
    assert live.current_percent == 1
    assert datetime.fromisoformat(live.config["live_since"]) == went_live
