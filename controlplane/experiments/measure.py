"""An experiment's analysis now: its arms' metric windows read and judged.

The champion's record since the experiment began, the challenger's since its step went live (a
shadow step: since the experiment began, scoring copies), per agent, label-joined when the
experiment judges delayed labels (`delayed.py`), and the sample ratio of the current step. The
statistics are `analysis.analyze`'s; the evidence without each agent is `evidence.py`'s.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select

from controlplane.context import Context
from controlplane.experiments.analysis import Analysis, Arm, analyze
from controlplane.experiments.delayed import joined_arms, judged_on_labels
from controlplane.experiments.evidence import agent_evidence
from controlplane.experiments.spec import ExperimentInfo, sequential_design
from controlplane.monitoring.query import ArmSummary, arm_summary, arms_by_agent, merge_arms
from controlplane.store.models import AgentRow, utcnow
from core.vocabulary import ACTIVE_EXPERIMENT_STATES, ServingRole

#: windows of the first seconds of a step may still come from agents on the previous weights
SRM_GRACE_SECONDS = 3.0
#: windows are stamped by the agents; a little slack keeps the first ones of an experiment
WINDOW_SLACK = timedelta(seconds=60)


def compute_analysis(ctx: Context, info: ExperimentInfo, now: datetime | None = None) -> Analysis:
    """Fresh analysis of an experiment from the metric windows its agents reported."""
    now = now or utcnow()
    config = info.config
    paired = info.current_percent == 0  # a shadow step: the challenger scores copies
    live_since = config.get("live_since")
    since = (datetime.fromisoformat(live_since) if live_since and not paired else info.created_at) - WINDOW_SLACK
    # The champion answers live traffic at every step, shadow ones included, so all of it is its
    # record; at a 100% step (blue-green) that record is all there is to compare with.
    champion_since = info.created_at - WINDOW_SLACK
    champions = arms_by_agent(ctx, info.deployment, info.champion_id, champion_since, experiment=info.name)
    challengers = arms_by_agent(ctx, info.deployment, info.challenger_id, since, experiment=info.name)
    waiting = None
    if judged_on_labels(config):
        champions, challengers, waiting = joined_arms(ctx, info, now, champions, challengers)
    champion, challenger = merge_arms(champions.values()), merge_arms(challengers.values())
    srm_counts = None
    percent = info.current_percent
    if info.state in ACTIVE_EXPERIMENT_STATES and percent > 0 and not config.get("segment_rules"):
        step_since = (info.step_live_at or info.step_started_at) + timedelta(seconds=SRM_GRACE_SECONDS)
        if step_since < now:
            c = arm_summary(ctx, info.deployment, info.champion_id, step_since, experiment=info.name)
            t = arm_summary(ctx, info.deployment, info.challenger_id, step_since, experiment=info.name)
            srm_counts = (c.rows or c.requests, t.rows or t.requests)
    judge = functools.partial(
        analyze,
        metric=config["metric"],
        task=info.task,
        alpha=float(config["alpha"]),
        min_samples=int(config["min_samples"]),
        min_improvement=float(config.get("min_improvement", 0.0)),
        sequential=bool(config.get("sequential", False)),
        guardrails=[(g["metric"], float(g["max_degradation"])) for g in config.get("guardrails", [])],
        paired=paired,
        challenger_percent=percent,
        design=sequential_design(config),
    )
    challenger_role = ServingRole.SHADOW if paired else ServingRole.CHALLENGER

    def run(champion: ArmSummary, challenger: ArmSummary, srm_counts: tuple[int, int] | None = None) -> Analysis:
        return judge(
            champion=Arm(*info.champion, ServingRole.CHAMPION, champion),
            challenger=Arm(*info.challenger, challenger_role, challenger),
            srm_counts=srm_counts,
        )

    analysis = run(champion, challenger, srm_counts)
    if waiting is not None:
        analysis.labels = waiting.to_json()
        if not analysis.ready and (waiting.champion.waiting or waiting.challenger.waiting):
            analysis.waiting_for.append(waiting.waiting_text())
    per_agent = {
        agent: (champions.get(agent, ArmSummary()), challengers.get(agent, ArmSummary()))
        for agent in sorted({*champions, *challengers})
    }
    analysis.agents = agent_evidence(
        per_agent,
        agent_names(ctx, per_agent),
        run,  # without srm_counts: the sample ratio is judged on everybody's evidence
        metric=config["metric"],
        task=info.task,
        alpha=float(config["alpha"]),
    )
    return analysis


def agent_names(ctx: Context, agent_ids: Collection[str]) -> dict[str, str]:
    """Names of the agents that reported an experiment's windows (ids the store forgot: the id)."""
    ids = sorted(a for a in agent_ids if a)
    if not ids:
        return {}
    with ctx.db.session() as session:
        found = {i: n for i, n in session.execute(select(AgentRow.id, AgentRow.name).where(AgentRow.id.in_(ids)))}
    return {a: found.get(a, a) for a in ids}
