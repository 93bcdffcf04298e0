"""ControlPlane RPCs of deployments and traffic."""

from __future__ import annotations

import grpc

from controlplane import convert, deployment_reads, deployments
from controlplane.api.auth import current_principal
from controlplane.api.base import ServiceBase
from core.errors import InvalidInput
from core.names import validate_name
from protos import controlplane_pb2

MAX_REASON = 2000


def _reason(text: str) -> str:
    if len(text) > MAX_REASON:
        raise InvalidInput(f"the reason is {len(text)} characters; the limit is {MAX_REASON}")
    return text


def _expected(request: object) -> int | None:
    if request.HasField("expected_generation"):  # type: ignore[attr-defined]
        value = int(request.expected_generation)  # type: ignore[attr-defined]
        if value < 0:
            raise InvalidInput(f"expected_generation must not be negative, got {value}")
        return value
    return None


class DeploymentApi(ServiceBase):
    async def Deploy(
        self, request: controlplane_pb2.DeployRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Deployment:
        validate_name("deployment", request.deployment)
        model, version = convert.parse_ref(request.version)
        info = await self.run(
            deployments.deploy,
            self.ctx,
            current_principal(),
            request.deployment,
            model,
            version,
            expected_generation=_expected(request),
            reason=_reason(request.reason),
        )
        return convert.deployment(info)

    async def SetTraffic(
        self, request: controlplane_pb2.SetTrafficRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Deployment:
        validate_name("deployment", request.deployment)
        weights = [(*convert.parse_ref(w.version), int(w.weight)) for w in request.weights]
        info = await self.run(
            deployments.set_traffic,
            self.ctx,
            current_principal(),
            request.deployment,
            weights,
            expected_generation=_expected(request),
            reason=_reason(request.reason),
        )
        return convert.deployment(info)

    async def Rollback(
        self, request: controlplane_pb2.RollbackRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Deployment:
        validate_name("deployment", request.deployment)
        to = convert.parse_ref(request.to) if request.HasField("to") else None
        info = await self.run(
            deployments.rollback,
            self.ctx,
            current_principal(),
            request.deployment,
            to,
            expected_generation=_expected(request),
            reason=_reason(request.reason),
        )
        return convert.deployment(info)

    async def ListDeployments(
        self, request: controlplane_pb2.ListDeploymentsRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListDeploymentsResponse:
        infos = await self.run(deployment_reads.list_deployments, self.ctx, request.deployment)
        return controlplane_pb2.ListDeploymentsResponse(deployments=[convert.deployment(i) for i in infos])
