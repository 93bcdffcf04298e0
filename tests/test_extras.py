"""Extras per process: a venv built from the lock with only the agent extra runs a real agent.

It has none of the control plane's, the TUI's or training's packages, yet it starts, connects,
applies a deployment and answers predictions; a command whose extra is missing says which one.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from core.client import SluiceClient
from protos import inference_pb2, inference_pb2_grpc
from tests.agent.cluster import READY, wait_for_agents
from tests.harness import REPO, ServerThread, unique
from tests.models import breast_cancer_rows, make_classifier_onnx

UV = REPO / ".tools" / "bin" / "uv"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not UV.exists(), reason="uv is installed by `make` into .tools/"),
]


def agent_only_venv(where: Path) -> Path:
    """`uv sync --locked --extra agent` into a fresh environment: exactly the lock, agent extra only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_PROJECT", "VIRTUAL_ENV"))}
    env.update(UV_PROJECT_ENVIRONMENT=str(where), UV_PYTHON_DOWNLOADS="never")
    done = subprocess.run(
        [str(UV), "sync", "--locked", "--extra", "agent", "--quiet"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return where / "bin"


def test_an_agent_only_install_serves_and_lacks_the_rest(
    shared_server: ServerThread, tmp_path: Path, models_dir: Path
) -> None:
    bin_dir = agent_only_venv(tmp_path / "venv")
    for module in ("sqlalchemy", "scipy", "sklearn", "textual", "alembic"):
        probe = subprocess.run([str(bin_dir / "python"), "-c", f"import {module}"], capture_output=True, text=True)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, module
    # The scripting facade needs only the base install.
    facade = subprocess.run([str(bin_dir / "python"), "-c", "import sluice; sluice.Predictor"], capture_output=True)
    assert facade.returncode == 0, facade.stderr

    # A process whose extra is missing: one line naming the extra, no traceback.
    refused = subprocess.run(
        [str(bin_dir / "sluice"), "controlplane", "--db", str(tmp_path / "x.db"), "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "error: `sluice controlplane` needs the Python package 'sqlalchemy', which this install lacks: "
        "install the 'controlplane' extra (pip install 'sluice[controlplane]')"
    ]

    model, dep = unique("slim"), unique("web")
    with SluiceClient(shared_server.address, token="") as client:
        client.register_version(model, "v1", make_classifier_onnx(models_dir))
        generation = client.deploy(dep, f"{model}:v1").generation
    log, name = tmp_path / "agent.log", unique("slim-agent")
    with log.open("wb") as out:
        agent = subprocess.Popen(
            [str(bin_dir / "sluice"), "agent", "--controlplane", shared_server.address, "--listen", "127.0.0.1:0",
             "--name", name, "--cache", str(tmp_path / "cache"), "--metrics-port", "0"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (ready := re.search(READY, log.read_text())):
            assert agent.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with SluiceClient(shared_server.address, token="") as client:
            wait_for_agents(client, dep, [name], timeout=60)  # this agent, not only those connected
            assert client.get_deployment(dep).generation == generation
        rows = breast_cancer_rows(5, seed=1).astype(np.float32)
        with grpc.insecure_channel(ready.group(2)) as channel:
            answer = inference_pb2_grpc.InferenceStub(channel).Predict(
                inference_pb2.PredictRequest(
                    deployment=dep, input=inference_pb2.Tensor(shape=list(rows.shape), values=rows.ravel().tolist())
                ),
                timeout=30,
            )
        assert answer.served_by.version == "v1" and len(answer.labels) == 5
    finally:
        agent.terminate()
        try:
            agent.wait(20)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait(10)
