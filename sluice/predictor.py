"""`sluice.Predictor`: ask a serving agent for predictions and send it labels, from a script."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import numpy as np

from core.client import (
    batch_request,
    batch_results,
    client_error,
    open_channel,
    predict_request,
    tensor_array,
    with_default_port,
)
from core.names import validate_name
from core.vocabulary import ServingRole
from protos import inference_pb2, inference_pb2_grpc
from sluice._calls import translated
from sluice.errors import InvalidArgument
from sluice.results import BatchPrediction, Prediction

AGENT_PORT = 7500
Records = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def _rows(rows: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    array = np.asarray(rows, dtype=np.float64)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.size == 0:
        raise InvalidArgument(
            "INVALID_ARGUMENT", f"rows must be a non-empty [rows, features] table, not shape {list(array.shape)}"
        )
    return array


def _records(records: Records | None) -> list[Mapping[str, Any]] | None:
    if records is None:
        return None
    return [records] if isinstance(records, Mapping) else list(records)


def _values(r: inference_pb2.PredictResponse) -> np.ndarray | None:
    if not r.values:
        return None
    values = np.asarray(r.values, dtype=np.float64)
    return values.reshape(tuple(r.values_shape)) if len(r.values_shape) == 2 else values


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
        rows: Sequence[Sequence[float]] | np.ndarray | None = None,
        *,
        inputs: Mapping[str, Any] | None = None,
        records: Records | None = None,
        routing_key: str = "",
        request_id: str = "",
        attributes: Mapping[str, str] | None = None,
    ) -> Prediction:
        """Score rows with whichever version the deployment's traffic split routes this request to
        (`routing_key` makes that sticky). The rows come as one of: `rows` ([rows, features], or
        one row) for a model with one input; `inputs`, a typed array per model input by name
        (int64 stays int64, strings travel as text); `records`, one mapping of named feature
        values per row (or one mapping for one row), e.g. {"plan": "pro", "age": 42, "income": None}."""
        validate_name("deployment", deployment)
        request = predict_request(
            deployment,
            _rows(rows) if rows is not None else None,
            inputs=inputs,
            records=_records(records),
            routing_key=routing_key,
            request_id=request_id,
            attributes=attributes,
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
            values=_values(r),
            class_labels=tuple(r.class_labels) or None,
            classes=tuple(r.classes) or None,
        )

    @translated
    def predict_batch(
        self,
        deployment: str,
        rows: Sequence[Sequence[float]] | np.ndarray | None = None,
        *,
        inputs: Mapping[str, Any] | None = None,
        records: Records | None = None,
        routing_keys: Sequence[str] = (),
        request_ids: Sequence[str] = (),
    ) -> BatchPrediction:
        """Score many rows in one call; each row is routed on its own key (`routing_keys`: none, or
        one per row), so rows may be answered by different versions. Rows come as in `predict`."""
        validate_name("deployment", deployment)
        if sum(x is not None for x in (rows, inputs, records)) != 1:
            raise InvalidArgument("INVALID_ARGUMENT", "give exactly one of rows, inputs or records")
        array = _rows(rows) if rows is not None else None  # the agent checks the keys and ids against the rows
        request = batch_request(
            deployment, array, routing_keys, request_ids, inputs=inputs, records=_records(records)
        )
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
            class_labels=tuple(r.class_labels) if r.class_labels is not None else None,
        )

    @translated
    def feedback(
        self,
        deployment: str,
        request_id: str,
        *,
        label: int | str | None = None,
        value: float | None = None,
    ) -> bool:
        """The true label (classifiers: the class, by name for string classes) or value
        (regressors) of an earlier request; False when the agent no longer remembers that id."""
        if (label is None) == (value is None):
            raise InvalidArgument("INVALID_ARGUMENT", "give exactly one of label= (classifiers) or value= (regressors)")
        request = inference_pb2.FeedbackRequest(deployment=deployment, request_id=request_id)
        if isinstance(label, str):
            request.class_label = label
        elif label is not None:
            request.label = int(label)
        else:
            request.value = float(value)  # type: ignore[arg-type]
        try:
            return bool(self._stub.Feedback(request, timeout=self.timeout).matched)
        except grpc.RpcError as exc:
            raise client_error(exc, self.address, "agent") from None
