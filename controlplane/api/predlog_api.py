"""ControlPlane RPCs of the prediction log (SetLogSampleRate)."""

from __future__ import annotations

import grpc

from controlplane.api import convert
from controlplane.api.auth import current_principal
from controlplane.api.base import ServiceBase
from controlplane.predlog import sampling
from core.names import validate_name
from protos import controlplane_pb2


class PredictionLogApi(ServiceBase):
    async def SetLogSampleRate(
        self, request: controlplane_pb2.SetLogSampleRateRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Deployment:
        validate_name("deployment", request.deployment)
        rate = sampling.check_rate(request.sample_rate)
        info = await self.run(
            sampling.set_log_sample_rate, self.ctx, current_principal(), request.deployment, rate, request.reason
        )
        return convert.deployment(info)
