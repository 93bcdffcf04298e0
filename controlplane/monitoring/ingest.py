"""Committing agents' metric reports: once each, in one transaction, never one row per prediction.

`(agent_id, seq)` goes into metric_receipts first; when it is already there the report is a replay
(an ACK was lost, or the control plane restarted before acknowledging) and nothing changes. The
receipt, the raw windows and the reservoir updates commit together, so a crash anywhere leaves
either all of the report or none of it, and the agent's resend fills the gap.

Each window is stored with the agent that reported it (the evidence of experiments is kept per
agent). A window is refused, whole, when the store does not know its deployment or version, when
its route was not in a snapshot sent to that agent (`routes`, from the AgentHub), when it cannot
be read, or when no agent can have served its counts (`plausibility`). Refusals are counted by
reason (`core.vocabulary.WindowRefusal`) in the receipt, which the ack repeats, and in
`sluice_metric_windows_refused_total`; the report itself is committed and acknowledged, so an
agent does not resend it forever.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from controlplane.context import Context
from controlplane.domain import Route
from controlplane.monitoring import alerts, reservoir
from controlplane.monitoring.plausibility import Rates, implausible
from controlplane.monitoring.state import state_of
from controlplane.monitoring.summary import WindowSummary, count
from controlplane.store.db import insert_ignore
from controlplane.store.models import (
    AgentReportDropsRow,
    DeploymentRow,
    MetricReceiptRow,
    MetricWindowRow,
    ModelVersionRow,
    ReservoirRow,
    utcnow,
)
from core.errors import InvalidInput
from core.text import printable
from core.vocabulary import Health, ServingRole, WindowRefusal
from protos import agent_pb2, common_pb2

log = logging.getLogger("sluice.monitoring")

MAX_RESERVOIR_VALUES = 200_000
MAX_WINDOW_SECONDS = 3600.0
MAX_SEQ = 2**63 - 1
_AGENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _window_role(wire: int) -> ServingRole | None:
    """A window's role: ROLE_UNSPECIFIED counts as the champion's; None for a number this build
    does not know (protobuf keeps enum numbers it does not know: refuse them, never guess a role)."""
    if wire == common_pb2.ROLE_UNSPECIFIED:
        return ServingRole.CHAMPION
    try:
        return ServingRole.from_wire(wire)
    except ValueError:
        return None


@dataclass(frozen=True)
class Receipt:
    """What became of a report: `new` (False: a replay, nothing changed) and the windows refused
    by reason (a replay repeats what its first delivery refused)."""

    new: bool
    refused: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Accepted:
    deployment: str
    model: str
    version: str
    version_id: int
    summary: WindowSummary


def _window_start(report: agent_pb2.MetricReport) -> datetime:
    now = utcnow()
    if not report.HasField("window_start"):
        return now
    try:
        start = report.window_start.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        return now
    # A window cannot open after its report arrived: an agent clock ahead would hide windows from
    # queries or, a few seconds ahead, carry windows served under old weights past the SRM grace
    # of a new rollout step (which starts when the agents applied it). Clamp to the receipt.
    return min(start, now)


def _reservoir_rows(window: agent_pb2.VersionWindow) -> np.ndarray | None:
    width = int(window.reservoir_features)
    values = window.reservoir
    if width <= 0 or not values:
        return None
    if len(values) % width or len(values) > MAX_RESERVOIR_VALUES:
        raise ValueError(f"the reservoir has {len(values)} values, not rows of {width} features")
    rows = np.asarray(values, dtype=np.float32).reshape(-1, width)
    rows = rows[np.isfinite(rows).all(axis=1)]
    return rows if rows.size else None


def _update_reservoir(
    session: Session, deployment: str, version_id: int, at: datetime, rows: np.ndarray, seen: int
) -> None:
    """Add the window's sample to the stored one (the newest RESERVOIR_ROWS rows are kept)."""
    insert_ignore(
        session,
        ReservoirRow.__table__,  # type: ignore[arg-type]
        {
            "deployment": deployment,
            "version_id": version_id,
            "n_features": rows.shape[1],
            "seen": 0,
            "sample": b"",
            "updated_at": utcnow(),
        },
    )
    row = session.scalar(
        select(ReservoirRow)
        .where(ReservoirRow.deployment == deployment, ReservoirRow.version_id == version_id)
        .with_for_update()
    )
    assert row is not None
    row.sample = reservoir.append(row.sample or b"", row.n_features, at, rows)
    row.n_features = int(rows.shape[1])
    row.seen = int(row.seen) + seen
    row.updated_at = utcnow()


def _refusals(session: Session, agent_id: str, seq: int) -> dict[str, int]:
    stored = session.scalar(
        select(MetricReceiptRow.refused).where(MetricReceiptRow.agent_id == agent_id, MetricReceiptRow.seq == seq)
    )
    return {str(k): int(v) for k, v in (stored or {}).items()}


def ingest_report(
    ctx: Context, agent_id: str, report: agent_pb2.MetricReport, routes: Collection[Route] | None = None
) -> Receipt:
    """Commit one report idempotently (`Receipt.new` is False when (agent_id, seq) was already
    committed). `routes`: the (deployment, model, version) the agent was sent and may report;
    None accepts any the store knows (callers that are not an agent's stream: tests)."""
    if not _AGENT_ID.fullmatch(agent_id or ""):
        raise InvalidInput("a metric report needs a valid agent id")
    if report.seq > MAX_SEQ:
        raise InvalidInput(f"report seq {report.seq} is out of range")
    state = state_of(ctx)
    start = _window_start(report)
    seconds = float(report.window_seconds)
    if not 0 < seconds <= MAX_WINDOW_SECONDS:
        seconds = min(max(seconds, 0.001), MAX_WINDOW_SECONDS) if seconds == seconds else 1.0
    limits = ctx.config.limits
    rates = Rates(limits.max_requests_per_second_per_agent, limits.max_rows_per_second_per_agent)
    accepted: list[_Accepted] = []
    refused: Counter[WindowRefusal] = Counter()
    with ctx.db.session() as session:
        inserted = insert_ignore(
            session,
            MetricReceiptRow.__table__,  # type: ignore[arg-type]
            {"agent_id": agent_id, "seq": int(report.seq), "received_at": utcnow()},
        )
        if not inserted:
            state.metrics.reports.labels("replay").inc()
            return Receipt(False, _refusals(session, agent_id, int(report.seq)))
        newly_dropped, new_log_drops = _record_dropped(
            session, agent_id, count(report.dropped_reports), count(report.dropped_log_rows)
        )
        pairs = {(w.version.model, w.version.version) for w in report.windows}
        version_ids: dict[tuple[str, str], int] = {}
        if pairs:
            found = session.execute(
                select(ModelVersionRow.model, ModelVersionRow.version, ModelVersionRow.id).where(
                    tuple_(ModelVersionRow.model, ModelVersionRow.version).in_(sorted(pairs))
                )
            )
            version_ids = {(m, v): i for m, v, i in found}
        names = {w.deployment for w in report.windows}
        known_deployments = (
            set(session.scalars(select(DeploymentRow.name).where(DeploymentRow.name.in_(sorted(names)))))
            if names
            else set()
        )
        reservoirs: dict[tuple[str, int], tuple[np.ndarray, int]] = {}
        first = True
        for window in report.windows:
            ref = f"{window.version.model}:{window.version.version}"
            shown = printable(ref[:260])  # for the log: an agent's text, escaped
            version_id = version_ids.get((window.version.model, window.version.version))
            if window.deployment not in known_deployments or version_id is None:
                log.warning(
                    "agent %s reported a window for unknown deployment %r / version %s; refused",
                    agent_id,
                    window.deployment[:128],
                    shown,
                )
                refused[WindowRefusal.UNKNOWN_VERSION] += 1
                continue
            if routes is not None and (window.deployment, window.version.model, window.version.version) not in routes:
                log.warning(
                    "agent %s reported a window for %s on deployment %s, which no snapshot sent to it "
                    "holds (now or within limits.report_route_grace_seconds); refused",
                    agent_id,
                    shown,
                    window.deployment,
                )
                refused[WindowRefusal.UNKNOWN_ROUTE] += 1
                continue
            role = _window_role(window.role)
            if role is None:
                log.warning("agent %s reported %s with unknown role %d; refused", agent_id, shown, window.role)
                refused[WindowRefusal.UNKNOWN_ROLE] += 1
                continue
            try:
                summary = WindowSummary.from_window(window)
                sample = _reservoir_rows(window)
            except ValueError as exc:
                log.warning("agent %s sent a malformed window for %s: %s; refused", agent_id, shown, exc)
                refused[WindowRefusal.MALFORMED] += 1
                continue
            why = implausible(summary, seconds, rates)
            if why is not None:
                log.warning(
                    "agent %s reported an implausible window for %s on deployment %s: %s; refused",
                    agent_id,
                    shown,
                    window.deployment,
                    why,
                )
                refused[WindowRefusal.IMPLAUSIBLE] += 1
                continue
            if first:
                summary.unmatched_feedback = count(report.unmatched_feedback)
                first = False
            session.add(
                MetricWindowRow(
                    deployment=window.deployment,
                    version_id=version_id,
                    agent_id=agent_id,
                    role=role,
                    experiment=window.experiment[:128],
                    resolution="raw",
                    window_start=start,
                    window_seconds=seconds,
                    requests=summary.requests,
                    errors=summary.n_errors,
                    n_labeled=summary.n_labeled,
                    n_correct=summary.n_correct,
                    summary=summary.to_json(),
                )
            )
            if sample is not None:
                key = (window.deployment, version_id)
                previous = reservoirs.get(key)
                reservoirs[key] = (
                    (sample, summary.rows)
                    if previous is None
                    else (np.concatenate([previous[0], sample]), previous[1] + summary.rows)
                )
            model, version = ref.split(":", 1)
            accepted.append(_Accepted(window.deployment, model, version, version_id, summary))
        # A fixed order: two agents updating the same reservoirs never wait on each other in a cycle.
        for (deployment, version_id), (rows, seen) in sorted(reservoirs.items(), key=lambda kv: kv[0]):
            _update_reservoir(session, deployment, version_id, start, rows, seen)
        counts = {str(reason): n for reason, n in sorted(refused.items())}
        if counts:
            session.execute(
                update(MetricReceiptRow)
                .where(MetricReceiptRow.agent_id == agent_id, MetricReceiptRow.seq == int(report.seq))
                .values(refused=counts)
            )
    _after_commit(ctx, agent_id, report, accepted, refused, newly_dropped)
    if new_log_drops > 0:
        _log_rows_dropped(ctx, agent_id, count(report.dropped_log_rows))
    return Receipt(True, counts)


def _record_dropped(session: Session, agent_id: str, dropped: int, log_rows: int = 0) -> tuple[int, int]:
    """Store the agent's counters of dropped reports and dropped prediction-log rows; returns how
    many of each are new since its last report.

    The counters run since the agent started, so a smaller value means it restarted (every drop
    it reports is then new). Kept in SQL, in the report's transaction: a control-plane restart
    does not take them for new drops, and a report that fails to commit is counted when it is resent.
    """
    row = session.get(AgentReportDropsRow, agent_id, with_for_update=True)
    previous = int(row.dropped) if row is not None else 0
    previous_rows = int(row.dropped_log_rows) if row is not None else 0
    if dropped == previous and log_rows == previous_rows:
        return 0, 0  # the usual case, all 0: no row is written for an agent that never dropped
    if row is None:
        session.add(
            AgentReportDropsRow(agent_id=agent_id, dropped=dropped, dropped_log_rows=log_rows, updated_at=utcnow())
        )
    else:
        row.dropped = dropped
        row.dropped_log_rows = log_rows
        row.updated_at = utcnow()

    def new(now: int, before: int) -> int:
        return now - before if now >= before else now

    return new(dropped, previous), new(log_rows, previous_rows)


def _after_commit(
    ctx: Context,
    agent_id: str,
    report: agent_pb2.MetricReport,
    accepted: list[_Accepted],
    refused: Counter[WindowRefusal],
    newly_dropped: int,
) -> None:
    state = state_of(ctx)
    metrics = state.metrics
    metrics.reports.labels("stored").inc()
    if refused:
        metrics.reports.labels("skipped_window").inc(sum(refused.values()))
    for reason, n in refused.items():
        metrics.windows_refused.labels(str(reason)).inc(n)
    if report.unmatched_feedback:
        metrics.unmatched_feedback.inc(count(report.unmatched_feedback))
    for item in accepted:
        s = item.summary
        if s.rows:  # rows answered; failed calls are counted by status code below
            metrics.predictions.labels(item.deployment, f"{item.model}:{item.version}", "OK").inc(s.rows)
        for code, n in s.errors.items():  # gRPC status names only (summary.error_code): bounded series
            metrics.predictions.labels(item.deployment, f"{item.model}:{item.version}", code).inc(n)
    for deployment in sorted({a.deployment for a in accepted}):
        if state.should_publish(deployment):
            ctx.events.publish("metrics", deployment, "new metric windows")
    if newly_dropped > 0:
        _overflowed(ctx, agent_id, count(report.dropped_reports), newly_dropped)


def _log_rows_dropped(ctx: Context, agent_id: str, dropped: int) -> None:
    """The agent dropped prediction-log rows (its pending segments filled their disk, or the
    control plane refused a segment): open (or update) the alert, so the gap in the log is known."""
    try:
        alerts.open_alert(
            ctx,
            deployment="",
            kind="log_rows_dropped",
            severity=Health.WARNING,
            message=(
                f"agent {agent_id} dropped {dropped} prediction-log row(s) since it started: its segment "
                "buffer (--log-buffer-mb) was full or a segment was refused, so the log misses those predictions"
            ),
            agent_id=agent_id,
            value=float(dropped),
        )
    except Exception:
        log.exception("could not open the log_rows_dropped alert for agent %s", agent_id)


def _overflowed(ctx: Context, agent_id: str, dropped: int, newly: int) -> None:
    """The agent's buffer dropped `newly` more reports: count them and open (or keep) the alert."""
    state_of(ctx).metrics.dropped_reports.inc(newly)
    try:
        alerts.open_alert(
            ctx,
            deployment="",
            kind="buffer_overflow",
            severity=Health.WARNING,
            message=(
                f"agent {agent_id} dropped {dropped} metric report(s) since it started: its buffer "
                "overflowed while the control plane was unreachable, so those windows are missing"
            ),
            agent_id=agent_id,
            value=float(dropped),
        )
    except Exception:
        log.exception("could not open the buffer_overflow alert for agent %s", agent_id)
