"""What the control plane records about its serving agents: who they are, their connection state,
what they applied or refused.

Records are bounded whatever an agent says: an agent is bound to the credential that registered it
(`identity.py`) and one credential holds at most `limits.max_agents_per_credential` of them; labels
are few and short; generations are kept only for deployments that exist; an agent away for
`agents.forget_after_seconds` is forgotten (`gone_since`, `forget`). The checks on what an agent
sends (its id, labels, generations, digests) are `agent_input.py`.

Domain functions (one transaction each) used by the AgentHub stream handler. They return plain
objects, never ORM rows. What the fleet serves, read back for ListAgents / WaitForSync and the
rollout engine, is `fleet.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from controlplane.agenthub.agent_input import check_agent_id, check_generations, check_labels, clean_digests
from controlplane.agenthub.identity import NOBODY, Binding, Credential
from controlplane.context import Context
from controlplane.monitoring.alert_views import AlertInfo
from controlplane.monitoring.alerts import resolve_agent_alerts
from controlplane.store.db import execute_dml, upsert_statement
from controlplane.store.models import AgentDeploymentRow, AgentReportDropsRow, AgentRow, DeploymentRow, utcnow
from core.errors import InvalidInput, PermissionDenied, ResourceExhausted
from core.names import NAME_LENGTH, validate_name
from core.text import printable, require_printable
from core.vocabulary import AgentState

MAX_NACK_TEXT = 4000  # characters of a NACK's reason kept


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


def validate_hello(
    agent_id: str,
    name: str,
    host: str,
    address: str,
    labels: Mapping[str, str],
    applied: Mapping[str, int],
    digests: Mapping[str, str] | None = None,
) -> AgentHello:
    check_agent_id(agent_id)
    validate_name("agent", name)
    # Shown in `sluice agents`, the TUI and the log: printable text only, refused otherwise (an
    # agent that sends an escape sequence is broken or hostile; its stream gets INVALID_ARGUMENT).
    for what, text in (("host", host), ("address", address)):
        if len(text) > 255:
            raise InvalidInput(f"Hello.{what} is {len(text)} characters; the limit is 255")
        require_printable(f"Hello.{what}", text)
    check_labels(labels)
    clean_applied = {}
    for deployment, generation in applied.items():
        if len(deployment) <= NAME_LENGTH and generation >= 0:
            clean_applied[deployment] = int(generation)
    return AgentHello(agent_id, name, host, address, dict(labels), clean_applied, clean_digests(digests or {}))


def _known(session: Session, generations: Mapping[str, int]) -> dict[str, int]:
    """Only deployments that exist: what an agent claims about any other name is not stored (an
    agent record holds at most one row per deployment, however many names its messages invent)."""
    if not generations:
        return {}
    names = set(session.scalars(select(DeploymentRow.name)))
    return {d: g for d, g in generations.items() if d in names}


def _set_applied(
    session: Session, agent_id: str, generations: Mapping[str, int], digests: Mapping[str, str]
) -> None:
    """Record what the agent serves, one INSERT ... ON CONFLICT DO UPDATE per deployment: two
    transactions for one agent (an old stream's ACK, a new stream's Hello) never collide on the
    key. `updated_at` moves only when the generation does; a refusal ends once it is applied."""
    generations = _known(session, generations)
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
    refused = _known(session, refused)
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


def _owner(row: AgentRow) -> Credential:
    return Credential(row.owner_token or "", row.owner_certificate or "")


def refused_id(agent_id: str) -> PermissionDenied:
    return PermissionDenied(
        f"agent id {agent_id} is registered to another credential, which alone may connect as it; "
        "give this agent its own --cache directory (a new id) and --name, or its own credential"
    )


def refused_name(name: str) -> PermissionDenied:
    return PermissionDenied(
        f"the agent name {name!r} is registered to another credential, which alone may use it; "
        "start this agent with another --name"
    )


def _check_claim(session: Session, binding: Binding, credential: Credential, hello: AgentHello) -> AgentRow | None:
    """The agent's row (locked), once the caller may use its id and name; a new id must fit
    under the credential's limit of agent records."""
    row = session.get(AgentRow, hello.id, with_for_update=True)
    if row is not None and not binding.may_act_for(credential, _owner(row)):
        raise refused_id(hello.id)
    named = session.execute(
        select(AgentRow.owner_token, AgentRow.owner_certificate).where(
            AgentRow.name == hello.name, AgentRow.id != hello.id
        )
    ).all()
    if any(not binding.may_act_for(credential, Credential(t or "", c or "")) for t, c in named):
        raise refused_name(hello.name)
    return row


def _check_room(session: Session, credential: Credential, limit: int) -> None:
    held = session.scalar(
        select(func.count())
        .select_from(AgentRow)
        .where(AgentRow.owner_token == credential.token, AgentRow.owner_certificate == credential.certificate)
    )
    if (held or 0) >= limit:
        raise ResourceExhausted(
            f"{credential} already has {held} agent records, the limit (limits.max_agents_per_credential); "
            "an agent keeps its id in its --cache directory, so restart agents with their cache; records of "
            "agents away longer than agents.forget_after_seconds are forgotten and free their place"
        )


def agent_connected(ctx: Context, hello: AgentHello, credential: Credential = NOBODY) -> Connected:
    """Record a (re)connecting agent as a new stream epoch, bound to `credential`.

    Refused (PermissionDenied) when the id or the name is bound to a credential the caller does
    not hold; a new id beyond `limits.max_agents_per_credential` is refused (ResourceExhausted).
    Nothing is recorded for a refused Hello.
    """
    now = utcnow()
    binding = Binding.of(ctx.config)
    with ctx.db.session() as session:
        row = _check_claim(session, binding, credential, hello)
        previous = ""
        if row is None:
            _check_room(session, credential, ctx.config.limits.max_agents_per_credential)
            row = AgentRow(id=hello.id, last_nack="")
            session.add(row)
        else:
            previous = row.state
        # The caller's credential: it may act for the owner, so it holds at least what still binds.
        row.owner_token = credential.token
        row.owner_certificate = credential.certificate
        row.name = hello.name
        row.host = hello.host
        row.address = hello.address
        row.labels = hello.labels
        row.state = AgentState.CONNECTED
        row.last_seen = now
        row.connected_at = now
        session.flush()
        applied = _known(session, hello.applied)
        # What the agent serves from its cache right now (it ACKs the fresh snapshot shortly).
        session.execute(
            update(AgentDeploymentRow)
            .where(
                AgentDeploymentRow.agent_id == hello.id,
                AgentDeploymentRow.deployment.not_in(list(applied) or [""]),
            )
            .values(applied_generation=0, updated_at=now)
        )
        # A new stream gets a fresh snapshot: an earlier refusal says nothing about this one yet.
        session.execute(
            update(AgentDeploymentRow)
            .where(AgentDeploymentRow.agent_id == hello.id, AgentDeploymentRow.refused_generation != 0)
            .values(refused_generation=0)
        )
        _set_applied(session, hello.id, applied, hello.digests)
    return Connected(previous, now)


def record_applied(
    ctx: Context, agent_id: str, generations: Mapping[str, int], digests: Mapping[str, str] | None = None
) -> None:
    check_generations(generations)
    digests = clean_digests(digests or {})
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
    check_generations(generations)
    digests = clean_digests(digests or {})
    check_generations(refused or {})
    text = printable(reason[:MAX_NACK_TEXT]) or "the agent refused the snapshot without a reason"
    with ctx.db.session() as session:
        session.execute(update(AgentRow).where(AgentRow.id == agent_id).values(last_nack=text, last_seen=utcnow()))
        _set_applied(session, agent_id, generations, digests)
        _set_refused(session, agent_id, refused or {})


def set_state(ctx: Context, agent_id: str, state: AgentState, epoch: datetime | None = None) -> str | None:
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
    """Heartbeats of live streams (agent id -> stream epoch): seen now. Streams replaced since
    change nothing, and neither do streams that ended meanwhile: the beats were gathered before
    this write runs, so a departure ('disconnected', 'stopped', 'lost') recorded in between stands
    (a beat that resurrected it listed a closed agent as connected and lagging)."""
    if not streams:
        return
    now = utcnow()
    with ctx.db.session() as session:
        for agent_id, epoch in streams.items():
            session.execute(
                update(AgentRow)
                .where(
                    AgentRow.id == agent_id,
                    AgentRow.connected_at == epoch,
                    AgentRow.state == AgentState.CONNECTED,
                )
                .values(last_seen=now)
            )


def reset_at_start(ctx: Context) -> list[str]:
    """A control plane that just started has no streams: nobody is connected to it yet.

    Returns the agents that were up (or just gone) before, which may still come back.
    """
    with ctx.db.session() as session:
        was_up = AgentRow.state.in_((AgentState.CONNECTED, AgentState.DISCONNECTED))
        ids = list(session.scalars(select(AgentRow.id).where(was_up)))
        connected = AgentRow.state == AgentState.CONNECTED
        session.execute(update(AgentRow).where(connected).values(state=AgentState.DISCONNECTED))
        return ids


def agent_name(ctx: Context, agent_id: str) -> str:
    with ctx.db.session() as session:
        row = session.get(AgentRow, agent_id)
        return row.name if row is not None else agent_id


def gone_since(ctx: Context, cutoff: datetime, limit: int = 1000) -> list[str]:
    """Agents without a stream (disconnected, lost, stopped) not seen since `cutoff`, oldest first."""
    with ctx.db.session() as session:
        return list(
            session.scalars(
                select(AgentRow.id)
                .where(AgentRow.state != AgentState.CONNECTED, AgentRow.last_seen < cutoff)
                .order_by(AgentRow.last_seen)
                .limit(limit)
            )
        )


@dataclass(frozen=True)
class Forgotten:
    """An agent record deleted for being away too long, and the alerts about it that resolved."""

    name: str
    alerts: list[AlertInfo]


def forget(ctx: Context, agent_id: str, cutoff: datetime, note: str) -> Forgotten | None:
    """Delete an agent record away since before `cutoff`, with what it applied and its report-drop
    counter, and resolve its alerts (agent_lost, snapshot_nack) - one transaction. None when it
    came back meanwhile (or is gone already)."""
    with ctx.db.session() as session:
        row = session.get(AgentRow, agent_id, with_for_update=True)
        if row is None or row.state == AgentState.CONNECTED or row.last_seen >= cutoff:
            return None
        resolved = resolve_agent_alerts(session, agent_id, note)
        execute_dml(session, delete(AgentDeploymentRow).where(AgentDeploymentRow.agent_id == agent_id))
        execute_dml(session, delete(AgentReportDropsRow).where(AgentReportDropsRow.agent_id == agent_id))
        name = row.name
        session.delete(row)
        return Forgotten(name, resolved)
