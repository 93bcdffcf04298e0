"""The rollout engine: a persisted state machine that walks running experiments through their steps.

An experiment puts a challenger beside the champion of a deployment. Its rollout is a list of
steps (challenger percentages; 0 is a shadow step where the challenger only scores copies). At
every step, once the hold time has passed and every metric it judges has its minimum samples, the
gate is checked:

- a guardrail beyond its allowed degradation, or a primary metric significantly worse: the
  challenger goes to 0% at once (state rolled_back), an alert opens and the audit names the gate;
- a sample ratio mismatch: paused for a person (the comparison cannot be trusted);
- otherwise the next step; after the last step the challenger is promoted when it wins and
  auto-promote is set (completed when it wins without auto-promote), and an inconclusive result
  pauses for a person (resume, abort or promote).

With sequential (always-valid) testing a significantly worse challenger is rolled back as soon as
it has its minimum samples, without waiting for the hold.

No single agent moves a challenger forward: with two or more agents reporting, the next step,
completion and promotion also need the same verdict on the evidence of the other agents, for
each one left out in turn (`evidence.py`); otherwise the engine waits (too few samples without
that agent) or pauses for a person naming the agent (a gate fails, or the challenger does not win,
without it). Rollbacks are judged on everybody's evidence.

A step's exposure is real, not assumed: its hold counts from the moment every connected agent
has applied the step's generation (`step_live_at`, from their ACKs; with no agent connected a
step never goes live), and its gate also needs the experiment's minimum samples of challenger
traffic since then. A control-plane outage or a lagging fleet therefore never passes a step that
no traffic saw.

All state lives in SQL (state, step_index, current_percent, step_started_at, step_generation,
step_live_at), so an engine built after a restart resumes the same step with the same hold
clock. Every transition locks the deployment row, re-reads the experiment and changes splits
through `deployments.apply_change` (generation check, history, audit), then publishes an
"experiment" event after the commit so agents get the new snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from controlplane import audit
from controlplane.agenthub.fleet import FleetApplied, fleet_applied
from controlplane.context import Context
from controlplane.deployments import NewSplit, apply_change
from controlplane.domain import Principal, Role
from controlplane.experiments.analysis import Analysis, describe, failed_gates
from controlplane.experiments.commands import experiment_info, lock_experiment, promote_challenger
from controlplane.experiments.evidence import Blocked, dissent, exposure_without_any
from controlplane.experiments.measure import compute_analysis
from controlplane.experiments.spec import ExperimentInfo, step_splits, step_text
from controlplane.monitoring import alerts
from controlplane.monitoring.query import arms_by_agent
from controlplane.monitoring.state import state_of
from controlplane.stats import CHALLENGER_WINS
from controlplane.store.models import DeploymentRow, ExperimentRow, ModelVersionRow, utcnow
from core.errors import Conflict, FailedPrecondition, Unavailable
from core.vocabulary import ACTIVE_EXPERIMENT_STATES, ENDED_EXPERIMENT_STATES, ExperimentState, Health, ServingRole

log = logging.getLogger("sluice.experiments")

ENGINE = Principal("rollout-engine", Role.ADMIN)
GATE_ALERT = "rollout_gate_failed"


def applied_by_fleet(ctx: Context, info: ExperimentInfo) -> FleetApplied:
    """Whether every connected agent serves the current step (its generation; 0 on rows from
    before steps recorded it: the deployment's current one)."""
    return fleet_applied(ctx, info.deployment, info.step_generation)


def fleet_text(fleet: FleetApplied) -> str:
    if fleet.connected == 0:
        return f"no agent is connected (generation {fleet.generation} reaches none)"
    return f"{fleet.applied}/{fleet.connected} connected agents have applied generation {fleet.generation}"


def step_exposure(ctx: Context, info: ExperimentInfo, live_at: datetime, contributors: int) -> tuple[int, int, str]:
    """(challenger rows since the step went live, rows the step needs, whose rows were left out):
    the step's own evidence; with two or more agents contributing to the experiment, without the
    agent that sent the most of it."""
    arms = arms_by_agent(ctx, info.deployment, info.challenger_id, live_at, experiment=info.name)
    rows, left_out = exposure_without_any({a: int(arm.rows or arm.requests) for a, arm in arms.items()}, contributors)
    return rows, int(info.config["min_samples"]), left_out or ""


@dataclass(frozen=True)
class Transition:
    """What one tick did to one experiment."""

    experiment: str
    kind: str  # "step", or the state it moved to: rolled_back | paused | promoted | completed
    detail: str


class RolloutEngine:
    """Walks running experiments through their steps; holds no state of its own."""

    def __init__(self, ctx: Context, clock: Callable[[], datetime] = utcnow) -> None:
        self.ctx = ctx
        self.clock = clock

    def tick(self, now: datetime | None = None) -> list[Transition]:
        """One pass over every active experiment; a failure on one never stops the others."""
        now = now or self.clock()
        with self.ctx.db.session() as session:
            rows = session.scalars(select(ExperimentRow).where(ExperimentRow.state.in_(ACTIVE_EXPERIMENT_STATES))).all()
            infos = []
            for r in rows:
                try:  # one experiment that cannot be read must not stop the others' gates
                    infos.append(experiment_info(session, r, now))
                except Unavailable:
                    raise
                except Exception:
                    log.exception("reading experiment %s failed; trying again next tick", r.name)
                    self._count_failure("")
        transitions = []
        for info in infos:
            try:
                transition = self.evaluate(info, now)
            except (Conflict, FailedPrecondition) as exc:
                log.info("experiment %s changed under the engine (%s); next tick", info.name, exc.message)
                continue
            except Unavailable:
                raise  # the database is down: the loop tries again
            except Exception:
                log.exception("evaluating experiment %s failed; trying again next tick", info.name)
                self._count_failure(info.deployment)
                continue
            if transition is not None:
                log.info("experiment %s: %s (%s)", transition.experiment, transition.kind, transition.detail)
                transitions.append(transition)
        return transitions

    def _count_failure(self, deployment: str) -> None:
        state_of(self.ctx).metrics.job_failures.labels("rollout", deployment).inc()

    def evaluate(self, info: ExperimentInfo, now: datetime) -> Transition | None:
        if info.state != ExperimentState.RUNNING:
            self._store(info, compute_analysis(self.ctx, info, now), None)
            return None
        steps = info.steps
        last = info.step_index >= len(steps) - 1
        step = f"step {info.step_index + 1}/{len(steps)} ({step_text(info.current_percent)})"
        fleet = None if info.step_live_at is not None else applied_by_fleet(self.ctx, info)
        live_at = info.step_live_at
        if fleet is not None and fleet.at is not None:
            live_at = max(fleet.at, info.step_started_at)  # never before the step itself
        # The sample ratio is judged on windows since the step went live. A step found live and
        # already held at one tick (the first tick after a control-plane restart, or a fleet that
        # applied it late) must not be judged from its start, which would count windows served
        # at the previous step's weights as this step's.
        judged = info if live_at is None or info.step_live_at is not None else replace(info, step_live_at=live_at)
        analysis = compute_analysis(self.ctx, judged, now)
        held = live_at is not None and (now - live_at).total_seconds() >= info.hold_seconds
        failed = failed_gates(analysis)  # everybody's evidence: a rollback needs no agreement
        if failed and (held or analysis.sequential):
            return self._rollback(info, analysis, failed, step)
        if live_at is None:
            assert fleet is not None
            self._store(info, analysis, f"{step}: waiting for the agents to serve it: {fleet_text(fleet)}")
            return None
        newly_live = live_at if info.step_live_at is None else None
        if not held:
            # An end time, not a countdown: the reason is read long after this tick wrote it, next
            # to the live `hold_remaining_seconds` it would otherwise contradict.
            until = live_at + timedelta(seconds=info.hold_seconds)
            self._store(info, analysis, f"{step}: holding until {until:%H:%M:%S} UTC", newly_live)
            return None
        if not analysis.ready:
            waiting = "; ".join(analysis.waiting_for)
            self._store(info, analysis, f"{step}: hold over, waiting for samples: {waiting}", newly_live)
            return None
        doubt = dissent(analysis, last)
        if doubt is not None and doubt.blocked == Blocked.WAITING:
            self._store(info, analysis, f"{step}: hold over, {doubt.reason()}", newly_live)
            return None
        if doubt is not None and doubt.blocked == Blocked.FAILS:
            why = f"{step}: the verdict depends on one agent: {doubt.reason()}; check that agent, then resume or abort"
            return self._pause(info, analysis, why)
        exposed, needed, left_out = step_exposure(self.ctx, info, live_at, len(analysis.agents))
        if exposed < needed:
            without = f" without the agent that sent the most ({self._name(analysis, left_out)})" if left_out else ""
            self._store(
                info,
                analysis,
                f"{step}: hold over, waiting for samples at this step: challenger {exposed}/{needed} "
                f"rows since the agents applied it{without}",
                newly_live,
            )
            return None
        if analysis.srm_detected:
            why = (
                f"{step}: sample ratio mismatch (p={analysis.srm_p_value:.2g}): the split does not "
                "match the weights, so the comparison cannot be trusted; check routing, then resume or abort"
            )
            return self._pause(info, analysis, why)
        if not last:
            return self._advance(info, analysis, step)
        if analysis.decision == CHALLENGER_WINS and doubt is not None:  # Blocked.NOT_WINNING
            why = (
                f"{step}: inconclusive without one agent ({doubt.reason()}; with it: {describe(analysis)}); "
                "check that agent, then resume to collect more, or promote / abort"
            )
            return self._pause(info, analysis, why)
        if analysis.decision == CHALLENGER_WINS:
            if info.config.get("auto_promote"):
                return self._auto_promote(info, analysis, step)
            return self._complete(info, analysis, step)
        why = (
            f"{step}: inconclusive at the last gate ({describe(analysis)}); resume to collect more, or promote / abort"
        )
        return self._pause(info, analysis, why)

    @staticmethod
    def _name(analysis: Analysis, agent_id: str) -> str:
        return next((a.name for a in analysis.agents if a.agent_id == agent_id), agent_id)

    # -- transitions (each one locked transaction, checked against what was evaluated) --

    def _guarded(self, session: Session, info: ExperimentInfo) -> tuple[ExperimentRow, DeploymentRow]:
        row, deployment = lock_experiment(session, info.name)
        if row.state != info.state or row.step_index != info.step_index or row.step_started_at != info.step_started_at:
            raise Conflict(f"experiment {info.name} moved on since it was evaluated")
        return row, deployment

    def _store(
        self, info: ExperimentInfo, analysis: Analysis, status: str | None, live_at: datetime | None = None
    ) -> None:
        """The analysis and status of this tick; with `live_at`, also when the step went live (kept
        once set, so a restarted engine holds on the same clock). One write per tick."""
        values: dict[str, Any] = {"analysis": analysis.to_json()}
        if status is not None:
            values["status_reason"] = status
        if live_at is not None:
            values["step_live_at"] = func.coalesce(ExperimentRow.step_live_at, live_at)
        with self.ctx.db.session() as session:
            session.execute(
                update(ExperimentRow)
                .where(
                    ExperimentRow.id == info.id,
                    ExperimentRow.state == info.state,
                    ExperimentRow.step_index == info.step_index,
                    ExperimentRow.step_started_at == info.step_started_at,
                )
                .values(**values)
            )

    def _versions(self, session: Session, row: ExperimentRow) -> tuple[ModelVersionRow, ModelVersionRow]:
        champion = session.get(ModelVersionRow, row.champion_id)
        challenger = session.get(ModelVersionRow, row.challenger_id)
        assert champion is not None and challenger is not None
        return champion, challenger

    def _advance(self, info: ExperimentInfo, analysis: Analysis, step: str) -> Transition:
        percent = info.steps[info.step_index + 1]
        now = self.clock()
        gates = "; ".join(g.detail for g in analysis.guardrails) or "no guardrails"
        why = f"gate passed at {step}: {describe(analysis)}; guardrails: {gates}"
        with self.ctx.db.session() as session:
            row, deployment = self._guarded(session, info)
            champion, challenger = self._versions(session, row)
            generation = apply_change(
                session,
                ENGINE,
                deployment,
                step_splits(champion, challenger, percent),
                action="experiment.step",
                reason=f"experiment {info.name}: {step_text(info.current_percent)} -> {step_text(percent)}; {why}",
                expected_generation=None,
                end_experiment=False,
                details={"experiment": info.name, "gate": "passed", "analysis": analysis.to_json()},
            )
            if info.current_percent == 0 and percent > 0:
                config = dict(row.config)
                config["live_since"] = now.isoformat()
                row.config = config
            row.step_index = info.step_index + 1
            row.current_percent = percent
            row.step_started_at = now
            row.step_generation = generation
            row.step_live_at = None
            row.analysis = analysis.to_json()
            row.status_reason = f"step {row.step_index + 1}/{len(info.steps)}: challenger at {step_text(percent)}"
        self.ctx.events.publish(
            "experiment",
            info.deployment,
            f"generation {generation}: experiment {info.name} advanced to {step_text(percent)}",
        )
        return Transition(info.name, "step", f"{step_text(info.current_percent)} -> {step_text(percent)}")

    def _rollback(self, info: ExperimentInfo, analysis: Analysis, failed: list[str], step: str) -> Transition:
        gate = failed[0].split(":", 1)[0]
        why = f"gate failed at {step}: " + " | ".join(failed)
        with self.ctx.db.session() as session:
            row, deployment = self._guarded(session, info)
            champion, challenger = self._versions(session, row)
            generation = apply_change(
                session,
                ENGINE,
                deployment,
                [NewSplit(champion, 100, ServingRole.CHAMPION)],
                action="experiment.rollback",
                reason=f"experiment {info.name}: {why}",
                expected_generation=None,
                end_experiment=False,
                details={"experiment": info.name, "gate": gate, "failed_gates": failed},
            )
            row.state = ExperimentState.ROLLED_BACK
            row.ended_at = self.clock()
            row.analysis = analysis.to_json()
            row.status_reason = why
            audit.record(
                session,
                ENGINE,
                "experiment.gate_failed",
                info.name,
                deployment=info.deployment,
                gate=gate,
                failed_gates=failed,
                step_index=info.step_index,
                percent=info.current_percent,
            )
            # The alert commits with the rollback: nobody sees one without the other.
            alert, transition = alerts.record_alert(
                session,
                deployment=info.deployment,
                kind=GATE_ALERT,
                severity=Health.CRITICAL,
                message=f"experiment {info.name}: {challenger.model}:{challenger.version} rolled back to 0%: {why}",
                version_id=info.challenger_id,
            )
        self.ctx.events.publish(
            "experiment", info.deployment, f"generation {generation}: experiment {info.name} rolled back ({gate})"
        )
        alerts.announce(self.ctx, alert, transition)
        return Transition(info.name, ExperimentState.ROLLED_BACK, why)

    def _pause(self, info: ExperimentInfo, analysis: Analysis, why: str) -> Transition:
        return self._settle(info, analysis, ExperimentState.PAUSED, why, "experiment.pause", "paused for a person")

    def _complete(self, info: ExperimentInfo, analysis: Analysis, step: str) -> Transition:
        why = f"last gate passed at {step}: {describe(analysis)}; `sluice promote {info.name}` makes it champion"
        return self._settle(info, analysis, ExperimentState.COMPLETED, why, "experiment.complete", "completed")

    def _settle(
        self, info: ExperimentInfo, analysis: Analysis, state: ExperimentState, why: str, action: str, event: str
    ) -> Transition:
        """A transition that leaves the traffic as it is: new state, reason, audit, event."""
        with self.ctx.db.session() as session:
            row, _ = self._guarded(session, info)
            row.state = state
            if state in ENDED_EXPERIMENT_STATES:
                row.ended_at = self.clock()
            row.analysis = analysis.to_json()
            row.status_reason = why
            audit.record(session, ENGINE, action, info.name, deployment=info.deployment, reason=why)
        self.ctx.events.publish("experiment", info.deployment, f"experiment {info.name} {event}")
        return Transition(info.name, state, why)

    def _auto_promote(self, info: ExperimentInfo, analysis: Analysis, step: str) -> Transition:
        why = f"auto-promote: last gate passed at {step}: {describe(analysis)}"

        def unchanged(row: ExperimentRow) -> None:
            if row.state != info.state or row.step_index != info.step_index:
                raise Conflict(f"experiment {info.name} moved on since it was evaluated")

        promote_challenger(
            self.ctx,
            ENGINE,
            info.name,
            f"experiment {info.name}: {why}",
            unchanged,
            audit_details={"decision": analysis.decision, "gate": "passed"},
            analysis=analysis.to_json(),
        )
        return Transition(info.name, ExperimentState.PROMOTED, why)

    async def run(self, executor: Any = None) -> None:
        """The loop the control plane spawns: one tick every config.rollout.tick_seconds."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.ctx.config.rollout.tick_seconds)
            await loop.run_in_executor(executor, self.tick)
