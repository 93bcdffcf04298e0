"""The bad-input matrix's machinery: the environment, the case type, request builders, running a case.

The matrix sends malformed requests to every RPC of every service, one test module per service
(`test_registry.py` ... `test_oip.py`), each case stating the exact status code and a phrase of
the message. Two real control planes and one real `sluice agent` process (the `env` fixture of
`conftest.py`):

- `cp`, the control plane under test: its own SQLite file, no agent connected, so nothing but the
  requests of the matrix writes to it. Every table (audit included) and the artifact store are
  compared before and after each case.
- `serving`, the control plane the agent follows. The agent's cases are compared against it too;
  only the monitoring tables the agent's metric reports fill (refusals are counted there, by
  design) and the heartbeat column `agents.last_seen` are left out.

Every case also checks that no traceback or exception text reached the caller and that both
servers and the agent still answer their health checks.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import Engine, MetaData, create_engine, select

from core.client import SluiceClient
from protos import agent_pb2, common_pb2, controlplane_pb2, inference_pb2, oip_pb2
from tests.agent.cluster import AgentProcess
from tests.harness import ServerThread
from tests.models import breast_cancer_rows

CP_MAX_MESSAGE = 1 << 20  # small limits make oversized messages cheap to send
AGENT_MAX_MESSAGE = 1 << 20
HUGE = "x" * 100_000
TRAVERSAL = "../../etc/passwd"
LEAKS = ("Traceback", "Exception", 'File "', "<class ", "Unexpected ")
OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
ABORTED = grpc.StatusCode.ABORTED
EXISTS = grpc.StatusCode.ALREADY_EXISTS
ALL = None  # skip the whole table

SERVICES = {
    "cp": controlplane_pb2.DESCRIPTOR.services_by_name["ControlPlane"],
    "hub": agent_pb2.DESCRIPTOR.services_by_name["AgentHub"],
    "inference": inference_pb2.DESCRIPTOR.services_by_name["Inference"],
    "oip": oip_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"],
}
# Tables filled by what agents ship on their own (metric reports, heartbeats, prediction-log
# segments, their Feedback's label batches): not state a request may change.
TELEMETRY: dict[str, set[str] | None] = {
    "metric_receipts": ALL,
    "metric_windows": ALL,
    "reservoirs": ALL,
    "agents": {"last_seen"},
    "log_segments": ALL,
    "agent_report_drops": ALL,
}


# ---- the environment ----


class DbSnapshot:
    """Every row of every table of a SQLite store (minus `skip`), plus the artifact files."""

    def __init__(self, db: Path, artifacts: Path | None, skip: dict[str, set[str] | None]) -> None:
        self.engine: Engine = create_engine(f"sqlite:///{db}")
        self.meta = MetaData()
        self.meta.reflect(self.engine)
        self.artifacts = artifacts
        self.skip = skip

    def take(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for table in self.meta.sorted_tables:
                if table.name in self.skip and self.skip[table.name] is ALL:
                    continue
                dropped = self.skip.get(table.name) or set()
                columns = [c for c in table.columns if c.name not in dropped]
                out[table.name] = sorted(repr(tuple(row)) for row in conn.execute(select(*columns)))
        if self.artifacts is not None:
            out["<artifact files>"] = sorted(
                str(p.relative_to(self.artifacts)) for p in self.artifacts.rglob("*") if p.is_file()
            )
        return out

    def close(self) -> None:
        self.engine.dispose()


@dataclass
class Env:
    cp: ServerThread
    serving: ServerThread
    agent: AgentProcess
    model_bytes: bytes
    model_sha256: str
    resolved_alert: int
    cp_db: DbSnapshot
    serving_db: DbSnapshot
    channels: dict[str, grpc.Channel] = field(default_factory=dict)

    def channel(self, target: str) -> grpc.Channel:
        return self.channels["cp" if target in ("cp", "hub") else "agent"]


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# ---- building requests ----

Request = Any  # a message, raw bytes, a list of them (client streaming), or a function of Env


@dataclass(frozen=True)
class Case:
    id: str
    target: str  # cp | hub | inference | oip
    method: str
    request: Request
    code: grpc.StatusCode
    says: str  # a phrase the message must contain (case-insensitive); "": none; for OK: checked by `check`
    check: Callable[[bytes], bool] | None = None


def ref(model: str, version: str) -> common_pb2.VersionRef:
    return common_pb2.VersionRef(model=model, version=version)


def header(
    model: str = "fresh", version: str = "v1", size: int = 100, **kw: Any
) -> controlplane_pb2.RegisterVersionChunk:
    return controlplane_pb2.RegisterVersionChunk(
        header=controlplane_pb2.RegisterVersionHeader(ref=ref(model, version), model_size=size, **kw)
    )


def chunk(data: bytes) -> controlplane_pb2.RegisterVersionChunk:
    return controlplane_pb2.RegisterVersionChunk(model_chunk=data)


def upload(model: str = "fresh", version: str = "v1", baseline: bytes = b"", **kw: Any) -> Callable[[Env], list[Any]]:
    """A complete upload of the real model (plus `baseline`) under a header with `kw`."""

    def build(env: Env) -> list[Any]:
        messages = [header(model, version, len(env.model_bytes), baseline_size=len(baseline), **kw)]
        messages.append(chunk(env.model_bytes))
        if baseline:
            messages.append(controlplane_pb2.RegisterVersionChunk(baseline_chunk=baseline))
        return messages

    return build


def hello(**kw: Any) -> agent_pb2.AgentMessage:
    fields = {"agent_id": "probe-agent-1", "name": "probe", "host": "h", "address": "127.0.0.1:1"} | kw
    return agent_pb2.AgentMessage(hello=agent_pb2.Hello(**fields))


def tensor(rows: np.ndarray | None = None, **kw: Any) -> inference_pb2.Tensor:
    if rows is not None:
        return inference_pb2.Tensor(shape=list(rows.shape), values=rows.ravel().tolist())
    return inference_pb2.Tensor(**kw)


def predict(deployment: str = "web", **kw: Any) -> inference_pb2.PredictRequest:
    return inference_pb2.PredictRequest(deployment=deployment, **kw)


def batch(deployment: str = "web", **kw: Any) -> inference_pb2.PredictBatchRequest:
    return inference_pb2.PredictBatchRequest(deployment=deployment, **kw)


ROW = breast_cancer_rows(1, seed=3)
ROWS = breast_cancer_rows(4, seed=4)
FP32 = oip_pb2.ModelInferRequest.InferInputTensor
OUT = oip_pb2.ModelInferRequest.InferRequestedOutputTensor


def infer(*inputs: Any, model: str = "web", **kw: Any) -> oip_pb2.ModelInferRequest:
    return oip_pb2.ModelInferRequest(model_name=model, inputs=list(inputs), **kw)


def fp32(shape: list[int], values: list[float] | None = None, **kw: Any) -> Any:
    contents = oip_pb2.InferTensorContents(fp32_contents=values) if values is not None else None
    return FP32(name="input", datatype="FP32", shape=shape, contents=contents, **kw)


def with_nan(rows: np.ndarray, value: float) -> np.ndarray:
    bad = rows.copy()
    bad[0, 3] = value
    return bad


def not_ready(raw: bytes) -> bool:
    return not oip_pb2.ModelReadyResponse.FromString(raw).ready


def empty_stream(raw: bytes) -> bool:
    return raw == b""


GARBAGE = b"\xff\xff\xff\xff"
BAD_UTF8 = b"\x0a\x02\xff\xfe"  # field 1 (a string) holding bytes that are not UTF-8
GRPC_CORE_TEXT = ""  # gRPC core rejects the message and writes its text, not Sluice: only the status code is checked
BIG_ROWS = np.zeros((9000, 30), dtype=np.float32)  # over 1 MiB as float32
NAN_BASELINE = npy(np.full((50, 30), np.nan, dtype=np.float32))
NARROW_BASELINE = npy(np.zeros((50, 3), dtype=np.float32))


# ---- running a case ----


def _serialize(item: Any) -> bytes:
    return item if isinstance(item, bytes) else item.SerializeToString()


def call(env: Env, case: Case) -> tuple[grpc.StatusCode, str, bytes]:
    """Send the case's request exactly as given; (status, details, raw response bytes)."""
    method = SERVICES[case.target].methods_by_name[case.method]
    path = f"/{SERVICES[case.target].full_name}/{case.method}"
    request = case.request(env) if callable(case.request) else case.request
    channel = env.channel(case.target)
    kind = (method.client_streaming, method.server_streaming)
    args = {"request_serializer": _serialize, "response_deserializer": lambda raw: raw}
    try:
        if kind == (False, False):
            raw = channel.unary_unary(path, **args)(request, timeout=30)
        elif kind == (False, True):
            raw = b"".join(channel.unary_stream(path, **args)(request, timeout=30))
        elif kind == (True, False):
            raw = channel.stream_unary(path, **args)(iter(request), timeout=30)
        else:
            raw = b"".join(channel.stream_stream(path, **args)(iter(request), timeout=30))
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or "", b""
    return OK, "", raw


def assert_serving(env: Env) -> None:
    assert env.agent.process is not None and env.agent.process.proc.poll() is None, "the agent process died"
    for name, channel in (("control plane", env.channels["cp"]), ("agent", env.channels["agent"])):
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert status.status == health_pb2.HealthCheckResponse.SERVING, f"the {name} stopped serving"
    for server in (env.cp, env.serving):
        with SluiceClient(server.address, token="") as client:
            client.whoami()


def check_case(env: Env, case: Case) -> None:
    """Send the case; the status and message are as stated, nothing leaked, nothing changed."""
    before_cp, before_serving = env.cp_db.take(), env.serving_db.take()
    code, details, raw = call(env, case)
    assert code == case.code, f"{case.id}: expected {case.code.name}, got {code.name}: {details!r}"
    if code == OK:
        assert case.check is not None and case.check(raw), f"{case.id}: unexpected answer {raw[:200]!r}"
    else:
        assert case.says.lower() in details.lower(), f"{case.id}: message {details!r} lacks {case.says!r}"
        assert len(details) < 2000, f"{case.id}: a {len(details)}-character message echoes the input"
    for leak in LEAKS:
        assert leak not in details, f"{case.id}: {leak!r} leaked into the message: {details!r}"
    assert_serving(env)
    assert env.cp_db.take() == before_cp, f"{case.id}: the control plane's database changed"
    assert env.serving_db.take() == before_serving, f"{case.id}: the serving control plane's database changed"
