"""What GetStatus and GetMetricSeries answer: domain functions over deployments and windows."""

from __future__ import annotations

from controlplane.context import Context
from controlplane.deployments import find_deployment, list_deployments
from controlplane.monitoring import alerts, conditions
from controlplane.monitoring.health import DeploymentHealth, deployment_health
from controlplane.monitoring.query import SeriesPoint, metric_series
from controlplane.registry import find_version
from controlplane.store.models import utcnow


def statuses(ctx: Context, deployment: str = "", window_seconds: float = 0.0) -> list[DeploymentHealth]:
    """Health and metric values of one deployment ("" for all) over the last window."""
    window = window_seconds or ctx.config.health.window_seconds
    deployments = list_deployments(ctx, deployment)
    active = alerts.active_alerts(ctx, deployment or None)
    held = conditions.held_by(active)
    open_by_deployment: dict[str, int] = {}
    for a in active:
        open_by_deployment[a.deployment] = open_by_deployment.get(a.deployment, 0) + 1
    now = utcnow()
    return [
        deployment_health(ctx, d, window, now, open_by_deployment.get(d.name, 0), held.get(d.name))
        for d in deployments
    ]


def series(
    ctx: Context,
    deployment: str,
    version: tuple[str, str] | None,
    window_seconds: float,
    step_seconds: float,
) -> list[SeriesPoint]:
    with ctx.db.session() as session:
        find_deployment(session, deployment)
        version_id = find_version(session, *version).id if version is not None else None
    return metric_series(ctx, deployment, version_id, window_seconds, step_seconds)
