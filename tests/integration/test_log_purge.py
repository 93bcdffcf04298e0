"""`sluice logs purge` end to end: a real control plane, a real `sluice agent` process, predictions
with routing keys shipped as segments, labels imported, then the purge through the CLI; the rows
and their labels are gone from the files on disk and `sluice status --json` counts what is left.
Bad input: an unknown deployment, a malformed age, a viewer's token."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from cli.output import EXIT_NOT_FOUND, EXIT_USAGE
from controlplane.config import Config, TokenConfig, token_digest
from core.client import SluiceClient, batch_request
from protos import common_pb2
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import ServerThread, one_line_error, run_cli, start_server, unique
from tests.models import breast_cancer_rows, make_classifier_onnx

pytestmark = pytest.mark.xdist_group("prediction-log")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    server = start_server(tmp_path_factory.mktemp("cp"))
    yield server
    server.stop()


def values_on_disk(root: Path, column: str) -> list[object]:
    values: list[object] = []
    for path in root.rglob("*.parquet*"):
        if path.is_file():
            values += pq.read_table(path, columns=[column]).column(column).to_pylist()
    return values


def test_purge_by_routing_key_through_the_cli(server: ServerThread, tmp_path: Path) -> None:
    model, dep = unique("m"), unique("d")
    address = server.address
    with SluiceClient(address, token="") as client:
        client.register_version(model, "1", make_classifier_onnx(tmp_path))
        client.deploy(dep, f"{model}:1")
    agent = AgentProcess(address, unique("agent"), tmp_path / "agent", tmp_path / "agent.log")
    try:
        with SluiceClient(address, token="") as client:
            wait_for_agents(client, dep, [agent.name])
            assert agent.stub is not None
            rng = random.Random(11)
            ids = [f"p-{i}" for i in range(90)]
            keys = [rng.choice(["alice", "bob", "carol"]) for _ in ids]
            rows = breast_cancer_rows(90, seed=4).astype(np.float32)
            for start in range(0, 90, 30):  # three calls: rows in more than one segment, as it happens
                agent.stub.PredictBatch(
                    batch_request(dep, rows[start : start + 30], keys[start : start + 30], ids[start : start + 30]),
                    timeout=30,
                )

            def logged_rows() -> int:
                [status] = client.status(dep)
                return status.log_usage.rows if status.HasField("log_usage") else 0

            wait_until(lambda: logged_rows() == 90, timeout=60, what="90 logged rows at the control plane")
            client.submit_labels(dep, "truth", [[common_pb2.LabelRow(request_id=i, label="1") for i in ids]])
    finally:
        agent.stop()
    alice = {i for i, k in zip(ids, keys, strict=True) if k == "alice"}
    log_root = server.ctx.artifacts.root.parent / "predictions"
    labels_root = server.ctx.artifacts.root.parent / "labels"
    assert alice <= set(values_on_disk(log_root, "request_id"))

    result = run_cli("logs", "purge", dep, "--routing-key", "alice", "--reason", "erasure", "--json", address=address)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert int(summary["rows_removed"]) == len(alice) == int(summary["labels_removed"])
    assert "alice" not in values_on_disk(log_root, "routing_key")
    assert not alice & set(values_on_disk(log_root, "request_id"))
    assert not alice & set(values_on_disk(labels_root, "request_id"))

    status = json.loads(run_cli("status", dep, "--json", address=address).stdout)
    [entry] = status if isinstance(status, list) else status["deployments"]
    assert int(entry["log_usage"]["rows"]) == 90 - len(alice)
    assert int(entry["log_usage"]["label_files"]) == 1
    assert "disk: prediction log" in run_cli("status", dep, address=address).stdout
    # The table form, and `log` as the group's other name; nothing is older than 30 days.
    again = run_cli("log", "purge", dep, "--older-than", "30d", address=address)
    assert again.returncode == 0, again.stderr
    assert "0 rows removed" in again.stdout

    # Bad input: one line, the right exit code, nothing changed.
    unknown = run_cli("logs", "purge", unique("nope"), "--routing-key", "x", address=address)
    assert one_line_error(unknown).endswith("(NOT_FOUND)") and unknown.returncode == EXIT_NOT_FOUND
    for bad in ("30x", "d", "-3d", "0h"):
        malformed = run_cli("logs", "purge", dep, f"--older-than={bad}", address=address)
        assert "duration" in one_line_error(malformed) and malformed.returncode == EXIT_USAGE
    one_line_error(run_cli("logs", "purge", dep, address=address))  # neither --older-than nor --routing-key
    status = json.loads(run_cli("status", dep, "--json", address=address).stdout)
    [entry] = status if isinstance(status, list) else status["deployments"]
    assert int(entry["log_usage"]["rows"]) == 90 - len(alice)


def test_a_viewer_may_not_purge(tmp_path: Path) -> None:
    tokens = {"viewer": "v-secret", "operator": "o-secret"}
    config = Config(tokens=[TokenConfig(name=f"{r}-1", role=r, sha256=token_digest(t)) for r, t in tokens.items()])
    server = start_server(tmp_path / "cp", config=config)
    try:
        dep = unique("d")
        with SluiceClient(server.address, token="o-secret") as client:
            client.register_version("m", "1", make_classifier_onnx(tmp_path))
            client.deploy(dep, "m:1")
        viewer = run_cli(
            "logs", "purge", dep, "--routing-key", "k", address=server.address, env={"SLUICE_TOKEN": "v-secret"}
        )
        err = one_line_error(viewer)
        assert "PERMISSION_DENIED" in err
        operator = run_cli(
            "logs", "purge", dep, "--routing-key", "k", address=server.address, env={"SLUICE_TOKEN": "o-secret"}
        )
        assert operator.returncode == 0, operator.stderr
    finally:
        server.stop()


def test_a_long_purge_reports_its_progress(server: ServerThread, tmp_path: Path) -> None:
    from tests.controlplane.predlog.test_purge_retention import log_rows

    model, dep = unique("m"), unique("d")
    with SluiceClient(server.address, token="") as client:
        client.register_version(model, "1", make_classifier_onnx(tmp_path))
        client.deploy(dep, f"{model}:1")
        for s in range(25):  # 25 segments as agents would have shipped them
            log_rows(server.ctx, tmp_path, dep, (model, "1"), [f"g{s}-{i}" for i in range(4)], ["gone", "kept"] * 2)
        messages = list(client.purge_log(dep, routing_key="gone"))
    assert [(m.segments_done, m.segments_total) for m in messages] == [(20, 25), (25, 25)]
    assert not messages[0].HasField("summary")
    summary = messages[-1].summary
    assert (summary.segments_scanned, summary.segments_rewritten, summary.rows_removed) == (25, 25, 50)


def test_the_control_plane_runs_retention_and_counts_it(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from controlplane.config import LogConfig
    from controlplane.monitoring.state import state_of
    from tests.controlplane.predlog.test_purge_retention import log_rows

    config = Config(log=LogConfig(retention_days=30, retention_interval_seconds=0.5))
    server = start_server(tmp_path / "cp", config=config)
    try:
        model, dep = unique("m"), unique("d")
        with SluiceClient(server.address, token="") as client:
            client.register_version(model, "1", make_classifier_onnx(tmp_path))
            client.deploy(dep, f"{model}:1")
            old = datetime.now(UTC) - timedelta(days=45)
            log_rows(server.ctx, tmp_path, dep, (model, "1"), ["o1", "o2", "o3"], "k", at=old)
            log_rows(server.ctx, tmp_path, dep, (model, "1"), ["n1"], "k")

            def rows() -> int:
                [status] = client.status(dep)
                return status.log_usage.rows

            wait_until(lambda: rows() == 1, timeout=30, what="the 45-day-old segment expired")
            registry = state_of(server.ctx).metrics.registry
            assert registry.get_sample_value("sluice_log_segments_deleted_total", {"reason": "age"}) == 1
            assert any(e.action == "log.retention" for e in client.audit(target=dep))
    finally:
        server.stop()
