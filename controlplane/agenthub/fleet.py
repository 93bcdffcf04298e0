"""What the fleet serves: each agent's status, and whether the connected agents have applied a
deployment's generation.

Read-only queries (one session each) for ListAgents, WaitForSync and the rollout engine's "is this
step live"; the stream handler's writes are in `agents.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.agenthub.snapshot import digest_of
from controlplane.context import Context
from controlplane.deployment_reads import deployment_info, find_deployment
from controlplane.store.models import AgentDeploymentRow, AgentRow, DeploymentRow
from core.errors import InvalidInput
from core.vocabulary import AgentState


def counts_as_applied(applied: int, digest: str, target: int, current: int, current_digest: str) -> bool:
    """Does an agent that applied generation `applied` (content `digest`) serve generation
    `target` of a deployment that is now at `current` (content `current_digest`)?

    Numbers alone lie once a database restore makes generations repeat: an agent ahead of the
    store serves something the store no longer knows, and at the current number only the same
    content counts. An older generation cannot be checked by content: by number, as before.
    """
    if applied > current:
        return False
    if applied == current and digest and current_digest:
        return digest == current_digest
    return applied >= target


@dataclass(frozen=True)
class DeploymentSync:
    deployment: str
    applied_generation: int
    applied_digest: str
    desired_generation: int
    desired_digest: str

    @property
    def in_sync(self) -> bool:
        return counts_as_applied(
            self.applied_generation,
            self.applied_digest,
            self.desired_generation,
            self.desired_generation,
            self.desired_digest,
        )


@dataclass(frozen=True)
class AgentStatus:
    id: str
    name: str
    host: str
    address: str
    labels: dict[str, str]
    state: str
    last_seen: datetime
    connected_at: datetime
    last_nack: str
    deployments: list[DeploymentSync] = field(default_factory=list)


@dataclass(frozen=True)
class SyncStatus:
    deployment: str
    generation: int
    synced: list[str]
    lagging: list[str]  # "name (at generation N[; refused: reason])"
    refused: list[str] = field(default_factory=list)  # names of lagging agents that refused it

    @property
    def in_sync(self) -> bool:
        return not self.lagging

    @property
    def settled(self) -> bool:
        """Nothing left to wait for: every agent applied the generation or refused it."""
        return len(self.refused) == len(self.lagging)


def _desired(session: Session, row: DeploymentRow, tolerance: float) -> tuple[int, str]:
    """A deployment's current generation and the digest of what agents should serve for it
    (`tolerance`: the configuration's `health.tolerance`)."""
    return row.generation, digest_of(deployment_info(session, row), tolerance)


def list_agents(ctx: Context, limit: int | None = None, after: tuple[str, str] | None = None) -> list[AgentStatus]:
    """Agents by (name, id): at most `limit`, and with `after` only those past that (name, id)."""
    with ctx.db.session() as session:
        query = select(AgentRow).order_by(AgentRow.name, AgentRow.id)
        if after is not None:
            name, agent_id = after
            query = query.where((AgentRow.name > name) | ((AgentRow.name == name) & (AgentRow.id > agent_id)))
        rows = session.scalars(query.limit(limit)).all()
        if not rows:
            return []
        tolerance = ctx.config.health.tolerance
        desired = {r.name: _desired(session, r, tolerance) for r in session.scalars(select(DeploymentRow))}
        applied: dict[str, dict[str, tuple[int, str]]] = {}
        page = select(AgentDeploymentRow).where(AgentDeploymentRow.agent_id.in_([r.id for r in rows]))
        for ad in session.scalars(page):
            applied.setdefault(ad.agent_id, {})[ad.deployment] = (ad.applied_generation, ad.applied_digest)
        out = []
        for row in rows:
            mine = applied.get(row.id, {})
            out.append(
                AgentStatus(
                    id=row.id,
                    name=row.name,
                    host=row.host,
                    address=row.address,
                    labels={str(k): str(v) for k, v in (row.labels or {}).items()},
                    state=row.state,
                    last_seen=row.last_seen,
                    connected_at=row.connected_at,
                    last_nack=row.last_nack,
                    deployments=[
                        DeploymentSync(name, *mine.get(name, (0, "")), generation, digest)
                        for name, (generation, digest) in sorted(desired.items())
                    ],
                )
            )
        return out


@dataclass(frozen=True)
class FleetApplied:
    """Whether every connected agent serves a generation of a deployment (a rollout step is live)."""

    generation: int
    connected: int
    applied: int
    #: when the last of them applied it (None until all of them have, or with no agent connected)
    at: datetime | None


def fleet_applied(ctx: Context, deployment: str, generation: int = 0) -> FleetApplied:
    """Have all connected agents applied `generation` (0: the current one) of the deployment?

    `at` is the latest ACK time among them (a later change's ACK moves it later, never earlier):
    traffic at that generation's weights flows from then on, on every agent.
    """
    with ctx.db.session() as session:
        row = find_deployment(session, deployment)
        current, digest = _desired(session, row, ctx.config.health.tolerance)
        target = generation or current
        rows = session.execute(
            select(
                AgentDeploymentRow.applied_generation, AgentDeploymentRow.applied_digest, AgentDeploymentRow.updated_at
            )
            .select_from(AgentRow)
            .outerjoin(
                AgentDeploymentRow,
                (AgentDeploymentRow.agent_id == AgentRow.id) & (AgentDeploymentRow.deployment == deployment),
            )
            .where(AgentRow.state == AgentState.CONNECTED)
        ).all()
    applied = [
        r.updated_at
        for r in rows
        if counts_as_applied(r.applied_generation or 0, r.applied_digest or "", target, current, digest)
    ]
    at = max(applied) if rows and len(applied) == len(rows) else None
    return FleetApplied(target, len(rows), len(applied), at)


def sync_status(ctx: Context, deployment: str, generation: int = 0) -> SyncStatus:
    """Which connected agents have applied `generation` (0: the current one) of the deployment."""
    if generation < 0:
        raise InvalidInput(f"generation must not be negative, got {generation}")
    with ctx.db.session() as session:
        row = find_deployment(session, deployment)
        if generation > row.generation:
            raise InvalidInput(
                f"deployment {deployment!r} is at generation {row.generation}; generation {generation} "
                "does not exist yet"
            )
        current, digest = _desired(session, row, ctx.config.health.tolerance)
        target = generation or current
        rows = session.execute(
            select(
                AgentRow.id,
                AgentRow.name,
                AgentRow.last_nack,
                AgentDeploymentRow.applied_generation,
                AgentDeploymentRow.applied_digest,
                AgentDeploymentRow.refused_generation,
            )
            .outerjoin(
                AgentDeploymentRow,
                (AgentDeploymentRow.agent_id == AgentRow.id) & (AgentDeploymentRow.deployment == deployment),
            )
            .where(AgentRow.state == AgentState.CONNECTED)
            .order_by(AgentRow.name)
        ).all()

    def applied(r: Any) -> bool:
        return counts_as_applied(r.applied_generation or 0, r.applied_digest or "", target, current, digest)

    def where(r: Any) -> str:
        at = r.applied_generation or 0
        other = " of other content" if at >= target else ""  # a restored store repeats numbers
        return f"at generation {at}{other}" + (f"; refused: {r.last_nack}" if r.last_nack else "")

    synced = [r.name for r in rows if applied(r)]
    behind = [r for r in rows if not applied(r)]
    lagging = [f"{r.name} ({where(r)})" for r in behind]
    refused = [r.name for r in behind if (r.refused_generation or 0) >= target]
    return SyncStatus(deployment, target, synced, lagging, refused)
