"""The agent's Open Inference Protocol service (inference.GRPCInferenceService, thin): KServe's
v2 gRPC API over the same `AgentCore` as sluice.v1.Inference (services.py), whose `predict` it
shares. The model name is the deployment name; tensors are oip_tensors.py's.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from typing import Any

import grpc
import numpy as np

from agent.core import AgentCore
from agent.link import SOFTWARE_VERSION
from agent.oip_tensors import datatype_of, decode_inputs, encode_output, metadata_shape
from agent.outcome import Outcome
from agent.services import predict
from core.errors import InvalidInput, SluiceError
from core.grpc_errors import map_errors
from core.vocabulary import ServingRole
from protos import oip_pb2, oip_pb2_grpc
from runtime.model import ModelRuntime

log = logging.getLogger("sluice.agent")

ROUTING_KEY_PARAMETER = "routing_key"


def _oip_outputs(outcome: Outcome) -> list[tuple[str, np.ndarray]]:
    out: list[tuple[str, np.ndarray]] = []
    if outcome.labels is not None:
        labels = outcome.class_labels if outcome.class_labels is not None else outcome.labels
        out.append(("label", labels))
    if outcome.probabilities is not None:
        out.append(("probabilities", np.ascontiguousarray(outcome.probabilities, "<f4")))
    if outcome.values is not None:
        out.append(("value", np.ascontiguousarray(outcome.values, "<f4")))
    return out


def output_names(runtime: ModelRuntime) -> list[tuple[str, str, list[int]]]:
    """(name, datatype, shape) of what ModelInfer answers for this model."""
    if runtime.task == "regressor":
        assert runtime.value_output is not None
        shape = runtime.session.get_outputs()[runtime.output_names.index(runtime.value_output)].shape or []
        width = shape[1] if len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 1 else None
        return [("value", "FP32", [-1, width] if width else [-1])]
    label = "BYTES" if runtime.string_labels else "INT64"
    classes = len(runtime.classes) if runtime.classes is not None else -1
    return [("label", label, [-1]), ("probabilities", "FP32", [-1, classes])]


def _count_oip_refusal(service: OipService, request: Any, status: grpc.StatusCode, error: SluiceError) -> None:
    # ModelInferRequest names the deployment `model_name`; the metadata requests name it `name`.
    model = request.model_name if isinstance(request, oip_pb2.ModelInferRequest) else getattr(request, "name", "")
    service.core.refused(model, status.name, error)


@map_errors(server="agent", on_refusal=_count_oip_refusal, log=log)
class OipService(oip_pb2_grpc.GRPCInferenceServiceServicer):
    """inference.GRPCInferenceService: the model name is the deployment name."""

    def __init__(self, core: AgentCore, pool: Executor | None = None) -> None:
        self.core = core
        self.pool = pool

    async def ServerLive(
        self, request: oip_pb2.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> oip_pb2.ServerLiveResponse:
        return oip_pb2.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: oip_pb2.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> oip_pb2.ServerReadyResponse:
        return oip_pb2.ServerReadyResponse(ready=self.core.table is not None)

    async def ModelReady(
        self, request: oip_pb2.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> oip_pb2.ModelReadyResponse:
        table = self.core.table
        dep = table.deployments.get(request.name) if table is not None else None
        ready = dep is not None and (not request.version or any(r.version == request.version for r in dep.routes))
        return oip_pb2.ModelReadyResponse(ready=ready)

    async def ServerMetadata(
        self, request: oip_pb2.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> oip_pb2.ServerMetadataResponse:
        return oip_pb2.ServerMetadataResponse(name="sluice-agent", version=SOFTWARE_VERSION, extensions=[])

    async def ModelMetadata(
        self, request: oip_pb2.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> oip_pb2.ModelMetadataResponse:
        dep = self.core.deployment(request.name)
        runtime = dep.champion.runtime
        tensor = oip_pb2.ModelMetadataResponse.TensorMetadata
        return oip_pb2.ModelMetadataResponse(
            name=dep.name,
            versions=[r.version for r in dep.routes if r.role != ServingRole.SHADOW],
            platform="onnxruntime_onnx",
            inputs=[
                tensor(name=spec.name, datatype=datatype_of(spec.dtype), shape=metadata_shape(spec))
                for spec in runtime.inputs
            ],
            outputs=[tensor(name=name, datatype=dtype, shape=shape) for name, dtype, shape in output_names(runtime)],
        )

    async def ModelInfer(
        self, request: oip_pb2.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> oip_pb2.ModelInferResponse:
        core = self.core
        dep = core.deployment(request.model_name)
        # Checked against the champion's inputs before routing: every version of a deployment
        # takes the same inputs.
        x = decode_inputs(request, dep.champion.runtime)
        key = ""
        if ROUTING_KEY_PARAMETER in request.parameters:
            parameter = request.parameters[ROUTING_KEY_PARAMETER]
            if parameter.WhichOneof("parameter_choice") != "string_param":
                raise InvalidInput(f"the {ROUTING_KEY_PARAMETER!r} parameter must be a string_param")
            key = parameter.string_param
        outcome, request_id = await predict(
            core, self.pool, dep, x, key, None, request.id, request.model_version, context
        )
        produced = _oip_outputs(outcome)
        if request.outputs:
            by_name = dict(produced)
            wanted = []
            for requested in request.outputs:
                if requested.name not in by_name:
                    raise InvalidInput(
                        f"model {request.model_name!r} has no output {requested.name[:128]!r}; "
                        f"it has {', '.join(by_name)}"
                    )
                wanted.append((requested.name, by_name[requested.name]))
            produced = wanted
        encoded = [(name, data.shape, *encode_output(data)) for name, data in produced]
        route = outcome.route
        response = oip_pb2.ModelInferResponse(
            model_name=outcome.deployment.name,
            model_version=route.version,
            id=request_id,
            outputs=[
                oip_pb2.ModelInferResponse.InferOutputTensor(name=name, datatype=dtype, shape=shape)
                for name, shape, dtype, _ in encoded
            ],
            raw_output_contents=[raw for _, _, _, raw in encoded],
        )
        response.parameters["served_by"].string_param = route.label
        response.parameters["role"].string_param = route.role
        response.parameters["agent"].string_param = core.name
        if route.runtime.named_classes is not None and outcome.probabilities is not None:
            response.parameters["classes"].string_param = ",".join(route.runtime.named_classes)
        return response
