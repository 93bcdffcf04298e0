"""The agent's gRPC services: sluice.v1.Inference and the Open Inference Protocol (thin).

Each RPC decodes its request, calls `AgentCore`, and builds the answer. A `Rejected` becomes its
status and message (and is counted); anything unexpected is logged and answered INTERNAL, so no
request can take the agent down.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

import grpc
import numpy as np

from agent.core import AgentCore, Outcome, decode_tensor, float32_array
from agent.errors import Rejected, invalid
from agent.link import SOFTWARE_VERSION
from agent.wire import encode_rows
from protos import inference_pb2, inference_pb2_grpc, oip_pb2, oip_pb2_grpc

log = logging.getLogger("sluice.agent")

ROUTING_KEY_PARAMETER = "routing_key"
#: batches of at least this many rows run on a worker thread instead of the event loop
THREAD_ROWS = 4096


async def _fail(context: grpc.aio.ServicerContext, core: AgentCore, deployment: str, exc: BaseException) -> None:
    if isinstance(exc, Rejected):
        core.refused(deployment, exc)
        await context.abort(exc.code, exc.message)
    log.error("unexpected error serving %s", deployment, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}; see the agent log")


class InferenceService(inference_pb2_grpc.InferenceServicer):
    def __init__(self, core: AgentCore, pool: Executor | None = None) -> None:
        self.core = core
        self.pool = pool

    def _input(self, request: inference_pb2.PredictRequest) -> np.ndarray:
        if request.HasField("input"):
            if request.named_inputs:
                raise invalid("send either 'input' or 'named_inputs', not both")
            return decode_tensor(request.input)
        if len(request.named_inputs) == 1:
            name, tensor = next(iter(request.named_inputs.items()))
            return decode_tensor(tensor, f"input {name!r}")
        if request.named_inputs:
            raise invalid(f"this agent takes one input tensor, got {len(request.named_inputs)} named inputs")
        raise invalid("no input: send 'input', a float32 tensor of shape [rows, features]")

    async def Predict(
        self, request: inference_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.PredictResponse:
        core = self.core
        try:
            outcome, request_id = core.predict(
                core.deployment(request.deployment),
                self._input(request),
                request.routing_key,
                request.attributes,
                request.request_id,
            )
            route = outcome.route
            response = inference_pb2.PredictResponse(
                request_id=request_id, served_by=route.ref, role=route.role_proto, agent=core.name
            )
            if outcome.labels is not None:
                response.labels.extend(outcome.labels.tolist())
            if outcome.probabilities is not None:
                probabilities = response.probabilities
                probabilities.shape.extend(outcome.probabilities.shape)
                probabilities.values.extend(outcome.probabilities.ravel().tolist())
            if outcome.values is not None:
                response.values.extend(outcome.values.tolist())
            return response
        except Exception as exc:
            await _fail(context, core, request.deployment, exc)
            raise  # unreachable: abort raises

    async def PredictBatch(
        self, request: inference_pb2.PredictBatchRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.PredictBatchResponse:
        core = self.core
        try:
            dep = core.deployment(request.deployment)
            x = decode_tensor(request.inputs, "inputs")
            keys, request_ids = list(request.routing_keys), list(request.request_ids)
            if x.shape[0] < THREAD_ROWS:
                outcomes, positions, ids = core.predict_batch(dep, x, keys, request_ids)
            else:
                # A big batch runs on a worker thread (onnxruntime releases the GIL), so it never
                # holds up the small requests and heartbeats on the event loop.
                loop = asyncio.get_running_loop()
                outcomes, positions, ids = await loop.run_in_executor(
                    self.pool, core.predict_batch, dep, x, keys, request_ids, loop.call_soon_threadsafe
                )
            n = x.shape[0]
            response = inference_pb2.PredictBatchResponse(versions=[o.route.ref for o in outcomes], agent=core.name)
            served = np.zeros(n, dtype=np.int64)
            classifier = any(o.labels is not None for o in outcomes)
            regressor = any(o.values is not None for o in outcomes)
            if len(outcomes) == 1:  # one version answered every row, in order
                only = outcomes[0]
                labels = only.labels if only.labels is not None else np.zeros(n, dtype=np.int64)
                values = only.values if only.values is not None else np.zeros(n, dtype=np.float64)
                probabilities = only.probabilities
            else:
                labels = np.zeros(n, dtype=np.int64)
                values = np.zeros(n, dtype=np.float64)
                classes = max((o.probabilities.shape[1] for o in outcomes if o.probabilities is not None), default=0)
                probabilities = np.full((n, classes), np.nan, dtype=np.float32) if classes else None
                for i, (outcome, rows) in enumerate(zip(outcomes, positions, strict=True)):
                    served[rows] = i
                    if outcome.labels is not None:
                        labels[rows] = outcome.labels
                    if outcome.values is not None:
                        values[rows] = outcome.values
                    if probabilities is not None and outcome.probabilities is not None:
                        probabilities[rows, : outcome.probabilities.shape[1]] = outcome.probabilities
            if not ids:
                # No request ids: the rows have a fixed layout, encoded with numpy in one go.
                response.MergeFromString(
                    encode_rows(served, labels if classifier else None, values if regressor else None)
                )
            else:
                add = response.rows.add  # faster than building RowResults and extending
                for rid, s, lab, val in zip(ids, served.tolist(), labels.tolist(), values.tolist(), strict=True):
                    add(request_id=rid, served_by=s, label=lab, value=val)
            if probabilities is not None:
                response.probabilities.shape.extend(probabilities.shape)
                response.probabilities.raw = np.ascontiguousarray(probabilities, "<f4").tobytes()
            return response
        except Exception as exc:
            await _fail(context, core, request.deployment, exc)
            raise

    async def Feedback(
        self, request: inference_pb2.FeedbackRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.FeedbackResponse:
        try:
            truth = request.WhichOneof("truth")
            matched = self.core.feedback(
                request.deployment,
                request.request_id,
                label=request.label if truth == "label" else None,
                value=request.value if truth == "value" else None,
            )
            return inference_pb2.FeedbackResponse(matched=matched)
        except Exception as exc:
            await _fail(context, self.core, request.deployment, exc)
            raise


# ---- Open Inference Protocol ----

OIP_DTYPES = {"FP32": "<f4"}


def _oip_outputs(outcome: Outcome) -> list[tuple[str, str, np.ndarray]]:
    out: list[tuple[str, str, np.ndarray]] = []
    if outcome.labels is not None:
        out.append(("label", "INT64", np.ascontiguousarray(outcome.labels, "<i8")))
    if outcome.probabilities is not None:
        out.append(("probabilities", "FP32", np.ascontiguousarray(outcome.probabilities, "<f4")))
    if outcome.values is not None:
        out.append(("value", "FP32", np.ascontiguousarray(outcome.values, "<f4")))
    return out


def output_names(task: str) -> list[tuple[str, str]]:
    if task == "regressor":
        return [("value", "FP32")]
    return [("label", "INT64"), ("probabilities", "FP32")]


class OipService(oip_pb2_grpc.GRPCInferenceServiceServicer):
    """inference.GRPCInferenceService: the model name is the deployment name."""

    def __init__(self, core: AgentCore) -> None:
        self.core = core

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
        try:
            dep = self.core.deployment(request.name)
            route = dep.champion
            width = route.runtime.n_features
            tensor = oip_pb2.ModelMetadataResponse.TensorMetadata
            return oip_pb2.ModelMetadataResponse(
                name=dep.name,
                versions=[r.version for r in dep.routes if r.role != "shadow"],
                platform="onnxruntime_onnx",
                inputs=[tensor(name=route.runtime.input_name, datatype="FP32", shape=[-1, width or -1])],
                outputs=[
                    tensor(name=name, datatype=dtype, shape=[-1, -1] if name == "probabilities" else [-1])
                    for name, dtype in output_names(route.task)
                ],
            )
        except Exception as exc:
            await _fail(context, self.core, request.name, exc)
            raise

    def _input(self, request: oip_pb2.ModelInferRequest) -> np.ndarray:
        if len(request.inputs) != 1:
            raise invalid(
                f"model {request.model_name!r} takes exactly one input (FP32 [rows, features]), "
                f"got {len(request.inputs)}"
            )
        spec = request.inputs[0]
        if spec.datatype != "FP32":
            raise invalid(f"input {spec.name!r} has datatype {spec.datatype!r}; the model takes FP32")
        raw = b""
        if request.raw_input_contents:
            if len(request.raw_input_contents) != 1:
                raise invalid(f"raw_input_contents has {len(request.raw_input_contents)} entries for 1 input")
            if spec.HasField("contents") and spec.contents.ByteSize():
                raise invalid(f"input {spec.name!r} sets both contents and raw_input_contents; send one, not both")
            raw = request.raw_input_contents[0]
        what = f"input {spec.name!r}"
        return float32_array(tuple(spec.shape), raw, spec.contents.fp32_contents, what, "raw_input_contents")

    async def ModelInfer(
        self, request: oip_pb2.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> oip_pb2.ModelInferResponse:
        core = self.core
        try:
            dep = core.deployment(request.model_name)
            x = self._input(request)
            key = ""
            if ROUTING_KEY_PARAMETER in request.parameters:
                parameter = request.parameters[ROUTING_KEY_PARAMETER]
                if parameter.WhichOneof("parameter_choice") != "string_param":
                    raise invalid(f"the {ROUTING_KEY_PARAMETER!r} parameter must be a string_param")
                key = parameter.string_param
            outcome, request_id = core.predict(dep, x, key, None, request.id, version=request.model_version)
            produced = _oip_outputs(outcome)
            if request.outputs:
                by_name = {name: (name, dtype, data) for name, dtype, data in produced}
                wanted = []
                for requested in request.outputs:
                    if requested.name not in by_name:
                        raise invalid(
                            f"model {request.model_name!r} has no output {requested.name!r}; "
                            f"it has {', '.join(by_name)}"
                        )
                    wanted.append(by_name[requested.name])
                produced = wanted
            route = outcome.route
            response = oip_pb2.ModelInferResponse(
                model_name=outcome.deployment.name,
                model_version=route.version,
                id=request_id,
                outputs=[
                    oip_pb2.ModelInferResponse.InferOutputTensor(name=name, datatype=dtype, shape=data.shape)
                    for name, dtype, data in produced
                ],
                raw_output_contents=[data.tobytes() for _, _, data in produced],
            )
            response.parameters["served_by"].string_param = route.label
            response.parameters["role"].string_param = route.role
            response.parameters["agent"].string_param = core.name
            return response
        except Exception as exc:
            await _fail(context, core, request.model_name, exc)
            raise
