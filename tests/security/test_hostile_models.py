"""Hostile models (issue 13, item 7): a model that takes all memory or never finishes is refused
where it is opened or run (registration, offline evaluation, an agent's warm-up), by the sandbox's
limits, and the process that asked keeps its memory and keeps answering.

The models are a few hundred bytes built with onnx's helper API (`tests/models.py`): a Tile of a
constant to 4 GiB, a Loop of 10**12 iterations, and a Loop that runs 0 times on a row of zeros
but 10**12 times on real rows (registration without a baseline cannot catch that one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from controlplane.config import AgentsConfig, Config, ModelsConfig
from controlplane.store.models import ModelVersionRow
from core.client import ClientError, SluiceClient
from tests.agent.cluster import AgentProcess, wait_for_agents
from tests.harness import ServerThread, rss_mb, start_server, unique
from tests.models import make_endless_loop_onnx, make_sum_regressor_onnx, make_tile_bomb_onnx


def call_in_background(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run `fn` on a thread; its ClientError (or result) lands in the returned dict."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = fn()
        except ClientError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def list_versions_while(client: SluiceClient, threads: list[threading.Thread]) -> int:
    """ListVersions, again and again, while any of `threads` runs; how many answered meanwhile."""
    answered = 0
    while any(t.is_alive() for t in threads):
        client.list_versions()
        answered += any(t.is_alive() for t in threads)
        threads[0].join(0.05)
    return answered


def refused(outcome: dict[str, Any], code: grpc.StatusCode, *texts: str) -> str:
    error = outcome.get("error")
    assert isinstance(error, ClientError), outcome
    assert error.code == code, error
    for text in texts:
        assert text in error.message, error.message
    return error.message


def test_registration_refuses_models_that_exhaust_memory_or_never_finish(tmp_path: Path, models_dir: Path) -> None:
    config = Config(models=ModelsConfig(inspect_timeout_seconds=1.0, inspect_memory_mb=512))
    server = start_server(tmp_path, config=config)
    model = unique("hostile")
    rows = tmp_path / "baseline.npy"
    np.save(rows, np.random.default_rng(0).normal(size=(20, 2)))
    memory = ("more than the 512 MB memory limit", "inspect_memory_mb")
    timeout = ("did not finish within 1 s", "inspect_timeout_seconds")
    cases = [
        ("tile", make_tile_bomb_onnx(models_dir), None, memory),
        ("loop", make_endless_loop_onnx(models_dir), None, timeout),
        # Runs 0 times on a row of zeros; the baseline's rows make it run forever.
        ("lazy", make_endless_loop_onnx(models_dir, data_dependent=True), rows, ("baseline rows", *timeout)),
    ]
    try:
        with SluiceClient(server.address, token="") as client:
            # Without a baseline only a row of zeros is tried: that one passes (Evaluate stops it later).
            lazy = client.register_version(model, "ok", make_endless_loop_onnx(models_dir, data_dependent=True))
            stored = sorted(p.name for p in (tmp_path / "artifacts").rglob("*") if p.is_file())
            before = rss_mb()  # with onnx and onnxruntime loaded by that first registration
            for version, path, baseline, texts in cases:
                thread, outcome = call_in_background(partial(client.register_version, model, version, path, baseline))
                answered = list_versions_while(client, [thread])
                assert answered > 0 or version == "tile"  # the bomb fails at once, the loops run 1 s
                message = refused(
                    outcome, grpc.StatusCode.FAILED_PRECONDITION, f"{model}:{version} was refused", *texts
                )
                assert "Traceback" not in message
            assert rss_mb() - before < 256, f"the control plane grew by {rss_mb() - before:.0f} MB"
            assert [v.ref.version for v in client.list_versions(model)] == ["ok"]  # nothing of the refused stored
            assert sorted(p.name for p in (tmp_path / "artifacts").rglob("*") if p.is_file()) == stored
            assert lazy.task == "regressor"
    finally:
        server.stop()


def test_evaluations_of_a_model_that_never_finishes_stop_at_the_limit_and_other_rpcs_go_on(
    tmp_path: Path, models_dir: Path
) -> None:
    config = Config(models=ModelsConfig(evaluate_timeout_seconds=1.0, evaluate_concurrency=2))
    server = start_server(tmp_path, config=config)
    model, deployment = unique("scored"), unique("dep")
    data = tmp_path / "labeled.npy"
    features = np.random.default_rng(1).normal(size=(40, 2))
    np.save(data, np.column_stack([features, features.sum(axis=1)]))  # the label is the last column
    try:
        with SluiceClient(server.address, token="") as client:
            client.register_version(model, "v1", make_sum_regressor_onnx(models_dir))
            client.register_version(model, "lazy", make_endless_loop_onnx(models_dir, data_dependent=True))
            client.deploy(deployment, f"{model}:v1")
            calls = [call_in_background(lambda: client.evaluate(f"{model}:lazy", deployment, data)) for _ in range(4)]
            # Evaluate has its own two threads: ListVersions never waits behind the four of them.
            assert list_versions_while(client, [t for t, _ in calls]) > 0
            for _, outcome in calls:
                refused(
                    outcome,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"{model}:lazy could not score the data file: it did not finish within 1 s",
                    "[models] evaluate_timeout_seconds",
                )
            assert not client.get_version(f"{model}:lazy").HasField("offline_evaluation")
    finally:
        server.stop()


def place_unchecked(server: ServerThread, model: str, version: str, path: Path) -> None:
    """A version as a row written before registration checked models (or straight into the store):
    its artifact and row, no check. Two-feature regressors, like the models above."""
    ctx = server.ctx
    upload = ctx.artifacts.begin_upload("model")
    upload.write(path.read_bytes())
    upload.close()
    size = upload.size
    sha256 = ctx.artifacts.commit(upload)
    with ctx.db.session() as session:
        session.add(
            ModelVersionRow(
                model=model,
                version=version,
                sha256=sha256,
                size_bytes=size,
                task="regressor",
                inputs=[{"name": "input", "dtype": "float32", "shape": [-1, 2]}],
                outputs=[{"name": "value", "dtype": "float32", "shape": [-1, 1]}],
                feature_names=[],
                description="",
                created_by="test",
            )
        )


@pytest.mark.slow
def test_an_agent_refuses_a_hostile_version_keeps_serving_and_applies_the_next_deploy(
    tmp_path: Path, models_dir: Path
) -> None:
    server = start_server(tmp_path / "cp", config=Config(agents=AgentsConfig(heartbeat_seconds=0.5)))
    model, deployment, name = unique("served"), unique("dep"), unique("agent")
    agent: AgentProcess | None = None
    row = np.array([[1.0, 2.0]], np.float32)
    try:
        with SluiceClient(server.address, token="") as client:
            client.register_version(model, "v1", make_sum_regressor_onnx(models_dir))
            client.register_version(model, "v2", make_sum_regressor_onnx(models_dir, scale=2.0))
            place_unchecked(server, model, "tile", make_tile_bomb_onnx(models_dir))
            place_unchecked(server, model, "loop", make_endless_loop_onnx(models_dir))
            agent = AgentProcess(
                server.address,
                name,
                tmp_path / "agent",
                tmp_path / "agent.log",
                extra=["--model-timeout", "1", "--model-memory-mb", "512"],
            )
            client.deploy(deployment, f"{model}:v1")
            wait_for_agents(client, deployment, [name])
            assert agent.predict(deployment, row).served_by.version == "v1"

            for version, texts in (
                ("tile", ("more than the 512 MB memory limit", "--model-memory-mb")),
                ("loop", ("did not finish within 1 s", "--model-timeout")),
            ):
                client.deploy(deployment, f"{model}:{version}")
                sync = client.wait_for_sync(deployment, timeout=60)
                assert list(sync.refused_agents) == [name], sync
                (info,) = [a for a in client.agents() if a.name == name]
                assert f"{model}:{version} was refused: loading and warming it up in the sandbox" in info.last_nack
                assert all(text in info.last_nack for text in texts), info.last_nack
                answer = agent.predict(deployment, row)  # the agent is alive and still serves v1
                assert answer.served_by.version == "v1" and list(answer.values) == [3.0]

            client.deploy(deployment, f"{model}:v2")  # later deploys still arrive and apply
            wait_for_agents(client, deployment, [name])
            answer = agent.predict(deployment, row)
            assert answer.served_by.version == "v2" and list(answer.values) == [6.0]
    finally:
        if agent is not None:
            agent.stop()
        server.stop()
