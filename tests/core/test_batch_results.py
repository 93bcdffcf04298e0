"""core.client.batch_results: the columns of a PredictBatch answer, also from a pre-0.2 agent.

The columns against a real model served by a real agent are checked in
tests/integration/test_agents.py; here the reading of the message itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.client import batch_request, batch_results
from core.errors import InvalidInput
from protos import common_pb2, inference_pb2

VERSIONS = [common_pb2.VersionRef(model="m", version="v1"), common_pb2.VersionRef(model="m", version="v2")]


def test_columns_are_read_as_numpy_arrays() -> None:
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], dtype="<f4")
    response = inference_pb2.PredictBatchResponse(
        versions=VERSIONS,
        agent="a1",
        served_by=np.array([0, 1, 0], "<i4").tobytes(),
        labels=np.array([0, 1, -(2**40)], "<i8").tobytes(),
        probabilities=inference_pb2.Tensor(shape=[3, 2], raw=probabilities.tobytes()),
        request_ids=["r0", "r1", "r2"],
    )
    results = batch_results(inference_pb2.PredictBatchResponse.FromString(response.SerializeToString()))
    assert len(results) == 3 and results.agent == "a1" and results.request_ids == ["r0", "r1", "r2"]
    assert results.served_by.tolist() == [0, 1, 0] and results.labels is not None and results.values is None
    assert results.labels.tolist() == [0, 1, -(2**40)]
    assert results.probabilities is not None and results.probabilities.tolist() == probabilities.tolist()
    assert results.row_versions() == ["m:v1", "m:v2", "m:v1"]


def test_an_answer_of_a_pre_0_2_agent_has_rows_only() -> None:
    old = inference_pb2.PredictBatchResponse(versions=VERSIONS[:1], agent="old")
    for i, value in enumerate([0.25, -1.5]):
        old.rows.add(request_id=f"r{i}", value=value)
    results = batch_results(old)
    assert results.served_by.tolist() == [0, 0] and results.labels is None and results.values is not None
    assert results.values.tolist() == [0.25, -1.5] and results.request_ids == ["r0", "r1"]


def test_a_column_of_the_wrong_length_is_refused_by_name() -> None:
    response = inference_pb2.PredictBatchResponse(
        served_by=np.zeros(3, "<i4").tobytes(), values=np.zeros(2, "<f8").tobytes()
    )
    with pytest.raises(InvalidInput, match="values has 2 entries for 3 rows"):
        batch_results(response)


def test_the_request_asks_for_columns_only() -> None:
    request = batch_request("web", np.ones((2, 3)), ["k0", "k1"])
    assert request.columnar_only and list(request.inputs.shape) == [2, 3] and list(request.routing_keys) == ["k0", "k1"]
    assert np.frombuffer(request.inputs.raw, "<f4").tolist() == [1.0] * 6 and not request.request_ids
