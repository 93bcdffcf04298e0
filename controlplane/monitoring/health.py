"""Health of deployments and versions from their recent metric windows and the config thresholds.

Each metric is judged only once it has enough samples (`health.min_samples` requests or labels,
`health.min_drift_samples` rows for drift): before that its state is "unknown", never a guess.
A version's health is the worst judged metric; a deployment's the worst of its versions.

Drift and data quality (`controlplane.monitoring.drift_judgement`) compare live inputs with the
version's baseline, on what `controlplane.monitoring.samples` reads; label-joined accuracy and
MAE are judged by `controlplane.monitoring.joined_health`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import func, select

from controlplane.config import HealthConfig
from controlplane.context import Context
from controlplane.domain import DeploymentInfo, SplitInfo, VersionInfo
from controlplane.monitoring.drift_judgement import (
    FeatureDriftInfo,
    feature_drift,
    judge_drift,
    judge_prediction_drift,
    prediction_drift,
    quality_judgements,
)
from controlplane.monitoring.judgement import Judgement, high_is_bad, low_is_bad, worst
from controlplane.monitoring.policy import thresholds_for
from controlplane.monitoring.query import merged_summary
from controlplane.monitoring.samples import baseline_sample, reservoir_sample
from controlplane.monitoring.summary import WindowSummary
from controlplane.store.models import AgentDeploymentRow, AgentRow, utcnow
from core.vocabulary import AgentState, Health, MetricSource, ServingRole

if TYPE_CHECKING:
    from controlplane.monitoring.joined_health import LabelSlice
    from controlplane.predlog.joined import JoinedFigures
    from controlplane.predlog.retention import LogUsage

log = logging.getLogger("sluice.monitoring")


@dataclass
class VersionHealth:
    version: VersionInfo
    role: str
    weight: int
    state: Health = Health.UNKNOWN
    reasons: list[str] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    #: failed requests by status name (INTERNAL, INVALID_ARGUMENT, DEADLINE_EXCEEDED, CANCELLED...)
    errors_by_code: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    requests_per_second: float = 0.0
    error_rate: float = math.nan
    latency_p50_ms: float = math.nan
    latency_p95_ms: float = math.nan
    latency_p99_ms: float = math.nan
    n_labeled: int = 0
    accuracy: float = math.nan
    mae: float = math.nan
    rmse: float = math.nan
    within_tolerance: float = math.nan
    #: PSI of the predictions against the baseline's (NaN: no baseline predictions, too few rows)
    prediction_psi: float = math.nan
    drift: list[FeatureDriftInfo] = field(default_factory=list)
    judgements: list[Judgement] = field(default_factory=list)
    rejected_inputs: int = 0
    out_of_range_share: float = math.nan
    worst_feature: str = ""
    #: figures of the prediction log joined with the label store (None: nothing logged)
    labeled: JoinedFigures | None = None


@dataclass
class DeploymentHealth:
    deployment: DeploymentInfo
    state: Health
    versions: list[VersionHealth]
    agents_in_sync: int
    agents_total: int
    requests_per_second: float
    open_alerts: int
    agents_lost: int = 0
    #: open health alerts (severity, message) that keep the state from looking better meanwhile
    held_by: list[tuple[Health, str]] = field(default_factory=list)
    #: the prediction log's and labels' disk use (None: nothing recorded)
    log_usage: LogUsage | None = None


def judge_version(
    split: SplitInfo,
    summary: WindowSummary,
    window_seconds: float,
    config: HealthConfig,
    reservoir: np.ndarray | None = None,
    baseline_sample: np.ndarray | None = None,
    labels: LabelSlice | None = None,
    joined: bool = False,
) -> VersionHealth:
    """`joined`: the policy judges accuracy / MAE / RMSE on label-joined figures (`labels`, None
    when the version logged nothing in the judged slice); the live feedback figures are then
    shown (accuracy, mae... of the status) but not judged."""
    version = split.version
    h = VersionHealth(version=version, role=split.role, weight=split.weight)
    h.requests = summary.requests
    h.errors = summary.n_errors
    h.errors_by_code = dict(summary.errors)
    h.rows = summary.rows
    h.requests_per_second = summary.requests / window_seconds if window_seconds > 0 else 0.0
    h.rejected_inputs = summary.rejected_inputs
    h.n_labeled = summary.n_labeled
    judgements: list[Judgement] = []
    if summary.requests:
        h.error_rate = summary.n_errors / summary.requests
    if summary.latency.count:
        h.latency_p50_ms = summary.latency.quantile(0.50) * 1000.0
        h.latency_p95_ms = summary.latency.quantile(0.95) * 1000.0
        h.latency_p99_ms = summary.latency.quantile(0.99) * 1000.0
    if summary.requests >= config.min_samples:
        judgements.append(
            high_is_bad("error_rate", h.error_rate, config.error_rate_warning, config.error_rate_critical)
        )
        if not math.isnan(h.latency_p95_ms):
            judgements.append(
                high_is_bad(
                    "latency_p95",
                    h.latency_p95_ms,
                    config.p95_latency_ms_warning,
                    config.p95_latency_ms_critical,
                    " ms",
                )
            )
    if summary.n_labeled:
        if version.task == "regressor":
            h.mae = summary.sum_abs_error / summary.n_labeled
            h.rmse = math.sqrt(summary.sum_squared_error / summary.n_labeled)
            h.within_tolerance = summary.n_within_tolerance / summary.n_labeled
        else:
            h.accuracy = summary.n_correct / summary.n_labeled
    if joined:  # the policy judges label-joined figures; the live ones are shown, not judged
        from controlplane.monitoring.joined_health import judge_labels

        judgements.extend(judge_labels(version.task, labels, config))
    elif summary.n_labeled >= config.min_samples:
        if version.task == "regressor":
            judgements.append(high_is_bad("mae", h.mae, config.mae_warning, config.mae_critical))
            if config.rmse_warning > 0 or config.rmse_critical > 0:
                judgements.append(high_is_bad("rmse", h.rmse, config.rmse_warning, config.rmse_critical))
            if config.within_tolerance_warning > 0 or config.within_tolerance_critical > 0:
                judgements.append(
                    low_is_bad(
                        "within_tolerance",
                        h.within_tolerance,
                        config.within_tolerance_warning,
                        config.within_tolerance_critical,
                    )
                )
        else:
            judgements.append(low_is_bad("accuracy", h.accuracy, config.accuracy_warning, config.accuracy_critical))
    if summary.features and summary.feature_rows:
        cells = summary.feature_rows * len(summary.features)
        h.out_of_range_share = sum(summary.out_of_range) / cells
    h.drift = feature_drift(summary, version.baseline, reservoir, baseline_sample, config)
    drift = judge_drift(h.drift, config)
    if drift is not None:
        judgements.append(drift)
        if h.drift:
            h.worst_feature = max(h.drift, key=lambda d: d.psi).feature
    for kind in ("missing", "unseen"):
        # the worst feature's judgement stands for the version (alerts follow each feature)
        per_feature = [j for k, _feature, j in quality_judgements(h.drift, config) if k == kind]
        if per_feature:
            judgements.append(max(per_feature, key=lambda j: (j.state.rank, j.value)))
    h.prediction_psi = prediction_drift(summary, version.baseline, config)
    predictions = judge_prediction_drift(h.prediction_psi, config)
    if predictions is not None:
        judgements.append(predictions)
    h.judgements = judgements
    h.state = worst([j.state for j in judgements])
    h.reasons = [j.reason for j in judgements if j.reason]
    return h


def agents_sync(ctx: Context, deployment: str, generation: int) -> tuple[int, int, int]:
    """(connected agents that applied `generation`, connected agents, lost agents that served it)."""
    with ctx.db.session() as session:
        rows = session.execute(
            select(AgentRow.state, AgentDeploymentRow.applied_generation)
            .outerjoin(
                AgentDeploymentRow,
                (AgentDeploymentRow.agent_id == AgentRow.id) & (AgentDeploymentRow.deployment == deployment),
            )
            .where(AgentRow.state.in_((AgentState.CONNECTED, AgentState.LOST)))
        ).all()
    connected = [g or 0 for state, g in rows if state == AgentState.CONNECTED]
    lost = sum(1 for state, g in rows if state == AgentState.LOST and (g or 0) > 0)
    return sum(1 for g in connected if g >= generation), len(connected), lost


def deployment_health(
    ctx: Context,
    deployment: DeploymentInfo,
    window_seconds: float,
    now: datetime | None = None,
    open_alerts: int = 0,
    held_by: list[tuple[Health, str]] | None = None,
) -> DeploymentHealth:
    """`held_by`: the deployment's open health alerts. While one is open the state is at least its
    severity: a new champion without enough samples yet must not look healthy while the drift
    (or the error rate...) goes on."""
    now = now or utcnow()
    held_by = held_by or []
    since = now - timedelta(seconds=window_seconds)
    config = thresholds_for(ctx, deployment.name)  # its policy's, else the configuration's
    slices = None
    if config.accuracy_source == MetricSource.JOINED:
        from controlplane.monitoring.joined_health import label_slices

        slices = label_slices(ctx, deployment.name, config, now)
    versions = []
    for split in deployment.splits:
        summary = merged_summary(ctx, deployment.name, split.version.id, since)
        reservoir = None
        sample = None
        if summary.feature_rows >= config.min_drift_samples and split.version.baseline:
            reservoir = reservoir_sample(ctx, deployment.name, split.version.id, since)
            sample = baseline_sample(ctx, split.version) if reservoir is not None else None
        labels = None if slices is None else slices.get((split.version.model, split.version.version))
        versions.append(
            judge_version(
                split, summary, window_seconds, config, reservoir, sample, labels=labels, joined=slices is not None
            )
        )
    in_sync, total, lost = agents_sync(ctx, deployment.name, deployment.generation)
    return DeploymentHealth(
        deployment=deployment,
        state=worst([v.state for v in versions] + [severity for severity, _ in held_by]),
        versions=versions,
        agents_in_sync=in_sync,
        agents_total=total,
        requests_per_second=sum(v.requests_per_second for v in versions if v.role != ServingRole.SHADOW),
        open_alerts=open_alerts,
        agents_lost=lost,
        held_by=held_by,
    )


def connected_agents(ctx: Context) -> int:
    query = select(func.count()).select_from(AgentRow).where(AgentRow.state == AgentState.CONNECTED)
    with ctx.db.session() as session:
        return int(session.scalar(query) or 0)
