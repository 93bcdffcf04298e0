"""The bad-input matrix: malformed requests to every RPC of every service, as one table.

Two real control planes and one real `sluice agent` process:

- `cp`, the control plane under test: its own SQLite file, no agent connected, so nothing but the
  requests of this module writes to it. Every table (audit included) and the artifact store are
  compared before and after each case.
- `serving`, the control plane the agent follows. The agent's cases are compared against it too;
  only the monitoring tables the agent's metric reports fill (refusals are counted there, by
  design) and the heartbeat column `agents.last_seen` are left out.

Each case states the exact status code and a phrase of the message; every case also checks that
no traceback or exception text reached the caller and that both servers and the agent still
answer their health checks.
"""

from __future__ import annotations

import io
import math
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import Engine, MetaData, create_engine, select

from controlplane.config import Config, LimitsConfig
from controlplane.monitoring import alerts
from core.client import SluiceClient
from protos import agent_pb2, common_pb2, controlplane_pb2, inference_pb2, oip_pb2
from tests.agent.cluster import AgentProcess, wait_until
from tests.harness import ServerThread, start_server
from tests.models import breast_cancer_rows, make_baseline, make_classifier_onnx

pytestmark = pytest.mark.xdist_group("bad-input")

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
# Tables filled by the agent's metric reports and heartbeats: not state a request may change.
TELEMETRY: dict[str, set[str] | None] = {
    "metric_receipts": ALL,
    "metric_windows": ALL,
    "reservoirs": ALL,
    "agents": {"last_seen"},
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


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("bad-input")
    models = root / "models"
    v1 = make_classifier_onnx(models)
    v2 = make_classifier_onnx(models, "constant")
    baseline = make_baseline(models)
    started: list[Any] = []
    try:
        cp = start_server(root / "cp", config=Config(limits=LimitsConfig(max_message_bytes=CP_MAX_MESSAGE)))
        started.append(cp)
        serving = start_server(root / "serving")
        started.append(serving)
        with SluiceClient(cp.address, token="") as client:
            sha = client.register_version("cancer", "v1", v1, baseline).sha256
            client.register_version("cancer", "v2", v2, baseline)
            client.deploy("web", "cancer:v1")
            client.deploy("solo", "cancer:v1")
            client.set_traffic("web", {"cancer:v1": 90, "cancer:v2": 10})
        ctx = cp.ctx
        alerts.open_alert(ctx, deployment="web", kind="bad_input_probe", severity="warning", message="probe")
        alerts.resolve_alert(ctx, deployment="web", kind="bad_input_probe")
        resolved = next(a.id for a in alerts.list_alerts(ctx, True, "web") if a.kind == "bad_input_probe")
        with SluiceClient(serving.address, token="") as client:
            client.register_version("cancer", "v1", v1, baseline)
            client.deploy("web", "cancer:v1")
        agent = AgentProcess(
            serving.address,
            "bad-input-agent",
            root / "agent-cache",
            root / "agent.log",
            extra=["--max-message-bytes", str(AGENT_MAX_MESSAGE)],
        )
        started.append(agent)
        wait_until(lambda: agent.predict("web", breast_cancer_rows(1)), what="the agent serves 'web'")
        environment = Env(
            cp=cp,
            serving=serving,
            agent=agent,
            model_bytes=v1.read_bytes(),
            model_sha256=sha,
            resolved_alert=resolved,
            cp_db=DbSnapshot(root / "cp" / "sluice.db", root / "cp" / "artifacts", {}),
            serving_db=DbSnapshot(root / "serving" / "sluice.db", None, TELEMETRY),
        )
        environment.channels = {
            "cp": grpc.insecure_channel(cp.address),
            "agent": grpc.insecure_channel(agent.address),
        }
        yield environment
        for channel in environment.channels.values():
            channel.close()
        environment.cp_db.close()
        environment.serving_db.close()
    finally:
        for thing in reversed(started):
            thing.stop()


# ---- the cases ----

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

CP_CASES = [
    # Registry
    Case("register-empty-stream", "cp", "RegisterVersion", [], INVALID, "no header was sent"),
    Case("register-chunk-before-header", "cp", "RegisterVersion", [chunk(b"abc")], INVALID, "must start with a header"),
    Case("register-traversal-model", "cp", "RegisterVersion", upload(TRAVERSAL), INVALID, "may only contain"),
    Case("register-slash-version", "cp", "RegisterVersion", upload("fresh", "a/b"), INVALID, "may only contain"),
    Case("register-nul-in-name", "cp", "RegisterVersion", upload("fre\x00sh"), INVALID, "may only contain"),
    Case("register-rtl-override", "cp", "RegisterVersion", upload("fresh\u202egpj"), INVALID, "may only contain"),
    Case("register-emoji-version", "cp", "RegisterVersion", upload("fresh", "v1🚀"), INVALID, "may only contain"),
    Case("register-100kB-name", "cp", "RegisterVersion", upload(HUGE), INVALID, "the limit is 128"),
    Case("register-trailing-newline", "cp", "RegisterVersion", upload("fresh\n"), INVALID, "may only contain"),
    Case("register-missing-ref", "cp", "RegisterVersion", [header("", "", 10)], INVALID, "is required"),
    Case("register-zero-size", "cp", "RegisterVersion", [header(size=0)], INVALID, "the ONNX file is empty"),
    Case("register-bogus-sha256", "cp", "RegisterVersion", upload(model_sha256="zz" * 32), INVALID, "not a sha256"),
    Case("register-sha256-mismatch", "cp", "RegisterVersion", upload(model_sha256="ab" * 32), INVALID, "sha256 is"),
    Case("register-cut-off", "cp", "RegisterVersion", [header(size=1000), chunk(b"x" * 10)], INVALID, "cut off"),
    Case("register-too-many-bytes", "cp", "RegisterVersion", [header(size=3), chunk(b"x" * 10)], INVALID, "more than"),
    Case("register-two-headers", "cp", "RegisterVersion", [header(), header()], INVALID, "two headers"),
    Case("register-not-onnx", "cp", "RegisterVersion", [header(size=64), chunk(b"\x00" * 64)], INVALID, "onnx"),
    Case(
        "register-baseline-without-size",
        "cp",
        "RegisterVersion",
        [header(size=3), chunk(b"abc"), controlplane_pb2.RegisterVersionChunk(baseline_chunk=b"x")],
        INVALID,
        "baseline_size is 0",
    ),
    Case("register-nan-baseline", "cp", "RegisterVersion", upload(baseline=NAN_BASELINE), INVALID, "NaN"),
    Case(
        "register-baseline-wrong-width", "cp", "RegisterVersion", upload(baseline=NARROW_BASELINE), INVALID, "features"
    ),
    Case(
        "register-empty-feature-name",
        "cp",
        "RegisterVersion",
        upload(feature_names=[""] * 30),
        INVALID,
        "feature names",
    ),
    Case("register-100kB-description", "cp", "RegisterVersion", upload(description=HUGE), INVALID, "description"),
    Case("register-existing-version", "cp", "RegisterVersion", upload("cancer", "v1"), EXISTS, "already exists"),
    Case("register-garbage-chunk", "cp", "RegisterVersion", [GARBAGE], INVALID, "RegisterVersionChunk"),
    Case(
        "register-oversized-chunk",
        "cp",
        "RegisterVersion",
        [header(size=2 << 20), chunk(b"x" * (CP_MAX_MESSAGE + 10))],
        EXHAUSTED,
        GRPC_CORE_TEXT,
    ),
    Case(
        "list-versions-traversal",
        "cp",
        "ListVersions",
        controlplane_pb2.ListVersionsRequest(model=TRAVERSAL),
        INVALID,
        "may only contain",
    ),
    Case(
        "list-versions-bad-utf8",
        "cp",
        "ListVersions",
        BAD_UTF8,
        INVALID,
        "not a valid sluice.v1.ListVersionsRequest message",
    ),
    Case("get-version-missing", "cp", "GetVersion", common_pb2.VersionRef(), INVALID, "is required"),
    Case("get-version-half", "cp", "GetVersion", ref("cancer", ""), INVALID, "version name is empty"),
    Case("get-version-unknown", "cp", "GetVersion", ref("cancer", "v9"), NOT_FOUND, "has no version 'v9'"),
    Case("get-version-unknown-model", "cp", "GetVersion", ref("nobody", "v1"), NOT_FOUND, "no model named"),
    Case("get-version-control-chars", "cp", "GetVersion", ref("can\ncer", "v1"), INVALID, "may only contain"),
    Case(
        "evaluate-no-deployment",
        "cp",
        "Evaluate",
        controlplane_pb2.EvaluateRequest(challenger=ref("cancer", "v2")),
        INVALID,
        "needs the deployment",
    ),
    Case(
        "evaluate-wrong-format",
        "cp",
        "Evaluate",
        controlplane_pb2.EvaluateRequest(
            challenger=ref("cancer", "v2"), deployment="web", data=b"a,b\n1,2\n", data_format="xml"
        ),
        INVALID,
        "not supported",
    ),
    Case(
        "evaluate-nan-alpha",
        "cp",
        "Evaluate",
        controlplane_pb2.EvaluateRequest(
            challenger=ref("cancer", "v2"), deployment="web", data=b"a\n1\n", data_format="csv", alpha=math.nan
        ),
        INVALID,
        "alpha",
    ),
    Case(
        "evaluate-negative-improvement",
        "cp",
        "Evaluate",
        controlplane_pb2.EvaluateRequest(
            challenger=ref("cancer", "v2"), deployment="web", data=b"a\n1\n", data_format="csv", min_improvement=-1
        ),
        INVALID,
        "min improvement",
    ),
    Case(
        "evaluate-unknown-deployment",
        "cp",
        "Evaluate",
        controlplane_pb2.EvaluateRequest(
            challenger=ref("cancer", "v2"), deployment="nowhere", data=b"a\n1\n", data_format="csv"
        ),
        NOT_FOUND,
        "no deployment named",
    ),
    # Deployments and traffic
    Case(
        "deploy-missing-version",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment="new-dep"),
        INVALID,
        "is required",
    ),
    Case(
        "deploy-empty-name",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(version=ref("cancer", "v1")),
        INVALID,
        "deployment name is empty",
    ),
    Case(
        "deploy-traversal-name",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment=TRAVERSAL, version=ref("cancer", "v1")),
        INVALID,
        "may only contain",
    ),
    Case(
        "deploy-trailing-newline",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment="fresh\n", version=ref("cancer", "v1")),
        INVALID,
        "may only contain",
    ),
    Case(
        "deploy-unknown-version",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment="new-dep", version=ref("cancer", "v9")),
        NOT_FOUND,
        "has no version",
    ),
    Case(
        "deploy-negative-generation",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment="web", version=ref("cancer", "v2"), expected_generation=-1),
        INVALID,
        "must not be negative",
    ),
    Case(
        "deploy-stale-generation",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment="web", version=ref("cancer", "v2"), expected_generation=1),
        ABORTED,
        "generation",
    ),
    Case(
        "deploy-100kB-reason",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment="web", version=ref("cancer", "v2"), reason=HUGE),
        INVALID,
        "the limit is 2000",
    ),
    Case("deploy-wrong-wire-type", "cp", "Deploy", b"\x12\x03\x08\x01\x02", INVALID, "DeployRequest"),
    Case(
        "traffic-negative-weight",
        "cp",
        "SetTraffic",
        controlplane_pb2.SetTrafficRequest(
            deployment="web",
            weights=[
                controlplane_pb2.TrafficWeight(version=ref("cancer", "v1"), weight=110),
                controlplane_pb2.TrafficWeight(version=ref("cancer", "v2"), weight=-10),
            ],
        ),
        INVALID,
        "weights are 0 to 100",
    ),
    Case(
        "traffic-sum-99",
        "cp",
        "SetTraffic",
        controlplane_pb2.SetTrafficRequest(
            deployment="web",
            weights=[
                controlplane_pb2.TrafficWeight(version=ref("cancer", "v1"), weight=90),
                controlplane_pb2.TrafficWeight(version=ref("cancer", "v2"), weight=9),
            ],
        ),
        INVALID,
        "must sum to 100",
    ),
    Case(
        "traffic-no-weights",
        "cp",
        "SetTraffic",
        controlplane_pb2.SetTrafficRequest(deployment="web"),
        INVALID,
        "no weights given",
    ),
    Case(
        "traffic-named-twice",
        "cp",
        "SetTraffic",
        controlplane_pb2.SetTrafficRequest(
            deployment="web",
            weights=[controlplane_pb2.TrafficWeight(version=ref("cancer", "v1"), weight=50)] * 2,
        ),
        INVALID,
        "named twice",
    ),
    Case(
        "traffic-unknown-deployment",
        "cp",
        "SetTraffic",
        controlplane_pb2.SetTrafficRequest(
            deployment="nowhere", weights=[controlplane_pb2.TrafficWeight(version=ref("cancer", "v1"), weight=100)]
        ),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "traffic-missing-ref",
        "cp",
        "SetTraffic",
        controlplane_pb2.SetTrafficRequest(deployment="web", weights=[controlplane_pb2.TrafficWeight(weight=100)]),
        INVALID,
        "is required",
    ),
    Case(
        "rollback-unknown",
        "cp",
        "Rollback",
        controlplane_pb2.RollbackRequest(deployment="nowhere"),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "rollback-no-previous",
        "cp",
        "Rollback",
        controlplane_pb2.RollbackRequest(deployment="solo"),
        PRECONDITION,
        "previous",
    ),
    Case(
        "rollback-emoji-name",
        "cp",
        "Rollback",
        controlplane_pb2.RollbackRequest(deployment="web🔥"),
        INVALID,
        "may only contain",
    ),
    Case(
        "rollback-to-unknown",
        "cp",
        "Rollback",
        controlplane_pb2.RollbackRequest(deployment="web", to=ref("cancer", "v7")),
        NOT_FOUND,
        "no version",
    ),
    Case(
        "list-deployments-slash",
        "cp",
        "ListDeployments",
        controlplane_pb2.ListDeploymentsRequest(deployment="a/b"),
        INVALID,
        "may only contain",
    ),
    Case(
        "wait-nan-timeout",
        "cp",
        "WaitForSync",
        controlplane_pb2.WaitForSyncRequest(deployment="web", timeout_seconds=math.nan),
        INVALID,
        "timeout_seconds",
    ),
    Case(
        "wait-negative-timeout",
        "cp",
        "WaitForSync",
        controlplane_pb2.WaitForSyncRequest(deployment="web", timeout_seconds=-5),
        INVALID,
        "timeout_seconds",
    ),
    Case(
        "wait-infinite-timeout",
        "cp",
        "WaitForSync",
        controlplane_pb2.WaitForSyncRequest(deployment="web", timeout_seconds=math.inf),
        INVALID,
        "timeout_seconds",
    ),
    Case(
        "wait-negative-generation",
        "cp",
        "WaitForSync",
        controlplane_pb2.WaitForSyncRequest(deployment="web", generation=-3, timeout_seconds=1),
        INVALID,
        "must not be negative",
    ),
    Case(
        "wait-unknown",
        "cp",
        "WaitForSync",
        controlplane_pb2.WaitForSyncRequest(deployment="nowhere", timeout_seconds=1),
        NOT_FOUND,
        "no deployment named",
    ),
    # Experiments
    Case(
        "start-no-config",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(name="exp"),
        INVALID,
        "needs a config",
    ),
    Case(
        "start-traversal-name",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name=TRAVERSAL, config=controlplane_pb2.ExperimentConfig(deployment="web", challenger=ref("cancer", "v2"))
        ),
        INVALID,
        "may only contain",
    ),
    Case(
        "start-no-challenger",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(name="exp", config=controlplane_pb2.ExperimentConfig(deployment="web")),
        INVALID,
        "challenger is required",
    ),
    Case(
        "start-nan-alpha",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(deployment="solo", challenger=ref("cancer", "v2"), alpha=math.nan),
        ),
        INVALID,
        "alpha",
    ),
    Case(
        "start-negative-traffic",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(
                deployment="solo", challenger=ref("cancer", "v2"), traffic_percent=-5
            ),
        ),
        INVALID,
        "traffic",
    ),
    Case(
        "start-negative-plan-step",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(
                deployment="solo", challenger=ref("cancer", "v2"), plan=[5, -25, 50]
            ),
        ),
        INVALID,
        "plan step",
    ),
    Case(
        "start-negative-hold",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(
                deployment="solo", challenger=ref("cancer", "v2"), hold_seconds=-1
            ),
        ),
        INVALID,
        "hold",
    ),
    Case(
        "start-huge-min-samples",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(
                deployment="solo", challenger=ref("cancer", "v2"), min_samples=2**64 - 1
            ),
        ),
        INVALID,
        "min samples",
    ),
    Case(
        "start-unknown-metric",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(deployment="solo", challenger=ref("cancer", "v2"), metric="vibes"),
        ),
        INVALID,
        "unknown metric",
    ),
    Case(
        "start-nan-guardrail",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(
                deployment="solo",
                challenger=ref("cancer", "v2"),
                guardrails=[controlplane_pb2.Guardrail(metric="error_rate", max_degradation=math.nan)],
            ),
        ),
        INVALID,
        "finite number",
    ),
    Case(
        "start-inverted-segment",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(
                deployment="solo",
                challenger=ref("cancer", "v2"),
                segment_rules=[common_pb2.SegmentRule(attribute="age", has_range=True, min=10, max=-10)],
            ),
        ),
        INVALID,
        "min above max",
    ),
    Case(
        "start-unknown-challenger",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp", config=controlplane_pb2.ExperimentConfig(deployment="solo", challenger=ref("cancer", "v9"))
        ),
        NOT_FOUND,
        "no version",
    ),
    Case(
        "get-experiment-unknown",
        "cp",
        "GetExperiment",
        controlplane_pb2.ExperimentRequest(name="ghost"),
        NOT_FOUND,
        "ghost",
    ),
    Case(
        "get-experiment-empty",
        "cp",
        "GetExperiment",
        controlplane_pb2.ExperimentRequest(),
        INVALID,
        "experiment name is empty",
    ),
    Case(
        "list-experiments-nul",
        "cp",
        "ListExperiments",
        controlplane_pb2.ListExperimentsRequest(deployment="w\x00b"),
        INVALID,
        "may only contain",
    ),
    Case("stop-unknown", "cp", "StopExperiment", controlplane_pb2.ExperimentRequest(name="ghost"), NOT_FOUND, "ghost"),
    Case(
        "resume-100kB-name",
        "cp",
        "ResumeExperiment",
        controlplane_pb2.ExperimentRequest(name=HUGE),
        INVALID,
        "the limit is 128",
    ),
    Case(
        "abort-100kB-reason",
        "cp",
        "AbortExperiment",
        controlplane_pb2.ExperimentRequest(name="ghost", reason=HUGE),
        INVALID,
        "the limit is 2000",
    ),
    Case(
        "promote-traversal",
        "cp",
        "Promote",
        controlplane_pb2.ExperimentRequest(name=TRAVERSAL),
        INVALID,
        "may only contain",
    ),
    Case("promote-unknown", "cp", "Promote", controlplane_pb2.ExperimentRequest(name="ghost"), NOT_FOUND, "ghost"),
    # Monitoring
    Case(
        "status-nan-window",
        "cp",
        "GetStatus",
        controlplane_pb2.GetStatusRequest(window_seconds=math.nan),
        INVALID,
        "window_seconds",
    ),
    Case(
        "status-negative-window",
        "cp",
        "GetStatus",
        controlplane_pb2.GetStatusRequest(window_seconds=-60),
        INVALID,
        "window_seconds",
    ),
    Case(
        "status-bad-name",
        "cp",
        "GetStatus",
        controlplane_pb2.GetStatusRequest(deployment="a b"),
        INVALID,
        "may only contain",
    ),
    Case(
        "series-step-over-window",
        "cp",
        "GetMetricSeries",
        controlplane_pb2.GetMetricSeriesRequest(deployment="web", window_seconds=60, step_seconds=600),
        INVALID,
        "longer than",
    ),
    Case(
        "series-too-many-points",
        "cp",
        "GetMetricSeries",
        controlplane_pb2.GetMetricSeriesRequest(deployment="web", window_seconds=86400 * 300, step_seconds=1),
        INVALID,
        "the limit is",
    ),
    Case(
        "series-infinite-window",
        "cp",
        "GetMetricSeries",
        controlplane_pb2.GetMetricSeriesRequest(deployment="web", window_seconds=math.inf),
        INVALID,
        "window_seconds",
    ),
    Case(
        "series-empty-name",
        "cp",
        "GetMetricSeries",
        controlplane_pb2.GetMetricSeriesRequest(),
        INVALID,
        "deployment name is empty",
    ),
    Case(
        "alerts-bad-name",
        "cp",
        "ListAlerts",
        controlplane_pb2.ListAlertsRequest(deployment="\u202eweb"),
        INVALID,
        "may only contain",
    ),
    Case("ack-negative-id", "cp", "AckAlert", controlplane_pb2.AckAlertRequest(id=-1), INVALID, "positive number"),
    Case("ack-zero-id", "cp", "AckAlert", controlplane_pb2.AckAlertRequest(id=0), INVALID, "positive number"),
    Case("ack-unknown-id", "cp", "AckAlert", controlplane_pb2.AckAlertRequest(id=2**62), NOT_FOUND, "no alert with id"),
    Case(
        "ack-resolved",
        "cp",
        "AckAlert",
        lambda env: controlplane_pb2.AckAlertRequest(id=env.resolved_alert),
        PRECONDITION,
        "already resolved",
    ),
    Case("agents-garbage", "cp", "ListAgents", GARBAGE, INVALID, "ListAgentsRequest"),
    Case(
        "retraining-traversal",
        "cp",
        "ListRetrainingRuns",
        controlplane_pb2.ListRetrainingRunsRequest(deployment=TRAVERSAL),
        INVALID,
        "may only contain",
    ),
    # Trail and identity
    Case(
        "history-empty-name",
        "cp",
        "ListHistory",
        controlplane_pb2.ListHistoryRequest(),
        INVALID,
        "deployment name is empty",
    ),
    Case(
        "history-unknown",
        "cp",
        "ListHistory",
        controlplane_pb2.ListHistoryRequest(deployment="nowhere"),
        NOT_FOUND,
        "no deployment named",
    ),
    Case("audit-100kB-target", "cp", "ListAudit", controlplane_pb2.ListAuditRequest(target=HUGE), INVALID, "target"),
    Case("whoami-garbage", "cp", "WhoAmI", GARBAGE, INVALID, "WhoAmIRequest"),
    Case("tokens-garbage", "cp", "ListTokens", GARBAGE, INVALID, "ListTokensRequest"),
    Case(
        "watch-bad-name",
        "cp",
        "WatchEvents",
        controlplane_pb2.WatchEventsRequest(deployment="a/b"),
        INVALID,
        "may only contain",
    ),
    Case(
        "watch-oversized",
        "cp",
        "WatchEvents",
        controlplane_pb2.WatchEventsRequest(deployment="x" * (2 << 20)),
        EXHAUSTED,
        GRPC_CORE_TEXT,
    ),
]

HUB_CASES = [
    Case("connect-empty-stream", "hub", "Connect", [], OK, "", empty_stream),
    Case(
        "connect-heartbeat-first",
        "hub",
        "Connect",
        [agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat())],
        INVALID,
        "must be a Hello",
    ),
    Case(
        "connect-report-first",
        "hub",
        "Connect",
        [agent_pb2.AgentMessage(report=agent_pb2.MetricReport(seq=1))],
        INVALID,
        "must be a Hello",
    ),
    Case("connect-empty-message", "hub", "Connect", [agent_pb2.AgentMessage()], INVALID, "must be a Hello"),
    Case("connect-garbage", "hub", "Connect", [GARBAGE], INVALID, "AgentMessage"),
    Case("connect-no-agent-id", "hub", "Connect", [hello(agent_id="")], INVALID, "agent_id"),
    Case("connect-traversal-id", "hub", "Connect", [hello(agent_id=TRAVERSAL)], INVALID, "agent_id"),
    Case("connect-id-trailing-newline", "hub", "Connect", [hello(agent_id="probe\n")], INVALID, "agent_id"),
    Case("connect-rtl-name", "hub", "Connect", [hello(name="agent\u202e1")], INVALID, "may only contain"),
    Case("connect-100kB-host", "hub", "Connect", [hello(host=HUGE)], INVALID, "the limit is 255"),
    Case(
        "connect-too-many-labels",
        "hub",
        "Connect",
        [hello(labels={f"k{i}": "v" for i in range(1000)})],
        INVALID,
        "labels",
    ),
    Case("connect-empty-label-key", "hub", "Connect", [hello(labels={"": "v"})], INVALID, "keys must be"),
    Case("connect-oversized", "hub", "Connect", [hello(host="h" * (2 << 20))], EXHAUSTED, GRPC_CORE_TEXT),
    Case(
        "fetch-bogus-sha256",
        "hub",
        "FetchArtifact",
        agent_pb2.FetchArtifactRequest(sha256="not-a-sha"),
        INVALID,
        "not a sha256",
    ),
    Case(
        "fetch-traversal",
        "hub",
        "FetchArtifact",
        agent_pb2.FetchArtifactRequest(sha256=TRAVERSAL),
        INVALID,
        "not a sha256",
    ),
    Case(
        "fetch-uppercase-sha256",
        "hub",
        "FetchArtifact",
        agent_pb2.FetchArtifactRequest(sha256="AB" * 32),
        INVALID,
        "not a sha256",
    ),
    Case(
        "fetch-sha256-trailing-newline",
        "hub",
        "FetchArtifact",
        lambda env: agent_pb2.FetchArtifactRequest(sha256=env.model_sha256 + "\n"),
        INVALID,
        "not a sha256",
    ),
    Case(
        "fetch-unknown-sha256",
        "hub",
        "FetchArtifact",
        agent_pb2.FetchArtifactRequest(sha256="0" * 64),
        NOT_FOUND,
        "no artifact",
    ),
    Case(
        "fetch-offset-past-end",
        "hub",
        "FetchArtifact",
        lambda env: agent_pb2.FetchArtifactRequest(sha256=env.model_sha256, offset=2**63),
        INVALID,
        "past the end",
    ),
]

AGENT_CASES = [
    # sluice.v1.Inference
    Case("predict-no-input", "inference", "Predict", predict(), INVALID, "no input"),
    Case(
        "predict-empty-deployment",
        "inference",
        "Predict",
        predict("", input=tensor(ROW)),
        INVALID,
        "deployment name is empty",
    ),
    Case(
        "predict-unknown-deployment",
        "inference",
        "Predict",
        predict("nowhere", input=tensor(ROW)),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "predict-traversal-deployment",
        "inference",
        "Predict",
        predict(TRAVERSAL, input=tensor(ROW)),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "predict-100kB-deployment",
        "inference",
        "Predict",
        predict(HUGE, input=tensor(ROW)),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "predict-shape-mismatch",
        "inference",
        "Predict",
        predict(input=tensor(shape=[1, 30], values=[0.0] * 29)),
        INVALID,
        "needs 30 values",
    ),
    Case(
        "predict-wrong-feature-count",
        "inference",
        "Predict",
        predict(input=tensor(shape=[1, 29], values=[0.0] * 29)),
        INVALID,
        "expected",
    ),
    Case(
        "predict-negative-dimension",
        "inference",
        "Predict",
        predict(input=tensor(shape=[-1, 30], values=[0.0] * 30)),
        INVALID,
        "negative dimension",
    ),
    Case("predict-empty-batch", "inference", "Predict", predict(input=tensor(shape=[0, 30])), INVALID, "no rows"),
    Case(
        "predict-huge-rows-no-features",
        "inference",
        "Predict",
        predict(input=tensor(shape=[2**40, 0])),
        INVALID,
        "dimension of 0",
    ),
    Case("predict-no-shape", "inference", "Predict", predict(input=tensor(values=[0.0] * 30)), INVALID, "no shape"),
    Case(
        "predict-rank-3",
        "inference",
        "Predict",
        predict(input=tensor(shape=[1, 5, 6], values=[0.0] * 30)),
        INVALID,
        "rank 3",
    ),
    Case(
        "predict-nan",
        "inference",
        "Predict",
        predict(input=tensor(with_nan(ROW, math.nan))),
        INVALID,
        "NaN or infinity",
    ),
    Case(
        "predict-inf",
        "inference",
        "Predict",
        predict(input=tensor(with_nan(ROW, -math.inf))),
        INVALID,
        "NaN or infinity",
    ),
    Case(
        "predict-overflows-model",
        "inference",
        "Predict",
        predict(input=tensor(shape=[1, 30], values=[3.4e38] * 30)),
        INVALID,
        "beyond the range",
    ),
    Case(
        "predict-raw-odd-bytes",
        "inference",
        "Predict",
        predict(input=tensor(shape=[1, 30], raw=b"\x00" * 7)),
        INVALID,
        "not a whole number",
    ),
    Case(
        "predict-raw-and-values",
        "inference",
        "Predict",
        predict(input=tensor(shape=[1, 1], values=[1.0], raw=b"\x00" * 4)),
        INVALID,
        "both 'values' and 'raw'",
    ),
    Case(
        "predict-huge-shape",
        "inference",
        "Predict",
        predict(input=tensor(shape=[2**62, 2**62], values=[1.0])),
        INVALID,
        "values but 1 were sent",
    ),
    Case(
        "predict-two-named-inputs",
        "inference",
        "Predict",
        predict(named_inputs={"a": tensor(ROW), "b": tensor(ROW)}),
        INVALID,
        "one input tensor",
    ),
    Case(
        "predict-input-and-named",
        "inference",
        "Predict",
        predict(input=tensor(ROW), named_inputs={"a": tensor(ROW)}),
        INVALID,
        "not both",
    ),
    Case(
        "predict-300-char-request-id",
        "inference",
        "Predict",
        predict(input=tensor(ROW), request_id="r" * 300),
        INVALID,
        "request id",
    ),
    Case(
        "predict-100k-routing-key",
        "inference",
        "Predict",
        predict(input=tensor(ROW), routing_key="k" * 100_000),
        INVALID,
        "routing key is 100000 characters; the limit is 1024",
    ),
    Case(
        "batch-100k-routing-key",
        "inference",
        "PredictBatch",
        batch(inputs=tensor(ROWS), routing_keys=["a", "b", "c", "k" * 100_000]),
        INVALID,
        "routing key is 100000 characters",
    ),
    Case(
        "predict-oversized",
        "inference",
        "Predict",
        predict(input=inference_pb2.Tensor(shape=[9000, 30], raw=BIG_ROWS.tobytes())),
        EXHAUSTED,
        GRPC_CORE_TEXT,
    ),
    Case("predict-garbage", "inference", "Predict", GARBAGE, INVALID, "PredictRequest"),
    Case(
        "predict-bad-utf8-name",
        "inference",
        "Predict",
        BAD_UTF8,
        INVALID,
        "not a valid sluice.v1.PredictRequest message",
    ),
    Case(
        "batch-key-count",
        "inference",
        "PredictBatch",
        batch(inputs=tensor(ROWS), routing_keys=["a", "b"]),
        INVALID,
        "routing_keys has 2 entries for 4 rows",
    ),
    Case(
        "batch-id-count",
        "inference",
        "PredictBatch",
        batch(inputs=tensor(ROWS), request_ids=["a"]),
        INVALID,
        "request_ids has 1 entries for 4 rows",
    ),
    Case(
        "batch-long-request-id",
        "inference",
        "PredictBatch",
        batch(inputs=tensor(ROWS), request_ids=["a", "b", "c", "d" * 100_000]),
        INVALID,
        "the limit is 256",
    ),
    Case("batch-empty", "inference", "PredictBatch", batch(inputs=tensor(shape=[0, 30])), INVALID, "no rows"),
    Case(
        "batch-huge-rows-no-features",
        "inference",
        "PredictBatch",
        batch(inputs=tensor(shape=[2**40, 0])),
        INVALID,
        "dimension of 0",
    ),
    Case("batch-no-inputs", "inference", "PredictBatch", batch(), INVALID, "no shape"),
    Case(
        "batch-nan",
        "inference",
        "PredictBatch",
        batch(inputs=tensor(with_nan(ROWS, math.nan))),
        INVALID,
        "NaN or infinity",
    ),
    Case(
        "batch-unknown-deployment",
        "inference",
        "PredictBatch",
        batch("nowhere", inputs=tensor(ROWS)),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "batch-oversized",
        "inference",
        "PredictBatch",
        batch(inputs=inference_pb2.Tensor(shape=[9000, 30], raw=BIG_ROWS.tobytes())),
        EXHAUSTED,
        GRPC_CORE_TEXT,
    ),
    Case(
        "feedback-no-request-id",
        "inference",
        "Feedback",
        inference_pb2.FeedbackRequest(deployment="web", label=1),
        INVALID,
        "request_id is empty",
    ),
    Case(
        "feedback-no-truth",
        "inference",
        "Feedback",
        inference_pb2.FeedbackRequest(deployment="web", request_id="r1"),
        INVALID,
        "send the true",
    ),
    Case(
        "feedback-nan-value",
        "inference",
        "Feedback",
        inference_pb2.FeedbackRequest(deployment="web", request_id="r1", value=math.nan),
        INVALID,
        "finite number",
    ),
    Case(
        "feedback-inf-value",
        "inference",
        "Feedback",
        inference_pb2.FeedbackRequest(deployment="web", request_id="r1", value=math.inf),
        INVALID,
        "finite number",
    ),
    Case(
        "feedback-100kB-request-id",
        "inference",
        "Feedback",
        inference_pb2.FeedbackRequest(deployment="web", request_id=HUGE, label=1),
        INVALID,
        "the limit is 256",
    ),
    Case(
        "feedback-unknown-deployment",
        "inference",
        "Feedback",
        inference_pb2.FeedbackRequest(deployment="nowhere", request_id="r1", label=1),
        NOT_FOUND,
        "no deployment named",
    ),
    # Open Inference Protocol
    Case(
        "oip-unknown-model",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], ROW.ravel().tolist()), model="nowhere"),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "oip-int64-input",
        "oip",
        "ModelInfer",
        infer(
            FP32(
                name="input",
                datatype="INT64",
                shape=[1, 30],
                contents=oip_pb2.InferTensorContents(int64_contents=[1] * 30),
            )
        ),
        INVALID,
        "datatype 'INT64'",
    ),
    Case(
        "oip-bytes-input",
        "oip",
        "ModelInfer",
        infer(
            FP32(
                name="input",
                datatype="BYTES",
                shape=[1, 1],
                contents=oip_pb2.InferTensorContents(bytes_contents=[b"seven"]),
            )
        ),
        INVALID,
        "datatype 'BYTES'",
    ),
    Case("oip-no-inputs", "oip", "ModelInfer", infer(), INVALID, "exactly one input"),
    Case(
        "oip-two-inputs",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], [0.0] * 30), fp32([1, 30], [0.0] * 30)),
        INVALID,
        "exactly one input",
    ),
    Case("oip-negative-shape", "oip", "ModelInfer", infer(fp32([-1, 30], [0.0] * 30)), INVALID, "negative dimension"),
    Case("oip-huge-rows-no-features", "oip", "ModelInfer", infer(fp32([2**40, 0])), INVALID, "dimension of 0"),
    Case("oip-shape-mismatch", "oip", "ModelInfer", infer(fp32([2, 30], [0.0] * 30)), INVALID, "needs 60 values"),
    Case(
        "oip-raw-odd-bytes",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30]), raw_input_contents=[b"\x00" * 5]),
        INVALID,
        "not a whole number",
    ),
    Case(
        "oip-raw-two-entries",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30]), raw_input_contents=[b"", b""]),
        INVALID,
        "raw_input_contents has 2",
    ),
    Case(
        "oip-raw-and-contents",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], [0.0] * 30), raw_input_contents=[ROW.astype("<f4").tobytes()]),
        INVALID,
        "not both",
    ),
    Case(
        "oip-nan",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], with_nan(ROW, math.nan).ravel().tolist())),
        INVALID,
        "NaN or infinity",
    ),
    Case(
        "oip-unknown-output",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], ROW.ravel().tolist()), outputs=[OUT(name="secrets")]),
        INVALID,
        "has no output 'secrets'",
    ),
    Case(
        "oip-unknown-version",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], ROW.ravel().tolist()), model_version="v9"),
        NOT_FOUND,
        "has no version 'v9'",
    ),
    Case(
        "oip-routing-key-wrong-type",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], ROW.ravel().tolist()), parameters={"routing_key": oip_pb2.InferParameter(int64_param=7)}),
        INVALID,
        "routing_key",
    ),
    Case(
        "oip-oversized",
        "oip",
        "ModelInfer",
        infer(fp32([9000, 30]), raw_input_contents=[BIG_ROWS.tobytes()]),
        EXHAUSTED,
        GRPC_CORE_TEXT,
    ),
    Case("oip-garbage", "oip", "ModelInfer", GARBAGE, INVALID, "ModelInferRequest"),
    Case(
        "oip-metadata-unknown",
        "oip",
        "ModelMetadata",
        oip_pb2.ModelMetadataRequest(name="nowhere"),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "oip-metadata-empty",
        "oip",
        "ModelMetadata",
        oip_pb2.ModelMetadataRequest(),
        INVALID,
        "deployment name is empty",
    ),
    Case("oip-ready-traversal", "oip", "ModelReady", oip_pb2.ModelReadyRequest(name=TRAVERSAL), OK, "", not_ready),
    Case(
        "oip-ready-unknown-version",
        "oip",
        "ModelReady",
        oip_pb2.ModelReadyRequest(name="web", version="v9"),
        OK,
        "",
        not_ready,
    ),
    Case("oip-ready-garbage", "oip", "ModelReady", GARBAGE, INVALID, "ModelReadyRequest"),
    Case("oip-live-garbage", "oip", "ServerLive", GARBAGE, INVALID, "ServerLiveRequest"),
    Case("oip-server-ready-garbage", "oip", "ServerReady", GARBAGE, INVALID, "ServerReadyRequest"),
    Case("oip-server-metadata-garbage", "oip", "ServerMetadata", GARBAGE, INVALID, "ServerMetadataRequest"),
]

CASES = [*CP_CASES, *HUB_CASES, *AGENT_CASES]


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


def test_the_matrix_covers_every_rpc() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    for target, service in SERVICES.items():
        covered = {c.method for c in CASES if c.target == target}
        missing = {m.name for m in service.methods} - covered
        assert not missing, f"{service.full_name}: no bad-input case for {sorted(missing)}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(env: Env, case: Case) -> None:
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


# ---- messages on an open AgentHub.Connect stream ----


def _stream(env: Env, outgoing: queue.Queue[Any]) -> Any:
    def requests() -> Iterator[bytes]:
        while (item := outgoing.get()) is not None:
            yield _serialize(item)

    connect = env.channels["cp"].stream_stream(
        "/sluice.v1.AgentHub/Connect",
        request_serializer=lambda raw: raw,
        response_deserializer=agent_pb2.ControlMessage.FromString,
    )
    return connect(requests(), timeout=60)


def report(seq: int, *windows: agent_pb2.VersionWindow) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(report=agent_pb2.MetricReport(seq=seq, window_seconds=1.0, windows=windows))


def test_agent_stream_refuses_malformed_messages(env: Env) -> None:
    """After a valid Hello, bad ACKs, NACKs and reports change nothing and are not acknowledged.

    A stream carries no status per message: the hub refuses a bad one by not applying it (and,
    for a metric report, by not acknowledging it, or skipping the window that is malformed).
    """
    outgoing: queue.Queue[Any] = queue.Queue()
    call = _stream(env, outgoing)
    try:
        outgoing.put(hello(agent_id="stream-probe", name="stream-probe"))
        responses = iter(call)
        assert next(responses).WhichOneof("body") == "hello_ack"
        assert next(responses).WhichOneof("body") == "snapshot"
        state = DbSnapshot(env.cp.options.db_url.removeprefix("sqlite:///"), None, {"agents": {"last_seen"}})
        before = state.take()
        unknown_role = agent_pb2.VersionWindow(
            deployment="web",
            version=ref("cancer", "v1"),
            role=99,
            requests=5,
            rows=5,  # type: ignore[arg-type]
        )
        for message in (
            agent_pb2.AgentMessage(ack=agent_pb2.SnapshotAck(snapshot_id=1, generations={"web": -1})),
            agent_pb2.AgentMessage(ack=agent_pb2.SnapshotAck(snapshot_id=1, generations={TRAVERSAL: 1})),
            agent_pb2.AgentMessage(ack=agent_pb2.SnapshotAck(snapshot_id=1, generations={HUGE: 1})),
            agent_pb2.AgentMessage(nack=agent_pb2.SnapshotNack(snapshot_id=1, reason="x", generations={"web": -5})),
            report(2**64 - 1),  # beyond the int64 the store keeps
            report(7, unknown_role),  # an enum number protobuf accepts but Sluice does not know
            report(8),  # a valid, empty report: its ACK shows everything before it was handled
        ):
            outgoing.put(message)
        acked: list[int] = []
        for message in responses:
            if message.WhichOneof("body") == "report_ack":
                acked.append(message.report_ack.seq)
                if message.report_ack.seq == 8:
                    break
        assert acked == [7, 8], f"acknowledged {acked}: a report with an impossible seq must not be"
        after = state.take()
        receipts = set(after.pop("metric_receipts")) - set(before.pop("metric_receipts"))
        assert len(receipts) == 2 and all("stream-probe" in r for r in receipts)
        assert after == before, "a malformed message on the stream changed the database"
        state.close()
    finally:
        outgoing.put(None)
        call.cancel()
    assert_serving(env)


def test_the_snapshot_sees_a_change(env: Env) -> None:
    """The comparison the matrix relies on is not blind: a real mutation shows up (audit included)."""
    before = env.cp_db.take()
    with SluiceClient(env.cp.address, token="") as client:
        client.deploy("snapshot-check", "cancer:v1")
    after = env.cp_db.take()
    changed = {table for table in after if after[table] != before.get(table)}
    assert {"deployments", "traffic_splits", "deployment_history", "audit_events"} <= changed
