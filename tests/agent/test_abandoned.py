"""Requests a caller gave up on, and the fallback of a failing challenger, on the agent's core.

A real grpc.aio server with the agent's Inference servicer over a real AgentCore, real
onnxruntime sessions (a model that loops as long as its input says, and scikit-learn classifiers)
and the real metrics recorder:

- a batch that runs on a worker thread and is cancelled by its caller while the model runs counts
  CANCELLED against the version that was running it (not OK, not a refused input);
- with the deployment's fallback on, a PredictBatch whose challenger rows fail is answered by the
  champion for those rows: one failed request of the challenger, the champion's answer for every
  row.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from agent.cache import AgentCache
from agent.core import AgentCore
from agent.prometheus import AgentPrometheus
from agent.recorder import MetricsRecorder
from agent.services import THREAD_ROWS, InferenceService
from agent.serving import ServingTable, SnapshotApplier
from core.client import batch_request
from protos import agent_pb2, common_pb2, inference_pb2_grpc
from tests.models import breast_cancer_rows, make_classifier_onnx, make_slow_loop_onnx

CHAMPION, CHALLENGER = common_pb2.ROLE_CHAMPION, common_pb2.ROLE_CHALLENGER
#: Loop steps of the slow model: long enough for the caller to cancel while it runs (about 1 us a step)
SLOW_STEPS = 2_000_000


class StartedPool(ThreadPoolExecutor):
    """A thread pool that says when a submitted job has started running."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.started = threading.Event()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def run() -> Any:
            self.started.set()
            return fn(*args, **kwargs)

        return super().submit(run)


def cached(cache: AgentCache, path: Path) -> str:
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    cache.put(data, sha)
    return sha


def route(model: str, version: str, sha: str, weight: int, role: int, task: str) -> agent_pb2.Route:
    return agent_pb2.Route(
        version=common_pb2.VersionRef(model=model, version=version), sha256=sha, weight=weight, role=role, task=task
    )


def serving(cache: AgentCache, deployment: agent_pb2.DeploymentSnapshot) -> tuple[ServingTable, agent_pb2.Snapshot]:
    snap = agent_pb2.Snapshot(snapshot_id=1, deployments=[deployment])
    table, problems = asyncio.run(SnapshotApplier(cache).apply(snap, None, None))
    assert problems == []
    return table, snap


def core_serving(tmp_path: Path, name: str, model: Path, task: str) -> tuple[AgentCore, MetricsRecorder]:
    """A real AgentCore serving `model` as the only version of deployment `name`."""
    cache = AgentCache(tmp_path / "cache")
    sha = cached(cache, model)
    table, snap = serving(
        cache,
        agent_pb2.DeploymentSnapshot(
            name=name, generation=1, salt="s", routes=[route(model.stem, "v1", sha, 100, CHAMPION, task)]
        ),
    )
    recorder = MetricsRecorder()
    recorder.configure(snap)
    core = AgentCore("test-agent", "0123456789abcdef", recorder, AgentPrometheus())
    core.table = table
    return core, recorder


def test_a_batch_cancelled_while_its_model_runs_counts_cancelled_against_that_version(tmp_path: Path) -> None:
    core, recorder = core_serving(tmp_path, "slow", make_slow_loop_onnx(tmp_path), "regressor")
    pool = StartedPool()
    rows = np.zeros((THREAD_ROWS, 2), np.float32)  # a batch this big runs on the worker thread
    rows[0, 0] = SLOW_STEPS

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        core.defer = loop.call_soon
        server = grpc.aio.server()
        inference_pb2_grpc.add_InferenceServicer_to_server(InferenceService(core, pool), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = inference_pb2_grpc.InferenceStub(channel).PredictBatch(batch_request("slow", rows, ()))
                assert await loop.run_in_executor(None, pool.started.wait, 30)
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
            # the model finishes on its thread; its bookkeeping comes back to this loop
            await loop.run_in_executor(None, pool.shutdown, True)
            for _ in range(1000):
                await asyncio.sleep(0)  # let the callbacks the worker thread scheduled run
        finally:
            await server.stop(None)

    asyncio.run(scenario())
    report = recorder.flush()
    assert report is not None
    (window,) = report.windows
    assert {e.code: e.count for e in window.errors} == {"CANCELLED": 1}
    assert (window.requests, window.rows, window.rejected_inputs) == (1, 0, 0)


def test_with_fallback_a_batchs_failing_challenger_rows_are_answered_by_the_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = AgentCache(tmp_path / "cache")
    sha1 = cached(cache, make_classifier_onnx(tmp_path, "logreg"))
    sha2 = cached(cache, make_classifier_onnx(tmp_path, "gbm"))
    deployment = agent_pb2.DeploymentSnapshot(
        name="web",
        generation=1,
        salt="pepper",
        routes=[
            route("m", "v2", sha2, 50, CHALLENGER, "classifier"),
            route("m", "v1", sha1, 50, CHAMPION, "classifier"),
        ],
        fallback=True,
    )
    table, snap = serving(cache, deployment)
    recorder = MetricsRecorder()
    recorder.configure(snap)
    core = AgentCore("test-agent", "0123456789abcdef", recorder, AgentPrometheus())
    core.table = table
    dep = core.deployment("web")
    assert dep.fallback
    v2 = next(r for r in dep.routes if r.version == "v2")

    def fails(feeds: Any) -> Any:
        raise RuntimeError("onnxruntime: a kernel failed")  # what a broken model does at run time

    monkeypatch.setattr(v2.runtime, "predict", fails)
    rows = breast_cancer_rows(40, seed=4).astype(np.float32)
    keys = [f"key-{i}" for i in range(40)]
    routed_to_v2 = int(np.count_nonzero(dep.router.route_many(keys, 40) == dep.routes.index(v2)))
    assert 0 < routed_to_v2 < 40
    outcomes, positions, _ = core.predict_batch(dep, rows, keys, [])
    assert {o.route.version for o in outcomes} == {"v1"}  # every row answered, by the champion
    assert sorted(np.concatenate(positions).tolist()) == list(range(40))
    v1 = dep.champion
    expected = v1.runtime.predict(v1.runtime.prepare(rows)).labels  # the champion's own answers
    answered = np.empty(40, np.int64)
    for outcome, where in zip(outcomes, positions, strict=True):
        assert outcome.labels is not None
        answered[where] = outcome.labels
    assert expected is not None and answered.tolist() == expected.tolist()

    report = recorder.flush()
    assert report is not None
    by_version = {w.version.version: w for w in report.windows}
    assert {e.code: e.count for e in by_version["v2"].errors} == {"INTERNAL": 1}
    assert (by_version["v2"].requests, by_version["v2"].rows) == (1, 0)
    # v1: one request for its own rows, one for the rows it answered in v2's place
    assert (by_version["v1"].requests, by_version["v1"].rows) == (2, 40)
    assert not by_version["v1"].errors


def test_a_big_batch_is_logged_once_on_its_worker_thread_and_a_small_one_by_the_bookkeeping(tmp_path: Path) -> None:
    """A batch from THREAD_ROWS rows on runs on a worker thread and writes its log record there
    (off the event loop); a small one is logged by the deferred bookkeeping. Each row exactly once."""
    from agent.predlog import PredictionLog
    from runtime.logsegment import read_table

    core, _ = core_serving(tmp_path, "d", make_classifier_onnx(tmp_path, "logreg"), "classifier")
    core.predlog = predlog = PredictionLog(tmp_path / "log", "test-agent")
    deferred: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    core.defer = lambda fn, *args: deferred.append((fn, args))  # the event loop's call_soon
    assert core.table is not None
    dep = core.table.deployments["d"]
    small = breast_cancer_rows(3, seed=1).astype(np.float32)
    core.predict_batch(dep, small, [], ["s0", "s1", "s2"])
    assert predlog.flush() == []  # nothing logged before the bookkeeping runs
    big = breast_cancer_rows(THREAD_ROWS + 10, seed=2).astype(np.float32)
    ids = [f"b{i}" for i in range(len(big))]
    worker: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    core.predict_batch(dep, big, [], ids, lambda fn, *args: worker.append((fn, args)))  # call_soon_threadsafe
    [logged] = predlog.flush()  # written before the answer went back
    assert read_table(logged.path.read_bytes(), "a").column("request_id").to_pylist() == ids
    for fn, args in deferred + worker:  # the bookkeeping of both, on the loop
        fn(*args)
    [after] = predlog.flush()
    assert read_table(after.path.read_bytes(), "a").column("request_id").to_pylist() == ["s0", "s1", "s2"]
    assert predlog.dropped_rows == 0
