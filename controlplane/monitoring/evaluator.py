"""The health loop: judge every deployment and version, open / update / resolve alerts.

Each evaluation (every `alerts.evaluate_seconds`) looks at the last `health.window_seconds` of
metric windows. A metric in warning or critical opens (or updates, or escalates) its alert; a
healthy evaluation counts toward resolving it (hysteresis); a metric without enough samples
leaves its alert as it is. Alerts follow the condition across versions (`conditions.py`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from controlplane.context import Context
from controlplane.deployment_reads import list_deployments
from controlplane.domain import DeploymentInfo
from controlplane.monitoring import alert_views, alerts, conditions
from controlplane.monitoring.health import DeploymentHealth, deployment_health
from controlplane.monitoring.state import state_of
from controlplane.store.models import utcnow
from core.errors import Unavailable
from core.vocabulary import Health

log = logging.getLogger("sluice.monitoring")

HEALTH_KINDS = conditions.HEALTH_KINDS
#: a buffer_overflow alert resolves once the agent has dropped nothing more for this long
OVERFLOW_QUIET_SECONDS = 600.0
#: alerts of an agent dropping what it could not deliver (metric reports, prediction-log rows)
DROP_KINDS = ("buffer_overflow", "log_rows_dropped")


def evaluate_once(ctx: Context, now: datetime | None = None) -> list[DeploymentHealth]:
    now = now or utcnow()
    state = state_of(ctx)
    active = alert_views.active_alerts(ctx)
    held = conditions.held_by(active)
    open_by_deployment: dict[str, int] = {}
    for a in active:
        open_by_deployment[a.deployment] = open_by_deployment.get(a.deployment, 0) + 1
    results = []
    deployments = list_deployments(ctx)
    for dep in deployments:
        # One deployment whose data cannot be judged (a bug, a hostile report stored before ingest
        # refused its kind) is logged and skipped: every other deployment is still evaluated.
        try:
            health = _evaluate_deployment(ctx, dep, now, active, open_by_deployment.get(dep.name, 0), held)
        except Unavailable:
            raise  # the database is down: nothing else can be judged either
        except Exception:
            log.exception("evaluating the health of deployment %s failed; skipped this round", dep.name)
            state.metrics.job_failures.labels("health", dep.name).inc()
            continue
        with state.lock:
            state.deployment_health[dep.name] = health.state
        results.append(health)
    conditions.resolve_stale(
        ctx,
        deployments_versions={(d.name, s.version.id) for d in deployments for s in d.splits},
        names={d.name for d in deployments},
        active=alert_views.active_alerts(ctx),  # as this evaluation left them
        now=now,
    )
    _resolve_quiet(ctx, active, now)
    return results


def _evaluate_deployment(
    ctx: Context,
    dep: DeploymentInfo,
    now: datetime,
    active: list[alert_views.AlertInfo],
    open_alerts: int,
    held: dict[str, list[tuple[Health, str]]],
) -> DeploymentHealth:
    health = deployment_health(ctx, dep, ctx.config.health.window_seconds, now, open_alerts, held.get(dep.name))
    conditions.judge(ctx, health, active)
    for hook in state_of(ctx).health_hooks:
        hook(ctx, health, now)
    return health


def _resolve_quiet(ctx: Context, active: list[alert_views.AlertInfo], now: datetime) -> None:
    quiet = [
        a.id for a in active if a.kind in DROP_KINDS and now - a.updated_at > timedelta(seconds=OVERFLOW_QUIET_SECONDS)
    ]
    if quiet:
        alerts.resolve_where(ctx, quiet, f"nothing more dropped for {OVERFLOW_QUIET_SECONDS:.0f} s")
