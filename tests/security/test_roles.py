"""Roles on every RPC, as a table: every method of every service, called with every role."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from controlplane.api.auth import PERMISSIONS
from controlplane.config import Config, TokenConfig, token_digest
from protos import agent_pb2, controlplane_pb2
from tests.harness import ServerThread, start_server

TOKENS = {"viewer": "v-secret", "operator": "o-secret", "agent": "a-secret", "admin": "ad-secret"}
SERVICES = [
    controlplane_pb2.DESCRIPTOR.services_by_name["ControlPlane"],
    agent_pb2.DESCRIPTOR.services_by_name["AgentHub"],
]
# Who may call what, written out from the spec (docs/SECURITY.md), not derived from the product's
# own PERMISSIONS table: moving a method to another class there must fail this test.
READERS = {"viewer", "operator", "admin"}
OPERATORS = {"operator", "admin"}
ADMINS = {"admin"}
AGENTS = {"agent", "admin"}
EVERYONE = {"viewer", "operator", "agent", "admin"}
EXPECTED = {
    "/sluice.v1.ControlPlane/ListVersions": READERS,
    "/sluice.v1.ControlPlane/GetVersion": READERS,
    "/sluice.v1.ControlPlane/ListDeployments": READERS,
    "/sluice.v1.ControlPlane/WaitForSync": READERS,
    "/sluice.v1.ControlPlane/GetExperiment": READERS,
    "/sluice.v1.ControlPlane/ListExperiments": READERS,
    "/sluice.v1.ControlPlane/GetStatus": READERS,
    "/sluice.v1.ControlPlane/GetMetricSeries": READERS,
    "/sluice.v1.ControlPlane/ListAlerts": READERS,
    "/sluice.v1.ControlPlane/ListAgents": READERS,
    "/sluice.v1.ControlPlane/ListRetrainingRuns": READERS,
    "/sluice.v1.ControlPlane/ListHistory": READERS,
    "/sluice.v1.ControlPlane/ListAudit": READERS,
    "/sluice.v1.ControlPlane/WatchEvents": READERS,
    "/sluice.v1.ControlPlane/GetPolicy": READERS,
    "/sluice.v1.ControlPlane/SetPolicy": OPERATORS,
    "/sluice.v1.ControlPlane/RegisterVersion": OPERATORS,
    "/sluice.v1.ControlPlane/Evaluate": OPERATORS,
    "/sluice.v1.ControlPlane/Deploy": OPERATORS,
    "/sluice.v1.ControlPlane/SetTraffic": OPERATORS,
    "/sluice.v1.ControlPlane/Rollback": OPERATORS,
    "/sluice.v1.ControlPlane/StartExperiment": OPERATORS,
    "/sluice.v1.ControlPlane/StopExperiment": OPERATORS,
    "/sluice.v1.ControlPlane/ResumeExperiment": OPERATORS,
    "/sluice.v1.ControlPlane/PauseExperiment": OPERATORS,
    "/sluice.v1.ControlPlane/AbortExperiment": OPERATORS,
    "/sluice.v1.ControlPlane/Promote": OPERATORS,
    "/sluice.v1.ControlPlane/AckAlert": OPERATORS,
    "/sluice.v1.ControlPlane/SubmitLabels": OPERATORS,
    "/sluice.v1.ControlPlane/SetLogSampleRate": OPERATORS,
    "/sluice.v1.ControlPlane/PurgeLog": OPERATORS,
    "/sluice.v1.ControlPlane/ListLabelImports": READERS,
    "/sluice.v1.ControlPlane/ExportDataset": READERS,
    "/sluice.v1.ControlPlane/WhoAmI": EVERYONE,
    "/sluice.v1.ControlPlane/ListTokens": ADMINS,
    "/sluice.v1.AgentHub/Connect": AGENTS,
    "/sluice.v1.AgentHub/FetchArtifact": AGENTS,
}


def all_methods() -> list[tuple[str, object]]:
    return [(f"/{service.full_name}/{method.name}", method) for service in SERVICES for method in service.methods]


def test_every_method_has_a_permission_and_an_expectation() -> None:
    missing = [name for name, _ in all_methods() if name not in PERMISSIONS]
    assert not missing, f"methods without a permission (they would be refused for everyone): {missing}"
    unwritten = sorted({name for name, _ in all_methods()} ^ set(EXPECTED))
    assert not unwritten, f"write down who may call these in EXPECTED: {unwritten}"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    # Digests in the config, as recommended: the file holds no secret.
    config = Config(
        tokens=[TokenConfig(name=f"{role}-1", role=role, sha256=token_digest(t)) for role, t in TOKENS.items()]
    )
    server = start_server(tmp_path_factory.mktemp("roles"), config=config)
    yield server
    server.stop()


def _call(channel: grpc.Channel, name: str, method: object, token: str | None) -> grpc.StatusCode:
    request_class = method.input_type._concrete_class  # type: ignore[attr-defined]
    response_class = method.output_type._concrete_class  # type: ignore[attr-defined]
    metadata = [("authorization", f"Bearer {token}")] if token else []
    kind = (method.client_streaming, method.server_streaming)  # type: ignore[attr-defined]
    args = {"request_serializer": request_class.SerializeToString, "response_deserializer": response_class.FromString}
    try:
        if kind == (False, False):
            channel.unary_unary(name, **args)(request_class(), metadata=metadata, timeout=5)
        elif kind == (False, True):
            call = channel.unary_stream(name, **args)(request_class(), metadata=metadata, timeout=2)
            next(iter(call), None)
            call.cancel()
        elif kind == (True, False):
            channel.stream_unary(name, **args)(iter([]), metadata=metadata, timeout=5)
        else:
            call = channel.stream_stream(name, **args)(iter([]), metadata=metadata, timeout=2)
            next(iter(call), None)
            call.cancel()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("role", [*TOKENS, None])
def test_role_table(secured: ServerThread, role: str | None) -> None:
    """Denied calls get UNAUTHENTICATED/PERMISSION_DENIED; allowed ones get past auth."""
    token = TOKENS.get(role) if role else None
    wrong: list[str] = []
    with grpc.insecure_channel(secured.address) as channel:
        for name, method in all_methods():
            code = _call(channel, name, method, token)
            allowed = role in EXPECTED[name]
            if role is None:
                expected_ok = code == grpc.StatusCode.UNAUTHENTICATED
            elif allowed:
                expected_ok = code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
            else:
                expected_ok = code == grpc.StatusCode.PERMISSION_DENIED
            if not expected_ok:
                wrong.append(f"{name} as {role}: {code.name}")
    assert not wrong, "\n".join(wrong)


def test_health_needs_no_token(secured: ServerThread) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(secured.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
