"""The agent's sluice.v1.Inference service (thin); the Open Inference Protocol's is oip_service.py.

Each RPC decodes its request, calls `AgentCore`, and builds the answer. Refusals are the typed
errors of core.errors; `@map_errors` (core.grpc_errors, the mapping the control plane uses too)
answers each with its status and message and counts it per deployment; anything unexpected is
logged and answered INTERNAL, so no request can take the agent down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import Executor
from functools import partial
from typing import Any

import grpc
import numpy as np

from agent.core import AgentCore
from agent.outcome import Outcome
from agent.rows import Rows, rows_in, rows_of
from agent.serving import LoadedDeployment
from agent.watch import Watch
from core.errors import SluiceError, Unavailable
from core.grpc_errors import map_errors
from core.tensors import decode_tensor
from core.zero_copy import BatchRequest, parse_batch_request
from protos import inference_pb2, inference_pb2_grpc

log = logging.getLogger("sluice.agent")

#: batches of at least this many rows run on a worker thread instead of the event loop
THREAD_ROWS = 4096
#: the request parsers the agent's server registers in place of the generated ones (core.decoding)
PARSERS = {f"/{inference_pb2.DESCRIPTOR.services_by_name['Inference'].full_name}/PredictBatch": parse_batch_request}


def _count_refusal(service: InferenceService, request: Any, status: grpc.StatusCode, error: SluiceError) -> None:
    service.core.refused(request.deployment, status.name, error)


def _legacy_rows(
    response: inference_pb2.PredictBatchResponse,
    ids: list[str],
    served: np.ndarray,
    labels: np.ndarray | None,
    values: np.ndarray | None,
) -> None:
    """The deprecated `rows` (one RowResult per row; removed in release 0.3): what pre-0.2 clients read.

    Only the fields that vary are passed (each keyword costs about as much as the row itself): a
    route index when several versions answered, the label or the value, the id when sent.
    """
    fields: dict[str, list[Any]] = {}
    if ids:
        fields["request_id"] = ids
    if len(response.versions) > 1:
        fields["served_by"] = served.tolist()
    if labels is not None:
        fields["label"] = labels.tolist()
    if values is not None:
        fields["value"] = values.tolist()
    add = response.rows.add
    if fields.keys() == {"label"}:  # one classifier answered every row: the common case
        for label in fields["label"]:
            add(label=label)
    elif fields.keys() == {"value"}:
        for value in fields["value"]:
            add(value=value)
    elif not fields:  # every field at its default
        for _ in range(served.shape[0]):
            add()
    else:
        names = tuple(fields)
        for row in zip(*fields.values(), strict=True):
            add(**dict(zip(names, row, strict=True)))


async def predict(
    core: AgentCore,
    pool: Executor | None,
    dep: LoadedDeployment,
    x: Rows,
    key: str,
    attributes: Mapping[str, str] | None,
    request_id: str,
    version: str = "",
    context: grpc.aio.ServicerContext | None = None,
) -> tuple[Outcome, str]:
    """`core.predict`: inline for a small request; from THREAD_ROWS rows on, on a worker thread
    (onnxruntime releases the GIL) as PredictBatch does, so a big request never holds up the small
    ones on the event loop. Its bookkeeping comes back to the loop either way. A caller's deadline
    that passes, or a cancellation, while the model runs counts against the version (`Watch`)."""
    remaining = context.time_remaining() if context is not None else None
    if rows_of(x) < THREAD_ROWS:
        watch = Watch(remaining) if remaining is not None else None
        return core.predict(dep, x, key, attributes, request_id, version, watch=watch)
    loop = asyncio.get_running_loop()
    watch = Watch(remaining)
    run = partial(
        core.predict, dep, x, key, attributes, request_id, version, defer=loop.call_soon_threadsafe, watch=watch
    )
    return await in_thread(loop, pool, run, watch, context)


async def in_thread(
    loop: asyncio.AbstractEventLoop,
    pool: Executor | None,
    run: Any,
    watch: Watch,
    context: grpc.aio.ServicerContext | None,
) -> Any:
    """`run()` on a worker thread; when gRPC cancels the call meanwhile (the caller cancelled, or
    its deadline passed), the watch says which, so the version's work counts as that failure."""
    try:
        return await loop.run_in_executor(pool, run)
    except asyncio.CancelledError:
        expired = watch.deadline is not None and context is not None and not context.time_remaining()
        watch.gone = "DEADLINE_EXCEEDED" if expired else "CANCELLED"
        raise


@map_errors(server="agent", on_refusal=_count_refusal, log=log)
class InferenceService(inference_pb2_grpc.InferenceServicer):
    def __init__(self, core: AgentCore, pool: Executor | None = None) -> None:
        self.core = core
        self.pool = pool

    def _input(self, request: inference_pb2.PredictRequest) -> Rows:
        return rows_in(request.input if request.HasField("input") else None, request.named_inputs, request.records)

    async def Predict(
        self, request: inference_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.PredictResponse:
        core = self.core
        # the common case first: one tensor (a model with one input)
        only_input = request.HasField("input") and not request.records and not request.named_inputs
        x = decode_tensor(request.input) if only_input else self._input(request)
        dep = core.deployment(request.deployment)
        outcome, request_id = await predict(
            core, self.pool, dep, x, request.routing_key, request.attributes, request.request_id, "", context
        )
        route = outcome.route
        response = inference_pb2.PredictResponse(
            request_id=request_id, served_by=route.ref, role=route.role_proto, agent=core.name
        )
        if outcome.labels is not None:
            response.labels.extend(outcome.labels.tolist())
            if outcome.class_labels is not None:
                response.class_labels.extend(outcome.class_labels.tolist())
            if route.runtime.named_classes is not None:
                response.classes.extend(route.runtime.named_classes)
        if outcome.probabilities is not None:
            probabilities = response.probabilities
            probabilities.shape.extend(outcome.probabilities.shape)
            probabilities.values.extend(outcome.probabilities.ravel().tolist())
        if outcome.values is not None:
            values = outcome.values
            if values.ndim == 2:
                response.values_shape.extend(values.shape)
            response.values.extend(values.ravel().tolist())
        return response

    async def PredictBatch(
        self, call: BatchRequest | inference_pb2.PredictBatchRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.PredictBatchResponse:
        """`call`: as the agent's server parses it (`core.zero_copy`, the rows' raw bytes not
        copied), or a plain message (a server registered without that parser)."""
        request, raw = (call.message, call.raw) if isinstance(call, BatchRequest) else (call, None)
        core = self.core
        dep = core.deployment(request.deployment)
        tensor = request.inputs if request.HasField("inputs") else None
        x = rows_in(tensor, request.named_inputs, request.records, "inputs", raw)
        keys, request_ids = list(request.routing_keys), list(request.request_ids)
        remaining = context.time_remaining()
        if rows_of(x) < THREAD_ROWS:
            watch = Watch(remaining) if remaining is not None else None
            outcomes, positions, ids = core.predict_batch(dep, x, keys, request_ids, watch=watch)
        else:
            # A big batch runs on a worker thread (onnxruntime releases the GIL), so it never
            # holds up the small requests and heartbeats on the event loop.
            loop = asyncio.get_running_loop()
            watch = Watch(remaining)
            run = partial(core.predict_batch, dep, x, keys, request_ids, loop.call_soon_threadsafe, watch)
            outcomes, positions, ids = await in_thread(loop, self.pool, run, watch, context)
        n = sum(len(rows) for rows in positions)
        classifier = any(o.labels is not None for o in outcomes)
        regressor = any(o.values is not None for o in outcomes)
        named = any(o.class_labels is not None for o in outcomes)
        width = max((o.values.shape[1] for o in outcomes if o.values is not None and o.values.ndim == 2), default=0)
        labels: np.ndarray | None
        values: np.ndarray | None
        class_labels: np.ndarray | None = None
        if len(outcomes) == 1:  # one version answered every row, in order
            only = outcomes[0]
            served = np.zeros(n, dtype="<i4")
            labels, values, probabilities = only.labels, only.values, only.probabilities
            class_labels = only.class_labels
        else:
            served = np.empty(n, dtype="<i4")
            labels = np.zeros(n, dtype="<i8") if classifier else None
            values = (np.zeros((n, width), dtype="<f8") if width else np.zeros(n, dtype="<f8")) if regressor else None
            class_labels = np.full(n, "", dtype=object) if named else None
            classes = max((o.probabilities.shape[1] for o in outcomes if o.probabilities is not None), default=0)
            probabilities = np.full((n, classes), np.nan, dtype="<f4") if classes else None
            for i, (outcome, rows) in enumerate(zip(outcomes, positions, strict=True)):
                served[rows] = i
                if labels is not None and outcome.labels is not None:
                    labels[rows] = outcome.labels
                if class_labels is not None and outcome.labels is not None:
                    names = outcome.class_labels if outcome.class_labels is not None else outcome.labels.astype(str)
                    class_labels[rows] = names
                if values is not None and outcome.values is not None:
                    values[rows] = outcome.values.reshape(len(rows), -1) if width else outcome.values
                if probabilities is not None and outcome.probabilities is not None:
                    probabilities[rows, : outcome.probabilities.shape[1]] = outcome.probabilities
        # Columns: one numpy copy each into a bytes field; no per-row Python work.
        response = inference_pb2.PredictBatchResponse(
            versions=[o.route.ref for o in outcomes],
            agent=core.name,
            served_by=served.tobytes(),
            labels=np.ascontiguousarray(labels, "<i8").tobytes() if labels is not None else b"",
            values=np.ascontiguousarray(values, "<f8").tobytes() if values is not None else b"",
            request_ids=request.request_ids,
            values_width=width,
        )
        if class_labels is not None:
            response.class_labels.extend(class_labels.tolist())
        if probabilities is not None:
            response.probabilities.shape.extend(probabilities.shape)
            response.probabilities.raw = np.ascontiguousarray(probabilities, "<f4").tobytes()
        if not request.columnar_only:
            first = values[:, 0] if values is not None and values.ndim == 2 else values
            _legacy_rows(response, ids, served, labels, first)
        return response

    async def Feedback(
        self, request: inference_pb2.FeedbackRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.FeedbackResponse:
        truth = request.WhichOneof("truth")
        label = request.label if truth == "label" else None
        value = request.value if truth == "value" else None
        class_label = request.class_label if truth == "class_label" else None
        matched = self.core.feedback(request.deployment, request.request_id, label, value, class_label)
        spool = self.core.labels
        if spool is not None:  # kept for the label store: answered once on disk (a full spool counts a drop)
            row = self.core.label_row(request.deployment, request.request_id, label, value, class_label)
            try:
                await spool.add(request.deployment, row)
            except OSError as exc:
                raise Unavailable(f"agent {self.core.name} could not keep the label: {exc.strerror or exc}") from None
        return inference_pb2.FeedbackResponse(matched=matched)


__all__ = ["PARSERS", "InferenceService", "in_thread", "predict"]
