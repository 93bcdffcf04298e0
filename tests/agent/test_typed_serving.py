"""The agent's Inference and OIP services on loopback with typed models (issue 14).

A real grpc.aio server in this process (the agent's own servicers, registered through the
DecodingRegistrar as `sluice agent` does), real onnxruntime sessions of a skl2onnx pipeline over
string and float64 columns with missing values and string classes, an int64 graph and the
breast-cancer classifier, and the real metrics recorder: records, typed tensors, OIP BYTES/FP64
in `contents` and in `raw_input_contents`, string labels in PredictBatch, feedback by class name,
and the numeric drift bins of a model that also takes strings.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from agent.cache import AgentCache
from agent.core import AgentCore
from agent.oip_service import OipService
from agent.prometheus import AgentPrometheus
from agent.recorder import MetricsRecorder
from agent.services import PARSERS, THREAD_ROWS, InferenceService
from agent.serving import SnapshotApplier
from core.client import batch_request, batch_results, predict_request
from core.decoding import DecodingRegistrar
from protos import agent_pb2, common_pb2, inference_pb2, inference_pb2_grpc, oip_pb2, oip_pb2_grpc
from tests.controlplane.monitoring.support import predict_labels
from tests.models import (
    ECHO_OFFSET,
    MIXED_CLASSES,
    MIXED_NUMBERS,
    MIXED_STRINGS,
    breast_cancer_rows,
    make_classifier_onnx,
    make_int64_echo_onnx,
    make_mixed_onnx,
    mixed_columns,
    mixed_pipeline,
    mixed_records,
    mixed_rows,
)

BIG = ECHO_OFFSET + 1  # 2**40 + 1: float32 would round it to 2**40


@dataclass
class Served:
    address: str
    recorder: MetricsRecorder
    channel: grpc.Channel

    @property
    def inference(self) -> inference_pb2_grpc.InferenceStub:
        return inference_pb2_grpc.InferenceStub(self.channel)

    @property
    def oip(self) -> oip_pb2_grpc.GRPCInferenceServiceStub:
        return oip_pb2_grpc.GRPCInferenceServiceStub(self.channel)


def _route(model: str, sha: str, task: str, baseline: common_pb2.Baseline | None = None) -> agent_pb2.Route:
    return agent_pb2.Route(
        version=common_pb2.VersionRef(model=model, version="v1"),
        sha256=sha,
        weight=100,
        role=common_pb2.ROLE_CHAMPION,
        task=task,
        baseline=baseline,
    )


def _numeric_baseline() -> common_pb2.Baseline:
    """Bins for the mixed model's three numeric inputs (its drift features), 2 classes."""
    edges = {"age": [30.0, 40.0, 50.0], "income": [40.0, 50.0, 60.0], "visits": [3.0, 5.0, 7.0]}
    return common_pb2.Baseline(
        n_rows=100,
        features=[
            common_pb2.FeatureBins(index=i, name=name, inner_edges=edges[name], counts=[25] * 4, min=0.0, max=200.0)
            for i, name in enumerate(MIXED_NUMBERS)
        ],
        prediction_counts=[50, 50],
    )


@pytest.fixture(scope="module")
def served(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    cache = AgentCache(tmp_path_factory.mktemp("typed-agent"))
    routes = {}
    for name, path, task in (
        ("mixed", make_mixed_onnx(models_dir), "classifier"),
        ("cancer", make_classifier_onnx(models_dir), "classifier"),
        ("echo", make_int64_echo_onnx(models_dir), "regressor"),
    ):
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        cache.put(data, sha)
        routes[name] = _route(name, sha, task, _numeric_baseline() if name == "mixed" else None)
    snapshot = agent_pb2.Snapshot(
        snapshot_id=1,
        deployments=[
            agent_pb2.DeploymentSnapshot(name=name, generation=1, salt="s", routes=[route])
            for name, route in routes.items()
        ],
    )
    recorder = MetricsRecorder()
    recorder.configure(snapshot)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    address: list[str] = []
    stop: list[asyncio.Event] = []

    async def run() -> None:
        table, problems = await SnapshotApplier(cache).apply(snapshot, None, None)
        assert problems == []
        core = AgentCore("typed-agent", "0123456789abcdef", recorder, AgentPrometheus())
        core.table = table
        server = grpc.aio.server()
        registrar = DecodingRegistrar(server, PARSERS)
        inference_pb2_grpc.add_InferenceServicer_to_server(InferenceService(core), registrar)
        oip_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(OipService(core), registrar)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        address.append(f"127.0.0.1:{port}")
        done = asyncio.Event()
        stop.append(done)
        started.set()
        await done.wait()
        await server.stop(None)
        core.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    try:
        assert started.wait(60), "the loopback agent did not start"
        with grpc.insecure_channel(address[0]) as channel:
            yield Served(address[0], recorder, channel)
    finally:
        if stop:
            loop.call_soon_threadsafe(stop[0].set)
        thread.join(30)


def _oip_request(rows: np.ndarray, raw: bool) -> oip_pb2.ModelInferRequest:
    """As tritonclient builds it: FP64 and BYTES inputs [rows, 1], raw (Triton's 4-byte
    little-endian length before each BYTES element) or in `contents`."""
    request = oip_pb2.ModelInferRequest(model_name="mixed")
    columns = mixed_columns(rows)
    for name in MIXED_NUMBERS + MIXED_STRINGS:
        column = columns[name]
        numeric = name in MIXED_NUMBERS
        tensor = request.inputs.add(name=name, datatype="FP64" if numeric else "BYTES", shape=list(column.shape))
        if numeric and raw:
            request.raw_input_contents.append(column.astype("<f8").tobytes())
        elif numeric:
            tensor.contents.fp64_contents.extend(column.ravel().tolist())
        elif raw:
            items = [s.encode() for s in column.ravel().tolist()]
            request.raw_input_contents.append(b"".join(struct.pack("<I", len(b)) + b for b in items))
        else:
            tensor.contents.bytes_contents.extend(s.encode() for s in column.ravel().tolist())
    return request


def _oip_labels(response: oip_pb2.ModelInferResponse) -> list[str]:
    raw = response.raw_output_contents[[o.name for o in response.outputs].index("label")]
    out, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        out.append(raw[offset + 4 : offset + 4 + length].decode())
        offset += 4 + length
    return out


def test_records_typed_tensors_and_oip_answer_what_scikit_learn_answers(served: Served) -> None:
    rows = mixed_rows(12, seed=21)
    pipeline = mixed_pipeline()
    expected = pipeline.predict(rows).tolist()
    probabilities = pipeline.predict_proba(rows)
    by_records = served.inference.Predict(predict_request("mixed", records=mixed_records(rows)), timeout=30)
    by_tensors = served.inference.Predict(predict_request("mixed", inputs=mixed_columns(rows)), timeout=30)
    for response in (by_records, by_tensors):
        assert list(response.class_labels) == expected
        assert list(response.classes) == list(MIXED_CLASSES)
        assert [MIXED_CLASSES[i] for i in response.labels] == expected
        got = np.asarray(response.probabilities.values).reshape(tuple(response.probabilities.shape))
        np.testing.assert_allclose(got, probabilities, atol=1e-5)
    for raw in (False, True):
        response = served.oip.ModelInfer(_oip_request(rows, raw), timeout=30)
        assert _oip_labels(response) == expected
        outputs = {o.name: o for o in response.outputs}
        assert outputs["label"].datatype == "BYTES" and list(outputs["label"].shape) == [12]
        index = list(outputs).index("probabilities")
        got = np.frombuffer(response.raw_output_contents[index], "<f4").reshape(12, 2)
        np.testing.assert_allclose(got, probabilities, atol=1e-5)
        assert response.parameters["classes"].string_param == "churn,stay"


def test_model_metadata_lists_every_input_with_its_datatype(served: Served) -> None:
    meta = served.oip.ModelMetadata(oip_pb2.ModelMetadataRequest(name="mixed"), timeout=30)
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("age", "FP64", [-1, 1]),
        ("income", "FP64", [-1, 1]),
        ("visits", "FP64", [-1, 1]),
        ("plan", "BYTES", [-1, 1]),
        ("country", "BYTES", [-1, 1]),
    ]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [
        ("label", "BYTES", [-1]),
        ("probabilities", "FP32", [-1, 2]),
    ]
    echo = served.oip.ModelMetadata(oip_pb2.ModelMetadataRequest(name="echo"), timeout=30)
    assert [(t.name, t.datatype) for t in echo.inputs] == [("n", "INT64")]


def test_an_int64_of_2_to_the_40_plus_1_arrives_unchanged_on_every_path(served: Served) -> None:
    big = np.array([[BIG]], dtype=np.int64)
    answers = [
        served.inference.Predict(predict_request("echo", inputs={"n": big}), timeout=30).values[0],
        served.inference.Predict(predict_request("echo", records=[{"n": BIG}]), timeout=30).values[0],
    ]
    contents = oip_pb2.ModelInferRequest(model_name="echo")
    contents.inputs.add(name="n", datatype="INT64", shape=[1, 1]).contents.int64_contents.append(BIG)
    raw = oip_pb2.ModelInferRequest(model_name="echo", raw_input_contents=[big.astype("<i8").tobytes()])
    raw.inputs.add(name="n", datatype="INT64", shape=[1, 1])
    for request in (contents, raw):
        response = served.oip.ModelInfer(request, timeout=30)
        answers.append(float(np.frombuffer(response.raw_output_contents[0], "<f4")[0]))
    assert answers == [1.0] * 4  # n - 2**40, computed by the model in int64


def test_predict_batch_takes_records_and_answers_class_names(served: Served) -> None:
    rows = mixed_rows(40, seed=22)
    response = served.inference.PredictBatch(batch_request("mixed", records=mixed_records(rows)), timeout=30)
    results = batch_results(response)
    assert results.class_labels == mixed_pipeline().predict(rows).tolist()
    assert results.labels is not None and [MIXED_CLASSES[i] for i in results.labels] == results.class_labels
    typed = batch_results(served.inference.PredictBatch(batch_request("mixed", inputs=mixed_columns(rows)), timeout=30))
    assert typed.class_labels == results.class_labels


def test_feedback_by_class_name_counts_accuracy_and_numeric_features_keep_their_bins(served: Served) -> None:
    served.recorder.flush()  # start from an empty window
    rows = mixed_rows(30, seed=23)
    expected = mixed_pipeline().predict(rows).tolist()
    ids = [f"fb-{i}" for i in range(30)]
    for i in range(30):
        request = predict_request("mixed", records=mixed_records(rows[i : i + 1]), request_id=ids[i])
        served.inference.Predict(request, timeout=30)
    # Right for the first 20 rows, wrong for the next 10 (the other class by name).
    for i in range(30):
        truth = expected[i] if i < 20 else next(c for c in MIXED_CLASSES if c != expected[i])
        matched = served.inference.Feedback(
            inference_pb2.FeedbackRequest(deployment="mixed", request_id=ids[i], class_label=truth), timeout=30
        ).matched
        assert matched
    report = served.recorder.flush()
    assert report is not None
    window = next(w for w in report.windows if w.deployment == "mixed")
    assert (window.feedback.n_labeled, window.feedback.n_correct) == (30, 20)
    assert sum(window.prediction_counts) == 30 and len(window.prediction_counts) == 2
    # Drift bins count the numeric inputs (strings are left out); a missing value counts in no bin.
    assert [f.index for f in window.features] == [0, 1, 2]
    present = [sum(not (isinstance(v, float) and np.isnan(v)) for v in rows[:, i]) for i in range(3)]
    assert [sum(f.counts) for f in window.features] == present
    assert window.reservoir_features == 3


def _refused(call: Any, request: Any) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return caught.value.details() or ""


def test_oip_refuses_a_datatype_that_does_not_fit_and_bad_bytes(served: Served) -> None:
    rows = mixed_rows(2)
    request = _oip_request(rows, raw=False)
    request.inputs[0].datatype = "FP32"  # age is float64: FP32 widens without loss, accepted
    request.inputs[0].contents.fp32_contents.extend(request.inputs[0].contents.fp64_contents)
    request.inputs[0].contents.ClearField("fp64_contents")
    assert len(served.oip.ModelInfer(request, timeout=30).outputs) == 2
    wrong = _oip_request(rows, raw=False)
    wrong.inputs[3].datatype = "INT64"
    assert "input 'plan' has datatype 'INT64'; the model takes BYTES" in _refused(served.oip.ModelInfer, wrong)
    cut = _oip_request(rows, raw=True)
    cut.raw_input_contents[3] = struct.pack("<I", 99) + b"pro"
    assert "claims 99 bytes but only 3 follow" in _refused(served.oip.ModelInfer, cut)
    latin = _oip_request(rows, raw=False)
    latin.inputs[4].contents.bytes_contents[0] = "café".encode("latin-1")
    assert "input 'country' element 0 is not UTF-8 text" in _refused(served.oip.ModelInfer, latin)
    # the agent still answers
    assert served.oip.ModelInfer(_oip_request(rows, raw=True), timeout=30).outputs


def test_nan_is_refused_for_a_model_without_an_imputer_and_taken_by_one_with_it(served: Served) -> None:
    row = breast_cancer_rows(1).astype(np.float64)
    row[0, 3] = np.nan
    details = _refused(served.inference.Predict, predict_request("cancer", records=[{"input": row[0].tolist()}]))
    assert "NaN or infinity (row 0, feature 3 is nan)" in details and "no imputer" in details
    row = mixed_rows(1)
    row[0, :3] = np.nan  # every number missing: the imputer fills them in
    answer = served.inference.Predict(predict_request("mixed", records=mixed_records(row)), timeout=30)
    assert list(answer.class_labels) == mixed_pipeline().predict(row).tolist()


def test_a_big_predict_runs_off_the_event_loop_and_answers_like_a_small_one(
    served: Served, models_dir: Path
) -> None:
    """From THREAD_ROWS rows on, Predict and ModelInfer run on a worker thread (issue 13: a big
    one held every other request on the event loop): the answers there are the model's own, with a
    small request answered while a big one is pending. What it saves in latency is measured by
    bench/big_requests.py, not asserted here."""
    rows = breast_cancer_rows(THREAD_ROWS + 10, seed=3).astype(np.float32)
    expected = predict_labels(make_classifier_onnx(models_dir), rows)
    predict = inference_pb2_grpc.InferenceStub(served.channel).Predict
    big = inference_pb2.PredictRequest(
        deployment="cancer", input=inference_pb2.Tensor(shape=list(rows.shape), raw=rows.tobytes())
    )
    small = inference_pb2.PredictRequest(
        deployment="cancer", input=inference_pb2.Tensor(shape=[1, 30], raw=rows[:1].tobytes())
    )
    pending = predict.future(big, timeout=60)
    assert list(predict(small, timeout=60).labels) == expected[:1].tolist()
    assert list(pending.result().labels) == expected.tolist()
    infer = oip_pb2_grpc.GRPCInferenceServiceStub(served.channel).ModelInfer
    request = oip_pb2.ModelInferRequest(model_name="cancer")
    request.inputs.add(name="input", datatype="FP32", shape=list(rows.shape))
    request.raw_input_contents.append(rows.tobytes())
    answer = infer(request, timeout=60)
    labels = answer.raw_output_contents[[o.name for o in answer.outputs].index("label")]
    assert np.frombuffer(labels, dtype="<i8").tolist() == expected.tolist()
