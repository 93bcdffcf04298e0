"""The prediction log end to end: a real control plane (in this process, on loopback) and a real
`sluice agent` process; predictions go in, Parquet rows come out of the control plane's log dir,
read the way a user reads them (pyarrow.dataset, hive partitioning).

Predict, PredictBatch and a mixed-type model (strings, float64 with NaN, string classes) land
with their values; a sample rate `off` logs nothing; an agent SIGKILLed with segments on disk
sends them after its restart, and none arrives twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from agent.logpending import segment_files
from core.client import SluiceClient, batch_request, predict_request, ref
from protos import controlplane_pb2, oip_pb2, oip_pb2_grpc
from runtime.logsegment import read_table
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import ServerThread, free_port, start_server, unique
from tests.models import breast_cancer_rows, make_classifier_onnx, make_mixed_onnx, mixed_records, mixed_rows

pytestmark = pytest.mark.xdist_group("prediction-log")

HIVE = ds.partitioning(
    pa.schema([("deployment", pa.string()), ("date", pa.string()), ("version", pa.string())]), flavor="hive"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    server = start_server(tmp_path_factory.mktemp("cp"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def logged(server: ServerThread, deployment: str) -> pa.Table:
    """Every row the control plane holds for `deployment`, read as a hive-partitioned dataset."""
    root = server.ctx.artifacts.root.parent / "predictions"
    if not root.exists():
        return pa.table({})
    dataset = ds.dataset(root, format="parquet", partitioning=HIVE)
    # Segments of other deployments may have other input columns: read only this one's files.
    files = [f for f in dataset.files if f"/deployment={deployment}/" in f]
    if not files:
        return pa.table({})
    return ds.dataset(files, format="parquet", partitioning=HIVE, partition_base_dir=str(root)).to_table()


def pending_ids(cache: Path) -> list[str]:
    """The request ids in the agent's pending segments (a segment deleted meanwhile is gone)."""
    ids: list[str] = []
    for path in segment_files(cache / "log" / "pending"):  # closed segments, not a .tmp- being written
        try:
            ids += read_table(path.read_bytes()).column("request_id").to_pylist()
        except (OSError, pa.ArrowException):
            continue
    return ids


def pending_rows(cache: Path) -> int:
    return len(pending_ids(cache))


def segments_received(server: ServerThread, outcome: str) -> float:
    """The control plane's `sluice_log_segments_received_total{outcome}` so far."""
    from controlplane.monitoring.state import state_of

    registry = state_of(server.ctx).metrics.registry
    return registry.get_sample_value("sluice_log_segments_received_total", {"outcome": outcome}) or 0.0


def test_predictions_of_every_kind_arrive_once_with_their_values(
    server: ServerThread, models: Path, tmp_path: Path
) -> None:
    model, mixed, dep, dep_mixed, dep_off = unique("m"), unique("mixed"), unique("d"), unique("dm"), unique("doff")
    dep_shadow = unique("ds")
    with SluiceClient(server.address, token="") as client:
        client.register_version(model, "1", make_classifier_onnx(models))
        client.register_version(model, "2", make_classifier_onnx(models, "gbm"))
        client.register_version(mixed, "1", make_mixed_onnx(models))
        client.deploy(dep, f"{model}:1")
        client.deploy(dep_shadow, f"{model}:1")
        client.start_experiment(
            unique("shadow"),
            controlplane_pb2.ExperimentConfig(
                deployment=dep_shadow, challenger=ref(f"{model}:2"), traffic_percent=10, shadow=True
            ),
        )
        client.deploy(dep_mixed, f"{mixed}:1")
        client.deploy(dep_off, f"{model}:1")
        off = client.set_log_sample_rate(dep_off, 0.0, reason="test")
        assert off.log_sample_rate == 0.0
        [status] = client.status(dep_off)
        assert status.deployment.log_sample_rate == 0.0
        assert any(e.action == "log.set" for e in client.audit() if e.target == dep_off)
    stored_before = segments_received(server, "stored")
    agent = AgentProcess(server.address, unique("agent"), tmp_path / "agent", tmp_path / "agent.log")
    try:
        with SluiceClient(server.address, token="") as client:
            for name in (dep, dep_mixed, dep_off, dep_shadow):
                wait_for_agents(client, name, [agent.name])
        assert agent.stub is not None
        rows = breast_cancer_rows(40, seed=3).astype(np.float32)
        answers: dict[str, str] = {}
        for i in range(10):  # Predict: one row each, a request id and a routing key
            response = agent.stub.Predict(
                predict_request(dep, rows[i : i + 1], routing_key=f"user-{i}", request_id=f"single-{i}"), timeout=30
            )
            answers[f"single-{i}"] = str(response.labels[0])
        batch_ids = [f"batch-{i}" for i in range(30)]
        keys = [f"key-{i}" for i in range(30)]
        agent.stub.PredictBatch(batch_request(dep, rows[10:40], keys, batch_ids), timeout=30)
        table = mixed_rows(6, seed=5)
        for i in range(6):
            agent.stub.Predict(
                predict_request(dep_mixed, records=mixed_records(table[i : i + 1]), request_id=f"mixed-{i}"),
                timeout=30,
            )
        for i in range(5):
            agent.stub.Predict(predict_request(dep_off, rows[i : i + 1], request_id=f"off-{i}"), timeout=30)
            agent.stub.Predict(predict_request(dep_shadow, rows[i : i + 1], request_id=f"shadow-{i}"), timeout=30)
        infer = oip_pb2.ModelInferRequest(model_name=dep, id="oip-0")
        infer.inputs.add(name="input", datatype="FP32", shape=[1, rows.shape[1]])
        infer.raw_input_contents.append(rows[0].astype("<f4").tobytes())
        assert agent.channel is not None
        oip_pb2_grpc.GRPCInferenceServiceStub(agent.channel).ModelInfer(infer, timeout=30)

        wait_until(lambda: logged(server, dep).num_rows >= 41, timeout=30, what="41 rows of the numeric model")
        wait_until(lambda: logged(server, dep_mixed).num_rows >= 6, timeout=30, what="6 rows of the mixed model")
        got = logged(server, dep)
        assert got.num_rows == 41
        by_id = {r["request_id"]: r for r in got.to_pylist()}
        assert set(by_id) == set(answers) | set(batch_ids) | {"oip-0"}
        assert by_id["oip-0"]["in_input"] == pytest.approx(rows[0].tolist())
        for i in range(10):
            row = by_id[f"single-{i}"]
            assert row["label"] == answers[f"single-{i}"] and row["routing_key"] == f"user-{i}"
            assert row["in_input"] == pytest.approx(rows[i].tolist())
            assert row["deployment"] == dep and row["model"] == model and row["version"] == "1"
            assert row["role"] == "champion" and row["agent"] == agent.name and row["latency_ms"] > 0
            assert len(row["probabilities"]) == 2
        assert by_id["batch-7"]["routing_key"] == "key-7"
        assert by_id["batch-7"]["in_input"] == pytest.approx(rows[17].tolist())

        got_mixed = {r["request_id"]: r for r in logged(server, dep_mixed).to_pylist()}
        assert len(got_mixed) == 6
        for i in range(6):
            row, sent = got_mixed[f"mixed-{i}"], table[i]
            assert row["in_plan"] == sent[3] and row["in_country"] == sent[4]
            for column, value in zip(("in_age", "in_income", "in_visits"), sent[:3], strict=True):
                assert math.isnan(row[column]) if math.isnan(value) else row[column] == value
            assert row["label"] in ("churn", "stay")
        # A shadow's answers are logged beside the champion's, under the same request ids.
        wait_until(lambda: logged(server, dep_shadow).num_rows >= 10, timeout=30, what="champion and shadow rows")
        shadow_rows = logged(server, dep_shadow).to_pylist()
        assert sorted((r["request_id"], r["version"], r["role"]) for r in shadow_rows) == sorted(
            [(f"shadow-{i}", "1", "champion") for i in range(5)] + [(f"shadow-{i}", "2", "shadow") for i in range(5)]
        )
        # Logging off: the requests were answered and nothing was written.
        assert logged(server, dep_off).num_rows == 0
        assert pending_rows(tmp_path / "agent") == 0
        # The agent's Arrow segments were stored (as Parquet, read above) and counted.
        assert segments_received(server, "stored") >= stored_before + 3
    finally:
        agent.stop()


def test_segments_on_disk_survive_a_sigkill_and_arrive_once(server: ServerThread, models: Path, tmp_path: Path) -> None:
    """Twice: killed while segments ship (some in flight: resent, acknowledged once), then killed
    while the control plane is out of reach (every segment still pending: sent after the restart)."""
    model, dep = unique("m"), unique("d")
    with SluiceClient(server.address, token="") as client:
        client.register_version(model, "1", make_classifier_onnx(models))
        client.deploy(dep, f"{model}:1")
    cache = tmp_path / "agent"
    agent = AgentProcess(server.address, unique("agent"), cache, tmp_path / "agent.log")
    rows = breast_cancer_rows(200, seed=9).astype(np.float32)
    sent = 0

    def traffic(first: int) -> int:
        assert agent.stub is not None
        for start in range(0, 200, 20):
            ids = [f"r{first}-{i}" for i in range(start, start + 20)]
            agent.stub.PredictBatch(batch_request(dep, rows[start : start + 20], request_ids=ids), timeout=30)
            agent.stub.Predict(
                predict_request(dep, rows[start : start + 1], request_id=f"s{first}-{start}"), timeout=30
            )
        return 210

    try:
        with SluiceClient(server.address, token="") as client:
            wait_for_agents(client, dep, [agent.name])
        sent += traffic(1)
        # Every row is in a file (pending at the agent, or stored upstream): then the agent dies.
        wait_until(
            lambda: pending_rows(cache) + logged(server, dep).num_rows >= sent, timeout=30, what="rows in segments"
        )
        agent.stop(crash=True)
        # Back without its control plane (an address nobody listens on): it serves from its cache
        # and every segment stays pending.
        agent.controlplane = f"127.0.0.1:{free_port()}"
        agent.log = tmp_path / "agent-2.log"  # a fresh log: its ready line is this run's
        agent.start()
        sent += traffic(2)
        wait_until(
            lambda: sum(i.startswith(("r2-", "s2-")) for i in pending_ids(cache)) == 210,
            timeout=30,
            what="the second run's rows pending",
        )
        agent.stop(crash=True)
        agent.controlplane = server.address
        agent.log = tmp_path / "agent-3.log"
        agent.start()
        wait_until(lambda: logged(server, dep).num_rows >= sent, timeout=60, what=f"{sent} rows at the control plane")
        wait_until(lambda: pending_rows(cache) == 0, timeout=30, what="the agent's pending dir emptied")
        got = logged(server, dep)
        ids = got.column("request_id").to_pylist()
        assert got.num_rows == sent and len(set(ids)) == sent  # every row, none twice
    finally:
        agent.stop()
