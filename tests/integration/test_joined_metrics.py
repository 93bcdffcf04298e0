"""Label-joined metrics and dataset export end to end: a real agent process logs predictions, the
labels of some of them are imported later with `sluice labels import`, `sluice status --json`
reports the exact accuracy and the predictions still waiting, and `sluice dataset export` writes
the rows that were logged (all of them, or only the labelled ones)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from core.client import SluiceClient, predict_request
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import ServerThread, run_cli, start_server, unique
from tests.models import breast_cancer_rows, make_classifier_onnx

pytestmark = pytest.mark.xdist_group("prediction-log")

PREDICTIONS = 60
LABELED = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    server = start_server(tmp_path_factory.mktemp("cp"))
    yield server
    server.stop()


def test_status_reports_exact_label_joined_accuracy_and_export_writes_the_logged_rows(
    server: ServerThread, models_dir: Path, tmp_path: Path
) -> None:
    model, deployment = unique("joined"), unique("dj")
    with SluiceClient(server.address, token="") as client:
        client.register_version(model, "1", make_classifier_onnx(models_dir))
        client.deploy(deployment, f"{model}:1")
    agent = AgentProcess(server.address, unique("agent"), tmp_path / "agent", tmp_path / "agent.log")
    try:
        with SluiceClient(server.address, token="") as client:
            wait_for_agents(client, deployment, [agent.name])
        assert agent.stub is not None
        rows = breast_cancer_rows(PREDICTIONS, seed=9)
        predicted: dict[str, str] = {}
        for i in range(PREDICTIONS):
            request = predict_request(deployment, rows[i : i + 1], request_id=f"req-{i}")
            predicted[f"req-{i}"] = str(agent.stub.Predict(request, timeout=30).labels[0])

        def logged() -> int:
            with SluiceClient(server.address, token="") as client:
                [status] = client.status(deployment)
            return int(status.versions[0].labeled.predictions)

        wait_until(lambda: logged() == PREDICTIONS, timeout=60, what=f"{PREDICTIONS} logged predictions")
    finally:
        agent.stop()

    # The truth for the first 40, arriving later from a batch job: every third one disagrees.
    truth = {
        f"req-{i}": predicted[f"req-{i}"] if i % 3 else str(1 - int(predicted[f"req-{i}"])) for i in range(LABELED)
    }
    csv = tmp_path / "labels.csv"
    csv.write_text("request_id,label\n" + "".join(f"{r},{t}\n" for r, t in truth.items()))
    imported = run_cli("labels", "import", deployment, str(csv), "--json", address=server.address)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["accepted"] == LABELED

    shown = run_cli("status", deployment, "--json", address=server.address)
    assert shown.returncode == 0, shown.stderr
    [version] = json.loads(shown.stdout)[0]["versions"]
    expected = sum(predicted[r] == t for r, t in truth.items()) / LABELED
    assert version["labeled"] == {
        "predictions": PREDICTIONS,
        "labeled": LABELED,
        "waiting": PREDICTIONS - LABELED,
        "accuracy": pytest.approx(expected, abs=1e-12),
    }
    table = run_cli("status", deployment, address=server.address)
    assert f"{LABELED}/{PREDICTIONS} labeled ({PREDICTIONS - LABELED} waiting)" in table.stdout

    out = tmp_path / "export" / "all.parquet"
    exported = run_cli("dataset", "export", deployment, "--out", str(out), address=server.address)
    assert exported.returncode == 0, exported.stderr
    assert f"{PREDICTIONS} rows written" in exported.stdout
    everything = pq.read_table(out).to_pylist()
    assert len(everything) == PREDICTIONS
    by_id = {r["request_id"]: r for r in everything}
    assert {r: by_id[r]["label"] for r in predicted} == predicted
    assert by_id["req-5"]["in_input"] == pytest.approx(rows[5].tolist(), rel=1e-6)
    assert by_id["req-5"]["true_label"] == truth["req-5"] and by_id["req-50"]["true_label"] is None

    only = tmp_path / "export" / "labeled.parquet"
    args = ["dataset", "export", deployment, "--labeled-only", "--out", str(only)]
    labeled = run_cli(*args, "--version", f"{model}:1", address=server.address)
    assert labeled.returncode == 0, labeled.stderr
    assert sorted(pq.read_table(only).column("request_id").to_pylist()) == sorted(truth)

    # Refused by the CLI before any call: --out is not Parquet, --since after --until; and an
    # unknown deployment is NOT_FOUND. Nothing is written in any case.
    bad_out = run_cli("dataset", "export", deployment, "--out", str(tmp_path / "x.csv"), address=server.address)
    assert bad_out.returncode != 0 and "ending in .parquet" in bad_out.stderr
    times = ["--since", "2026-12-02T00:00:00Z", "--until", "2026-12-01T00:00:00Z"]
    bad_range = run_cli("dataset", "export", deployment, *times, "--out", str(only), address=server.address)
    assert bad_range.returncode != 0 and "must be before --until" in bad_range.stderr
    missing = run_cli("dataset", "export", "nowhere", "--out", str(tmp_path / "n.parquet"), address=server.address)
    assert missing.returncode != 0 and "no deployment named" in missing.stderr
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "n.parquet").exists()
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["all.parquet", "labeled.parquet"]
