"""Health conditions of a deployment, and the alerts that follow them across champion changes.

A condition is (deployment, kind, subject): the subject is the metric (error_rate, accuracy...)
or, for drift, the feature. Every version serving the deployment is judged; the condition is bad
when any version is (its alert then names the worst one), healthy when every judged version is,
and unknown when none has enough samples. So promoting or rolling back keeps the alert - its id,
its acknowledgement and when it began - and an alert whose versions have all left resolves only
once the versions now serving are judged healthy (hysteresis) or, never judged, after one health
window without seeing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controlplane.config import HealthConfig
from controlplane.context import Context
from controlplane.monitoring import alert_views, alerts
from controlplane.monitoring.drift_judgement import feature_judgements, quality_judgements
from controlplane.monitoring.health import DeploymentHealth, VersionHealth
from controlplane.monitoring.judgement import Judgement
from core.vocabulary import Health

#: the kinds the health evaluation raises (drift and data quality - missing values, unseen
#: categories - one per feature, the others one per metric)
HEALTH_KINDS = (
    "error_rate",
    "latency_p95",
    "accuracy",
    "mae",
    "rmse",
    "within_tolerance",
    "drift",
    "prediction_drift",
    "missing",
    "unseen",
)
PER_FEATURE = ("drift", "missing", "unseen")


@dataclass(frozen=True)
class Seen:
    """One version's judgement of one condition in this evaluation."""

    version: VersionHealth
    judgement: Judgement


def observations(health: DeploymentHealth, config: HealthConfig) -> dict[tuple[str, str], list[Seen]]:
    """(kind, subject) -> what each judged version showed of it."""
    out: dict[tuple[str, str], list[Seen]] = {}
    for version in health.versions:
        for judgement in version.judgements:
            if judgement.name in HEALTH_KINDS and judgement.name not in PER_FEATURE:
                out.setdefault((judgement.name, judgement.name), []).append(Seen(version, judgement))
        for feature, judgement in feature_judgements(version.drift, config):
            out.setdefault(("drift", feature), []).append(Seen(version, judgement))
        for kind, feature, judgement in quality_judgements(version.drift, config):
            out.setdefault((kind, feature), []).append(Seen(version, judgement))
    return out


def judge(ctx: Context, health: DeploymentHealth, active: list[alert_views.AlertInfo]) -> None:
    """Open, update (escalate, move to another version) or count toward resolving each condition."""
    name = health.deployment.name
    open_keys = {(a.kind, a.subject) for a in active if a.deployment == name and a.subject}
    for (kind, subject), seen in observations(health, ctx.config.health).items():
        bad = [s for s in seen if s.judgement.state in (Health.WARNING, Health.CRITICAL)]
        if bad:
            worst = max(bad, key=lambda s: (s.judgement.state.rank, s.judgement.value))
            version = worst.version
            alerts.open_alert(
                ctx,
                deployment=name,
                kind=kind,
                subject=subject,
                severity=worst.judgement.state,
                message=f"{name} {version.version.ref} ({version.role}): {worst.judgement.reason}",
                version_id=version.version.id,
                value=worst.judgement.value,
            )
        elif (kind, subject) in open_keys:
            alerts.observe_healthy(ctx, deployment=name, kind=kind, subject=subject)


def held_by(active: list[alert_views.AlertInfo]) -> dict[str, list[tuple[Health, str]]]:
    """Per deployment, the open condition alerts that its health state cannot look better than."""
    out: dict[str, list[tuple[Health, str]]] = {}
    for a in active:
        if a.subject and a.kind in HEALTH_KINDS:
            out.setdefault(a.deployment, []).append((Health(a.severity), f"alert {a.id}: {a.message}"))
    return out


def resolve_stale(
    ctx: Context,
    *,
    deployments_versions: set[tuple[str, int]],
    names: set[str],
    active: list[alert_views.AlertInfo],
    now: datetime,
) -> None:
    """Resolve health alerts whose versions left the deployment and that the versions serving it
    now have not shown for a whole health window (they may never be judged: no baseline, no labels)."""
    window = timedelta(seconds=ctx.config.health.window_seconds)
    left = [
        a
        for a in active
        if a.kind in HEALTH_KINDS
        and a.version_id is not None
        and a.deployment in names
        and (a.deployment, a.version_id) not in deployments_versions
    ]
    by_version = [a.id for a in left if not a.subject]
    if by_version:
        alerts.resolve_where(ctx, by_version, "the version no longer serves this deployment")
    unseen = [a.id for a in left if a.subject and now - a.updated_at > window]
    if unseen:
        alerts.resolve_where(
            ctx, unseen, f"not seen on the versions serving the deployment for {window.total_seconds():.0f} s"
        )
