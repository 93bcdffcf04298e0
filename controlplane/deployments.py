"""Deployments and their traffic: deploy, set traffic, roll back.

Every change bumps the deployment's generation (the optimistic-concurrency token and the number
agents ACK), writes a history entry and an audit event in the same transaction, and is pushed to
agents only after it commits.

Rollback is a stack, not a toggle: a plain rollback restores the last champion before the current
one that was not itself rolled back (`restorable`), so rolling back twice never puts back a
version that was rolled back; the deployment's `previous_champion` is always that version. That
rule is `deployment_history.py`; reading deployments and their history back (and a deployment's
row, locked or not) is `deployment_reads.py`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane import audit
from controlplane.context import Context
from controlplane.deployment_history import restorable_version
from controlplane.deployment_reads import active_experiment, deployment_info, find_deployment
from controlplane.domain import DeploymentInfo, Principal, SplitInfo
from controlplane.registry import find_version
from controlplane.store.db import execute_dml
from controlplane.store.models import (
    DeploymentHistoryRow,
    DeploymentRow,
    ModelVersionRow,
    TrafficSplitRow,
    utcnow,
)
from core.errors import Conflict, FailedPrecondition, InvalidInput
from core.names import validate_name
from core.vocabulary import ExperimentState, ServingRole


@dataclass(frozen=True)
class NewSplit:
    version: ModelVersionRow
    weight: int
    role: ServingRole


def split_summary(splits: list[NewSplit] | list[SplitInfo]) -> list[dict[str, Any]]:
    out = []
    for s in splits:
        v = s.version
        out.append({"version": f"{v.model}:{v.version}", "weight": s.weight, "role": s.role})
    return out


def check_compatible(reference: ModelVersionRow, candidate: ModelVersionRow) -> None:
    """Versions sharing a deployment must take the same inputs and give the same kind of answer."""
    if candidate.model != reference.model:
        raise InvalidInput(
            f"{candidate.model}:{candidate.version} is a version of model {candidate.model!r}, "
            f"but the deployment serves model {reference.model!r}"
        )
    if candidate.task != reference.task:
        raise InvalidInput(
            f"{candidate.model}:{candidate.version} is a {candidate.task} but {reference.model}:{reference.version} "
            f"is a {reference.task}: the clients of one deployment must get one kind of answer"
        )
    ref_inputs = [(i["dtype"], i["shape"][1:]) for i in reference.inputs]
    new_inputs = [(i["dtype"], i["shape"][1:]) for i in candidate.inputs]
    if ref_inputs != new_inputs:
        raise InvalidInput(
            f"{candidate.model}:{candidate.version} takes inputs {candidate.inputs} but "
            f"{reference.model}:{reference.version} takes {reference.inputs}: the input schemas differ"
        )


def apply_change(
    session: Session,
    principal: Principal,
    row: DeploymentRow,
    splits: list[NewSplit],
    *,
    action: str,
    reason: str,
    expected_generation: int | None,
    end_experiment: bool = True,
    details: dict[str, Any] | None = None,
) -> int:
    """Replace the deployment's splits; returns the new generation.

    The caller holds the deployment row locked (`find_deployment(..., lock=True)`).
    """
    if expected_generation is not None and expected_generation != row.generation:
        raise Conflict(
            f"deployment {row.name!r} is at generation {row.generation}, not "
            f"{expected_generation}: someone else changed it; re-read and try again"
        )
    new_generation = _advance_generation(session, row)
    existing = {
        s.version_id: s
        for s in session.scalars(select(TrafficSplitRow).where(TrafficSplitRow.deployment_id == row.id))
    }
    next_position = max((s.position for s in existing.values()), default=0) + 1
    keep = {s.version.id for s in splits}
    for version_id, split_row in existing.items():
        if version_id not in keep:
            session.delete(split_row)
    for split in splits:
        current = existing.get(split.version.id)
        if current is None:
            session.add(
                TrafficSplitRow(
                    deployment_id=row.id,
                    version_id=split.version.id,
                    weight=split.weight,
                    role=split.role,
                    position=next_position,
                )
            )
            next_position += 1
        else:
            current.weight = split.weight
            current.role = split.role
    summary = split_summary(splits)
    ended = active_experiment(session, row.id) if end_experiment else None
    if ended is not None:  # the history tells why the experiment's plan stopped here
        reason = f"{reason}; ends experiment {ended.name}" if reason else f"ends experiment {ended.name}"
    session.add(
        DeploymentHistoryRow(
            deployment_id=row.id,
            generation=new_generation,
            action=action,
            principal=principal.name,
            reason=reason,
            splits=summary,
        )
    )
    audit.record(
        session,
        principal,
        action,
        row.name,
        generation=new_generation,
        splits=summary,
        reason=reason,
        **(details or {}),
    )
    if ended is not None:
        ended.state = ExperimentState.ABORTED
        ended.ended_at = utcnow()
        ended.paused_at = None
        ended.status_reason = f"ended by a manual {action} ({principal.name})"
        audit.record(session, principal, "experiment.abort", ended.name, reason=ended.status_reason)
    session.flush()
    previous = restorable_version(session, row)
    session.execute(
        update(DeploymentRow)
        .where(DeploymentRow.id == row.id)
        .values(previous_champion_id=previous.id if previous is not None else None)
        .execution_options(synchronize_session="evaluate")
    )
    return new_generation


def _advance_generation(session: Session, row: DeploymentRow) -> int:
    """The deployment's next generation, written. The WHERE on the old generation makes a lost
    update impossible even without row locks."""
    new_generation = row.generation + 1
    matched = execute_dml(
        session,
        update(DeploymentRow)
        .where(DeploymentRow.id == row.id, DeploymentRow.generation == row.generation)
        .values(generation=new_generation, updated_at=utcnow())
        .execution_options(synchronize_session="evaluate"),
    )
    if matched != 1:
        raise Conflict(f"deployment {row.name!r} changed concurrently; re-read and try again")
    return new_generation


def bump_generation(session: Session, principal: Principal, row: DeploymentRow, action: str, reason: str) -> int:
    """A new generation with the same splits: a change agents must apply that is not a traffic
    change (the policy's fallback). The caller holds the row locked; history entry in the same
    transaction (the audit entry is the caller's)."""
    new_generation = _advance_generation(session, row)
    session.add(
        DeploymentHistoryRow(
            deployment_id=row.id,
            generation=new_generation,
            action=action,
            principal=principal.name,
            reason=reason,
            splits=split_summary(deployment_info(session, row).splits),
        )
    )
    return new_generation


def _check_weights(weights: list[tuple[str, str, int]]) -> None:
    if not weights:
        raise InvalidInput("no weights given: name at least one MODEL:VERSION=WEIGHT")
    seen: set[tuple[str, str]] = set()
    for model, version, weight in weights:
        if (model, version) in seen:
            raise InvalidInput(f"{model}:{version} is named twice")
        seen.add((model, version))
        if not isinstance(weight, int) or isinstance(weight, bool):
            raise InvalidInput(f"the weight of {model}:{version} must be a whole number")
        if weight < 0 or weight > 100:
            raise InvalidInput(f"the weight of {model}:{version} is {weight}; weights are 0 to 100")
    total = sum(w for _, _, w in weights)
    if total != 100:
        raise InvalidInput(f"weights sum to {total}; they must sum to 100")


def operator_change(
    session: Session,
    principal: Principal,
    row: DeploymentRow,
    splits: list[NewSplit],
    action: str,
    reason: str,
    expected_generation: int | None,
) -> tuple[int, DeploymentInfo]:
    """A person's deploy, traffic change or rollback: it ends a running experiment, and says which."""
    ended = active_experiment(session, row.id)
    generation = apply_change(
        session, principal, row, splits, action=action, reason=reason, expected_generation=expected_generation
    )
    info = replace(deployment_info(session, row), ended_experiment=ended.name if ended else "")
    return generation, info


def deploy(
    ctx: Context,
    principal: Principal,
    deployment: str,
    model: str,
    version: str,
    *,
    expected_generation: int | None = None,
    reason: str = "",
) -> DeploymentInfo:
    """Make MODEL:VERSION the champion at 100%, creating the deployment when missing."""
    validate_name("deployment", deployment)
    try:
        with ctx.db.session() as session:
            target = find_version(session, model, version)
            row = session.scalar(
                select(DeploymentRow).where(DeploymentRow.name == deployment).with_for_update()
            )
            if row is None:
                if expected_generation not in (None, 0):
                    raise Conflict(f"deployment {deployment!r} does not exist yet (generation 0)")
                row = DeploymentRow(name=deployment, generation=0, salt=secrets.token_hex(8))
                session.add(row)
                session.flush()
            splits = [NewSplit(target, 100, ServingRole.CHAMPION)]
            generation, info = operator_change(session, principal, row, splits, "deploy", reason, expected_generation)
    except IntegrityError as exc:
        raise Conflict(f"deployment {deployment!r} was created concurrently; try again") from exc
    ctx.events.publish("deployment", deployment, f"generation {generation}: {model}:{version} at 100%")
    return info


def set_traffic(
    ctx: Context,
    principal: Principal,
    deployment: str,
    weights: list[tuple[str, str, int]],
    *,
    expected_generation: int | None = None,
    reason: str = "",
) -> DeploymentInfo:
    _check_weights(weights)
    with ctx.db.session() as session:
        row = find_deployment(session, deployment, lock=True)
        current = deployment_info(session, row)
        champion = current.champion
        versions = [(find_version(session, m, v), w) for m, v, w in weights]
        reference = session.get(ModelVersionRow, champion.id) if champion is not None else versions[0][0]
        assert reference is not None
        for version_row, _ in versions:
            check_compatible(reference, version_row)
        live = [(v, w) for v, w in versions if w > 0]
        # The champion stays champion while it keeps traffic; otherwise the heaviest takes over.
        champion_id = champion.id if champion and any(v.id == champion.id for v, _ in live) else None
        if champion_id is None:
            champion_id = max(live, key=lambda p: p[1])[0].id
        splits = [
            NewSplit(v, w, ServingRole.CHAMPION if v.id == champion_id else ServingRole.CHALLENGER) for v, w in live
        ]
        generation, info = operator_change(
            session, principal, row, splits, "traffic.set", reason, expected_generation
        )
    ctx.events.publish(
        "traffic",
        deployment,
        f"generation {generation}: "
        + ", ".join(f"{s['version']}={s['weight']}" for s in split_summary(splits)),
    )
    return info


def rollback(
    ctx: Context,
    principal: Principal,
    deployment: str,
    to: tuple[str, str] | None = None,
    *,
    expected_generation: int | None = None,
    reason: str = "",
) -> DeploymentInfo:
    """Return to the previous champion (the last one not itself rolled back), or to a named
    version, at 100% at once. Refused when that is what already serves."""
    with ctx.db.session() as session:
        row = find_deployment(session, deployment, lock=True)
        current = deployment_info(session, row)
        serving = ", ".join(f"{s.version.ref}={s.weight}%" for s in current.splits) or "nothing"
        target: ModelVersionRow | None
        if to is not None:
            target = find_version(session, *to)
        else:
            target = restorable_version(session, row)
            if target is None:
                raise FailedPrecondition(
                    f"deployment {deployment!r} has no earlier champion that was not itself rolled back "
                    f"(serving {serving}); name one with --to MODEL:VERSION (`sluice history {deployment}`)"
                )
        if len(current.splits) == 1 and current.splits[0].version.id == target.id:
            raise FailedPrecondition(
                f"{target.model}:{target.version} already serves {deployment!r} at 100% (generation "
                f"{current.generation}); nothing to roll back"
            )
        if current.champion is not None:
            reference = session.get(ModelVersionRow, current.champion.id)
            assert reference is not None
            if reference.model != target.model:
                raise InvalidInput(f"{target.model}:{target.version} is not a version of {reference.model!r}")
        splits = [NewSplit(target, 100, ServingRole.CHAMPION)]
        generation, info = operator_change(session, principal, row, splits, "rollback", reason, expected_generation)
    ctx.events.publish(
        "deployment", deployment, f"generation {generation}: rolled back to {target.model}:{target.version}"
    )
    return info
