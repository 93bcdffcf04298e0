"""The ControlPlane service over real gRPC on loopback: status codes, messages, streaming uploads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from controlplane.config import Config, TokenConfig
from controlplane.server import ControlPlaneServer, ServerOptions
from core.client import ClientError, SluiceClient
from core.errors import InvalidInput
from protos import common_pb2, controlplane_pb2, controlplane_pb2_grpc
from tests.harness import ServerThread, start_server, unique
from tests.models import make_baseline, make_classifier_onnx


def code_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(ClientError) as info:
        call()  # type: ignore[operator]
    return info.value.code, info.value.message


def test_register_list_deploy_over_grpc(client: SluiceClient, models_dir: Path) -> None:
    model = unique("m")
    v1 = client.register_version(model, "v1", make_classifier_onnx(models_dir), make_baseline(models_dir))
    assert v1.sha256 and v1.inputs[0].shape == [-1, 30] and v1.baseline.n_rows > 0
    listed = client.list_versions(model)
    assert [f"{v.ref.model}:{v.ref.version}" for v in listed] == [f"{model}:v1"]
    dep = unique("d")
    deployment = client.deploy(dep, f"{model}:v1")
    assert deployment.generation == 1 and deployment.splits[0].weight == 100
    assert client.history(dep)[0].action == "deploy"
    assert any(e.target == dep for e in client.audit(dep))


def test_bad_requests_get_clear_statuses(client: SluiceClient, models_dir: Path) -> None:
    model, dep = unique("m"), unique("d")
    client.register_version(model, "v1", make_classifier_onnx(models_dir))
    client.register_version(model, "v2", make_classifier_onnx(models_dir, "gbm"))
    client.deploy(dep, f"{model}:v1")
    cases = {
        "duplicate": (
            lambda: client.register_version(model, "v1", make_classifier_onnx(models_dir)),
            grpc.StatusCode.ALREADY_EXISTS,
            "already exists",
        ),
        "unknown deployment": (
            lambda: client.set_traffic(unique("nope"), {f"{model}:v1": 100}),
            grpc.StatusCode.NOT_FOUND,
            "no deployment",
        ),
        "unknown version": (
            lambda: client.deploy(dep, f"{model}:v9"),
            grpc.StatusCode.NOT_FOUND,
            "no version",
        ),
        "unknown model": (lambda: client.get_version("ghost:v1"), grpc.StatusCode.NOT_FOUND, "no model"),
        "sum": (
            lambda: client.set_traffic(dep, {f"{model}:v1": 50, f"{model}:v2": 20}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "sum to 70",
        ),
        "negative": (
            lambda: client.set_traffic(dep, {f"{model}:v1": 110, f"{model}:v2": -10}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "0 to 100",
        ),
        "empty name": (lambda: client.deploy("", f"{model}:v1"), grpc.StatusCode.INVALID_ARGUMENT, "empty"),
        "long name": (
            lambda: client.deploy("d" * 200, f"{model}:v1"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "limit is 128",
        ),
        "space": (
            lambda: client.deploy("my dep", f"{model}:v1"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "may only contain",
        ),
        "slash": (
            lambda: client.deploy("a/b", f"{model}:v1"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "may only contain",
        ),
        "stale": (
            lambda: client.set_traffic(dep, {f"{model}:v1": 100}, expected_generation=99),
            grpc.StatusCode.ABORTED,
            "not 99",
        ),
    }
    for name, (call, code, text) in cases.items():
        got_code, message = code_of(call)
        assert got_code == code, f"{name}: {got_code} {message}"
        assert text in message, f"{name}: {message!r}"
    assert client.get_deployment(dep).generation == 1, "a refused request changed the deployment"


def _raw_upload(address: str, messages: Iterator[controlplane_pb2.RegisterVersionChunk]) -> grpc.RpcError:
    with grpc.insecure_channel(address) as channel:
        stub = controlplane_pb2_grpc.ControlPlaneStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.RegisterVersion(messages, timeout=30)
        return info.value  # type: ignore[return-value]


def _header(model: str, size: int) -> controlplane_pb2.RegisterVersionChunk:
    return controlplane_pb2.RegisterVersionChunk(
        header=controlplane_pb2.RegisterVersionHeader(
            ref=common_pb2.VersionRef(model=model, version="v1"), model_size=size
        )
    )


def test_upload_cut_off_or_malformed_registers_nothing(
    shared_server: ServerThread, client: SluiceClient, models_dir: Path
) -> None:
    data = make_classifier_onnx(models_dir).read_bytes()
    model = unique("m")

    def cut() -> Iterator[controlplane_pb2.RegisterVersionChunk]:
        yield _header(model, len(data))
        yield controlplane_pb2.RegisterVersionChunk(model_chunk=data[: len(data) // 2])

    error = _raw_upload(shared_server.address, cut())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "cut off" in error.details()

    def aborted_by_client() -> Iterator[controlplane_pb2.RegisterVersionChunk]:
        yield _header(model, len(data))
        yield controlplane_pb2.RegisterVersionChunk(model_chunk=data[:100])
        raise RuntimeError("client died mid-upload")

    error = _raw_upload(shared_server.address, aborted_by_client())
    assert error.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN)

    def no_header() -> Iterator[controlplane_pb2.RegisterVersionChunk]:
        yield controlplane_pb2.RegisterVersionChunk(model_chunk=data)

    error = _raw_upload(shared_server.address, no_header())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "header" in error.details()

    error = _raw_upload(shared_server.address, iter([]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "empty" in error.details()

    def junk() -> Iterator[controlplane_pb2.RegisterVersionChunk]:
        yield _header(model, 72)
        yield controlplane_pb2.RegisterVersionChunk(model_chunk=b"\x00not onnx" * 8)

    error = _raw_upload(shared_server.address, junk())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "ONNX" in error.details()
    assert client.list_versions(model) == []
    leftovers = list((shared_server.options.artifacts / "tmp").iterdir())
    assert leftovers == [], f"temporary upload files left behind: {leftovers}"


def test_fifty_megabyte_model_registers_in_chunks(client: SluiceClient, tmp_path: Path) -> None:
    weights = np.random.default_rng(0).standard_normal((30, 420_000)).astype(np.float32)
    graph = helper.make_graph(  # one value per row, so agents can serve it (registration runs it)
        [
            helper.make_node("MatMul", ["input", "w"], ["wide"]),
            helper.make_node("ReduceSum", ["wide", "axis1"], ["out"], keepdims=1),
        ],
        "big",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 30])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 1])],
        initializer=[
            onnx.numpy_helper.from_array(weights, "w"),
            onnx.numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        ],
    )
    path = tmp_path / "big.onnx"
    path.write_bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )
    assert path.stat().st_size > 50_000_000 > 16 * 1024 * 1024  # far above the message limit
    version = client.register_version(unique("big"), "v1", path)
    assert version.size_bytes == path.stat().st_size


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    config = Config(
        tokens=[
            TokenConfig(name="vera", role="viewer", token="viewer-secret"),
            TokenConfig(name="otto", role="operator", token="operator-secret"),
            TokenConfig(name="agent-1", role="agent", token="agent-secret"),
            TokenConfig(name="root", role="admin", token="admin-secret"),
        ]
    )
    server = start_server(tmp_path_factory.mktemp("secured"), config=config)
    yield server
    server.stop()


def test_tokens_and_roles(secured: ServerThread, models_dir: Path) -> None:
    def as_(token: str | None) -> SluiceClient:
        return SluiceClient(secured.address, token=token or "")

    assert code_of(lambda: as_(None).list_versions())[0] == grpc.StatusCode.UNAUTHENTICATED
    code, message = code_of(lambda: as_("wrong").list_versions())
    assert code == grpc.StatusCode.UNAUTHENTICATED and "not valid" in message
    assert as_("viewer-secret").list_versions() == []
    code, message = code_of(lambda: as_("viewer-secret").deploy("web", "m:v1"))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "vera has role viewer" in message
    code, _ = code_of(lambda: as_("agent-secret").list_versions())
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = code_of(lambda: as_("operator-secret").list_tokens())
    assert code == grpc.StatusCode.PERMISSION_DENIED
    operator = as_("operator-secret")
    operator.register_version("m", "v1", make_classifier_onnx(models_dir))
    operator.deploy("web", "m:v1")
    assert operator.whoami().principal == "otto"
    events = as_("admin-secret").audit("web")
    assert events[0].principal == "otto" and events[0].action == "deploy"
    tokens = as_("admin-secret").list_tokens()
    assert {t.name for t in tokens} == {"vera", "otto", "agent-1", "root"}
    assert "secret" not in str(tokens), "ListTokens must never reveal a token"


async def test_refuses_public_address_without_tokens(tmp_path: Path) -> None:
    server = ControlPlaneServer(
        ServerOptions(
            listen="0.0.0.0:0",
            db_url=f"sqlite:///{tmp_path / 'x.db'}",
            artifacts=tmp_path / "a",
            config=Config(),
            metrics_port=0,
        )
    )
    with pytest.raises(InvalidInput, match="--allow-insecure"):
        await server.start()
