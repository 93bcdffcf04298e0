"""The rollout engine weighs the evidence per agent: one agent cannot move a challenger forward.

Honest agents report seeded simulated windows; a lying agent reports what would promote the
challenger (or hide that it fails), within the plausibility bounds of ingest. Over real SQL
(SQLite and PostgreSQL), the engine's clock injected, like test_engine.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from controlplane import deployment_reads
from controlplane.context import Context
from controlplane.experiments import commands
from tests.controlplane.experiments.support import HOLD, Setup, add_window, deployed_pair, simulate_step, start, tick

LIAR = "liar-agent"


def lie(ctx: Context, s: Setup, experiment: str, t0: datetime, n: int = 40_000) -> None:
    """Three windows from LIAR: the champion right half the time, the challenger always."""
    for w in range(3):
        at = t0 + timedelta(seconds=5 + w)
        for version_id, role, correct in ((s.champion.id, "champion", n // 2), (s.challenger.id, "challenger", n)):
            add_window(
                ctx, s.deployment, version_id, experiment, at, role=role, requests=n, n_labeled=n, n_correct=correct,
                agent=LIAR,
            )


def weights(ctx: Context, s: Setup) -> dict[str, int]:
    return {sp.version.version: sp.weight for sp in deployment_reads.list_deployments(ctx, s.deployment)[0].splits}


def test_a_liar_beside_honest_agents_cannot_promote_and_is_named(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir, "logreg", "constant")
    exp = start(ctx, s, plan=[50], auto_promote=True)
    t0 = exp.step_started_at
    for seed, agent in enumerate(("honest-a", "honest-b")):  # the versions are equally good
        simulate_step(ctx, s, exp.name, t0, percent=50, requests=1000, accuracy=(0.9, 0.9), seed=seed, agent=agent)
    lie(ctx, s, exp.name, t0)
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 20))
    assert transition.kind == "paused"
    info = commands.get_experiment(ctx, exp.name, fresh=False)
    assert info.state == "paused" and f"without the evidence of agent {LIAR}" in info.status_reason
    assert weights(ctx, s) == {"v1": 50, "v2": 50}  # not promoted
    analysis = info.analysis
    assert analysis is not None and analysis["decision"] == "challenger_wins"  # everybody's evidence: fooled
    liar, *honest = analysis["agents"]  # the largest share first
    assert liar["agent_id"] == LIAR and liar["challenger_n"] == 120_000 and liar["challenger_metric"] == 1.0
    assert liar["decision_without"] == "no_significant_difference" and liar["ready_without"]
    assert {a["agent_id"] for a in honest} == {"honest-a", "honest-b"}
    assert all(a["decision_without"] == "challenger_wins" for a in honest)  # the liar is still in those


def test_a_liar_hiding_a_failing_challenger_pauses_the_plan_instead_of_advancing(
    ctx: Context, models_dir: Path
) -> None:
    s = deployed_pair(ctx, models_dir, "logreg", "constant")
    exp = start(ctx, s, plan=[50, 100])
    t0 = exp.step_started_at
    for seed, agent in enumerate(("honest-a", "honest-b")):  # the challenger is much worse
        simulate_step(ctx, s, exp.name, t0, percent=50, requests=1000, accuracy=(0.9, 0.6), seed=seed, agent=agent)
    lie(ctx, s, exp.name, t0)
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 20))
    assert transition.kind == "paused"
    info = commands.get_experiment(ctx, exp.name, fresh=False)
    assert (info.state, info.step_index) == ("paused", 0)
    assert f"the verdict depends on one agent: without the evidence of agent {LIAR}" in info.status_reason
    assert "primary metric accuracy: challenger significantly worse" in info.status_reason
    assert weights(ctx, s) == {"v1": 50, "v2": 50}  # not advanced to 100%


def test_too_few_samples_without_the_largest_agent_keep_the_step_waiting(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir, "logreg", "constant")
    exp = start(ctx, s, plan=[50], auto_promote=True)
    t0 = exp.step_started_at
    simulate_step(ctx, s, exp.name, t0, percent=50, requests=40, accuracy=(0.9, 0.9), seed=3, agent="honest-a")
    lie(ctx, s, exp.name, t0)
    assert tick(ctx, t0 + timedelta(seconds=HOLD + 20)) == []
    info = commands.get_experiment(ctx, exp.name, fresh=False)
    assert info.state == "running"
    assert f"hold over, without the evidence of agent {LIAR}: waiting for samples" in info.status_reason


def test_honest_agents_that_agree_promote_as_one_would(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    exp = start(ctx, s, plan=[50], auto_promote=True)
    t0 = exp.step_started_at
    for seed, agent in enumerate(("honest-a", "honest-b", "honest-c")):
        simulate_step(ctx, s, exp.name, t0, percent=50, requests=600, accuracy=(0.78, 0.95), seed=seed, agent=agent)
    (transition,) = tick(ctx, t0 + timedelta(seconds=HOLD + 20))
    assert transition.kind == "promoted", transition.detail
    info = commands.get_experiment(ctx, exp.name, fresh=False)
    assert info.analysis is not None
    assert [a["decision_without"] for a in info.analysis["agents"]] == ["challenger_wins"] * 3
