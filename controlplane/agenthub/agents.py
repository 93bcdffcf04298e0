"""What the control plane knows about its serving agents: who they are, what they applied.

Domain functions (one transaction each) used by the AgentHub stream handler and the ControlPlane's
ListAgents / WaitForSync. They return plain objects, never ORM rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from controlplane.agenthub.snapshot import digest_of
from controlplane.context import Context
from controlplane.deployments import deployment_info, find_deployment
from controlplane.store.db import upsert_statement
from controlplane.store.models import AgentDeploymentRow, AgentRow, DeploymentRow, utcnow
from core.errors import InvalidInput
from core.names import NAME_LENGTH, validate_name

CONNECTED = "connected"
DISCONNECTED = "disconnected"
LOST = "lost"
STOPPED = "stopped"  # said Goodbye: shut down on purpose

MAX_LABELS = 64
MAX_LABEL_TEXT = 256
MAX_NACK_TEXT = 4000
_AGENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class AgentHello:
    """A validated Hello: who is connecting and what it already serves."""

    id: str
    name: str
    host: str
    address: str
    labels: dict[str, str]
    applied: dict[str, int]
    #: DeploymentSnapshot.digest of what it serves (empty from agents that send none)
    digests: dict[str, str] = field(default_factory=dict)


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


def validate_hello(
    agent_id: str,
    name: str,
    host: str,
    address: str,
    labels: Mapping[str, str],
    applied: Mapping[str, int],
    digests: Mapping[str, str] | None = None,
) -> AgentHello:
    if not _AGENT_ID.fullmatch(agent_id):
        raise InvalidInput(
            "Hello.agent_id must be 1-64 letters, digits, '.', '_' or '-' (the agent keeps it in its cache)"
        )
    validate_name("agent", name)
    for what, text in (("host", host), ("address", address)):
        if len(text) > 255:
            raise InvalidInput(f"Hello.{what} is {len(text)} characters; the limit is 255")
    if len(labels) > MAX_LABELS:
        raise InvalidInput(f"an agent may carry at most {MAX_LABELS} labels, got {len(labels)}")
    for key, value in labels.items():
        if not key or len(key) > MAX_LABEL_TEXT or len(value) > MAX_LABEL_TEXT:
            raise InvalidInput(f"label {key[:40]!r}: keys must be 1-{MAX_LABEL_TEXT} characters, values too")
    clean_applied = {}
    for deployment, generation in applied.items():
        if len(deployment) <= NAME_LENGTH and generation >= 0:
            clean_applied[deployment] = int(generation)
    return AgentHello(agent_id, name, host, address, dict(labels), clean_applied, _clean_digests(digests or {}))


def _clean_digests(digests: Mapping[str, str]) -> dict[str, str]:
    """Digests as an agent sent them: only well-formed ones (anything else means "unknown")."""
    return {d: v for d, v in digests.items() if len(d) <= NAME_LENGTH and _DIGEST.fullmatch(v)}


def _check_generations(generations: Mapping[str, int]) -> None:
    """An ACK or NACK naming an impossible deployment or generation is refused as a whole."""
    for deployment, generation in generations.items():
        validate_name("deployment", deployment)
        if generation < 0:
            raise InvalidInput(f"the generation of {deployment!r} is {generation}; generations are >= 0")


def _set_applied(
    session: Session, agent_id: str, generations: Mapping[str, int], digests: Mapping[str, str]
) -> None:
    """Record what the agent serves, one INSERT ... ON CONFLICT DO UPDATE per deployment: two
    transactions for one agent (an old stream's ACK, a new stream's Hello) never collide on the
    key. `updated_at` moves only when the generation does; a refusal ends once it is applied."""
    if not generations:
        return
    now = utcnow()
    table = AgentDeploymentRow.__table__
    for deployment, generation in generations.items():
        statement = upsert_statement(session, table).values(  # type: ignore[arg-type]
            agent_id=agent_id,
            deployment=deployment,
            applied_generation=generation,
            applied_digest=digests.get(deployment, ""),
            refused_generation=0,
            updated_at=now,
        )
        new = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.agent_id, table.c.deployment],
            set_={
                "applied_generation": new.applied_generation,
                "applied_digest": new.applied_digest,
                "updated_at": case(
                    (
                        (table.c.applied_generation != new.applied_generation)
                        | (table.c.applied_digest != new.applied_digest),
                        new.updated_at,
                    ),
                    else_=table.c.updated_at,
                ),
                "refused_generation": case(
                    (
                        (table.c.refused_generation != 0) & (new.applied_generation >= table.c.refused_generation),
                        0,
                    ),
                    else_=table.c.refused_generation,
                ),
            },
        )
        session.execute(statement)


def _set_refused(session: Session, agent_id: str, refused: Mapping[str, int]) -> None:
    """Record refused generations (the highest one stays), as an upsert like `_set_applied`."""
    if not refused:
        return
    now = utcnow()
    table = AgentDeploymentRow.__table__
    for deployment, generation in refused.items():
        statement = upsert_statement(session, table).values(  # type: ignore[arg-type]
            agent_id=agent_id,
            deployment=deployment,
            applied_generation=0,  # refused the first generation it was ever sent
            refused_generation=generation,
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.agent_id, table.c.deployment],
            set_={
                "refused_generation": case(
                    (table.c.refused_generation >= generation, table.c.refused_generation), else_=generation
                ),
                "updated_at": now,
            },
        )
        session.execute(statement)


@dataclass(frozen=True)
class Connected:
    """A stream's start as recorded: the state before it ("" when new) and the stream's epoch.

    The epoch is the row's `connected_at`. Every later write about this stream (disconnected,
    lost, heartbeats) is conditional on it, so a write for an old stream that commits after a
    newer stream's connect changes nothing.
    """

    previous: str
    epoch: datetime


def agent_connected(ctx: Context, hello: AgentHello) -> Connected:
    """Record a (re)connecting agent as a new stream epoch."""
    now = utcnow()
    with ctx.db.session() as session:
        row = session.get(AgentRow, hello.id, with_for_update=True)
        previous = ""
        if row is None:
            row = AgentRow(id=hello.id, last_nack="")
            session.add(row)
        else:
            previous = row.state
        row.name = hello.name
        row.host = hello.host
        row.address = hello.address
        row.labels = hello.labels
        row.state = CONNECTED
        row.last_seen = now
        row.connected_at = now
        session.flush()
        # What the agent serves from its cache right now (it ACKs the fresh snapshot shortly).
        session.execute(
            update(AgentDeploymentRow)
            .where(
                AgentDeploymentRow.agent_id == hello.id,
                AgentDeploymentRow.deployment.not_in(list(hello.applied) or [""]),
            )
            .values(applied_generation=0, updated_at=now)
        )
        # A new stream gets a fresh snapshot: an earlier refusal says nothing about this one yet.
        session.execute(
            update(AgentDeploymentRow)
            .where(AgentDeploymentRow.agent_id == hello.id, AgentDeploymentRow.refused_generation != 0)
            .values(refused_generation=0)
        )
        _set_applied(session, hello.id, hello.applied, hello.digests)
    return Connected(previous, now)


def record_applied(
    ctx: Context, agent_id: str, generations: Mapping[str, int], digests: Mapping[str, str] | None = None
) -> None:
    _check_generations(generations)
    digests = _clean_digests(digests or {})
    with ctx.db.session() as session:
        # An applied snapshot supersedes the last refusal: only a current NACK is shown.
        session.execute(update(AgentRow).where(AgentRow.id == agent_id).values(last_seen=utcnow(), last_nack=""))
        _set_applied(session, agent_id, generations, digests)


def record_nack(
    ctx: Context,
    agent_id: str,
    reason: str,
    generations: Mapping[str, int],
    refused: Mapping[str, int] | None = None,
    digests: Mapping[str, str] | None = None,
) -> None:
    """The agent refused a snapshot: `generations` it still serves (with their `digests`), the
    `refused` ones it could not apply."""
    _check_generations(generations)
    digests = _clean_digests(digests or {})
    _check_generations(refused or {})
    text = reason[:MAX_NACK_TEXT] or "the agent refused the snapshot without a reason"
    with ctx.db.session() as session:
        session.execute(update(AgentRow).where(AgentRow.id == agent_id).values(last_nack=text, last_seen=utcnow()))
        _set_applied(session, agent_id, generations, digests)
        _set_refused(session, agent_id, refused or {})


def set_state(ctx: Context, agent_id: str, state: str, epoch: datetime | None = None) -> str | None:
    """Set the agent's state; returns the state before, or None when nothing changed because the
    agent is unknown or, with `epoch`, a newer stream has connected since that epoch."""
    with ctx.db.session() as session:
        row = session.get(AgentRow, agent_id, with_for_update=True)
        if row is None or (epoch is not None and row.connected_at != epoch):
            return None
        previous = row.state
        row.state = state
        return previous


def touch(ctx: Context, streams: Mapping[str, datetime]) -> None:
    """Heartbeats of live streams (agent id -> stream epoch): seen now, and connected (which
    also heals a state an out-of-order write left behind). Streams replaced since change nothing."""
    if not streams:
        return
    now = utcnow()
    with ctx.db.session() as session:
        for agent_id, epoch in streams.items():
            session.execute(
                update(AgentRow)
                .where(AgentRow.id == agent_id, AgentRow.connected_at == epoch)
                .values(last_seen=now, state=CONNECTED)
            )


def reset_at_start(ctx: Context) -> list[str]:
    """A control plane that just started has no streams: nobody is connected to it yet.

    Returns the agents that were up (or just gone) before, which may still come back.
    """
    with ctx.db.session() as session:
        ids = list(session.scalars(select(AgentRow.id).where(AgentRow.state.in_((CONNECTED, DISCONNECTED)))))
        session.execute(update(AgentRow).where(AgentRow.state == CONNECTED).values(state=DISCONNECTED))
        return ids


def agent_name(ctx: Context, agent_id: str) -> str:
    with ctx.db.session() as session:
        row = session.get(AgentRow, agent_id)
        return row.name if row is not None else agent_id


def _desired(session: Session, row: DeploymentRow) -> tuple[int, str]:
    """A deployment's current generation and the digest of what agents should serve for it."""
    return row.generation, digest_of(deployment_info(session, row))


def list_agents(ctx: Context) -> list[AgentStatus]:
    with ctx.db.session() as session:
        desired = {r.name: _desired(session, r) for r in session.scalars(select(DeploymentRow))}
        applied: dict[str, dict[str, tuple[int, str]]] = {}
        for row in session.scalars(select(AgentDeploymentRow)):
            applied.setdefault(row.agent_id, {})[row.deployment] = (row.applied_generation, row.applied_digest)
        out = []
        for row in session.scalars(select(AgentRow).order_by(AgentRow.name, AgentRow.id)):
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
        current, digest = _desired(session, row)
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
            .where(AgentRow.state == CONNECTED)
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
        current, digest = _desired(session, row)
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
            .where(AgentRow.state == CONNECTED)
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
