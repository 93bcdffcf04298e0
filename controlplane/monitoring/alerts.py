"""Alerts: one active alert per condition, deduplicated and escalated.

A condition is (deployment, kind, subject[, agent]) when the alert has a subject: the metric of a
health alert, the feature of a drift alert. Such an alert follows the condition, not a version:
across a promotion or a rollback it keeps its id, acknowledgement and start, and its version is
the one it was last seen on. An alert without a subject (a failed rollout gate, an agent's NACK)
is one per (deployment, version, kind[, agent]).

An alert opens, is updated while its condition lasts (occurrences, message, value), escalates
from warning to critical (never back down while it lasts), may be acknowledged by an operator
and resolves — immediately for conditions with a clear end (an agent came back, a snapshot was
applied) or after `alerts.resolve_after` consecutive healthy evaluations for health metrics
(hysteresis, so a metric hovering around its threshold does not flap).

Transitions (opened, escalated, acknowledged, resolved) publish an "alert" event and go to the
configured webhooks; plain updates do not. Reading alerts back (`AlertInfo`, lists, counts) is
`alert_views.py`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from controlplane import audit
from controlplane.context import Context
from controlplane.domain import Principal
from controlplane.monitoring.alert_views import AlertInfo, alert_info, alert_infos
from controlplane.monitoring.state import state_of
from controlplane.store.models import AlertRow, utcnow
from core.errors import FailedPrecondition, InvalidInput, NotFound
from core.names import NAME_LENGTH
from core.vocabulary import ACTIVE_ALERT_STATES, ALERT_SEVERITIES, AlertState, Health

log = logging.getLogger("sluice.monitoring")

MAX_MESSAGE = 4000
MAX_SUBJECT = 255


def _lock_key(
    session: Session, deployment: str, kind: str, version_id: int | None, agent_id: str | None, subject: str
) -> None:
    """Serialise writers of one alert key (PostgreSQL; SQLite's writers are serial already)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    which = f"subject {subject}" if subject else f"version {version_id}"
    digest = hashlib.blake2b(f"{deployment}\0{kind}\0{which}\0{agent_id}".encode(), digest_size=8)
    key = int.from_bytes(digest.digest(), "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _active(
    session: Session, deployment: str, kind: str, version_id: int | None, agent_id: str | None, subject: str = ""
) -> AlertRow | None:
    query = select(AlertRow).where(
        AlertRow.deployment == deployment,
        AlertRow.kind == kind,
        AlertRow.subject == subject,
        AlertRow.state.in_(ACTIVE_ALERT_STATES),
    )
    if not subject:  # keyed by version; a condition alert is whichever version it was seen on
        query = query.where(AlertRow.version_id.is_(None) if version_id is None else AlertRow.version_id == version_id)
    query = query.where(AlertRow.agent_id.is_(None) if not agent_id else AlertRow.agent_id == agent_id)
    return session.scalars(query.order_by(AlertRow.id).with_for_update()).first()


def _check_key(deployment: str, kind: str, subject: str = "") -> None:
    if len(deployment) > NAME_LENGTH:
        raise InvalidInput(f"deployment name is longer than {NAME_LENGTH} characters")
    if not kind or len(kind) > 64:
        raise InvalidInput("an alert kind is 1-64 characters")
    if len(subject) > MAX_SUBJECT:
        raise InvalidInput(f"an alert subject is at most {MAX_SUBJECT} characters")


def open_alert(
    ctx: Context,
    *,
    deployment: str,
    kind: str,
    severity: str,
    message: str,
    version_id: int | None = None,
    agent_id: str | None = None,
    value: float = 0.0,
    subject: str = "",
) -> None:
    """Open the alert, or update the one already active for the same key (escalating it)."""
    with ctx.db.session() as session:
        info, transition = record_alert(
            session,
            deployment=deployment,
            kind=kind,
            severity=severity,
            message=message,
            version_id=version_id,
            agent_id=agent_id,
            value=value,
            subject=subject,
        )
    announce(ctx, info, transition)


def record_alert(
    session: Session,
    *,
    deployment: str,
    kind: str,
    severity: str,
    message: str,
    version_id: int | None = None,
    agent_id: str | None = None,
    value: float = 0.0,
    subject: str = "",
) -> tuple[AlertInfo, str]:
    """`open_alert` inside the caller's transaction, so the alert commits with the change it is about.

    Returns the alert and its transition ("opened", "escalated" or "" for a plain update); the
    caller passes both to `announce` once the transaction has committed. With a `subject` the
    alert is the condition's whatever the version: an update moves it to `version_id`.
    """
    _check_key(deployment, kind, subject)
    if severity not in ALERT_SEVERITIES:
        raise InvalidInput(f"alert severity {severity!r} is not one of {', '.join(ALERT_SEVERITIES)}")
    message = message[:MAX_MESSAGE]
    agent_id = agent_id or None
    now = utcnow()
    _lock_key(session, deployment, kind, version_id, agent_id, subject)
    row = _active(session, deployment, kind, version_id, agent_id, subject)
    if row is None:
        row = AlertRow(
            deployment=deployment,
            version_id=version_id,
            agent_id=agent_id,
            kind=kind,
            subject=subject,
            severity=severity,
            state=AlertState.OPEN,
            message=message,
            value=float(value),
            occurrences=1,
            healthy_streak=0,
            opened_at=now,
            updated_at=now,
        )
        session.add(row)
        transition = "opened"
    else:
        transition = ""
        if Health(severity).rank > Health(row.severity).rank:
            row.severity = severity
            transition = "escalated"
            if row.state == AlertState.ACKNOWLEDGED:  # worse than what the operator acknowledged
                row.state = AlertState.OPEN
                row.acknowledged_by = None
                row.acknowledged_at = None
        row.message = message
        row.value = float(value)
        row.version_id = version_id  # the same unless the condition is now seen on another version
        row.occurrences = int(row.occurrences) + 1
        row.healthy_streak = 0
        row.updated_at = now
    session.flush()
    return alert_info(session, row), transition


def announce(ctx: Context, info: AlertInfo, transition: str) -> None:
    """Tell the event stream and the webhooks about a committed transition (none for plain updates)."""
    if not transition:
        return
    if transition in ("opened", "escalated"):
        log.warning("alert %s %s: %s", info.id, transition, info.message)
    where = info.deployment or (f"agent {info.agent}" if info.agent else "control plane")
    ctx.events.publish("alert", info.deployment, f"alert {info.id} {transition}: {info.kind} on {where}")
    sender = state_of(ctx).webhooks
    if sender is not None:
        sender.send(info.to_json(transition))


def _resolve_row(session: Session, row: AlertRow) -> None:
    now = utcnow()
    row.state = AlertState.RESOLVED
    row.resolved_at = now
    row.updated_at = now


def resolve_agent_alerts(session: Session, agent_id: str, note: str) -> list[AlertInfo]:
    """Resolve every active alert about one agent in the caller's transaction (the agent is being
    forgotten); `note` is added to each message. Announce the result after the commit."""
    rows = session.scalars(
        select(AlertRow)
        .where(AlertRow.agent_id == agent_id, AlertRow.state.in_(ACTIVE_ALERT_STATES))
        .order_by(AlertRow.id)
        .with_for_update()
    ).all()
    for row in rows:
        _resolve_row(session, row)
        row.message = f"{row.message} ({note})"[:MAX_MESSAGE]
    session.flush()
    return alert_infos(session, rows)


def resolve_alert(
    ctx: Context,
    *,
    deployment: str,
    kind: str,
    version_id: int | None = None,
    agent_id: str | None = None,
    subject: str = "",
) -> None:
    """Resolve the active alert of this key at once (no-op when none is active)."""
    _check_key(deployment, kind, subject)
    with ctx.db.session() as session:
        row = _active(session, deployment, kind, version_id, agent_id or None, subject)
        if row is None:
            return
        _resolve_row(session, row)
        session.flush()
        info = alert_info(session, row)
    log.info("alert %s resolved: %s", info.id, info.kind)
    announce(ctx, info, "resolved")


def observe_healthy(
    ctx: Context,
    *,
    deployment: str,
    kind: str,
    version_id: int | None = None,
    agent_id: str | None = None,
    resolve_after: int | None = None,
    subject: str = "",
) -> bool:
    """One healthy evaluation of a health metric; resolves after enough in a row. True if resolved."""
    needed = max(1, ctx.config.alerts.resolve_after if resolve_after is None else resolve_after)
    with ctx.db.session() as session:
        row = _active(session, deployment, kind, version_id, agent_id or None, subject)
        if row is None:
            return False
        row.healthy_streak = int(row.healthy_streak) + 1
        if row.healthy_streak < needed:
            return False
        _resolve_row(session, row)
        session.flush()
        info = alert_info(session, row)
    log.info("alert %s resolved after %d healthy evaluations: %s", info.id, needed, info.kind)
    announce(ctx, info, "resolved")
    return True


def resolve_where(ctx: Context, ids: Iterable[int], why: str) -> int:
    """Resolve these active alerts (e.g. the version left the deployment); returns how many."""
    ids = list(ids)
    if not ids:
        return 0
    with ctx.db.session() as session:
        rows = session.scalars(
            select(AlertRow).where(AlertRow.id.in_(ids), AlertRow.state.in_(ACTIVE_ALERT_STATES)).with_for_update()
        ).all()
        for row in rows:
            _resolve_row(session, row)
            row.message = f"{row.message} (resolved: {why})"[:MAX_MESSAGE]
        session.flush()
        infos = alert_infos(session, rows)
    for info in infos:
        announce(ctx, info, "resolved")
    return len(infos)


def acknowledge(ctx: Context, principal: Principal, alert_id: int) -> AlertInfo:
    """An operator has seen the alert: it stays active (and may still escalate) until resolved."""
    if alert_id <= 0:
        raise InvalidInput(f"alert id must be a positive number, got {alert_id}; `sluice alerts` lists them")
    with ctx.db.session() as session:
        row = session.get(AlertRow, alert_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no alert with id {alert_id}; `sluice alerts --all` lists them")
        if row.state == AlertState.RESOLVED:
            raise FailedPrecondition(f"alert {alert_id} is already resolved; nothing to acknowledge")
        changed = row.state != AlertState.ACKNOWLEDGED
        if changed:
            row.state = AlertState.ACKNOWLEDGED
            row.acknowledged_by = principal.name
            row.acknowledged_at = utcnow()
            audit.record(session, principal, "alert.ack", f"alert:{alert_id}", kind=row.kind, deployment=row.deployment)
        session.flush()
        info = alert_info(session, row)
    if changed:
        announce(ctx, info, "acknowledged")
    return info
