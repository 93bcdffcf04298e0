"""What an operator does to an experiment: start, pause, resume, stop, abort and promote it, and
read it back (get, list, with a freshly computed analysis while it runs).

Pause keeps the traffic as it is and stops the rollout clock: no gate is checked until resume,
which continues the step's hold where it stopped. Stop and abort are final: the challenger goes
to 0% and the experiment ends (stopped: its analysis is the outcome; aborted: cancelled).

Each command is one transaction that locks the deployment row first, changes splits through
`deployments.apply_change` (generation, history, audit) and publishes an "experiment" event after
the commit. The rollout engine (`rollout.py`) drives the same rows with the helpers here
(reading a row, locking it, promoting); the analysis itself is computed by `measure.py`.

Over 400 lines: every command and the rollout engine share the row helpers here (`experiment_info`,
`_find` with its lock, `lock_experiment`, `_end`), and each command is one transaction written
out with its own checks; split, the commands would import their reads back from a second module.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane import audit
from controlplane.context import Context
from controlplane.deployment_reads import active_experiment, deployment_info, find_deployment
from controlplane.deployments import NewSplit, apply_change
from controlplane.domain import DeploymentInfo, Principal
from controlplane.experiments.analysis import CHALLENGER_WINS, NOT_ENOUGH_DATA
from controlplane.experiments.challenger_checks import check_offline_win, check_schema, check_segment_features
from controlplane.experiments.measure import compute_analysis
from controlplane.experiments.spec import (
    ExperimentInfo,
    ExperimentSpec,
    check_label_task,
    step_splits,
    step_text,
    validate_reason,
    validate_spec,
)
from controlplane.registry import find_version
from controlplane.store.models import DeploymentRow, ExperimentRow, ModelVersionRow, utcnow
from core.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidInput, NotFound
from core.names import validate_name
from core.vocabulary import ACTIVE_EXPERIMENT_STATES, ExperimentState, ServingRole

log = logging.getLogger("sluice.experiments")

MAX_LIST = 1000


# ---- reading -----------------------------------------------------------------------------------


def experiment_info(session: Session, row: ExperimentRow, now: datetime | None = None) -> ExperimentInfo:
    """The row as a plain ExperimentInfo (built inside the session that loaded it)."""
    champion = session.get(ModelVersionRow, row.champion_id)
    challenger = session.get(ModelVersionRow, row.challenger_id)
    deployment = session.get(DeploymentRow, row.deployment_id)
    assert champion is not None and challenger is not None and deployment is not None
    config = dict(row.config or {})
    remaining = 0.0
    hold = float(config.get("hold_seconds", 0.0))
    if row.state == ExperimentState.RUNNING:
        if row.step_live_at is None:
            remaining = hold
        else:
            now = now or utcnow()
            remaining = max(0.0, hold - (now - row.step_live_at).total_seconds())
    elif row.state == ExperimentState.PAUSED and row.paused_at is not None:  # the clock stopped here
        served = 0.0 if row.step_live_at is None else (row.paused_at - row.step_live_at).total_seconds()
        remaining = max(0.0, hold - served)
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
        paused_at=row.paused_at,
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


def get_experiment(ctx: Context, name: str, *, fresh: bool = True) -> ExperimentInfo:
    """The experiment; an active one carries a freshly computed analysis (not stored)."""
    now = utcnow()
    with ctx.db.session() as session:
        info = experiment_info(session, _find(session, name), now)
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
        return [experiment_info(session, r, now) for r in session.scalars(query)]


# ---- starting ----------------------------------------------------------------------------------


def start_experiment(
    ctx: Context, principal: Principal, name: str, spec: ExperimentSpec, reason: str = ""
) -> ExperimentInfo:
    """Put the challenger beside the champion at the first step of the rollout."""
    validate_name("experiment", name)
    reason = validate_reason(reason)
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
            check_segment_features(config["segment_rules"], [champion, challenger])
            uses_mae = config["metric"] == "mae" or any(g["metric"] == "mae" for g in config["guardrails"])
            if uses_mae and champion.task != "regressor":
                raise InvalidInput(
                    f"mae needs a regressor, but {champion.model}:{champion.version} is a "
                    f"{champion.task}; use accuracy or error_rate"
                )
            check_label_task(config, champion.task)
            if config["require_offline_win"]:
                check_offline_win(champion, challenger, spec.deployment)
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
                state=ExperimentState.RUNNING,
                step_index=0,
                current_percent=percent,
                step_started_at=now,
                status_reason=f"step 1/{len(config['steps'])}: challenger at {step_text(percent)}",
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
                step_splits(champion, challenger, percent),
                action="experiment.start",
                reason=reason or f"experiment {name} started",
                expected_generation=None,
                end_experiment=False,
                details={"experiment": name, "config": config},
            )
            row.step_generation = generation
            info = experiment_info(session, row, now)
    except IntegrityError as exc:
        raise Conflict(f"experiment {name!r} was created concurrently; try another name") from exc
    ctx.events.publish(
        "experiment",
        spec.deployment,
        f"generation {generation}: experiment {name} started, {config['challenger']} at {step_text(percent)}",
    )
    return info


# ---- operator actions --------------------------------------------------------------------------


def lock_experiment(session: Session, name: str) -> tuple[ExperimentRow, DeploymentRow]:
    """The experiment and its deployment, the deployment row locked (always locked first)."""
    row = _find(session, name)
    deployment = session.scalar(select(DeploymentRow).where(DeploymentRow.id == row.deployment_id).with_for_update())
    assert deployment is not None
    session.refresh(row)  # the state as of the lock
    return row, deployment


_END_ACTIONS = {
    ExperimentState.STOPPED: "experiment.stop",
    ExperimentState.ABORTED: "experiment.abort",
    ExperimentState.ROLLED_BACK: "experiment.rollback",
}


def _end(
    ctx: Context,
    principal: Principal,
    name: str,
    state: ExperimentState,
    reason: str,
    verb: str,
) -> ExperimentInfo:
    reason = validate_reason(reason)
    with ctx.db.session() as session:
        row, deployment = lock_experiment(session, name)
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
            [NewSplit(champion, 100, ServingRole.CHAMPION)],
            action=_END_ACTIONS[state],
            reason=why,
            expected_generation=None,
            end_experiment=False,
            details={"experiment": name},
        )
        row.state = state
        row.ended_at = utcnow()
        row.paused_at = None
        row.status_reason = f"{verb} by {principal.name}" + (f": {reason}" if reason else "")
        info = experiment_info(session, row)
    ctx.events.publish("experiment", info.deployment, f"generation {generation}: experiment {name} {verb}")
    return info


def stop_experiment(ctx: Context, principal: Principal, name: str, reason: str = "") -> ExperimentInfo:
    """End the experiment, challenger to 0%; its analysis stays for the record."""
    info = _end(ctx, principal, name, ExperimentState.STOPPED, reason, "stopped")
    _store_final_analysis(ctx, info)
    return get_experiment(ctx, name, fresh=False)


def abort_experiment(ctx: Context, principal: Principal, name: str, reason: str = "") -> ExperimentInfo:
    """Cancel the experiment, challenger to 0% at once."""
    info = _end(ctx, principal, name, ExperimentState.ABORTED, reason, "aborted")
    _store_final_analysis(ctx, info)
    return get_experiment(ctx, name, fresh=False)


def roll_back_experiment(ctx: Context, principal: Principal, name: str, reason: str) -> ExperimentInfo:
    """End the experiment as rolled back, challenger to 0% at once (what a failed gate does; here
    for a health policy acting on a critical challenger)."""
    info = _end(ctx, principal, name, ExperimentState.ROLLED_BACK, reason, "rolled back")
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


def pause_experiment(ctx: Context, principal: Principal, name: str, reason: str = "") -> ExperimentInfo:
    """Hold a running experiment where it is: traffic unchanged, the rollout clock stopped, no gate
    checked (no step, promotion or automatic rollback) until it is resumed."""
    reason = validate_reason(reason)
    with ctx.db.session() as session:
        row, _ = lock_experiment(session, name)
        if row.state == ExperimentState.PAUSED:
            raise FailedPrecondition(
                f"experiment {name!r} is already paused ({row.status_reason}); "
                f"`sluice experiment resume {name}` continues it"
            )
        if row.state != ExperimentState.RUNNING:
            raise FailedPrecondition(
                f"experiment {name!r} is {row.state.replace('_', ' ')}; only a running experiment can be paused"
            )
        now = utcnow()
        row.state = ExperimentState.PAUSED
        row.paused_at = now
        steps = len((row.config or {}).get("steps", []))
        row.status_reason = (
            f"paused by {principal.name}"
            + (f": {reason}" if reason else "")
            + f"; step {row.step_index + 1}/{steps} keeps its traffic, resume continues its hold"
        )
        audit.record(
            session,
            principal,
            "experiment.pause",
            name,
            reason=reason,
            step_index=row.step_index,
            percent=row.current_percent,
        )
        info = experiment_info(session, row, now)
    ctx.events.publish("experiment", info.deployment, f"experiment {name} paused")
    return info


def resume_experiment(ctx: Context, principal: Principal, name: str, reason: str = "") -> ExperimentInfo:
    """A paused experiment runs again. After an operator's pause the step's hold continues where it
    stopped; after the engine paused it (sample ratio mismatch, inconclusive last gate) the step's
    hold starts over, so the gate sees new evidence."""
    reason = validate_reason(reason)
    with ctx.db.session() as session:
        row, _ = lock_experiment(session, name)
        if row.state != ExperimentState.PAUSED:
            raise FailedPrecondition(
                f"experiment {name!r} is {row.state.replace('_', ' ')}, not paused; only a paused experiment "
                "can be resumed (a stopped or aborted one has ended: start a new experiment)"
            )
        now = utcnow()
        if row.paused_at is not None and row.step_live_at is not None:
            row.step_live_at = row.step_live_at + (now - row.paused_at)  # the clock skips the pause
            how = "the step's hold continues where it stopped"
        elif row.paused_at is not None:  # paused before the agents served the step
            row.step_started_at = now
            how = "the step's hold starts once every agent serves it"
        else:
            row.step_started_at = now
            row.step_live_at = None  # live again once the fleet is seen serving the step
            how = "the step's hold starts over"
        row.paused_at = None
        row.state = ExperimentState.RUNNING
        row.status_reason = f"resumed by {principal.name}" + (f": {reason}" if reason else "") + f"; {how}"
        audit.record(session, principal, "experiment.resume", name, reason=reason, step_index=row.step_index)
        info = experiment_info(session, row, now)
    ctx.events.publish("experiment", info.deployment, f"experiment {name} resumed")
    return info


def promote(ctx: Context, principal: Principal, name: str, reason: str = "") -> DeploymentInfo:
    """Make the challenger the champion at 100% (the previous champion is remembered)."""
    reason = validate_reason(reason)
    before = get_experiment(ctx, name, fresh=True)
    decision = str((before.analysis or {}).get("decision", "")) or NOT_ENOUGH_DATA
    _info, deployment_after = promote_challenger(
        ctx,
        principal,
        name,
        reason or f"promoted by {principal.name}",
        audit_details={"decision": decision, "against_analysis": decision != CHALLENGER_WINS},
        analysis=before.analysis if before.active else None,
    )
    return deployment_after


def promote_challenger(
    ctx: Context,
    principal: Principal,
    name: str,
    reason: str,
    check: Callable[[ExperimentRow], None] | None = None,
    audit_details: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
) -> tuple[ExperimentInfo, DeploymentInfo]:
    """The challenger to 100% as champion; `check` may refuse the locked row first (the engine's
    auto-promote checks that the experiment has not moved on). `audit_details` join the promote's
    audit event (the analysis's decision at the time); `analysis`, the verdict it was promoted on,
    is stored in the same transaction (a reader never sees it promoted with an older analysis)."""
    with ctx.db.session() as session:
        row, deployment = lock_experiment(session, name)
        if check is not None:
            check(row)
        if row.state in (ExperimentState.STOPPED, ExperimentState.ABORTED, ExperimentState.ROLLED_BACK):
            raise FailedPrecondition(
                f"experiment {name!r} is {row.state.replace('_', ' ')}: its challenger no longer has "
                "traffic; start a new experiment (or `sluice deploy`) to promote that version"
            )
        if row.state == ExperimentState.PROMOTED:
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
            [NewSplit(challenger, 100, ServingRole.CHAMPION)],
            action="promote",
            reason=reason,
            expected_generation=None,
            end_experiment=False,
            details={"experiment": name, **(audit_details or {})},
        )
        row.state = ExperimentState.PROMOTED
        row.ended_at = utcnow()
        row.paused_at = None
        row.current_percent = 100
        row.status_reason = f"promoted by {principal.name}: {reason}"
        if analysis is not None:
            row.analysis = analysis
        info = experiment_info(session, row)
        after = deployment_info(session, deployment)
    ctx.events.publish(
        "experiment",
        info.deployment,
        f"generation {generation}: experiment {name} promoted {challenger.model}:{challenger.version} to champion",
    )
    return info, after
