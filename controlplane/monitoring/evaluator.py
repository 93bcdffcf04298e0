"""The health loop: judge every deployment and version, open / update / resolve alerts.

Each evaluation (every `alerts.evaluate_seconds`) looks at the last `health.window_seconds` of
metric windows. A metric in warning or critical opens (or updates, or escalates) its alert; a
healthy evaluation counts toward resolving it (hysteresis); a metric without enough samples
leaves its alert as it is.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from controlplane.context import Context
from controlplane.deployments import list_deployments
from controlplane.domain import DeploymentInfo
from controlplane.monitoring import alerts
from controlplane.monitoring.health import DeploymentHealth, deployment_health
from controlplane.monitoring.state import state_of
from controlplane.store.models import utcnow
from core.errors import Unavailable
from core.vocabulary import Health

log = logging.getLogger("sluice.monitoring")

HEALTH_KINDS = ("error_rate", "latency_p95", "accuracy", "mae", "within_tolerance", "drift")
#: a buffer_overflow alert resolves once the agent has dropped nothing more for this long
OVERFLOW_QUIET_SECONDS = 600.0


def evaluate_once(ctx: Context, now: datetime | None = None) -> list[DeploymentHealth]:
    now = now or utcnow()
    state = state_of(ctx)
    active = alerts.active_alerts(ctx)
    active_keys = {(a.deployment, a.version_id, a.kind) for a in active if not a.agent_id}
    open_by_deployment: dict[str, int] = {}
    for a in active:
        open_by_deployment[a.deployment] = open_by_deployment.get(a.deployment, 0) + 1
    results = []
    deployments = list_deployments(ctx)
    for dep in deployments:
        # One deployment whose data cannot be judged (a bug, a hostile report stored before ingest
        # refused its kind) is logged and skipped: every other deployment is still evaluated.
        try:
            health = _evaluate_deployment(ctx, dep, now, active_keys, open_by_deployment.get(dep.name, 0))
        except Unavailable:
            raise  # the database is down: nothing else can be judged either
        except Exception:
            log.exception("evaluating the health of deployment %s failed; skipped this round", dep.name)
            state.metrics.job_failures.labels("health", dep.name).inc()
            continue
        with state.lock:
            state.deployment_health[dep.name] = health.state
        results.append(health)
    _resolve_stale(
        ctx,
        deployments_versions={(d.name, s.version.id) for d in deployments for s in d.splits},
        names={d.name for d in deployments},
        active=active,
        now=now,
    )
    return results


def _evaluate_deployment(
    ctx: Context,
    dep: DeploymentInfo,
    now: datetime,
    active_keys: set[tuple[str, int | None, str]],
    open_alerts: int,
) -> DeploymentHealth:
    health = deployment_health(ctx, dep, ctx.config.health.window_seconds, now, open_alerts)
    for version in health.versions:
        judged = {j.name: j for j in version.judgements}
        for kind in HEALTH_KINDS:
            judgement = judged.get(kind)
            if judgement is None:
                continue  # not enough samples: neither worse nor better
            key = (dep.name, version.version.id, kind)
            if judgement.state in (Health.WARNING, Health.CRITICAL):
                alerts.open_alert(
                    ctx,
                    deployment=dep.name,
                    kind=kind,
                    severity=judgement.state,
                    message=f"{dep.name} {version.version.ref} ({version.role}): {judgement.reason}",
                    version_id=version.version.id,
                    value=judgement.value,
                )
            elif key in active_keys:
                alerts.observe_healthy(ctx, deployment=dep.name, kind=kind, version_id=version.version.id)
    return health


def _resolve_stale(
    ctx: Context,
    *,
    deployments_versions: set[tuple[str, int]],
    names: set[str],
    active: list[alerts.AlertInfo],
    now: datetime,
) -> None:
    gone = [
        a.id
        for a in active
        if a.kind in HEALTH_KINDS
        and a.version_id is not None
        and a.deployment in names
        and (a.deployment, a.version_id) not in deployments_versions
    ]
    if gone:
        alerts.resolve_where(ctx, gone, "the version no longer serves this deployment")
    quiet = [
        a.id
        for a in active
        if a.kind == "buffer_overflow" and now - a.updated_at > timedelta(seconds=OVERFLOW_QUIET_SECONDS)
    ]
    if quiet:
        alerts.resolve_where(ctx, quiet, f"no more reports dropped for {OVERFLOW_QUIET_SECONDS:.0f} s")
