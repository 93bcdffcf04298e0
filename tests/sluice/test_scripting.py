"""The README's "Scripting" example, run as written against a real control plane and agent.

The script is the README's python block, unchanged; its output must be the README's text block.
Also: the facade's errors are the CLI's (same status, same words) and are the typed errors of
core.errors, and what a script gets wrong locally is refused before anything is sent.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import sluice
from controlplane.onnx_export import export_onnx
from core import errors as core_errors
from tests.agent.cluster import AgentProcess, wait_until
from tests.harness import REPO, SluiceProcess, run_cli, start_controlplane_process, unique

README = REPO / "README.md"


def readme_blocks() -> tuple[str, str]:
    """The python block of the README's Scripting section and the text block that follows it."""
    text = README.read_text()
    section = text.split("\n## Scripting\n", 1)[1].split("\n## ", 1)[0]
    script = re.search(r"```python\n(.*?)```", section, re.S)
    output = re.search(r"prints\n\n```text\n(.*?)```", section, re.S)
    assert script and output, "README's Scripting section lost its example or its output"
    return script.group(1), output.group(1)


@pytest.fixture
def system(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A control plane process on SQLite and one agent process connected to it."""
    cp: SluiceProcess | None = None
    agent: AgentProcess | None = None
    try:
        cp = start_controlplane_process(tmp_path, "127.0.0.1:0", "cp.log")
        assert cp.match is not None
        address = cp.match.group(1)
        agent = AgentProcess(address, unique("script-agent"), tmp_path / "cache", tmp_path / "agent.log")
        with sluice.ControlPlane(address, token="") as control:
            wait_until(
                lambda: any(a.state is sluice.AgentState.CONNECTED for a in control.agents()),
                what="the agent to connect",
            )
        agent.wait_serving()
        yield address, agent.address
    finally:
        if agent is not None:
            agent.stop()
        if cp is not None:
            cp.close()


def write_iris_model(directory: Path) -> Path:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X.astype(np.float32), y)
    path = directory / "iris.onnx"
    export_onnx(model, X.shape[1], path)
    return path


def test_the_readme_example_runs_as_written(system: tuple[str, str], tmp_path: Path) -> None:
    controlplane, agent = system
    script, expected = readme_blocks()
    workdir = tmp_path / "work"
    workdir.mkdir()
    write_iris_model(workdir)
    (workdir / "example.py").write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_TLS", "SLUICE_TOKEN"))}
    env.update(SLUICE_CONTROLPLANE=controlplane, SLUICE_AGENT=agent, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "example.py"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected

    # What the script did is real: the deployment is there, and a batch is answered by it.
    with sluice.ControlPlane(controlplane, token="") as cp:
        web = cp.deployment("iris-web")
        assert (web.champion, web.generation) == ("iris:v1", 1)
        assert [(s.version, s.percent, s.role) for s in web.splits] == [("iris:v1", 100, sluice.ServingRole.CHAMPION)]


def test_a_batch_is_split_by_row_keys_and_answered_in_columns(system: tuple[str, str], tmp_path: Path) -> None:
    controlplane, agent = system
    X, _ = load_iris(return_X_y=True)
    model = write_iris_model(tmp_path)
    with sluice.ControlPlane(controlplane, token="") as cp:
        cp.register("iris:v1", model)
        cp.register("iris:v2", model)
        cp.deploy("iris-ab", "iris:v1")
        split = cp.set_traffic("iris-ab", {"iris:v1": 50, "iris:v2": 50})
        assert cp.wait_for_sync("iris-ab", generation=split.generation, timeout=60).in_sync

    rows = X.astype(np.float32)  # all 150 flowers
    keys = [f"customer-{i}" for i in range(len(rows))]
    with sluice.Predictor(agent) as predictor:
        batch = predictor.predict_batch("iris-ab", rows, routing_keys=keys)
        assert len(batch) == 150 and batch.values is None and batch.probabilities is not None
        assert sorted(batch.versions) == ["iris:v1", "iris:v2"]
        by_row = [batch.version_of(i) for i in range(len(batch))]
        assert 30 <= by_row.count("iris:v1") <= 120  # both arms get rows of a 50/50 split
        # Same model under both versions: the labels are the single-row answers, row by row.
        singles = [predictor.predict("iris-ab", [rows[i]], routing_key=keys[i]) for i in range(20)]
        assert batch.labels is not None
        assert batch.labels[:20].tolist() == [int(p.labels[0]) for p in singles if p.labels is not None]
        # Sticky: the same key is answered by the same version in a single call.
        assert [p.served_by for p in singles] == by_row[:20]
        # The same row as a record of named features, and as a typed tensor by input name.
        by_record = predictor.predict("iris-ab", records={"input": rows[0].tolist()}, routing_key=keys[0])
        by_tensor = predictor.predict("iris-ab", inputs={"input": rows[:1]}, routing_key=keys[0])
        assert by_record.labels is not None and by_tensor.labels is not None and singles[0].labels is not None
        assert by_record.labels.tolist() == by_tensor.labels.tolist() == singles[0].labels.tolist()
        # classes 0, 1, 2 are the probabilities' column indices: not repeated in every answer
        assert by_record.classes is None and by_record.class_labels is None
        with pytest.raises(sluice.InvalidArgument, match="routing_keys has 3 entries for 150 rows"):
            predictor.predict_batch("iris-ab", rows, routing_keys=keys[:3])


def test_errors_are_the_clis_and_the_typed_core_errors(system: tuple[str, str], tmp_path: Path) -> None:
    controlplane, agent = system
    with sluice.ControlPlane(controlplane, token="") as cp:
        with pytest.raises(sluice.NotFound) as missing:
            cp.rollback("nowhere")
        assert isinstance(missing.value, core_errors.NotFound)
        assert missing.value.code == "NOT_FOUND"
        cli = run_cli("rollback", "nowhere", address=controlplane)
        assert cli.returncode == 4  # NOT_FOUND
        assert cli.stderr.strip() == f"error: {missing.value}"

        # Refused locally, before a call: a malformed version reference.
        with pytest.raises(sluice.InvalidArgument, match="is not MODEL:VERSION"):
            cp.deploy("iris-web", "iris-v1")
        assert cp.deployments() == []

    with sluice.Predictor(agent) as predictor:
        with pytest.raises(sluice.NotFound) as unknown:
            predictor.predict("nowhere", [[1.0, 2.0]])
        assert "nowhere" in unknown.value.message
        with pytest.raises(sluice.InvalidArgument, match="exactly one of"):
            predictor.feedback("nowhere", "r1")

    # Nobody listening: UNAVAILABLE with the CLI's hint.
    nobody = r"cannot reach the control plane at 127\.0\.0\.1:1"
    with sluice.ControlPlane("127.0.0.1:1", token="", timeout=5) as cp, pytest.raises(sluice.Unavailable, match=nobody):
        cp.deployments()
