"""ControlPlane RPCs of monitoring (GetStatus, GetMetricSeries, alerts, retraining runs)."""

from __future__ import annotations

import math

import grpc

from controlplane import convert
from controlplane.api import paging
from controlplane.api.auth import current_principal
from controlplane.api.base import ServiceBase
from controlplane.monitoring import alert_views, alerts, query, retraining, status
from controlplane.monitoring.health import DeploymentHealth, VersionHealth
from controlplane.predlog.joined import JoinedFigures
from core.errors import InvalidInput
from core.names import validate_name
from core.vocabulary import AlertState, Health, ServingRole
from protos import common_pb2, controlplane_pb2

MAX_WINDOW_SECONDS = 400 * 86400.0
#: alerts per ListAlerts answer at most (newest first; clients page through the rest)
MAX_ALERTS_PAGE = 500


def _seconds(value: float, what: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"{what} must be a number of seconds >= 0, got {value}")
    if value > MAX_WINDOW_SECONDS:
        raise InvalidInput(f"{what} is {value:g} s; the limit is {MAX_WINDOW_SECONDS:g} s (400 days)")
    return value


def version_status(v: VersionHealth) -> controlplane_pb2.VersionStatus:
    return controlplane_pb2.VersionStatus(
        version=convert.ref(v.version.model, v.version.version),
        role=convert.wire_or(ServingRole, v.role, common_pb2.ROLE_UNSPECIFIED),
        weight=v.weight,
        health=v.state.to_wire(),
        reasons=v.reasons,
        requests=v.requests,
        errors=v.errors,
        requests_per_second=v.requests_per_second,
        error_rate=v.error_rate,
        latency_p50_ms=v.latency_p50_ms,
        latency_p95_ms=v.latency_p95_ms,
        latency_p99_ms=v.latency_p99_ms,
        n_labeled=v.n_labeled,
        accuracy=v.accuracy,
        mae=v.mae,
        rmse=v.rmse,
        within_tolerance=v.within_tolerance,
        errors_by_code=v.errors_by_code,
        prediction_psi=v.prediction_psi,
        drift=[
            controlplane_pb2.FeatureDrift(feature=d.feature, psi=d.psi, ks_p_value=d.ks_p_value, drifted=d.drifted)
            for d in v.drift
        ],
        metrics=[
            controlplane_pb2.MetricValue(name=j.name, value=j.value, state=j.state.to_wire())
            for j in v.judgements
        ],
        rejected_inputs=v.rejected_inputs,
        out_of_range_share=v.out_of_range_share,
        labeled=labeled_figures(v.labeled) if v.labeled is not None else None,
    )


def labeled_figures(f: JoinedFigures) -> controlplane_pb2.LabeledFigures:
    """The figures that apply (a NaN one is left unset, so `--json` shows accuracy or mae/rmse)."""
    message = controlplane_pb2.LabeledFigures(predictions=f.predictions, labeled=f.labeled, waiting=f.waiting)
    for name in ("accuracy", "mae", "rmse"):
        value = getattr(f, name)
        if not math.isnan(value):
            setattr(message, name, value)
    return message


def deployment_status(h: DeploymentHealth) -> controlplane_pb2.DeploymentStatus:
    message = controlplane_pb2.DeploymentStatus(
        deployment=convert.deployment(h.deployment),
        health=h.state.to_wire(),
        versions=[version_status(v) for v in h.versions],
        agents_in_sync=h.agents_in_sync,
        agents_total=h.agents_total,
        agents_lost=h.agents_lost,
        requests_per_second=h.requests_per_second,
        open_alerts=h.open_alerts,
    )
    if h.deployment.experiment:
        message.experiment.name = h.deployment.experiment
    if h.log_usage is not None:
        u = h.log_usage
        message.log_usage.CopyFrom(
            controlplane_pb2.LogUsage(
                segments=u.segments, rows=u.rows, bytes=u.bytes, label_files=u.label_files, label_bytes=u.label_bytes
            )
        )
    return message


def alert_message(a: alert_views.AlertInfo) -> controlplane_pb2.Alert:
    return controlplane_pb2.Alert(
        id=a.id,
        deployment=a.deployment,
        version=convert.ref(a.model, a.version) if a.model else None,
        kind=a.kind,
        severity=convert.wire_or(Health, a.severity, common_pb2.HEALTH_UNKNOWN),
        state=convert.wire_or(AlertState, a.state, controlplane_pb2.ALERT_STATE_UNSPECIFIED),
        message=a.message,
        value=a.value,
        occurrences=a.occurrences,
        opened_at=convert.timestamp(a.opened_at),
        updated_at=convert.timestamp(a.updated_at),
        resolved_at=convert.timestamp(a.resolved_at),
        acknowledged_by=a.acknowledged_by,
        acknowledged_at=convert.timestamp(a.acknowledged_at),
        agent=a.agent,
        subject=a.subject,
    )


def run_message(r: retraining.RunInfo) -> controlplane_pb2.RetrainingRun:
    return controlplane_pb2.RetrainingRun(
        id=r.id,
        deployment=r.deployment,
        reason=r.reason,
        state=r.state,
        produced=convert.ref(r.model, r.version) if r.model else None,
        detail=r.detail,
        started_at=convert.timestamp(r.started_at),
        finished_at=convert.timestamp(r.finished_at),
    )


class MonitoringApi(ServiceBase):
    async def GetStatus(
        self, request: controlplane_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.GetStatusResponse:
        if request.deployment:
            validate_name("deployment", request.deployment)
        window = _seconds(request.window_seconds, "window_seconds")
        healths = await self.run(status.statuses, self.ctx, request.deployment, window)
        return controlplane_pb2.GetStatusResponse(deployments=[deployment_status(h) for h in healths])

    async def GetMetricSeries(
        self, request: controlplane_pb2.GetMetricSeriesRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.GetMetricSeriesResponse:
        validate_name("deployment", request.deployment)
        window = _seconds(request.window_seconds, "window_seconds") or 300.0
        step = _seconds(request.step_seconds, "step_seconds") or max(window / 60.0, 1.0)
        if step > window:
            raise InvalidInput(f"step_seconds ({step:g}) is longer than window_seconds ({window:g})")
        if window / step > query.MAX_POINTS:
            raise InvalidInput(
                f"{window:g} s in steps of {step:g} s is {math.ceil(window / step)} points; the limit is "
                f"{query.MAX_POINTS}: use a larger step_seconds"
            )
        version = None
        if request.HasField("version") and (request.version.model or request.version.version):
            version = convert.parse_ref(request.version)
        points = await self.run(status.series, self.ctx, request.deployment, version, window, step)
        return controlplane_pb2.GetMetricSeriesResponse(
            points=[
                controlplane_pb2.MetricPoint(
                    at=convert.timestamp(p.at),
                    requests_per_second=p.requests_per_second,
                    error_rate=p.error_rate,
                    latency_p95_ms=p.latency_p95_ms,
                    accuracy=p.accuracy,
                )
                for p in points
            ]
        )

    async def ListAlerts(
        self, request: controlplane_pb2.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListAlertsResponse:
        if request.deployment:
            validate_name("deployment", request.deployment)
        before = paging.decode_token("ListAlerts", request.page_token, int)
        size = paging.page_size(request.page_size, MAX_ALERTS_PAGE)
        found = await self.run(
            alert_views.list_alerts,
            self.ctx,
            request.include_resolved,
            request.deployment,
            size + 1,
            before[0] if before else None,
        )
        page = found[:size]
        token = paging.encode_token("ListAlerts", page[-1].id) if len(found) > size else ""
        return controlplane_pb2.ListAlertsResponse(alerts=[alert_message(a) for a in page], next_page_token=token)

    async def AckAlert(
        self, request: controlplane_pb2.AckAlertRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Alert:
        info = await self.run(alerts.acknowledge, self.ctx, current_principal(), int(request.id))
        return alert_message(info)

    async def ListRetrainingRuns(
        self, request: controlplane_pb2.ListRetrainingRunsRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListRetrainingRunsResponse:
        runs = await self.run(retraining.list_runs, self.ctx, request.deployment)
        return controlplane_pb2.ListRetrainingRunsResponse(runs=[run_message(r) for r in runs])
