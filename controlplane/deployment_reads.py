"""Deployments read back: a deployment's row (locked for a change, or not), its splits and policy
as a `DeploymentInfo`, the list of deployments, and one deployment's history.

Read-only; every change is `deployments.py`'s.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.context import Context
from controlplane.deployment_history import MAX_HISTORY
from controlplane.domain import DeploymentInfo, HistoryEntry, SplitInfo
from controlplane.registry import version_info
from controlplane.store.models import (
    DeploymentHistoryRow,
    DeploymentPolicyRow,
    DeploymentRow,
    ExperimentRow,
    ModelVersionRow,
    TrafficSplitRow,
)
from core.errors import NotFound
from core.names import validate_name
from core.vocabulary import ACTIVE_EXPERIMENT_STATES

#: the policy setting agents act on (monitoring.policy writes it): a challenger's model failure is
#: answered by the champion
FALLBACK_SETTING = "fallback"
#: the other one: the regression tolerance agents count "within" with
TOLERANCE_SETTING = "tolerance"


def find_deployment(session: Session, name: str, *, lock: bool = False) -> DeploymentRow:
    validate_name("deployment", name)
    query = select(DeploymentRow).where(DeploymentRow.name == name)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"no deployment named {name!r}; `sluice deploy {name} MODEL:VERSION` creates it")
    return row


def active_experiment(session: Session, deployment_id: int) -> ExperimentRow | None:
    return session.scalar(
        select(ExperimentRow).where(
            ExperimentRow.deployment_id == deployment_id,
            ExperimentRow.state.in_(ACTIVE_EXPERIMENT_STATES),
        )
    )


def deployment_info(session: Session, row: DeploymentRow) -> DeploymentInfo:
    pairs = session.execute(
        select(TrafficSplitRow, ModelVersionRow)
        .join(ModelVersionRow, TrafficSplitRow.version_id == ModelVersionRow.id)
        .where(TrafficSplitRow.deployment_id == row.id)
        # Routing order: newest position first, so a ramp only moves keys toward the newcomer.
        .order_by(TrafficSplitRow.position.desc())
    ).all()
    previous = session.get(ModelVersionRow, row.previous_champion_id) if row.previous_champion_id else None
    experiment = active_experiment(session, row.id)
    settings = session.scalar(select(DeploymentPolicyRow.settings).where(DeploymentPolicyRow.deployment_id == row.id))
    return DeploymentInfo(
        id=row.id,
        name=row.name,
        generation=row.generation,
        salt=row.salt,
        splits=[SplitInfo(version_info(v), s.weight, s.role, s.position) for s, v in pairs],
        previous_champion=version_info(previous) if previous else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        experiment=experiment.name if experiment else "",
        routing_salt=experiment.salt if experiment else row.salt,
        segment_rules=list((experiment.config or {}).get("segment_rules", [])) if experiment else [],
        log_sample_rate=float(row.log_sample_rate),
        fallback=bool((settings or {}).get(FALLBACK_SETTING, False)),
        tolerance=float(settings[TOLERANCE_SETTING]) if settings and TOLERANCE_SETTING in settings else None,
    )


def list_deployments(ctx: Context, name: str = "") -> list[DeploymentInfo]:
    with ctx.db.session() as session:
        if name:
            return [deployment_info(session, find_deployment(session, name))]
        rows = session.scalars(select(DeploymentRow).order_by(DeploymentRow.name)).all()
        return [deployment_info(session, r) for r in rows]


def list_history(ctx: Context, deployment: str, limit: int = 100) -> list[HistoryEntry]:
    with ctx.db.session() as session:
        row = find_deployment(session, deployment)
        rows = session.scalars(
            select(DeploymentHistoryRow)
            .where(DeploymentHistoryRow.deployment_id == row.id)
            .order_by(DeploymentHistoryRow.generation.desc())
            .limit(min(limit or 100, MAX_HISTORY))
        )
        return [
            HistoryEntry(
                r.id, deployment, r.generation, r.action, r.principal, r.reason, list(r.splits), r.at
            )
            for r in rows
        ]
