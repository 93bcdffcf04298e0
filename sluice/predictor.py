"""`sluice.Predictor`: ask a serving agent for predictions and send it labels, from a script."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import grpc
import numpy as np

from core.client import batch_request, batch_results, client_error, open_channel, tensor_array, with_default_port
from core.names import validate_name
from core.vocabulary import ServingRole
from protos import inference_pb2, inference_pb2_grpc
from sluice._calls import translated
from sluice.errors import InvalidArgument
from sluice.results import BatchPrediction, Prediction

AGENT_PORT = 7500


def _rows(rows: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    array = np.asarray(rows, dtype=np.float64)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.size == 0:
        raise InvalidArgument(
            "INVALID_ARGUMENT", f"rows must be a non-empty [rows, features] table, not shape {list(array.shape)}"
        )
    return array


def _tensor(array: np.ndarray) -> inference_pb2.Tensor:
    return inference_pb2.Tensor(shape=list(array.shape), raw=array.astype("<f4").tobytes())


class Predictor:
    """`address` is an agent's prediction address (default SLUICE_AGENT, else 127.0.0.1:7500;
    `host` alone means port 7500); TLS as for the CLI (SLUICE_TLS_CA, + SLUICE_TLS_CERT/KEY)."""

    @translated
    def __init__(self, address: str | None = None, *, timeout: float = 30.0) -> None:
        chosen = address or os.environ.get("SLUICE_AGENT") or f"127.0.0.1:{AGENT_PORT}"
        self.address = with_default_port(chosen, AGENT_PORT)
        self.timeout = timeout
        self._channel = open_channel(self.address)
        self._stub = inference_pb2_grpc.InferenceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @translated
    def predict(
        self,
        deployment: str,
        rows: Sequence[Sequence[float]] | np.ndarray,
        *,
        routing_key: str = "",
        request_id: str = "",
        attributes: Mapping[str, str] | None = None,
    ) -> Prediction:
        """Score `rows` ([rows, features], or one row) with whichever version the deployment's
        traffic split routes this request to (`routing_key` makes that sticky)."""
        validate_name("deployment", deployment)
        request = inference_pb2.PredictRequest(
            deployment=deployment,
            input=_tensor(_rows(rows)),
            routing_key=routing_key,
            request_id=request_id,
            attributes=dict(attributes or {}),
        )
        try:
            r = self._stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise client_error(exc, self.address, "agent") from None
        return Prediction(
            request_id=r.request_id,
            served_by=f"{r.served_by.model}:{r.served_by.version}",
            role=ServingRole.from_wire(r.role),
            agent=r.agent,
            labels=np.asarray(r.labels, dtype=np.int64) if r.labels else None,
            probabilities=tensor_array(r.probabilities),
            values=np.asarray(r.values, dtype=np.float64) if r.values else None,
        )

    @translated
    def predict_batch(
        self,
        deployment: str,
        rows: Sequence[Sequence[float]] | np.ndarray,
        *,
        routing_keys: Sequence[str] = (),
        request_ids: Sequence[str] = (),
    ) -> BatchPrediction:
        """Score many rows in one call; each row is routed on its own key (`routing_keys`: none, or
        one per row), so rows may be answered by different versions."""
        validate_name("deployment", deployment)
        array = _rows(rows)  # the agent checks the keys and ids against the rows
        request = batch_request(deployment, array, routing_keys, request_ids)
        try:
            response = self._stub.PredictBatch(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise client_error(exc, self.address, "agent") from None
        r = batch_results(response)
        return BatchPrediction(
            versions=tuple(f"{v.model}:{v.version}" for v in r.versions),
            served_by=r.served_by,
            labels=r.labels,
            values=r.values,
            probabilities=r.probabilities,
            request_ids=tuple(r.request_ids),
            agent=r.agent,
        )

    @translated
    def feedback(
        self, deployment: str, request_id: str, *, label: int | None = None, value: float | None = None
    ) -> bool:
        """The true label (classifiers) or value (regressors) of an earlier request; False when the
        agent no longer remembers that request id."""
        if (label is None) == (value is None):
            raise InvalidArgument("INVALID_ARGUMENT", "give exactly one of label= (classifiers) or value= (regressors)")
        request = inference_pb2.FeedbackRequest(deployment=deployment, request_id=request_id)
        if label is not None:
            request.label = int(label)
        else:
            request.value = float(value)  # type: ignore[arg-type]
        try:
            return bool(self._stub.Feedback(request, timeout=self.timeout).matched)
        except grpc.RpcError as exc:
            raise client_error(exc, self.address, "agent") from None
