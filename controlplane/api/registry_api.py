"""ControlPlane RPCs of the model registry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from controlplane import convert, registry
from controlplane.api.auth import current_principal
from controlplane.api.base import ServiceBase
from controlplane.artifacts import PendingUpload, check_sha256
from core.errors import InvalidInput
from protos import common_pb2, controlplane_pb2


class RegistryApi(ServiceBase):
    async def RegisterVersion(
        self,
        request_iterator: AsyncIterator[controlplane_pb2.RegisterVersionChunk],
        context: grpc.aio.ServicerContext,
    ) -> common_pb2.ModelVersion:
        header: controlplane_pb2.RegisterVersionHeader | None = None
        model: PendingUpload | None = None
        baseline: PendingUpload | None = None
        try:
            async for chunk in request_iterator:
                kind = chunk.WhichOneof("payload")
                if kind == "header":
                    if header is not None:
                        raise InvalidInput("the upload has two headers")
                    header = chunk.header
                    model_name, version = convert.parse_ref(header.ref)
                    if header.model_size == 0:
                        raise InvalidInput("the ONNX file is empty (the upload header says model_size 0)")
                    if header.model_sha256:
                        check_sha256(header.model_sha256)
                    model = self.ctx.artifacts.begin_upload("model")
                    if header.baseline_size:
                        baseline = self.ctx.artifacts.begin_upload("baseline")
                elif header is None or model is None:
                    raise InvalidInput("the upload must start with a header")
                elif kind == "model_chunk":
                    if baseline is not None and baseline.size:
                        raise InvalidInput("model chunks must come before baseline chunks")
                    model.write(chunk.model_chunk)
                    if model.size > header.model_size:
                        raise InvalidInput(
                            f"the upload sent more than the {header.model_size} model bytes its header announced"
                        )
                elif kind == "baseline_chunk":
                    if baseline is None:
                        raise InvalidInput("baseline chunks sent but the header's baseline_size is 0")
                    baseline.write(chunk.baseline_chunk)
                else:
                    raise InvalidInput("an upload message carries no payload")
            if header is None or model is None:
                raise InvalidInput("the upload is empty: no header was sent")
            if model.size != header.model_size:
                raise InvalidInput(
                    f"the upload was cut off: received {model.size} of {header.model_size} model bytes"
                )
            if baseline is not None and baseline.size != header.baseline_size:
                raise InvalidInput(
                    f"the upload was cut off: received {baseline.size} of "
                    f"{header.baseline_size} baseline bytes"
                )
            new = registry.NewVersion(
                model=model_name,
                version=version,
                description=header.description,
                feature_names=list(header.feature_names),
                expected_sha256=header.model_sha256,
            )
            info = await self.lanes.register.run(
                registry.register_version, self.ctx, current_principal(), new, model, baseline
            )
            model = baseline = None  # consumed by register_version
            return convert.version(info)
        finally:
            for upload in (model, baseline):
                if upload is not None:
                    upload.discard()

    async def ListVersions(
        self, request: controlplane_pb2.ListVersionsRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListVersionsResponse:
        infos = await self.run(registry.list_versions, self.ctx, request.model)
        return controlplane_pb2.ListVersionsResponse(versions=[convert.version(i) for i in infos])

    async def GetVersion(
        self, request: common_pb2.VersionRef, context: grpc.aio.ServicerContext
    ) -> common_pb2.ModelVersion:
        model, version = convert.parse_ref(request)
        return convert.version(await self.run(registry.get_version, self.ctx, model, version))
