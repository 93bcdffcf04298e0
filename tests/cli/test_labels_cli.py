"""`sluice labels import|list` against a real control plane (gRPC SubmitLabels underneath): the
summary, a retry that stores nothing twice, Parquet files, and bad files refused in one line with
the line number (nothing imported with --atomic)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from controlplane.datafiles.files import labels_dir
from controlplane.labels.store import current_labels
from controlplane.store.models import utcnow
from core.client import SluiceClient
from tests.controlplane.labels.support import write_log_segment
from tests.harness import ServerThread, one_line_error, run_cli, start_server, unique
from tests.models import make_classifier_onnx, make_regressor_onnx


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[ServerThread]:
    cp = start_server(tmp_path_factory.mktemp("labels-cli"))
    try:
        with SluiceClient(cp.address, token="") as client:
            client.register_version("cancer", "v1", make_classifier_onnx(models_dir))
            client.register_version("ridge", "v1", make_regressor_onnx(models_dir))
        yield cp
    finally:
        cp.stop()


def deploy(server: ServerThread, ref: str = "cancer:v1") -> str:
    name = unique("labels")
    with SluiceClient(server.address, token="") as client:
        client.deploy(name, ref)
    return name


def imports(server: ServerThread, deployment: str) -> list[dict]:
    listed = run_cli("labels", "list", deployment, "--json", address=server.address)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def test_a_csv_import_prints_its_summary_and_running_it_again_stores_nothing_twice(
    server: ServerThread, tmp_path: Path
) -> None:
    deployment = deploy(server)
    now = utcnow()
    write_log_segment(server.ctx, deployment, {f"req-{i}": now - timedelta(minutes=1) for i in range(20)})
    lines = ["request_id,label,event_time"]
    lines += [f"req-{i},{i % 2}," for i in range(15)]
    lines += ["someone-else,1,2026-12-01T10:00:00Z"]
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(lines) + "\n")

    result = run_cli("labels", "import", deployment, str(path), "--json", address=server.address)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["accepted"], summary["unknown_ids"], summary["duplicates"]) == (16, 16, 1, 0)
    assert summary["principal"] == "anonymous" and summary["import_id"].startswith("file-")

    again = run_cli("labels", "import", deployment, str(path), address=server.address)
    assert again.returncode == 0, again.stderr
    assert "imported before" in again.stdout and "unknown ids" in again.stdout
    (only,) = imports(server, deployment)
    assert only["import_id"] == summary["import_id"] and only["accepted"] == 16
    table = current_labels(server.ctx, deployment)
    assert table.num_rows == 16
    assert dict(zip(table["request_id"].to_pylist(), table["label"].to_pylist(), strict=True))["req-3"] == "1"

    # A new file relabelling a few requests: replaced, duplicates, and the list shows both imports.
    changed = tmp_path / "changed.csv"
    changed.write_text("request_id,label\nreq-0,1\nreq-1,1\nreq-99,0\n")
    result = run_cli("labels", "import", deployment, str(changed), "--json", address=server.address)
    summary = json.loads(result.stdout)
    assert (summary["accepted"], summary["replaced"], summary["duplicates"], summary["unknown_ids"]) == (2, 1, 1, 1)
    assert [i["rows"] for i in imports(server, deployment)] == [3, 16]
    text = run_cli("labels", "list", deployment, address=server.address)
    assert text.returncode == 0 and summary["import_id"] in text.stdout


def test_status_reports_the_label_files_real_size(server: ServerThread, tmp_path: Path) -> None:
    deployment = deploy(server)
    for n, name in ((30, "a.csv"), (8, "b.csv")):
        path = tmp_path / name
        path.write_text("request_id,label\n" + "".join(f"{name}-{i},{i % 2}\n" for i in range(n)))
        result = run_cli("labels", "import", deployment, str(path), address=server.address)
        assert result.returncode == 0, result.stderr
    status = run_cli("status", deployment, "--json", address=server.address)
    assert status.returncode == 0, status.stderr
    [entry] = json.loads(status.stdout)
    folder = labels_dir(server.ctx.config, server.ctx.artifacts.root) / f"deployment={deployment}"
    written = list(folder.glob("*.parquet"))
    assert len(written) == 2
    assert int(entry["log_usage"]["label_files"]) == 2
    assert int(entry["log_usage"]["label_bytes"]) == sum(p.stat().st_size for p in written)


def test_a_parquet_file_of_values_imports_into_a_regressor(server: ServerThread, tmp_path: Path) -> None:
    deployment = deploy(server, "ridge:v1")
    path = tmp_path / "values.parquet"
    pq.write_table(pa.table({"request_id": ["a", "b", "c"], "value": [0.5, 1.0, 2.5]}), path)
    result = run_cli("labels", "import", deployment, str(path), "--atomic", "--json", address=server.address)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accepted"] == 3
    values = current_labels(server.ctx, deployment)["value"].to_pylist()
    assert sorted(values) == [0.5, 1.0, 2.5]


def test_a_malformed_line_is_named_and_atomic_imports_nothing(server: ServerThread, tmp_path: Path) -> None:
    deployment = deploy(server)
    path = tmp_path / "broken.csv"
    path.write_text("request_id,label\nr1,1\nr2,0\nr3,1,extra\nr4,0\n")
    err = one_line_error(run_cli("labels", "import", deployment, str(path), "--atomic", address=server.address))
    assert f"{path} line 4: 3 fields, but the header has 2" in err
    assert imports(server, deployment) == []

    # Without --atomic the rows before the line are imported, and the command still fails.
    result = run_cli("labels", "import", deployment, str(path), address=server.address)
    err = one_line_error(result)
    assert "line 4" in err and "the 2 rows before it were imported" in err
    (partial,) = imports(server, deployment)
    assert (partial["rows"], partial["accepted"]) == (2, 2)


def test_a_row_of_the_wrong_type_is_refused_with_its_line(server: ServerThread, tmp_path: Path) -> None:
    deployment = deploy(server, "ridge:v1")
    path = tmp_path / "numbers.csv"
    path.write_text("request_id,value\nr1,1.5\nr2,abc\n")
    err = one_line_error(run_cli("labels", "import", deployment, str(path), "--atomic", address=server.address))
    assert "line 3: value 'abc' is not a number" in err
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("request_id,label\nr1,high\n")
    result = run_cli("labels", "import", deployment, str(labelled), "--atomic", address=server.address)
    err = one_line_error(result)
    assert result.returncode == 5  # refused (INVALID_ARGUMENT)
    assert "row 1 (request id 'r1'): the deployment is a regressor" in err and f"({labelled} line 2)" in err
    assert imports(server, deployment) == []


def test_unknown_deployments_and_empty_files_are_refused(server: ServerThread, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("request_id,label\nr1,1\n")
    result = run_cli("labels", "import", "nowhere", str(good), address=server.address)
    assert result.returncode == 4 and "no deployment named 'nowhere'" in one_line_error(result)
    deployment = deploy(server)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "is empty" in one_line_error(run_cli("labels", "import", deployment, str(empty), address=server.address))
    header_only = tmp_path / "header.csv"
    header_only.write_text("request_id,label\n")
    err = one_line_error(run_cli("labels", "import", deployment, str(header_only), address=server.address))
    assert "has no label rows" in err
    no_truth = tmp_path / "no-truth.csv"
    no_truth.write_text("request_id,answer\nr1,1\n")
    err = one_line_error(run_cli("labels", "import", deployment, str(no_truth), address=server.address))
    assert "exactly one of the columns label" in err
    assert imports(server, deployment) == []
