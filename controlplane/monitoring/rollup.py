"""Rollups and retention: raw windows -> minute windows -> hour windows -> deleted.

A rollup pass merges every row of the finer resolution older than its retention into the row of
the coarser resolution for the same (deployment, version, agent, role, experiment, bucket),
creating or updating it, and deletes the rows it absorbed — in one transaction, so a row is always
counted exactly once whatever resolution holds it. The agent stays part of the key, so an
experiment's evidence stays per agent at every resolution (a rollup row per agent, not per fleet).
Late raw windows (an agent's buffer replayed after a long outage) are simply absorbed by the next
pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from controlplane.context import Context
from controlplane.monitoring.state import state_of
from controlplane.monitoring.summary import WindowSummary
from controlplane.store.db import execute_dml
from controlplane.store.models import MetricReceiptRow, MetricWindowRow, utcnow
from core.errors import Unavailable

log = logging.getLogger("sluice.monitoring")

#: rows folded per transaction (a pass loops until the backlog is gone)
BATCH = 5000
TIERS = (("raw", "minute", 60), ("minute", "hour", 3600))


@dataclass(frozen=True)
class RollupResult:
    folded: dict[str, int]  # source resolution -> rows absorbed
    deleted_hours: int
    deleted_receipts: int


def bucket_start(at: datetime, seconds: int) -> datetime:
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def _fold(ctx: Context, deployment: str, source: str, target: str, seconds: int, cutoff: datetime) -> int:
    """Absorb up to BATCH `source` rows of `deployment` older than `cutoff` into `target` rows;
    returns how many."""
    with ctx.db.session() as session:
        rows = session.scalars(
            select(MetricWindowRow)
            .where(
                MetricWindowRow.deployment == deployment,
                MetricWindowRow.resolution == source,
                MetricWindowRow.window_start < cutoff,
            )
            .order_by(MetricWindowRow.id)
            .limit(BATCH)
            .with_for_update()
        ).all()
        if not rows:
            return 0
        groups: dict[tuple[str, int, str, str, str, datetime], WindowSummary] = {}
        for row in rows:
            start = bucket_start(row.window_start, seconds)
            key = (row.deployment, row.version_id, row.agent_id, row.role, row.experiment, start)
            summary = WindowSummary.from_row(row.requests, row.errors, row.n_labeled, row.n_correct, row.summary)
            current = groups.get(key)
            groups[key] = summary if current is None else current.merge(summary)
        for (deployment, version_id, agent_id, role, experiment, start), summary in groups.items():
            existing = session.scalars(
                select(MetricWindowRow)
                .where(
                    MetricWindowRow.deployment == deployment,
                    MetricWindowRow.version_id == version_id,
                    MetricWindowRow.agent_id == agent_id,
                    MetricWindowRow.role == role,
                    MetricWindowRow.experiment == experiment,
                    MetricWindowRow.resolution == target,
                    MetricWindowRow.window_start == start,
                )
                .with_for_update()
            ).first()
            if existing is not None:
                summary = WindowSummary.from_row(
                    existing.requests, existing.errors, existing.n_labeled, existing.n_correct, existing.summary
                ).merge(summary)
                row = existing
            else:
                row = MetricWindowRow(
                    deployment=deployment,
                    version_id=version_id,
                    agent_id=agent_id,
                    role=role,
                    experiment=experiment,
                    resolution=target,
                    window_start=start,
                    window_seconds=float(seconds),
                )
                session.add(row)
            row.requests = summary.requests
            row.errors = summary.n_errors
            row.n_labeled = summary.n_labeled
            row.n_correct = summary.n_correct
            row.summary = summary.to_json()
        ids = [r.id for r in rows]
        session.execute(
            delete(MetricWindowRow).where(MetricWindowRow.id.in_(ids)).execution_options(synchronize_session=False)
        )
        return len(ids)


def _due(ctx: Context, source: str, cutoff: datetime) -> list[str]:
    """The deployments with `source` rows older than `cutoff`."""
    with ctx.db.session() as session:
        return list(
            session.scalars(
                select(MetricWindowRow.deployment)
                .where(MetricWindowRow.resolution == source, MetricWindowRow.window_start < cutoff)
                .distinct()
                .order_by(MetricWindowRow.deployment)
            )
        )


def rollup_once(ctx: Context, now: datetime | None = None) -> RollupResult:
    """One full pass: fold every tier, delete expired hours and receipts.

    Each deployment folds in its own transactions: one whose rows cannot be merged is logged and
    skipped for this pass, the others are rolled up and retention still runs.
    """
    now = now or utcnow()
    retention = ctx.config.retention
    keep = {"raw": retention.raw_seconds, "minute": retention.minute_seconds}
    folded: dict[str, int] = {}
    for source, target, seconds in TIERS:
        cutoff = now - timedelta(seconds=keep[source])
        total = 0
        for deployment in _due(ctx, source, cutoff):
            try:
                while True:
                    n = _fold(ctx, deployment, source, target, seconds, cutoff)
                    total += n
                    if n < BATCH:
                        break
            except Unavailable:
                raise  # the database is down: the loop tries again next round
            except Exception:
                log.exception("rolling up %s windows of deployment %s failed; skipped this pass", source, deployment)
                state_of(ctx).metrics.job_failures.labels("rollup", deployment).inc()
        folded[source] = total
    with ctx.db.session() as session:
        hours = execute_dml(
            session,
            delete(MetricWindowRow)
            .where(
                MetricWindowRow.resolution == "hour",
                MetricWindowRow.window_start < now - timedelta(seconds=retention.hour_seconds),
            )
            .execution_options(synchronize_session=False),
        )
        receipts = execute_dml(
            session,
            delete(MetricReceiptRow)
            .where(MetricReceiptRow.received_at < now - timedelta(seconds=retention.receipt_seconds))
            .execution_options(synchronize_session=False),
        )
    result = RollupResult(folded, int(hours or 0), int(receipts or 0))
    if any(folded.values()) or result.deleted_hours or result.deleted_receipts:
        log.info(
            "rollup: %s raw -> minute, %s minute -> hour, %s hour rows and %s receipts expired",
            folded.get("raw", 0),
            folded.get("minute", 0),
            result.deleted_hours,
            result.deleted_receipts,
        )
    return result
