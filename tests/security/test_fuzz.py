"""Property-based fuzzing (hypothesis) of Predict inputs and registry names, on real servers.

(a) Predict on a real `sluice agent` process: any shape, any float32 values (NaN, infinities,
    huge), arbitrary raw bytes, any feature count, any unicode routing key, request id and
    attributes. The answer is either OK with well-formed outputs or INVALID_ARGUMENT /
    RESOURCE_EXHAUSTED / NOT_FOUND with a message; never UNKNOWN; INTERNAL only when the model
    itself computed NaN or infinity from finite inputs (counted as a failure of that version,
    issue 15), with a message saying so; the agent lives on.
(b) Registry names through RegisterVersion, Deploy, ListVersions and GetVersion on a real control
    plane: OK only for names valid by the rule of core/names.py (restated here from the
    documentation, not imported, so the test is an independent oracle), INVALID_ARGUMENT for every
    other text, and a refusal leaves the database exactly as it was.

Examples are derandomized (the same ones on every run) so CI is reproducible.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import MetaData, create_engine, select

from core.client import SluiceClient, batch_results
from protos import common_pb2, controlplane_pb2, controlplane_pb2_grpc, inference_pb2, inference_pb2_grpc
from tests.agent.cluster import AgentProcess, wait_until
from tests.harness import ServerThread, start_server
from tests.models import breast_cancer_rows, make_baseline, make_classifier_onnx

pytestmark = pytest.mark.xdist_group("bad-input")

FEATURES = 30
REFUSALS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.NOT_FOUND}
LEAKS = ("Traceback", "Exception", 'File "', "<class ")
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# The documented name rule (core/names.py): 1-128 characters, ASCII letters, digits,
# '.', '_' and '-', starting with a letter or digit.
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def valid_name(text: str) -> bool:
    return NAME_RULE.fullmatch(text) is not None


def assert_message(details: str | None) -> None:
    assert details, "a refusal must say why"
    for leak in LEAKS:
        assert leak not in details, f"{leak!r} leaked into {details!r}"


# ---- (a) Predict ----


@dataclass
class Serving:
    server: ServerThread
    agent: AgentProcess
    channel: grpc.Channel
    stub: inference_pb2_grpc.InferenceStub


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    root = tmp_path_factory.mktemp("fuzz-predict")
    server = start_server(root / "cp")
    agent: AgentProcess | None = None
    try:
        with SluiceClient(server.address, token="") as client:
            client.register_version(
                "cancer", "v1", make_classifier_onnx(root / "models"), make_baseline(root / "models")
            )
            client.deploy("web", "cancer:v1")
        agent = AgentProcess(
            server.address, "fuzz-agent", root / "cache", root / "agent.log", extra=["--max-message-bytes", "65536"]
        )
        wait_until(lambda: agent.predict("web", breast_cancer_rows(1)), what="the agent serves 'web'")
        channel = grpc.insecure_channel(agent.address)
        yield Serving(server, agent, channel, inference_pb2_grpc.InferenceStub(channel))
        channel.close()
    finally:
        if agent is not None:
            agent.stop()
        server.stop()


def assert_alive(env: Serving) -> None:
    assert env.agent.process is not None and env.agent.process.proc.poll() is None, "the agent died"
    check = health_pb2_grpc.HealthStub(env.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert check.status == health_pb2.HealthCheckResponse.SERVING


SPECIAL_FLOATS = st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 3.4e38, -3.4e38, 1e-45, 1e30])
PLAUSIBLE = st.floats(min_value=-1e4, max_value=1e4, width=32)
FEATURE_VALUES = st.one_of(
    PLAUSIBLE,
    st.floats(width=32),  # anything float32 can hold, NaN and infinities included
    SPECIAL_FLOATS,
)


@st.composite
def tensors(draw: st.DrawFn) -> tuple[inference_pb2.Tensor, int | None]:
    """(tensor, rows if it is a well-formed [rows, 30] float32 batch else None)."""
    if draw(st.integers(0, 3)) == 0:  # arbitrary: any shape, any values or raw bytes
        shape = draw(st.lists(st.integers(-3, 2**40), max_size=4))
        if draw(st.booleans()):
            return inference_pb2.Tensor(shape=shape, raw=draw(st.binary(max_size=600))), None
        return inference_pb2.Tensor(shape=shape, values=draw(st.lists(FEATURE_VALUES, max_size=150))), None
    rows = draw(st.integers(0, 5))
    features = draw(st.sampled_from([*[FEATURES] * 6, FEATURES - 1, FEATURES + 1, 1, 0]))
    elements = draw(
        st.sampled_from([PLAUSIBLE, st.floats(allow_nan=False, allow_infinity=False, width=32), FEATURE_VALUES])
    )
    values = draw(st.lists(elements, min_size=rows * features, max_size=rows * features))
    shape = draw(st.sampled_from([*[[rows, features]] * 4, [rows * features], [rows, features, 1], [features, rows]]))
    well_formed = shape == [rows, features] and features == FEATURES and rows > 0
    if draw(st.booleans()):
        return inference_pb2.Tensor(shape=shape, raw=np.asarray(values, "<f4").tobytes()), rows if well_formed else None
    return inference_pb2.Tensor(shape=shape, values=values), rows if well_formed else None


def check_answer(response: inference_pb2.PredictResponse, rows: int, request_id: str) -> None:
    assert response.served_by.model == "cancer" and response.served_by.version == "v1"
    assert response.request_id and (not request_id or response.request_id == request_id)
    assert len(response.labels) == rows and set(response.labels) <= {0, 1}
    probabilities = np.asarray(response.probabilities.values, dtype=np.float64)
    assert list(response.probabilities.shape) == [rows, 2]
    assert probabilities.shape == (rows * 2,) and np.isfinite(probabilities).all()
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


HUGE_ROW = inference_pb2.Tensor(shape=[1, FEATURES], values=[3.4e38] * FEATURES)
EMPTY_ROWS = inference_pb2.Tensor(shape=[2**40, 0])


@FUZZ
@example(tensor=(HUGE_ROW, 1), deployment="web", key="", request_id="", attributes={})  # overflows the model
@example(tensor=(EMPTY_ROWS, None), deployment="web", key="", request_id="", attributes={})  # 2**40 empty rows
@example(tensor=(HUGE_ROW, 1), deployment="web", key="\u202e\x00😀", request_id="ü" * 256, attributes={"\x00": ""})
@given(
    tensor=tensors(),
    deployment=st.one_of(st.just("web"), st.just("web"), st.just("web"), st.text(max_size=40)),
    key=st.text(max_size=200),
    request_id=st.one_of(st.just(""), st.text(max_size=300)),
    attributes=st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=3),
)
def test_predict_fuzz(
    serving: Serving,
    tensor: tuple[inference_pb2.Tensor, int | None],
    deployment: str,
    key: str,
    request_id: str,
    attributes: dict[str, str],
) -> None:
    message, rows = tensor
    request = inference_pb2.PredictRequest(
        deployment=deployment, input=message, routing_key=key, request_id=request_id, attributes=attributes
    )
    try:
        response = serving.stub.Predict(request, timeout=30)
    except grpc.RpcError as exc:
        event(f"Predict {exc.code().name}")
        model_failed = exc.code() == grpc.StatusCode.INTERNAL and "computed NaN or infinity" in (exc.details() or "")
        assert exc.code() in REFUSALS or model_failed, f"{exc.code().name}: {exc.details()!r}"
        assert_message(exc.details())
        if model_failed:
            assert deployment == "web" and rows, "only a well-formed request reaches the model"
        if exc.code() == grpc.StatusCode.INVALID_ARGUMENT and deployment == "web" and rows and len(request_id) <= 256:
            # a well-formed batch is refused only for its values
            assert "NaN or infinity" in (exc.details() or ""), exc.details()
    else:
        event("Predict OK")
        assert deployment == "web" and rows is not None, "a malformed request was answered OK"
        check_answer(response, rows, request_id)
    assert serving.agent.process is not None and serving.agent.process.proc.poll() is None, "the agent died"


@FUZZ
@given(raw=st.binary(max_size=400))
def test_predict_arbitrary_bytes(serving: Serving, raw: bytes) -> None:
    """Whatever bytes arrive as a PredictRequest: a clean status, never UNKNOWN or INTERNAL."""
    call = serving.channel.unary_unary(
        "/sluice.v1.Inference/Predict", request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    try:
        call(raw, timeout=30)
    except grpc.RpcError as exc:
        assert exc.code() in REFUSALS, f"{exc.code().name}: {exc.details()!r}"
        assert_message(exc.details())


@FUZZ
@given(
    rows=st.integers(1, 6),
    keys=st.lists(st.text(max_size=50), max_size=7),
    ids=st.lists(st.text(max_size=300), max_size=7),
)
def test_predict_batch_fuzz(serving: Serving, rows: int, keys: list[str], ids: list[str]) -> None:
    """Any unicode routing keys and request ids, of any count, in a batch of real rows."""
    x = breast_cancer_rows(rows, seed=rows)
    request = inference_pb2.PredictBatchRequest(
        deployment="web",
        inputs=inference_pb2.Tensor(shape=[rows, FEATURES], raw=x.astype("<f4").tobytes()),
        routing_keys=keys,
        request_ids=ids,
    )
    try:
        response = serving.stub.PredictBatch(request, timeout=30)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{exc.code().name}: {exc.details()!r}"
        assert_message(exc.details())
        well_formed = len(keys) in (0, rows) and len(ids) in (0, rows) and all(len(i) <= 256 for i in ids)
        assert not well_formed, f"a well-formed batch was refused: {exc.details()!r}"
    else:
        assert len(keys) in (0, rows) and len(ids) in (0, rows)
        results = batch_results(response)
        assert len(results) == rows and [v.version for v in results.versions] == ["v1"]
        assert results.request_ids == ids and results.labels is not None and len(results.labels) == rows
        # The deprecated per-row form (the request did not set columnar_only) says the same.
        assert len(response.rows) == rows
        assert [r.request_id for r in response.rows] == (ids or [""] * rows)
        assert [r.label for r in response.rows] == results.labels.tolist()


def test_agent_alive_after_fuzzing(serving: Serving) -> None:
    assert_alive(serving)
    assert serving.agent.predict("web", breast_cancer_rows(2)).served_by.version == "v1"


# ---- (b) registry names ----


@dataclass
class Registry:
    server: ServerThread
    stub: controlplane_pb2_grpc.ControlPlaneStub
    channel: grpc.Channel
    model_bytes: bytes
    db: Path

    def rows(self) -> dict[str, list[str]]:
        engine = create_engine(f"sqlite:///{self.db}")
        try:
            meta = MetaData()
            meta.reflect(engine)
            with engine.connect() as conn:
                return {t.name: sorted(repr(tuple(r)) for r in conn.execute(select(t))) for t in meta.sorted_tables}
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("fuzz-names")
    server = start_server(root / "cp")
    try:
        model = make_classifier_onnx(root / "models")
        with SluiceClient(server.address, token="") as client:
            client.register_version("cancer", "v1", model)
        channel = grpc.insecure_channel(server.address)
        yield Registry(
            server,
            controlplane_pb2_grpc.ControlPlaneStub(channel),
            channel,
            model.read_bytes(),
            root / "cp" / "sluice.db",
        )
        channel.close()
    finally:
        server.stop()


NAMES = st.one_of(
    st.text(max_size=140),
    st.text(alphabet=st.sampled_from("aZ09._-/\\ :\n\t\x00é\u202e😀"), min_size=1, max_size=12),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,140}", fullmatch=True),
    st.sampled_from(
        [
            "../../etc/passwd",
            "a/b",
            "..",
            ".hidden",
            "-flag",
            "name\n",
            "nul\x00",
            "\u202eevil",
            "emoji😀",
            "café",
            "١٢٣",  # Arabic-Indic digits: not ASCII digits
            "\u212a",  # KELVIN SIGN, which folds to K
            "x" * 128,
            "x" * 129,
            "CON",
            "a:b",
        ]
    ),
)


def _code(call: Any, *args: Any) -> tuple[grpc.StatusCode, str, Any]:
    try:
        return grpc.StatusCode.OK, "", call(*args, timeout=60)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or "", None


def _expect(code: grpc.StatusCode, details: str, valid: bool, *ok: grpc.StatusCode) -> None:
    if valid:
        assert code in (grpc.StatusCode.OK, *ok), f"a valid name was refused: {code.name} {details!r}"
    else:
        assert code == grpc.StatusCode.INVALID_ARGUMENT, f"an invalid name got {code.name}: {details!r}"
        assert_message(details)


def _upload(model: str, version: str, data: bytes) -> Iterator[controlplane_pb2.RegisterVersionChunk]:
    header = controlplane_pb2.RegisterVersionHeader(
        ref=common_pb2.VersionRef(model=model, version=version), model_size=len(data)
    )
    yield controlplane_pb2.RegisterVersionChunk(header=header)
    yield controlplane_pb2.RegisterVersionChunk(model_chunk=data)


@settings(FUZZ, max_examples=80)
@given(name=NAMES, other=NAMES)
def test_registry_names_fuzz(registry: Registry, name: str, other: str) -> None:
    stub = registry.stub

    # Reads: ListVersions ("" lists everything) and GetVersion.
    code, details, _ = _code(stub.ListVersions, controlplane_pb2.ListVersionsRequest(model=name))
    _expect(code, details, name == "" or valid_name(name))
    code, details, _ = _code(stub.GetVersion, common_pb2.VersionRef(model=name, version="v1"))
    _expect(code, details, valid_name(name), grpc.StatusCode.NOT_FOUND)
    code, details, _ = _code(stub.GetVersion, common_pb2.VersionRef(model="cancer", version=name))
    _expect(code, details, valid_name(name), grpc.StatusCode.NOT_FOUND)

    # Writes: a refusal changes nothing, an acceptance is a real registration / deployment.
    before = registry.rows()
    both = valid_name(name) and valid_name(other)
    code, details, registered = _code(stub.RegisterVersion, _upload(name, other, registry.model_bytes))
    event(f"RegisterVersion {code.name}")
    _expect(code, details, both, grpc.StatusCode.ALREADY_EXISTS)
    if code == grpc.StatusCode.OK:
        assert (registered.ref.model, registered.ref.version) == (name, other)
    else:
        assert registry.rows() == before, "a refused registration changed the database"

    before = registry.rows()
    request = controlplane_pb2.DeployRequest(
        deployment=name, version=common_pb2.VersionRef(model="cancer", version="v1")
    )
    code, details, deployed = _code(stub.Deploy, request)
    _expect(code, details, valid_name(name))
    if code == grpc.StatusCode.OK:
        assert deployed.name == name
    else:
        assert registry.rows() == before, "a refused deploy changed the database"


def test_control_plane_alive_after_fuzzing(registry: Registry) -> None:
    check = health_pb2_grpc.HealthStub(registry.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert check.status == health_pb2.HealthCheckResponse.SERVING
    assert registry.stub.WhoAmI(controlplane_pb2.WhoAmIRequest(), timeout=10).principal
