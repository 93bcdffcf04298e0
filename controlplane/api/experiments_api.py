"""ControlPlane RPCs of experiments, rollouts, promotion and offline evaluation."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import grpc

from controlplane import convert
from controlplane.api.auth import current_principal
from controlplane.api.base import ServiceBase
from controlplane.experiments import commands, offline
from controlplane.experiments.spec import ExperimentInfo, ExperimentSpec, validate_reason
from core.errors import InvalidInput
from core.names import validate_name
from core.vocabulary import ExperimentState, MetricSource, ServingRole
from protos import common_pb2, controlplane_pb2

NAN = math.nan


def _num(value: Any) -> float:
    return NAN if value is None else float(value)


def spec_from_config(config: controlplane_pb2.ExperimentConfig) -> ExperimentSpec:
    """The wire config as a domain spec; proto3 zeros mean "the default"."""
    if not config.deployment:
        raise InvalidInput("the experiment needs a deployment (--deployment)")
    validate_name("deployment", config.deployment)
    challenger = convert.parse_ref(config.challenger, "the challenger")
    if config.alpha < 0 or config.alpha >= 1 or math.isnan(config.alpha):
        raise InvalidInput(f"alpha is {config.alpha!r}; it must lie strictly between 0 and 1 (e.g. 0.05)")
    if config.hold_seconds < 0 or not math.isfinite(config.hold_seconds):
        raise InvalidInput(f"hold is {config.hold_seconds!r} s; it must be a number >= 0")
    return ExperimentSpec(
        deployment=config.deployment,
        challenger=challenger,
        traffic_percent=config.traffic_percent or 10,
        metric=config.metric or "accuracy",
        guardrails=[(g.metric, g.max_degradation) for g in config.guardrails],
        min_samples=int(config.min_samples) or 100,
        alpha=config.alpha or 0.05,
        min_improvement=config.min_improvement,
        sequential=config.sequential,
        plan=[int(p) for p in config.plan],
        hold_seconds=config.hold_seconds or None,
        auto_promote=config.auto_promote,
        shadow=config.shadow,
        segment_rules=[
            {
                "attribute": r.attribute,
                "values": list(r.values),
                "has_range": r.has_range,
                "min": r.min,
                "max": r.max,
            }
            for r in config.segment_rules
        ],
        require_offline_win=config.require_offline_win,
        min_detectable_effect=config.min_detectable_effect,
        baseline=config.baseline if config.HasField("baseline") else None,
        power=config.power or 0.8,
        label_source=_label_source(config.label_source),
        label_delay_seconds=config.label_delay_seconds,
    )


def _label_source(text: str) -> MetricSource:
    try:
        return MetricSource(text or MetricSource.LIVE)
    except ValueError:
        raise InvalidInput(
            f"unknown label source {text!r}; choose {' or '.join(m.value for m in MetricSource)}"
        ) from None


def config_message(config: dict[str, Any]) -> controlplane_pb2.ExperimentConfig:
    model, _, version = str(config.get("challenger", "")).partition(":")
    return controlplane_pb2.ExperimentConfig(
        deployment=config.get("deployment", ""),
        challenger=convert.ref(model, version),
        traffic_percent=int(config.get("traffic_percent", 0)),
        metric=config.get("metric", ""),
        guardrails=[
            controlplane_pb2.Guardrail(metric=g["metric"], max_degradation=float(g["max_degradation"]))
            for g in config.get("guardrails", [])
        ],
        min_samples=int(config.get("min_samples", 0)),
        alpha=float(config.get("alpha", 0.0)),
        min_improvement=float(config.get("min_improvement", 0.0)),
        sequential=bool(config.get("sequential", False)),
        plan=[int(p) for p in config.get("plan", [])],
        hold_seconds=float(config.get("hold_seconds", 0.0)),
        auto_promote=bool(config.get("auto_promote", False)),
        shadow=bool(config.get("shadow", False)),
        segment_rules=convert.segment_rules(config.get("segment_rules", [])),
        require_offline_win=bool(config.get("require_offline_win", False)),
        label_source=str(config.get("label_source", MetricSource.LIVE)),
        label_delay_seconds=float(config.get("label_delay_seconds", 0.0)),
        **_plan_fields(config.get("sequential_plan")),
    )


def _plan_fields(planned: dict[str, Any] | None) -> dict[str, Any]:
    if not planned:
        return {}
    return {
        "min_detectable_effect": float(planned["min_detectable_effect"]),
        "baseline": float(planned["baseline"]),
        "power": float(planned["power"]),
        "planned_n_champion": int(planned["n_champion"]),
        "planned_n_challenger": int(planned["n_challenger"]),
        "expected_power": float(planned["expected_power"]),
    }


def analysis_message(data: dict[str, Any] | None) -> controlplane_pb2.ExperimentAnalysis:
    if not data:
        return controlplane_pb2.ExperimentAnalysis(decision="not_enough_data")
    labels = data.get("labels") or {}
    message = controlplane_pb2.ExperimentAnalysis(
        metric=data.get("metric", ""),
        arms=[
            controlplane_pb2.ArmSummary(
                version=convert.ref(a["model"], a["version"]),
                role=convert.wire_or(ServingRole, a.get("role", ""), common_pb2.ROLE_SHADOW),
                requests=int(a.get("requests", 0)),
                rows=int(a.get("rows", 0)),
                n=int(a.get("n", 0)),
                metric=_num(a.get("metric")),
                ci_low=_num(a.get("ci_low")),
                ci_high=_num(a.get("ci_high")),
                **_arm_labels(labels, a.get("role", "")),
            )
            for a in data.get("arms", [])
        ],
        difference=_num(data.get("difference")),
        difference_ci_low=_num(data.get("difference_ci_low")),
        difference_ci_high=_num(data.get("difference_ci_high")),
        relative_lift=_num(data.get("relative_lift")),
        relative_lift_ci_low=_num(data.get("relative_lift_ci_low")),
        relative_lift_ci_high=_num(data.get("relative_lift_ci_high")),
        p_value=_num(data.get("p_value")),
        decision=data.get("decision", ""),
        srm_detected=bool(data.get("srm_detected", False)),
        srm_p_value=_num(data.get("srm_p_value")),
        sequential=bool(data.get("sequential", False)),
        guardrails=[
            controlplane_pb2.GuardrailResult(
                metric=g["metric"],
                passed=bool(g["passed"]),
                detail=g.get("detail", ""),
                ready=bool(g.get("ready", True)),
                max_degradation=float(g.get("max_degradation", 0.0)),
            )
            for g in data.get("guardrails", [])
        ],
        shadow_agreement=_num(data.get("shadow_agreement")),
        shadow_mcnemar_p=_num(data.get("shadow_mcnemar_p")),
        shadow_pairs=int(data.get("shadow_pairs", 0)),
        agents=[
            controlplane_pb2.AgentEvidence(
                agent_id=str(a.get("agent_id", "")),
                agent_name=str(a.get("agent_name", "")),
                champion_n=int(a.get("champion_n", 0)),
                challenger_n=int(a.get("challenger_n", 0)),
                champion_metric=_num(a.get("champion_metric")),
                challenger_metric=_num(a.get("challenger_metric")),
                decision_without=str(a.get("decision_without", "")),
                ready_without=bool(a.get("ready_without", False)),
                failed_without=[str(f) for f in a.get("failed_without", [])],
            )
            for a in data.get("agents", [])
        ],
    )
    if labels:
        message.label_source = str(labels.get("source", MetricSource.JOINED))
        message.label_delay_seconds = float(labels.get("delay_seconds", 0.0))
        message.judged_until.FromDatetime(datetime.fromisoformat(labels["judged_until"]))
    return message


def _arm_labels(labels: dict[str, Any], role: str) -> dict[str, int]:
    """An arm's label counts (role champion or challenger) when judged on delayed labels."""
    counts = labels.get(role) if labels else None
    if not counts:
        return {}
    return {
        "logged": int(counts["logged"]),
        "labels_not_due": int(counts["not_due"]),
        "labels_overdue": int(counts["overdue"]),
    }


def experiment_message(info: ExperimentInfo) -> controlplane_pb2.Experiment:
    """An ExperimentInfo as the wire message (also usable by GetStatus)."""
    return controlplane_pb2.Experiment(
        name=info.name,
        config=config_message(info.config),
        state=convert.wire_or(ExperimentState, info.state, controlplane_pb2.EXPERIMENT_STATE_UNSPECIFIED),
        champion=convert.ref(*info.champion),
        step_index=info.step_index,
        current_percent=info.current_percent,
        step_started_at=convert.timestamp(info.step_started_at),
        hold_remaining_seconds=info.hold_remaining_seconds,
        status_reason=info.status_reason,
        analysis=analysis_message(info.analysis),
        created_at=convert.timestamp(info.created_at),
        ended_at=convert.timestamp(info.ended_at),
        salt=info.salt,
        created_by=info.created_by,
        paused_at=convert.timestamp(info.paused_at),
    )


def _name(request: controlplane_pb2.ExperimentRequest) -> str:
    return validate_name("experiment", request.name)


class ExperimentsApi(ServiceBase):
    async def StartExperiment(
        self, request: controlplane_pb2.StartExperimentRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Experiment:
        validate_name("experiment", request.name)
        if not request.HasField("config"):
            raise InvalidInput("the experiment needs a config (deployment, challenger...)")
        spec = spec_from_config(request.config)
        info = await self.run(
            commands.start_experiment,
            self.ctx,
            current_principal(),
            request.name,
            spec,
            validate_reason(request.reason),
        )
        return experiment_message(info)

    async def GetExperiment(
        self, request: controlplane_pb2.ExperimentRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Experiment:
        info = await self.run(commands.get_experiment, self.ctx, _name(request))
        return experiment_message(info)

    async def ListExperiments(
        self, request: controlplane_pb2.ListExperimentsRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListExperimentsResponse:
        if request.deployment:
            validate_name("deployment", request.deployment)
        infos = await self.run(commands.list_experiments, self.ctx, request.deployment, request.include_finished)
        return controlplane_pb2.ListExperimentsResponse(experiments=[experiment_message(i) for i in infos])

    async def StopExperiment(
        self, request: controlplane_pb2.ExperimentRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Experiment:
        info = await self.run(
            commands.stop_experiment, self.ctx, current_principal(), _name(request), validate_reason(request.reason)
        )
        return experiment_message(info)

    async def ResumeExperiment(
        self, request: controlplane_pb2.ExperimentRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Experiment:
        info = await self.run(
            commands.resume_experiment, self.ctx, current_principal(), _name(request), validate_reason(request.reason)
        )
        return experiment_message(info)

    async def PauseExperiment(
        self, request: controlplane_pb2.ExperimentRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Experiment:
        info = await self.run(
            commands.pause_experiment, self.ctx, current_principal(), _name(request), validate_reason(request.reason)
        )
        return experiment_message(info)

    async def AbortExperiment(
        self, request: controlplane_pb2.ExperimentRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Experiment:
        info = await self.run(
            commands.abort_experiment, self.ctx, current_principal(), _name(request), validate_reason(request.reason)
        )
        return experiment_message(info)

    async def Promote(
        self, request: controlplane_pb2.ExperimentRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Deployment:
        info = await self.run(
            commands.promote, self.ctx, current_principal(), _name(request), validate_reason(request.reason)
        )
        return convert.deployment(info)

    async def Evaluate(
        self, request: controlplane_pb2.EvaluateRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.OfflineEvaluation:
        if not request.deployment:
            raise InvalidInput("evaluate needs the deployment whose champion the challenger is compared with")
        validate_name("deployment", request.deployment)
        challenger = convert.parse_ref(request.challenger, "the challenger")
        evaluation = offline.EvaluateRequest(
            challenger=challenger,
            deployment=request.deployment,
            data=request.data,
            data_format=request.data_format,
            label_column=request.label_column,
            min_improvement=request.min_improvement,
            alpha=request.alpha,
        )
        result = await self.lanes.evaluate.run(offline.evaluate, self.ctx, current_principal(), evaluation)
        message = convert.offline_evaluation(result)
        assert message is not None
        return message
