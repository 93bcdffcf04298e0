"""Serving agents end to end: a control plane and two `sluice agent` processes on loopback.

Deploy, predict, sticky weighted splits, ramps, the Open Inference Protocol through tritonclient,
bad requests answered with clear statuses, and snapshots an agent must refuse (NACK).
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest

from controlplane.config import AgentsConfig, Config
from core.client import SluiceClient, batch_request, batch_results, predict_request
from protos import inference_pb2, oip_pb2, oip_pb2_grpc
from runtime.model import ModelRuntime
from tests.agent.cluster import AgentProcess, role_name, wait_for_agents, wait_until
from tests.controlplane.monitoring.support import SampleKey, prometheus_samples, sample
from tests.harness import ServerThread, free_port, run_cli, start_server, unique
from tests.models import (
    ECHO_OFFSET,
    breast_cancer_rows,
    make_baseline,
    make_classifier_onnx,
    make_int64_echo_onnx,
    make_mixed_onnx,
    make_regressor_onnx,
    mixed_columns,
    mixed_pipeline,
    mixed_records,
    mixed_rows,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("agents-e2e")]

HEARTBEAT = 0.5


@dataclass
class Cluster:
    server: ServerThread
    agents: list[AgentProcess]
    model: str
    models_dir: Path
    metrics_port: int

    @property
    def address(self) -> str:
        return self.server.address

    def client(self) -> SluiceClient:
        return SluiceClient(self.address, token="")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("agents-e2e")
    models = root / "models"
    models.mkdir()
    config = Config(agents=AgentsConfig(heartbeat_seconds=HEARTBEAT, lost_after_missed=3))
    server = start_server(root / "cp", config=config)
    agents: list[AgentProcess] = []
    try:
        model = unique("cancer")
        with SluiceClient(server.address, token="") as client:
            client.register_version(model, "v1", make_classifier_onnx(models), make_baseline(models))
            client.register_version(model, "v2", make_classifier_onnx(models, "gbm"), make_baseline(models))
        for i, extra in enumerate((["--label", "zone=a"], [])):
            name = unique(f"agent{i}")
            # The first serves /metrics on a port of its own choosing (its --listen port is 0), and says which.
            metrics = None if i == 0 else "0"
            agents.append(
                AgentProcess(server.address, name, root / name, root / f"{name}.log", extra=extra, metrics_port=metrics)
            )
        with SluiceClient(server.address, token="") as client:  # WaitForSync is vacuous before a connect
            names = {a.name for a in agents}
            wait_until(
                lambda: names <= {a.name for a in client.agents() if a.state == "connected"},
                timeout=60,
                what=f"agents {', '.join(sorted(names))} connected",
            )
        assert agents[0].process is not None
        match = re.search(r"\(/metrics on port (\d+)\)", agents[0].process.output())
        assert match is not None, agents[0].process.output()
        metrics_port = int(match.group(1))
        yield Cluster(server, agents, model, models, metrics_port)
    finally:
        for agent in agents:
            agent.stop()
        server.stop()


def cli_ok(cluster: Cluster, *args: str, timeout: float = 120) -> str:
    result = run_cli(*args, address=cluster.address, timeout=timeout)
    assert result.returncode == 0, f"sluice {' '.join(args)}: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def test_deploy_predict_split_sticky_and_ramp(cluster: Cluster) -> None:
    model, dep = cluster.model, unique("web")
    a, b = cluster.agents
    cli_ok(cluster, "deploy", dep, f"{model}:v1")
    with cluster.client() as client:
        assert client.wait_for_sync(dep, timeout=30).in_sync

    row = breast_cancer_rows(1, seed=1)[0]
    for agent in (a, b):
        out = json.loads(
            cli_ok(cluster, "predict", dep, "--agent", agent.address, "--input", json.dumps(row.tolist()), "--json")
        )
        assert out["served_by"] == f"{model}:v1" and out["role"] == "champion" and out["agent"] == agent.name
        assert out["labels"][0] in (0, 1) and abs(sum(out["probabilities"][0]) - 1) < 1e-4

    out = cli_ok(cluster, "traffic", "set", dep, f"{model}:v1=90", f"{model}:v2=10", "--wait")
    assert "applied by 2 agent(s)" in out

    # 10,000 keyed predictions, half through each agent: 90/10 within 1.5 points.
    rows = breast_cancer_rows(10_000, seed=2)
    served: dict[str, str] = {}
    for i in range(10_000):
        agent = (a, b)[i % 2]
        response = agent.predict(dep, rows[i : i + 1], key=f"user-{i}")
        served[f"user-{i}"] = response.served_by.version
        assert role_name(response.role) == ("champion" if response.served_by.version == "v1" else "challenger")
    share = sum(v == "v2" for v in served.values()) / len(served)
    assert abs(share - 0.10) <= 0.015, share

    # The same key always gets the same version, on either agent, one row or in a batch.
    keys = [f"user-{i}" for i in range(2000)]
    for agent in (a, b):
        assert agent.versions_of_keys(dep, rows[:2000], keys) == [served[k] for k in keys]
    for key in keys[:50]:
        assert {a.predict(dep, rows[:1], key=key).served_by.version for _ in range(3)} == {served[key]}

    # Ramping the challenger only ever moves keys toward it.
    on_v2 = {k for k in keys if served[k] == "v2"}
    for share_v2 in (50, 100):
        cli_ok(cluster, "traffic", "set", dep, f"{model}:v1={100 - share_v2}", f"{model}:v2={share_v2}", "--wait")
        now = dict(zip(keys, b.versions_of_keys(dep, rows[:2000], keys), strict=True))
        assert on_v2 <= {k for k, v in now.items() if v == "v2"}
        share = sum(v == "v2" for v in now.values()) / len(keys)
        assert abs(share - share_v2 / 100) < 0.05  # 4.5 standard deviations at 2,000 keys
        on_v2 = {k for k, v in now.items() if v == "v2"}
    assert on_v2 == set(keys)

    listed = json.loads(cli_ok(cluster, "agents", "--json"))
    mine = {x["name"]: x for x in listed if x["name"] in (a.name, b.name)}
    assert set(mine) == {a.name, b.name}
    for agent in (a, b):
        info = mine[agent.name]
        assert info["state"] == "connected" and info["address"] == agent.address
        sync = next(d for d in info["deployments"] if d["deployment"] == dep)
        assert sync["in_sync"] and sync["applied_generation"] == sync["desired_generation"] == 4
    assert mine[a.name]["labels"] == {"zone": "a"}
    table = cli_ok(cluster, "agents")
    assert a.name in table and f"{dep}@4✓" in table


def test_tritonclient_infer_matches_sluice_predict(cluster: Cluster, tmp_path: Path) -> None:
    dep = unique("oip")
    cli_ok(cluster, "deploy", dep, f"{cluster.model}:v2")
    with cluster.client() as client:
        assert client.wait_for_sync(dep, timeout=30).in_sync
    agent = cluster.agents[0]
    rows = breast_cancer_rows(5, seed=3).astype(np.float32)
    expected = json.loads(
        cli_ok(cluster, "predict", dep, "--agent", agent.address, "--input", json.dumps(rows.tolist()), "--json")
    )
    rows_path = tmp_path / "rows.npy"
    np.save(rows_path, rows)
    # tritonclient cannot share a process with protos.oip_pb2 (same message names): it runs in a child.
    probe = subprocess.run(
        [sys.executable, "-m", "tests.integration.tritonclient_probe", agent.address, dep, str(rows_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    seen = json.loads(probe.stdout)

    assert seen["live"] and seen["ready"] and seen["model_ready"]
    assert not seen["unknown_model_ready"]
    assert seen["metadata"] == {"name": dep, "datatype": "FP32", "shape": [-1, 30]}
    assert seen["labels"] == expected["labels"]
    assert np.allclose(seen["probabilities"], expected["probabilities"], atol=1e-6)
    assert seen["model_version"] == "v2"
    assert seen["only_label"] == expected["labels"] and not seen["only_has_probabilities"]
    assert seen["contents_labels"] == expected["labels"]
    assert seen["short_rows"]["status"] == "StatusCode.INVALID_ARGUMENT" and "30" in seen["short_rows"]["message"]
    assert seen["ints"]["status"] == "StatusCode.INVALID_ARGUMENT" and "FP32" in seen["ints"]["message"]
    assert "no output 'embedding'" in seen["unknown_output"]["message"]
    assert seen["unknown_model"]["status"] == "StatusCode.NOT_FOUND"


def _oip_mixed(dep: str, rows: np.ndarray, raw: bool) -> oip_pb2.ModelInferRequest:
    """What tritonclient sends: FP64 and BYTES inputs [rows, 1], in `contents` or as
    raw_input_contents (BYTES elements each after a 4-byte little-endian length)."""
    request = oip_pb2.ModelInferRequest(model_name=dep)
    for name, column in mixed_columns(rows).items():
        strings = column.dtype == object
        tensor = request.inputs.add(name=name, datatype="BYTES" if strings else "FP64", shape=list(column.shape))
        items = [s.encode() for s in column.ravel().tolist()] if strings else []
        if raw:
            request.raw_input_contents.append(
                b"".join(struct.pack("<I", len(b)) + b for b in items) if strings else column.astype("<f8").tobytes()
            )
        elif strings:
            tensor.contents.bytes_contents.extend(items)
        else:
            tensor.contents.fp64_contents.extend(column.ravel().tolist())
    return request


def _oip_label_column(response: oip_pb2.ModelInferResponse) -> list[str]:
    raw = response.raw_output_contents[[o.name for o in response.outputs].index("label")]
    labels, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        labels.append(raw[offset + 4 : offset + 4 + length].decode())
        offset += 4 + length
    return labels


def test_a_mixed_type_pipeline_answers_like_scikit_learn_on_every_path(cluster: Cluster) -> None:
    """Issue 14: a skl2onnx Pipeline(ColumnTransformer(OneHotEncoder on 2 string columns,
    SimpleImputer + StandardScaler on 3 float64 columns with missing values), LogisticRegression)
    with string classes, registered and deployed on both agents, answers Predict (records and typed
    tensors), `sluice predict --features` and OIP (BYTES + FP64, contents and raw) exactly as the
    pipeline's own predict; an int64 of 2^40 + 1 reaches a model unchanged."""
    model, dep = unique("mixed"), unique("mixed")
    echo, echo_dep = unique("echo"), unique("echo")
    with cluster.client() as client:
        version = client.register_version(model, "v1", make_mixed_onnx(cluster.models_dir))
        assert version.task == "classifier" and [i.dtype for i in version.inputs][-2:] == ["string", "string"]
        client.register_version(echo, "v1", make_int64_echo_onnx(cluster.models_dir))
        client.deploy(dep, f"{model}:v1")
        client.deploy(echo_dep, f"{echo}:v1")
        wait_for_agents(client, dep, [a.name for a in cluster.agents])
        wait_for_agents(client, echo_dep, [a.name for a in cluster.agents])
    rows = mixed_rows(16, seed=31)
    pipeline = mixed_pipeline()
    expected, probabilities = pipeline.predict(rows).tolist(), pipeline.predict_proba(rows)
    assert any(isinstance(v, float) and np.isnan(v) for v in rows[:, :3].ravel()), "the rows have missing values"
    big = np.array([[ECHO_OFFSET + 1]], dtype=np.int64)  # 2**40 + 1
    for agent in cluster.agents:
        assert agent.stub is not None
        oip = oip_pb2_grpc.GRPCInferenceServiceStub(agent.channel)
        for request in (
            predict_request(dep, records=mixed_records(rows)),
            predict_request(dep, inputs=mixed_columns(rows)),
        ):
            response = agent.stub.Predict(request, timeout=30)
            assert list(response.class_labels) == expected and list(response.classes) == ["churn", "stay"]
            got = np.asarray(response.probabilities.values).reshape(16, 2)
            np.testing.assert_allclose(got, probabilities, atol=1e-5)
        for raw in (False, True):
            answer = oip.ModelInfer(_oip_mixed(dep, rows, raw), timeout=30)
            assert _oip_label_column(answer) == expected
        features = json.dumps(mixed_records(rows))
        out = json.loads(cli_ok(cluster, "predict", dep, "--agent", agent.address, "--features", features, "--json"))
        assert out["class_labels"] == expected and out["served_by"] == f"{model}:v1"
        # The int64 path: typed tensor and OIP INT64 raw; the model answers n - 2**40.
        typed = agent.stub.Predict(predict_request(echo_dep, inputs={"n": big}), timeout=30)
        infer = oip_pb2.ModelInferRequest(model_name=echo_dep, raw_input_contents=[big.astype("<i8").tobytes()])
        infer.inputs.add(name="n", datatype="INT64", shape=[1, 1])
        raw_value = np.frombuffer(oip.ModelInfer(infer, timeout=30).raw_output_contents[0], "<f4")[0]
        assert list(typed.values) == [1.0] and raw_value == 1.0
    one = json.dumps(mixed_records(rows[:1])[0])
    text = cli_ok(cluster, "predict", dep, "--agent", cluster.agents[0].address, "--features", one)
    assert f"label={expected[0]}" in text and "probabilities=[churn " in text


def test_predict_batch_columns_hold_what_each_model_computes(cluster: Cluster) -> None:
    """PredictBatch's columns against the models themselves (onnxruntime on the same files): a
    50/50 split of a classifier pair by routing key, and a regressor; the deprecated `rows` say
    the same when a request does not set columnar_only, and are left out when it does."""
    model, dep, ridge = cluster.model, unique("columns"), unique("ridge")
    agent = cluster.agents[0]
    with cluster.client() as client:
        client.register_version(ridge, "v1", make_regressor_onnx(cluster.models_dir), make_baseline(cluster.models_dir))
    cli_ok(cluster, "deploy", dep, f"{model}:v1")
    cli_ok(cluster, "traffic", "set", dep, f"{model}:v1=50", f"{model}:v2=50", "--wait")
    cli_ok(cluster, "deploy", f"{dep}-r", f"{ridge}:v1")
    with cluster.client() as client:
        assert client.wait_for_sync(f"{dep}-r", timeout=30).in_sync
    models = {
        f"{model}:v1": ModelRuntime(make_classifier_onnx(cluster.models_dir)),
        f"{model}:v2": ModelRuntime(make_classifier_onnx(cluster.models_dir, "gbm")),
        f"{ridge}:v1": ModelRuntime(make_regressor_onnx(cluster.models_dir)),
    }
    rows = breast_cancer_rows(300, seed=11)
    keys, ids = [f"key-{i}" for i in range(300)], [f"id-{i}" for i in range(300)]

    response = agent.stub.PredictBatch(batch_request(dep, rows, keys, ids), timeout=60)
    assert not response.rows, "columnar_only answers without the deprecated rows"
    results = batch_results(response)
    assert len(results) == 300 and results.request_ids == ids and results.agent == agent.name
    assert results.values is None and results.labels is not None and results.probabilities is not None
    assert results.probabilities.shape == (300, 2)
    served = results.row_versions()
    assert set(served) == {f"{model}:v1", f"{model}:v2"}
    assert served == [f"{model}:{v}" for v in agent.versions_of_keys(dep, rows, keys)]  # sticky per key
    for name in set(served):
        mine = np.array([s == name for s in served])
        expected = models[name].predict(rows[mine])
        assert results.labels[mine].tolist() == expected.labels.tolist(), name
        np.testing.assert_allclose(results.probabilities[mine], expected.probabilities, rtol=1e-6, atol=1e-7)

    # A client written before release 0.2 (no columnar_only) also gets one RowResult per row.
    legacy_request = batch_request(dep, rows, keys, ids)
    legacy_request.columnar_only = False
    legacy = agent.stub.PredictBatch(legacy_request, timeout=60)
    assert legacy.served_by == response.served_by and legacy.labels == response.labels
    assert [(r.request_id, r.served_by, r.label, r.value) for r in legacy.rows] == [
        (i, s, label, 0.0) for i, s, label in zip(ids, results.served_by.tolist(), results.labels.tolist(), strict=True)
    ]

    # A regressor fills `values` (float64 of the model's float32 output) and no labels.
    response = agent.stub.PredictBatch(batch_request(f"{dep}-r", rows), timeout=60)
    results = batch_results(response)
    assert results.labels is None and results.probabilities is None and results.request_ids == []
    assert results.values is not None and results.values.dtype == np.float64
    expected_values = models[f"{ridge}:v1"].predict(rows).values
    assert expected_values is not None
    assert results.values.tolist() == expected_values.astype(np.float64).ravel().tolist()
    assert results.served_by.tolist() == [0] * 300 and results.row_versions()[0] == f"{ridge}:v1"


def rpc_error(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    return info.value.code(), info.value.details() or ""


def test_bad_requests_get_clear_statuses_and_the_agent_keeps_serving(cluster: Cluster, tmp_path: Path) -> None:
    dep = unique("strict")
    cli_ok(cluster, "deploy", dep, f"{cluster.model}:v1")
    with cluster.client() as client:
        assert client.wait_for_sync(dep, timeout=30).in_sync
    agent = cluster.agents[1]
    stub = agent.stub
    assert stub is not None
    good = breast_cancer_rows(2, seed=4).astype(np.float32)

    def predict(tensor: inference_pb2.Tensor, deployment: str = dep) -> object:
        return lambda: stub.Predict(inference_pb2.PredictRequest(deployment=deployment, input=tensor), timeout=10)

    nan = good.copy()
    nan[0, 3] = np.nan
    inf = good.copy()
    inf[1, 0] = np.inf
    cases = {
        "unknown deployment": (
            predict(inference_pb2.Tensor(shape=[2, 30], values=good.ravel()), unique("ghost")),
            grpc.StatusCode.NOT_FOUND,
            "no deployment named",
        ),
        "feature count": (
            predict(inference_pb2.Tensor(shape=[2, 29], values=good[:, :29].ravel())),
            grpc.StatusCode.INVALID_ARGUMENT,
            "30",
        ),
        "rank": (
            predict(inference_pb2.Tensor(shape=[60], values=good.ravel())),
            grpc.StatusCode.INVALID_ARGUMENT,
            "30",
        ),
        "shape vs values": (
            predict(inference_pb2.Tensor(shape=[3, 30], values=good.ravel())),
            grpc.StatusCode.INVALID_ARGUMENT,
            "needs 90 values",
        ),
        "raw not float32": (
            predict(inference_pb2.Tensor(shape=[1, 30], raw=b"\x00" * 7)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "float32",
        ),
        "nan": (
            predict(inference_pb2.Tensor(shape=[2, 30], values=nan.ravel())),
            grpc.StatusCode.INVALID_ARGUMENT,
            "NaN",
        ),
        "infinity": (
            predict(inference_pb2.Tensor(shape=[2, 30], values=inf.ravel())),
            grpc.StatusCode.INVALID_ARGUMENT,
            "inf",
        ),
        "empty batch": (
            lambda: stub.PredictBatch(
                inference_pb2.PredictBatchRequest(deployment=dep, inputs=inference_pb2.Tensor(shape=[0, 30])),
                timeout=10,
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "no rows",
        ),
        "no input": (
            lambda: stub.Predict(inference_pb2.PredictRequest(deployment=dep), timeout=10),
            grpc.StatusCode.INVALID_ARGUMENT,
            "no input",
        ),
        "keys per row": (
            lambda: stub.PredictBatch(
                inference_pb2.PredictBatchRequest(
                    deployment=dep,
                    inputs=inference_pb2.Tensor(shape=[2, 30], values=good.ravel()),
                    routing_keys=["only-one"],
                ),
                timeout=10,
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "one per row",
        ),
        "too large": (
            predict(inference_pb2.Tensor(shape=[600_000, 30], raw=bytes(600_000 * 30 * 4))),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            str(16 * 1024 * 1024),
        ),
        "feedback without truth": (
            lambda: stub.Feedback(inference_pb2.FeedbackRequest(deployment=dep, request_id="x"), timeout=10),
            grpc.StatusCode.INVALID_ARGUMENT,
            "label",
        ),
    }
    for name, (call, code, text) in cases.items():
        got, message = rpc_error(call)
        assert got == code, f"{name}: {got} {message}"
        assert text in message, f"{name}: {message!r} lacks {text!r}"
        assert "Traceback" not in message
    # Still serving, and feedback joins a prediction by its request id.
    response = stub.Predict(
        inference_pb2.PredictRequest(deployment=dep, input=inference_pb2.Tensor(shape=[2, 30], values=good.ravel())),
        timeout=10,
    )
    assert len(response.labels) == 2 and response.request_id
    feedback = stub.Feedback(
        inference_pb2.FeedbackRequest(deployment=dep, request_id=f"{response.request_id}/0", label=1), timeout=10
    )
    assert feedback.matched
    assert not stub.Feedback(
        inference_pb2.FeedbackRequest(deployment=dep, request_id="never-seen", label=1), timeout=10
    ).matched

    # The CLI says the same things on one line.
    result = run_cli("predict", unique("ghost"), "--agent", agent.address, "--input", "[1, 2]")
    assert result.returncode != 0 and result.stderr.startswith("error: ") and "NOT_FOUND" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = run_cli("predict", dep, "--agent", agent.address, "--input", "[1, 2]")
    assert result.returncode != 0 and "30" in result.stderr and "INVALID_ARGUMENT" in result.stderr

    # An agent that never reached a control plane has no snapshot: UNAVAILABLE, health NOT_SERVING.
    lonely = AgentProcess(f"127.0.0.1:{free_port()}", unique("lonely"), tmp_path / "c", tmp_path / "lonely.log")
    try:
        assert lonely.stub is not None
        code, message = rpc_error(
            lambda: lonely.stub.Predict(  # type: ignore[union-attr]
                inference_pb2.PredictRequest(deployment=dep, input=inference_pb2.Tensor(shape=[1, 30], values=good[0])),
                timeout=10,
            )
        )
        assert code == grpc.StatusCode.UNAVAILABLE and "no snapshot yet" in message
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        assert lonely.channel is not None
        health = health_pb2_grpc.HealthStub(lonely.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        lonely.stop()


def test_refused_snapshots_keep_the_old_version_serving(cluster: Cluster) -> None:
    model, dep = cluster.model, unique("guarded")
    cli_ok(cluster, "deploy", dep, f"{model}:v1")
    with cluster.client() as client:
        assert client.wait_for_sync(dep, timeout=30).in_sync
        corrupt = client.register_version(model, unique("v"), make_classifier_onnx(cluster.models_dir, "gbm", seed=7))
        missing = client.register_version(model, unique("v"), make_classifier_onnx(cluster.models_dir, "gbm", seed=8))
    store = cluster.server.ctx.artifacts
    path = store.path(corrupt.sha256)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")  # the bytes no longer match the sha256
    rows = breast_cancer_rows(300, seed=5)
    keys = [f"k{i}" for i in range(300)]

    for bad, text in ((corrupt, "sha256 mismatch"), (missing, "unknown artifact")):
        if bad is missing:
            store.path(missing.sha256).unlink()
        result = run_cli(
            "traffic",
            "set",
            dep,
            f"{model}:v1=50",
            f"{model}:{bad.ref.version}=50",
            "--wait",
            "--timeout",
            "120",
            address=cluster.address,
        )
        # Every agent refused: --wait says so at once instead of waiting out its timeout.
        assert result.returncode == 8 and "was refused by" in result.stderr, result.stderr
        assert all(agent.name in result.stderr for agent in cluster.agents), result.stderr
        for agent in cluster.agents:
            assert set(agent.versions_of_keys(dep, rows, keys)) == {"v1"}
        with cluster.client() as client:
            infos = {a.name: a for a in client.agents()}
        for agent in cluster.agents:
            info = infos[agent.name]
            assert text in info.last_nack and bad.sha256[:12] in info.last_nack, info.last_nack
            sync = next(d for d in info.deployments if d.deployment == dep)
            assert not sync.in_sync and sync.applied_generation < sync.desired_generation

    with cluster.client() as client:
        alerts = [x for x in client.alerts(deployment=dep) if x.kind == "snapshot_nack"]
        assert alerts, "a refused snapshot opens an alert"
        cli_ok(cluster, "traffic", "set", dep, f"{model}:v1=50", f"{model}:v2=50", "--wait")
        for agent in cluster.agents:
            assert set(agent.versions_of_keys(dep, rows, keys)) == {"v1", "v2"}


def test_agent_metrics_reach_prometheus_and_the_control_plane(cluster: Cluster) -> None:
    dep = unique("watched")
    cli_ok(cluster, "deploy", dep, f"{cluster.model}:v1")
    with cluster.client() as client:
        assert client.wait_for_sync(dep, timeout=30).in_sync
    agent = cluster.agents[0]
    rows = breast_cancer_rows(20, seed=6)
    for i in range(20):
        agent.predict(dep, rows[i : i + 1])

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster.metrics_port}/metrics", timeout=5) as page:
            return page.read().decode()

    answered = sample("sluice_predictions_total", code="OK", deployment=dep, version=f"{cluster.model}:v1")

    def scraped() -> dict[SampleKey, float] | None:
        # Each answer is counted just after it is sent (the agent defers its bookkeeping), so the
        # last call's count may land a moment after the call returned: wait for all 20.
        got = prometheus_samples(scrape())
        return got if got.get(answered, 0) >= 20 else None

    got = wait_until(scraped, what="20 answered predictions in the agent's prometheus metrics")
    assert got[answered] == 20  # and not more
    assert any(name == "sluice_prediction_latency_seconds_bucket" for name, _labels in got)
    assert got[sample("sluice_agent_connected")] == 1
    assert got[sample("sluice_snapshot_generation", deployment=dep)] == 1

    # The windows travel to the control plane, which ACKs them (the agent then forgets them).
    from sqlalchemy import func, select

    from controlplane.store.models import MetricReceiptRow

    def receipts() -> int:
        with cluster.server.ctx.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(MetricReceiptRow)) or 0)

    wait_until(lambda: receipts() > 0, what="metric reports stored")
