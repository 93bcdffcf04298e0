"""ControlPlane RPCs of a deployment's health policy (GetPolicy, SetPolicy)."""

from __future__ import annotations

import grpc

from controlplane import convert
from controlplane.api.auth import current_principal
from controlplane.api.base import ServiceBase
from controlplane.config import THRESHOLDS
from controlplane.monitoring import policy
from core.errors import InvalidInput
from core.names import validate_name
from core.vocabulary import MetricSource, PolicyAction
from protos import controlplane_pb2


def policy_message(info: policy.PolicyInfo) -> controlplane_pb2.Policy:
    thresholds = controlplane_pb2.PolicyThresholds(**{name: getattr(info.health, name) for name in THRESHOLDS})
    return controlplane_pb2.Policy(
        deployment=info.deployment,
        thresholds=thresholds,
        overridden=list(info.overridden),
        action=info.action.to_wire(),
        action_after_seconds=info.action_after_seconds,
        critical_since=convert.timestamp(info.critical_since),
        acts_at=convert.timestamp(info.acts_at),
        last_action=info.last_action,
        last_action_at=convert.timestamp(info.last_action_at),
        updated_by=info.updated_by,
        updated_at=convert.timestamp(info.updated_at),
        fallback=info.fallback,
        accuracy_source=info.health.accuracy_source,
        label_delay_seconds=info.health.label_delay_seconds,
    )


def policy_change(request: controlplane_pb2.SetPolicyRequest) -> policy.PolicyChange:
    thresholds = {name: getattr(request.thresholds, name) for name in THRESHOLDS if request.thresholds.HasField(name)}
    action = None
    if request.action != controlplane_pb2.POLICY_ACTION_UNSPECIFIED:
        try:
            action = PolicyAction.from_wire(request.action)
        except ValueError:
            raise InvalidInput(
                f"unknown policy action {request.action}; choose among {', '.join(a.value for a in PolicyAction)}"
            ) from None
    after = request.action_after_seconds if request.HasField("action_after_seconds") else None
    fallback = request.fallback if request.HasField("fallback") else None
    source = None
    if request.accuracy_source:
        try:
            source = MetricSource(request.accuracy_source)
        except ValueError:
            raise InvalidInput(
                f"unknown accuracy source {request.accuracy_source!r}; choose "
                f"{' or '.join(m.value for m in MetricSource)}"
            ) from None
    delay = request.label_delay_seconds if request.HasField("label_delay_seconds") else None
    return policy.PolicyChange(thresholds, action, after, tuple(request.reset), request.reason, fallback, source, delay)


class PolicyApi(ServiceBase):
    async def GetPolicy(
        self, request: controlplane_pb2.PolicyRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Policy:
        validate_name("deployment", request.deployment)
        return policy_message(await self.run(policy.get_policy, self.ctx, request.deployment))

    async def SetPolicy(
        self, request: controlplane_pb2.SetPolicyRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Policy:
        validate_name("deployment", request.deployment)
        change = policy_change(request)
        info = await self.run(policy.set_policy, self.ctx, current_principal(), request.deployment, change)
        return policy_message(info)
