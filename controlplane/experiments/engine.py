"""Experiments and progressive rollouts: a persisted state machine over the deployment's splits.

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
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane import audit
from controlplane.agenthub.agents import FleetApplied, fleet_applied
from controlplane.context import Context
from controlplane.deployments import (
    ACTIVE_EXPERIMENT_STATES,
    NewSplit,
    active_experiment,
    apply_change,
    check_compatible,
    deployment_info,
    find_deployment,
)
from controlplane.domain import DeploymentInfo, Principal, Role
from controlplane.experiments.analysis import METRICS, Analysis, Arm, analyze, describe
from controlplane.monitoring import alerts
from controlplane.registry import find_version
from controlplane.stats import CHALLENGER_WINS, CHAMPION_HOLDS
from controlplane.store.models import DeploymentRow, ExperimentRow, ModelVersionRow, utcnow
from core.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidInput, NotFound
from core.names import validate_name

log = logging.getLogger("sluice.experiments")

ENGINE = Principal("rollout-engine", Role.ADMIN)
ENDED_STATES = ("stopped", "aborted", "rolled_back", "promoted", "completed")
STATES = (*ACTIVE_EXPERIMENT_STATES, *ENDED_STATES)
MAX_PLAN_STEPS = 20
MAX_GUARDRAILS = 10
MAX_SEGMENT_RULES = 10
MAX_SEGMENT_VALUES = 100
MAX_SEGMENT_TEXT = 256
MAX_HOLD_SECONDS = 30 * 24 * 3600.0
MAX_MIN_SAMPLES = 1_000_000_000
MAX_REASON = 2000
MAX_LIST = 1000
#: windows of the first seconds of a step may still come from agents on the previous weights
SRM_GRACE_SECONDS = 3.0
#: windows are stamped by the agents; a little slack keeps the first ones of an experiment
WINDOW_SLACK = timedelta(seconds=60)
GATE_ALERT = "rollout_gate_failed"


@dataclass
class ExperimentSpec:
    """What a person (or the retraining trigger) asks for; validated by `start_experiment`."""

    deployment: str
    challenger: tuple[str, str]
    traffic_percent: int = 10
    metric: str = "accuracy"
    guardrails: list[tuple[str, float]] = field(default_factory=list)
    min_samples: int = 100
    alpha: float = 0.05
    min_improvement: float = 0.0
    sequential: bool = False
    plan: list[int] = field(default_factory=list)
    hold_seconds: float | None = None  # None: config.rollout.default_hold_seconds
    auto_promote: bool = False
    shadow: bool = False
    segment_rules: list[dict[str, Any]] = field(default_factory=list)
    require_offline_win: bool = False


@dataclass(frozen=True)
class ExperimentInfo:
    id: int
    name: str
    deployment: str
    config: dict[str, Any]
    state: str
    champion: tuple[str, str]
    challenger: tuple[str, str]
    champion_id: int
    challenger_id: int
    task: str
    step_index: int
    current_percent: int
    step_started_at: datetime
    hold_remaining_seconds: float  # the whole hold while the step is not live yet
    status_reason: str
    analysis: dict[str, Any] | None
    created_at: datetime
    ended_at: datetime | None
    salt: str
    created_by: str
    step_generation: int = 0
    step_live_at: datetime | None = None

    @property
    def steps(self) -> list[int]:
        return [int(s) for s in self.config.get("steps", [])]

    @property
    def hold_seconds(self) -> float:
        return float(self.config.get("hold_seconds", 0.0))

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_EXPERIMENT_STATES


# ---- validation --------------------------------------------------------------------------------


def _finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidInput(f"{what} must be a finite number, got {value!r}")
    return number


def validate_segment_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalised rules: exactly the SegmentRule fields (attribute, values, has_range, min, max)."""
    if len(rules) > MAX_SEGMENT_RULES:
        raise InvalidInput(f"{len(rules)} segment rules given; the limit is {MAX_SEGMENT_RULES}")
    out = []
    seen: set[str] = set()
    for rule in rules:
        attribute = str(rule.get("attribute", "")).strip()
        if not attribute or len(attribute) > MAX_SEGMENT_TEXT:
            raise InvalidInput("a segment rule needs an attribute name of 1 to 256 characters")
        if attribute in seen:
            raise InvalidInput(f"segment attribute {attribute!r} has two rules; give one rule per attribute")
        seen.add(attribute)
        values = [str(v) for v in rule.get("values", []) or []]
        has_range = bool(rule.get("has_range", False))
        if len(values) > MAX_SEGMENT_VALUES:
            raise InvalidInput(f"segment {attribute!r} lists {len(values)} values; the limit is {MAX_SEGMENT_VALUES}")
        if any(not v or len(v) > MAX_SEGMENT_TEXT for v in values):
            raise InvalidInput(f"segment {attribute!r}: every value must be 1 to 256 characters")
        if has_range and values:
            raise InvalidInput(f"segment {attribute!r} has both values and a range; give one of them")
        if not has_range and not values:
            raise InvalidInput(f"segment {attribute!r} needs values (ATTR=v1,v2) or a range (ATTR=lo..hi)")
        low = _finite(rule.get("min", 0.0), f"segment {attribute!r} minimum") if has_range else 0.0
        high = _finite(rule.get("max", 0.0), f"segment {attribute!r} maximum") if has_range else 0.0
        if has_range and low > high:
            raise InvalidInput(f"segment {attribute!r}: the range {low:g}..{high:g} is empty (min above max)")
        out.append({"attribute": attribute, "values": values, "has_range": has_range, "min": low, "max": high})
    return out


def validate_spec(spec: ExperimentSpec, default_hold: float) -> dict[str, Any]:
    """The experiment's stored config, with defaults resolved and the rollout steps spelled out."""
    validate_name("deployment", spec.deployment)
    model, version = spec.challenger
    validate_name("model", model)
    validate_name("version", version)
    if spec.metric not in METRICS:
        raise InvalidInput(f"unknown metric {spec.metric!r}; choose one of {', '.join(METRICS)}")
    if isinstance(spec.traffic_percent, bool) or not isinstance(spec.traffic_percent, int):
        raise InvalidInput("traffic percent must be a whole number")
    if not 1 <= spec.traffic_percent <= 99:
        raise InvalidInput(
            f"traffic percent is {spec.traffic_percent}; an experiment gives the challenger 1 to 99 "
            "(use a plan such as 10,50,100 to ramp to 100)"
        )
    alpha = _finite(spec.alpha, "alpha")
    if not 0.0 < alpha < 1.0:
        raise InvalidInput(f"alpha is {spec.alpha!r}; it must lie strictly between 0 and 1 (e.g. 0.05)")
    if isinstance(spec.min_samples, bool) or not isinstance(spec.min_samples, int):
        raise InvalidInput("min samples must be a whole number")
    if not 1 <= spec.min_samples <= MAX_MIN_SAMPLES:
        raise InvalidInput(f"min samples is {spec.min_samples}; it must be 1 to {MAX_MIN_SAMPLES}")
    min_improvement = _finite(spec.min_improvement, "min improvement")
    if min_improvement < 0:
        raise InvalidInput(f"min improvement is {min_improvement:g}; it must not be negative")
    if len(spec.guardrails) > MAX_GUARDRAILS:
        raise InvalidInput(f"{len(spec.guardrails)} guardrails given; the limit is {MAX_GUARDRAILS}")
    guardrails = []
    for metric, allowed in spec.guardrails:
        if metric not in METRICS:
            raise InvalidInput(f"unknown guardrail metric {metric!r}; choose one of {', '.join(METRICS)}")
        allowed = _finite(allowed, f"the allowed degradation of guardrail {metric}")
        if allowed < 0:
            raise InvalidInput(f"guardrail {metric}: the allowed degradation {allowed:g} is negative")
        if any(g["metric"] == metric for g in guardrails):
            raise InvalidInput(f"guardrail {metric} is given twice")
        guardrails.append({"metric": metric, "max_degradation": allowed})
    plan = list(spec.plan)
    if len(plan) > MAX_PLAN_STEPS:
        raise InvalidInput(f"the plan has {len(plan)} steps; the limit is {MAX_PLAN_STEPS}")
    for i, step in enumerate(plan):
        if isinstance(step, bool) or not isinstance(step, int):
            raise InvalidInput(f"plan step {step!r} is not a whole percentage")
        if not 1 <= step <= 100:
            raise InvalidInput(f"plan step {step} is outside 1..100: a step is the challenger's percent of traffic")
        if i and step <= plan[i - 1]:
            raise InvalidInput(
                f"the plan {','.join(map(str, plan))} is not increasing: every step must give the "
                f"challenger more traffic than the one before ({step} follows {plan[i - 1]})"
            )
    hold = default_hold if spec.hold_seconds is None else _finite(spec.hold_seconds, "hold seconds")
    if not 0 <= hold <= MAX_HOLD_SECONDS:
        raise InvalidInput(f"hold is {hold:g} s; it must be 0 to {MAX_HOLD_SECONDS:g} s")
    steps = [0, *plan] if spec.shadow else plan or [spec.traffic_percent]
    return {
        "deployment": spec.deployment,
        "challenger": f"{model}:{version}",
        "traffic_percent": spec.traffic_percent,
        "metric": spec.metric,
        "guardrails": guardrails,
        "min_samples": spec.min_samples,
        "alpha": alpha,
        "min_improvement": min_improvement,
        "sequential": bool(spec.sequential),
        "plan": plan,
        "hold_seconds": hold,
        "auto_promote": bool(spec.auto_promote),
        "shadow": bool(spec.shadow),
        "segment_rules": validate_segment_rules(list(spec.segment_rules)),
        "require_offline_win": bool(spec.require_offline_win),
        "steps": steps,
    }


def _reason(text: str) -> str:
    if len(text) > MAX_REASON:
        raise InvalidInput(f"the reason is {len(text)} characters; the limit is {MAX_REASON}")
    return text


def check_schema(champion: ModelVersionRow, challenger: ModelVersionRow) -> None:
    """Name the first difference between the two input schemas, then the shared rule."""
    a, b = champion.inputs, challenger.inputs
    ref_a, ref_b = f"{champion.model}:{champion.version}", f"{challenger.model}:{challenger.version}"
    if len(a) != len(b):
        raise InvalidInput(f"input schema mismatch: {ref_b} takes {len(b)} inputs, the champion {ref_a} takes {len(a)}")
    for x, y in zip(a, b, strict=True):
        if x["dtype"] != y["dtype"]:
            raise InvalidInput(
                f"input schema mismatch: {ref_b} input {y['name']!r} is {y['dtype']}, the champion "
                f"{ref_a} input {x['name']!r} is {x['dtype']}"
            )
        if list(x["shape"][1:]) != list(y["shape"][1:]):

            def show(shape: list[int]) -> str:
                return "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"

            raise InvalidInput(
                f"input schema mismatch: {ref_b} input {y['name']!r} has shape {show(y['shape'])}, "
                f"the champion {ref_a} input {x['name']!r} has shape {show(x['shape'])}"
            )
    check_compatible(champion, challenger)


def _check_offline_win(champion: ModelVersionRow, challenger: ModelVersionRow, deployment: str) -> None:
    ref_c = f"{champion.model}:{champion.version}"
    ref_t = f"{challenger.model}:{challenger.version}"
    evaluate = f"`sluice evaluate {ref_t} --deployment {deployment} --data FILE`"
    verdict = challenger.offline_evaluation
    if not verdict:
        raise FailedPrecondition(f"{ref_t} has no offline evaluation and --require-offline-win is set; run {evaluate}")
    if verdict.get("deployment") != deployment or verdict.get("champion") != ref_c:
        raise FailedPrecondition(
            f"the offline evaluation of {ref_t} compared it with {verdict.get('champion')} on "
            f"{verdict.get('deployment')}, not with the current champion {ref_c}; run {evaluate}"
        )
    if not verdict.get("challenger_wins"):
        raise FailedPrecondition(
            f"{ref_t} did not win its offline evaluation against {ref_c} "
            f"({verdict.get('verdict', 'no verdict')}); --require-offline-win refuses it"
        )


# ---- reading -----------------------------------------------------------------------------------


def _info(session: Session, row: ExperimentRow, now: datetime | None = None) -> ExperimentInfo:
    champion = session.get(ModelVersionRow, row.champion_id)
    challenger = session.get(ModelVersionRow, row.challenger_id)
    deployment = session.get(DeploymentRow, row.deployment_id)
    assert champion is not None and challenger is not None and deployment is not None
    config = dict(row.config or {})
    remaining = 0.0
    if row.state == "running":
        hold = float(config.get("hold_seconds", 0.0))
        if row.step_live_at is None:
            remaining = hold
        else:
            now = now or utcnow()
            remaining = max(0.0, hold - (now - row.step_live_at).total_seconds())
    return ExperimentInfo(
        id=row.id,
        name=row.name,
        deployment=deployment.name,
        config=config,
        state=row.state,
        champion=(champion.model, champion.version),
        challenger=(challenger.model, challenger.version),
        champion_id=champion.id,
        challenger_id=challenger.id,
        task=champion.task,
        step_index=row.step_index,
        current_percent=row.current_percent,
        step_started_at=row.step_started_at,
        hold_remaining_seconds=remaining,
        status_reason=row.status_reason,
        analysis=dict(row.analysis) if row.analysis else None,
        created_at=row.created_at,
        ended_at=row.ended_at,
        salt=row.salt,
        created_by=row.created_by,
        step_generation=row.step_generation,
        step_live_at=row.step_live_at,
    )


def _find(session: Session, name: str, *, lock: bool = False) -> ExperimentRow:
    validate_name("experiment", name)
    query = select(ExperimentRow).where(ExperimentRow.name == name)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"no experiment named {name!r}; `sluice experiment list --all` shows them")
    return row


def compute_analysis(ctx: Context, info: ExperimentInfo, now: datetime | None = None) -> Analysis:
    """Fresh analysis of an experiment from the metric windows its agents reported."""
    from controlplane.monitoring.query import arm_summary

    now = now or utcnow()
    config = info.config
    paired = info.current_percent == 0  # a shadow step: the challenger scores copies
    live_since = config.get("live_since")
    since = (datetime.fromisoformat(live_since) if live_since and not paired else info.created_at) - WINDOW_SLACK
    # The champion answers live traffic at every step, shadow ones included, so all of it is its
    # record; at a 100% step (blue-green) that record is all there is to compare with.
    champion_since = info.created_at - WINDOW_SLACK
    champion = arm_summary(ctx, info.deployment, info.champion_id, champion_since, experiment=info.name)
    challenger = arm_summary(ctx, info.deployment, info.challenger_id, since, experiment=info.name)
    srm_counts = None
    percent = info.current_percent
    if info.state in ACTIVE_EXPERIMENT_STATES and percent > 0 and not config.get("segment_rules"):
        step_since = (info.step_live_at or info.step_started_at) + timedelta(seconds=SRM_GRACE_SECONDS)
        if step_since < now:
            c = arm_summary(ctx, info.deployment, info.champion_id, step_since, experiment=info.name)
            t = arm_summary(ctx, info.deployment, info.challenger_id, step_since, experiment=info.name)
            srm_counts = (c.rows or c.requests, t.rows or t.requests)
    return analyze(
        metric=config["metric"],
        champion=Arm(*info.champion, "champion", champion),
        challenger=Arm(*info.challenger, "shadow" if paired else "challenger", challenger),
        task=info.task,
        alpha=float(config["alpha"]),
        min_samples=int(config["min_samples"]),
        min_improvement=float(config.get("min_improvement", 0.0)),
        sequential=bool(config.get("sequential", False)),
        guardrails=[(g["metric"], float(g["max_degradation"])) for g in config.get("guardrails", [])],
        paired=paired,
        srm_counts=srm_counts,
        challenger_percent=percent,
    )


def get_experiment(ctx: Context, name: str, *, fresh: bool = True) -> ExperimentInfo:
    """The experiment; an active one carries a freshly computed analysis (not stored)."""
    now = utcnow()
    with ctx.db.session() as session:
        info = _info(session, _find(session, name), now)
    if fresh and info.active:
        analysis = compute_analysis(ctx, info, now)
        info = _replace_analysis(info, analysis.to_json())
    return info


def _replace_analysis(info: ExperimentInfo, analysis: dict[str, Any]) -> ExperimentInfo:
    return replace(info, analysis=analysis)


def list_experiments(ctx: Context, deployment: str = "", include_finished: bool = False) -> list[ExperimentInfo]:
    now = utcnow()
    with ctx.db.session() as session:
        query = select(ExperimentRow).order_by(ExperimentRow.id.desc()).limit(MAX_LIST)
        if deployment:
            row = find_deployment(session, deployment)
            query = query.where(ExperimentRow.deployment_id == row.id)
        if not include_finished:
            query = query.where(ExperimentRow.state.in_(ACTIVE_EXPERIMENT_STATES))
        return [_info(session, r, now) for r in session.scalars(query)]


# ---- splits ------------------------------------------------------------------------------------


def _splits(champion: ModelVersionRow, challenger: ModelVersionRow, percent: int) -> list[NewSplit]:
    if percent == 0:
        return [NewSplit(champion, 100, "champion"), NewSplit(challenger, 0, "shadow")]
    return [NewSplit(champion, 100 - percent, "champion"), NewSplit(challenger, percent, "challenger")]


def _step_text(percent: int) -> str:
    return "shadow" if percent == 0 else f"{percent}%"


# ---- starting ----------------------------------------------------------------------------------


def start_experiment(
    ctx: Context, principal: Principal, name: str, spec: ExperimentSpec, reason: str = ""
) -> ExperimentInfo:
    """Put the challenger beside the champion at the first step of the rollout."""
    validate_name("experiment", name)
    reason = _reason(reason)
    config = validate_spec(spec, ctx.config.rollout.default_hold_seconds)
    try:
        with ctx.db.session() as session:
            deployment = find_deployment(session, spec.deployment, lock=True)
            if session.scalar(select(ExperimentRow.id).where(ExperimentRow.name == name)) is not None:
                raise AlreadyExists(f"an experiment named {name!r} already exists; pick another name")
            running = active_experiment(session, deployment.id)
            if running is not None:
                raise FailedPrecondition(
                    f"deployment {spec.deployment!r} already has experiment {running.name!r} "
                    f"({running.state}); stop, abort or promote it first"
                )
            current = deployment_info(session, deployment)
            if current.champion is None:
                raise FailedPrecondition(f"deployment {spec.deployment!r} has no champion; deploy one first")
            champion = session.get(ModelVersionRow, current.champion.id)
            assert champion is not None
            challenger = find_version(session, *spec.challenger)
            if challenger.id == champion.id:
                raise InvalidInput(
                    f"the challenger {challenger.model}:{challenger.version} is already the champion "
                    f"of {spec.deployment!r}; name a different version"
                )
            check_schema(champion, challenger)
            uses_mae = config["metric"] == "mae" or any(g["metric"] == "mae" for g in config["guardrails"])
            if uses_mae and champion.task != "regressor":
                raise InvalidInput(
                    f"mae needs a regressor, but {champion.model}:{champion.version} is a "
                    f"{champion.task}; use accuracy or error_rate"
                )
            if config["require_offline_win"]:
                _check_offline_win(champion, challenger, spec.deployment)
            now = utcnow()
            percent = config["steps"][0]
            if percent > 0:
                config["live_since"] = now.isoformat()
            row = ExperimentRow(
                name=name,
                deployment_id=deployment.id,
                champion_id=champion.id,
                challenger_id=challenger.id,
                config=config,
                state="running",
                step_index=0,
                current_percent=percent,
                step_started_at=now,
                status_reason=f"step 1/{len(config['steps'])}: challenger at {_step_text(percent)}",
                salt=secrets.token_hex(8),
                created_at=now,
                created_by=principal.name,
            )
            session.add(row)
            session.flush()
            generation = apply_change(
                session,
                principal,
                deployment,
                _splits(champion, challenger, percent),
                action="experiment.start",
                reason=reason or f"experiment {name} started",
                expected_generation=None,
                end_experiment=False,
                details={"experiment": name, "config": config},
            )
            row.step_generation = generation
            info = _info(session, row, now)
    except IntegrityError as exc:
        raise Conflict(f"experiment {name!r} was created concurrently; try another name") from exc
    ctx.events.publish(
        "experiment",
        spec.deployment,
        f"generation {generation}: experiment {name} started, {config['challenger']} at {_step_text(percent)}",
    )
    return info


# ---- operator actions --------------------------------------------------------------------------


def _locked(session: Session, name: str) -> tuple[ExperimentRow, DeploymentRow]:
    """The experiment and its deployment, the deployment row locked (always locked first)."""
    row = _find(session, name)
    deployment = session.scalar(select(DeploymentRow).where(DeploymentRow.id == row.deployment_id).with_for_update())
    assert deployment is not None
    session.refresh(row)  # the state as of the lock
    return row, deployment


def _end(
    ctx: Context,
    principal: Principal,
    name: str,
    state: str,
    reason: str,
    verb: str,
) -> ExperimentInfo:
    reason = _reason(reason)
    with ctx.db.session() as session:
        row, deployment = _locked(session, name)
        if row.state not in ACTIVE_EXPERIMENT_STATES:
            raise FailedPrecondition(
                f"experiment {name!r} is {row.state}; only a running or paused experiment can be {verb}"
            )
        champion = session.get(ModelVersionRow, row.champion_id)
        assert champion is not None
        why = reason or f"{verb} by {principal.name}"
        generation = apply_change(
            session,
            principal,
            deployment,
            [NewSplit(champion, 100, "champion")],
            action=f"experiment.{'stop' if state == 'stopped' else 'abort'}",
            reason=why,
            expected_generation=None,
            end_experiment=False,
            details={"experiment": name},
        )
        row.state = state
        row.ended_at = utcnow()
        row.status_reason = f"{verb} by {principal.name}" + (f": {reason}" if reason else "")
        info = _info(session, row)
    ctx.events.publish("experiment", info.deployment, f"generation {generation}: experiment {name} {verb}")
    return info


def stop_experiment(ctx: Context, principal: Principal, name: str, reason: str = "") -> ExperimentInfo:
    """End the experiment, challenger to 0%; its analysis stays for the record."""
    info = _end(ctx, principal, name, "stopped", reason, "stopped")
    _store_final_analysis(ctx, info)
    return get_experiment(ctx, name, fresh=False)


def abort_experiment(ctx: Context, principal: Principal, name: str, reason: str = "") -> ExperimentInfo:
    """Cancel the experiment, challenger to 0% at once."""
    info = _end(ctx, principal, name, "aborted", reason, "aborted")
    _store_final_analysis(ctx, info)
    return get_experiment(ctx, name, fresh=False)


def _store_final_analysis(ctx: Context, info: ExperimentInfo) -> None:
    try:
        analysis = compute_analysis(ctx, info).to_json()
    except Exception:  # the record is a courtesy; the state change already happened
        log.exception("final analysis of experiment %s failed", info.name)
        return
    with ctx.db.session() as session:
        session.execute(update(ExperimentRow).where(ExperimentRow.id == info.id).values(analysis=analysis))


def resume_experiment(ctx: Context, principal: Principal, name: str, reason: str = "") -> ExperimentInfo:
    """A paused experiment runs again: the current step's hold starts over."""
    reason = _reason(reason)
    with ctx.db.session() as session:
        row, _ = _locked(session, name)
        if row.state != "paused":
            raise FailedPrecondition(
                f"experiment {name!r} is {row.state}, not paused; only a paused experiment can be resumed"
            )
        row.state = "running"
        row.step_started_at = utcnow()
        row.step_live_at = None  # live again once the fleet is seen serving the step
        row.status_reason = f"resumed by {principal.name}" + (f": {reason}" if reason else "")
        audit.record(session, principal, "experiment.resume", name, reason=reason, step_index=row.step_index)
        info = _info(session, row)
    ctx.events.publish("experiment", info.deployment, f"experiment {name} resumed")
    return info


def promote(ctx: Context, principal: Principal, name: str, reason: str = "") -> DeploymentInfo:
    """Make the challenger the champion at 100% (the previous champion is remembered)."""
    reason = _reason(reason)
    before = get_experiment(ctx, name, fresh=True)
    info, deployment_after = _promote(ctx, principal, name, reason or f"promoted by {principal.name}")
    if before.active and before.analysis is not None:
        with ctx.db.session() as session:
            session.execute(update(ExperimentRow).where(ExperimentRow.id == info.id).values(analysis=before.analysis))
    return deployment_after


def _promote(
    ctx: Context, principal: Principal, name: str, reason: str, check: Callable[[ExperimentRow], None] | None = None
) -> tuple[ExperimentInfo, DeploymentInfo]:
    with ctx.db.session() as session:
        row, deployment = _locked(session, name)
        if check is not None:
            check(row)
        if row.state in ("stopped", "aborted", "rolled_back"):
            raise FailedPrecondition(
                f"experiment {name!r} is {row.state.replace('_', ' ')}: its challenger no longer has "
                "traffic; start a new experiment (or `sluice deploy`) to promote that version"
            )
        if row.state == "promoted":
            raise FailedPrecondition(f"experiment {name!r} was already promoted")
        other = active_experiment(session, deployment.id)
        if other is not None and other.id != row.id:
            # It would stay alive under the new champion, and ending it later (abort, rollback by
            # its gate) would put its own champion back: the promotion silently undone.
            raise FailedPrecondition(
                f"experiment {other.name!r} ({other.state}) is active on {deployment.name!r}; "
                f"promote or abort it first, then promote {name!r}"
            )
        current = deployment_info(session, deployment)
        challenger = session.get(ModelVersionRow, row.challenger_id)
        assert challenger is not None
        on_deployment = {s.version.id for s in current.splits}
        if current.champion is None or current.champion.id != row.champion_id or challenger.id not in on_deployment:
            raise FailedPrecondition(
                f"deployment {current.name!r} changed since experiment {name!r} completed; "
                f"use `sluice deploy {current.name} {challenger.model}:{challenger.version}` instead"
            )
        generation = apply_change(
            session,
            principal,
            deployment,
            [NewSplit(challenger, 100, "champion")],
            action="promote",
            reason=reason,
            expected_generation=None,
            end_experiment=False,
            details={"experiment": name},
        )
        row.state = "promoted"
        row.ended_at = utcnow()
        row.current_percent = 100
        row.status_reason = f"promoted by {principal.name}: {reason}"
        info = _info(session, row)
        after = deployment_info(session, deployment)
    ctx.events.publish(
        "experiment",
        info.deployment,
        f"generation {generation}: experiment {name} promoted {challenger.model}:{challenger.version} to champion",
    )
    return info, after


# ---- the engine --------------------------------------------------------------------------------


def applied_by_fleet(ctx: Context, info: ExperimentInfo) -> FleetApplied:
    """Whether every connected agent serves the current step (its generation; 0 on rows from
    before steps recorded it: the deployment's current one)."""
    return fleet_applied(ctx, info.deployment, info.step_generation)


def fleet_text(fleet: FleetApplied) -> str:
    if fleet.connected == 0:
        return f"no agent is connected (generation {fleet.generation} reaches none)"
    return f"{fleet.applied}/{fleet.connected} connected agents have applied generation {fleet.generation}"


def step_exposure(ctx: Context, info: ExperimentInfo, live_at: datetime) -> tuple[int, int]:
    """(challenger rows since the step went live, rows the step needs): the step's own evidence."""
    from controlplane.monitoring.query import arm_summary

    arm = arm_summary(ctx, info.deployment, info.challenger_id, live_at, experiment=info.name)
    return int(arm.rows or arm.requests), int(info.config["min_samples"])


@dataclass(frozen=True)
class Transition:
    experiment: str
    kind: str  # step | rolled_back | paused | promoted | completed
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
            infos = [_info(session, r, now) for r in rows]
        transitions = []
        for info in infos:
            try:
                transition = self.evaluate(info, now)
            except (Conflict, FailedPrecondition) as exc:
                log.info("experiment %s changed under the engine (%s); next tick", info.name, exc.message)
                continue
            except Exception:
                log.exception("evaluating experiment %s failed; trying again next tick", info.name)
                continue
            if transition is not None:
                log.info("experiment %s: %s (%s)", transition.experiment, transition.kind, transition.detail)
                transitions.append(transition)
        return transitions

    def evaluate(self, info: ExperimentInfo, now: datetime) -> Transition | None:
        analysis = compute_analysis(self.ctx, info, now)
        if info.state != "running":
            self._store(info, analysis, None)
            return None
        steps = info.steps
        last = info.step_index >= len(steps) - 1
        step = f"step {info.step_index + 1}/{len(steps)} ({_step_text(info.current_percent)})"
        fleet = None if info.step_live_at is not None else applied_by_fleet(self.ctx, info)
        live_at = info.step_live_at
        if fleet is not None and fleet.at is not None:
            live_at = max(fleet.at, info.step_started_at)  # never before the step itself
        held = live_at is not None and (now - live_at).total_seconds() >= info.hold_seconds
        failed = self._failed_gates(analysis)
        if failed and (held or analysis.sequential):
            return self._rollback(info, analysis, failed, step)
        if live_at is None:
            assert fleet is not None
            self._store(info, analysis, f"{step}: waiting for the agents to serve it: {fleet_text(fleet)}")
            return None
        newly_live = live_at if info.step_live_at is None else None
        if not held:
            remaining = info.hold_seconds - (now - live_at).total_seconds()
            self._store(info, analysis, f"{step}: holding, {remaining:.0f} s left", newly_live)
            return None
        if not analysis.ready:
            waiting = "; ".join(analysis.waiting_for)
            self._store(info, analysis, f"{step}: hold over, waiting for samples: {waiting}", newly_live)
            return None
        exposed, needed = step_exposure(self.ctx, info, live_at)
        if exposed < needed:
            self._store(
                info,
                analysis,
                f"{step}: hold over, waiting for samples at this step: challenger {exposed}/{needed} "
                "rows since the agents applied it",
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
        if analysis.decision == CHALLENGER_WINS:
            if info.config.get("auto_promote"):
                return self._auto_promote(info, analysis, step)
            return self._complete(info, analysis, step)
        why = (
            f"{step}: inconclusive at the last gate ({describe(analysis)}); resume to collect more, or promote / abort"
        )
        return self._pause(info, analysis, why)

    @staticmethod
    def _failed_gates(analysis: Analysis) -> list[str]:
        failed = [f"guardrail {g.metric}: {g.detail}" for g in analysis.failed_guardrails]
        if analysis.decision == CHAMPION_HOLDS:
            failed.append(f"primary metric {analysis.metric}: challenger significantly worse; {describe(analysis)}")
        return failed

    # -- transitions (each one locked transaction, checked against what was evaluated) --

    def _guarded(self, session: Session, info: ExperimentInfo) -> tuple[ExperimentRow, DeploymentRow]:
        row, deployment = _locked(session, info.name)
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
                _splits(champion, challenger, percent),
                action="experiment.step",
                reason=f"experiment {info.name}: {_step_text(info.current_percent)} -> {_step_text(percent)}; {why}",
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
            row.status_reason = f"step {row.step_index + 1}/{len(info.steps)}: challenger at {_step_text(percent)}"
        self.ctx.events.publish(
            "experiment",
            info.deployment,
            f"generation {generation}: experiment {info.name} advanced to {_step_text(percent)}",
        )
        return Transition(info.name, "step", f"{_step_text(info.current_percent)} -> {_step_text(percent)}")

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
                [NewSplit(champion, 100, "champion")],
                action="experiment.rollback",
                reason=f"experiment {info.name}: {why}",
                expected_generation=None,
                end_experiment=False,
                details={"experiment": info.name, "gate": gate, "failed_gates": failed},
            )
            row.state = "rolled_back"
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
                severity="critical",
                message=f"experiment {info.name}: {challenger.model}:{challenger.version} rolled back to 0%: {why}",
                version_id=info.challenger_id,
            )
        self.ctx.events.publish(
            "experiment", info.deployment, f"generation {generation}: experiment {info.name} rolled back ({gate})"
        )
        alerts.announce(self.ctx, alert, transition)
        return Transition(info.name, "rolled_back", why)

    def _pause(self, info: ExperimentInfo, analysis: Analysis, why: str) -> Transition:
        return self._settle(info, analysis, "paused", why, "experiment.pause", "paused for a person")

    def _complete(self, info: ExperimentInfo, analysis: Analysis, step: str) -> Transition:
        why = f"last gate passed at {step}: {describe(analysis)}; `sluice promote {info.name}` makes it champion"
        return self._settle(info, analysis, "completed", why, "experiment.complete", "completed")

    def _settle(
        self, info: ExperimentInfo, analysis: Analysis, state: str, why: str, action: str, event: str
    ) -> Transition:
        """A transition that leaves the traffic as it is: new state, reason, audit, event."""
        with self.ctx.db.session() as session:
            row, _ = self._guarded(session, info)
            row.state = state
            if state in ENDED_STATES:
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

        promoted, _ = _promote(self.ctx, ENGINE, info.name, f"experiment {info.name}: {why}", unchanged)
        with self.ctx.db.session() as session:
            session.execute(
                update(ExperimentRow).where(ExperimentRow.id == promoted.id).values(analysis=analysis.to_json())
            )
        return Transition(info.name, "promoted", why)

    async def run(self, executor: Any = None) -> None:
        """The loop the control plane spawns: one tick every config.rollout.tick_seconds."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.ctx.config.rollout.tick_seconds)
            await loop.run_in_executor(executor, self.tick)
