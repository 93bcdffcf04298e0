"""What GetStatus and GetMetricSeries answer: domain functions over deployments and windows."""

from __future__ import annotations

import logging

from controlplane.context import Context
from controlplane.deployment_reads import find_deployment, list_deployments
from controlplane.monitoring import alert_views, conditions
from controlplane.monitoring.health import DeploymentHealth, deployment_health
from controlplane.monitoring.query import SeriesPoint, metric_series
from controlplane.predlog.retention import usage
from controlplane.registry import find_version
from controlplane.store.models import utcnow

log = logging.getLogger(__name__)


def statuses(ctx: Context, deployment: str = "", window_seconds: float = 0.0) -> list[DeploymentHealth]:
    """Health and metric values of one deployment ("" for all) over the last window."""
    window = window_seconds or ctx.config.health.window_seconds
    deployments = list_deployments(ctx, deployment)
    active = alert_views.active_alerts(ctx, deployment or None)
    held = conditions.held_by(active)
    open_by_deployment: dict[str, int] = {}
    for a in active:
        open_by_deployment[a.deployment] = open_by_deployment.get(a.deployment, 0) + 1
    now = utcnow()
    healths = [
        deployment_health(ctx, d, window, now, open_by_deployment.get(d.name, 0), held.get(d.name)) for d in deployments
    ]

    disk = usage(ctx, deployment)
    for health in healths:
        attach_joined(ctx, health)
        health.log_usage = disk.get(health.deployment.name)
    return healths


def attach_joined(ctx: Context, health: DeploymentHealth) -> None:
    """Give each version its label-joined figures (cached per set of recorded files). A log that
    cannot be read (a recorded file removed by hand) leaves them unset and is logged: the live
    status still answers."""
    import duckdb

    from controlplane.predlog.joined import joined_metrics

    try:
        figures = joined_metrics(ctx, health.deployment.name)
    except (duckdb.Error, OSError) as exc:
        log.warning("label-joined metrics of %s not computed: %s", health.deployment.name, exc)
        return
    by_version = {(f.model, f.version): f for f in figures}
    for v in health.versions:
        v.labeled = by_version.get((v.version.model, v.version.version))


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
