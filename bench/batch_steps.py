"""The agent's PredictBatch work in process, without gRPC: CPU per call of each step.

    .venv/bin/python bench/batch_steps.py [--calls N] [--rounds N] [--log] [--only NAME]

Builds the real serving objects (`AgentCore`, `MetricsRecorder` with its window journal,
`AgentPrometheus`, the onnxruntime session through `SnapshotApplier`, the prediction log when
`--log`) for the breast-cancer logistic regression of bench/predict.py with its baseline bins, and
calls `InferenceService.PredictBatch` on a parsed 1,024-row request from an asyncio loop, letting
the deferred bookkeeping run after each call as the server does. Prints CPU per call
(`time.thread_time` of the loop's thread, plus the process's for the threads beside it) of:

- `handler`: the whole PredictBatch coroutine plus its bookkeeping (what the agent adds to gRPC);
- `parse`: `core.zero_copy.parse_batch_request` of the serialised request (the deserialiser the
  agent registers with gRPC: the rows' raw bytes stay in the request's);
- `serialise`: the answer's `SerializeToString` (gRPC's serialiser);
- `model`: `ModelRuntime.predict` alone on the decoded rows, in a tight loop;
- `model+`: the model on the rows read from the request's bytes each call: parsed and decoded as
  the agent does (until issue 12's last change protobuf made two fresh copies of them, cold input;
  now they are read where they lie).

The C allocator's thresholds are set as the agent sets them (`core.memory`) unless
`--default-malloc`. Rounds alternate the steps; each figure is the median over rounds. Instruction counts, steadier
on a shared machine: run one step under callgrind, e.g.
`valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out .venv/bin/python bench/batch_steps.py
--only handler --calls 200 --rounds 1` (the counts of the warm-up are in the file too: compare
two runs of the same length).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.cache import AgentCache  # noqa: E402
from agent.core import AgentCore  # noqa: E402
from agent.journal import WindowJournal  # noqa: E402
from agent.predlog import PredictionLog  # noqa: E402
from agent.prometheus import AgentPrometheus  # noqa: E402
from agent.recorder import MetricsRecorder  # noqa: E402
from agent.services import InferenceService  # noqa: E402
from agent.serving import SnapshotApplier  # noqa: E402
from controlplane.convert import baseline as baseline_proto  # noqa: E402
from controlplane.onnx_export import export_onnx  # noqa: E402
from controlplane.registry import summarise_baseline  # noqa: E402
from controlplane.sample_data import breast_cancer_arrays  # noqa: E402
from controlplane.training import train_model  # noqa: E402
from core.client import batch_request  # noqa: E402
from core.memory import keep_freed_memory  # noqa: E402
from core.tensors import decode_tensor  # noqa: E402
from core.zero_copy import parse_batch_request  # noqa: E402
from protos import agent_pb2, common_pb2  # noqa: E402


class Context:
    """What the handler asks of grpc.aio's ServicerContext on this path."""

    def time_remaining(self) -> float | None:
        return None


def build(root: Path, log: bool) -> tuple[InferenceService, bytes, np.ndarray, Any]:
    X, y = breast_cancer_arrays()
    model = root / "logreg.onnx"
    export_onnx(train_model(X, y, "logreg", 0), X.shape[1], model)
    data = model.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    cache = AgentCache(root / "agent")
    cache.put(data, sha)
    bins = baseline_proto(summarise_baseline(X[:1000].astype(np.float64), []))
    route = agent_pb2.Route(
        version=common_pb2.VersionRef(model="bench", version="v1"),
        sha256=sha,
        weight=100,
        role=common_pb2.ROLE_CHAMPION,
        task="classifier",
        baseline=bins,
    )
    snapshot = agent_pb2.Snapshot(
        snapshot_id=1, deployments=[agent_pb2.DeploymentSnapshot(name="bench", generation=1, salt="s", routes=[route])]
    )
    applier = SnapshotApplier(cache)
    applier.probe_new = False
    table, problems = asyncio.run(applier.apply(snapshot, None, None))
    if problems:
        raise RuntimeError(problems)
    recorder = MetricsRecorder(window_seconds=1.0, journal=WindowJournal(root / "journal"))
    recorder.configure(table.applied_snapshot())
    core = AgentCore("bench", "0123456789abcdef", recorder, AgentPrometheus())
    core.table = table
    if log:
        core.predlog = PredictionLog(root / "log", "bench")
        core.predlog.configure(table.applied_snapshot())
        core.predlog.start()
    rows = np.resize(X, (1024, X.shape[1])).astype(np.float32)
    payload = batch_request("bench", rows).SerializeToString()
    return InferenceService(core), payload, rows, table.deployments["bench"].champion.runtime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=800, help="calls per step and round (default 800)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, steps alternating (default 5)")
    parser.add_argument("--log", action="store_true", help="with the prediction log on")
    parser.add_argument("--only", default="", help="run one step only (for callgrind)")
    parser.add_argument(
        "--default-malloc", action="store_true", help="leave glibc's thresholds as they are (the agent sets them)"
    )
    args = parser.parse_args()
    if not args.default_malloc:
        keep_freed_memory()  # as `sluice agent` does at start (core.memory)
    root = Path(tempfile.mkdtemp(prefix="sluice-batch-steps-"))
    service, payload, _rows, runtime = build(root, args.log)
    request = parse_batch_request(payload)
    context = Context()

    async def handler_loop(calls: int) -> None:
        loop = asyncio.get_running_loop()
        service.core.defer = loop.call_soon
        for _ in range(calls):
            response = await service.PredictBatch(request, context)  # type: ignore[arg-type]
            await asyncio.sleep(0)  # the deferred bookkeeping runs here, as after a real answer
            assert response.labels

    def handler(calls: int) -> None:
        asyncio.run(handler_loop(calls))

    def parse(calls: int) -> None:
        for _ in range(calls):
            parse_batch_request(payload)

    answer = asyncio.run(service.PredictBatch(request, context))  # type: ignore[arg-type]

    def serialise(calls: int) -> None:
        for _ in range(calls):
            answer.SerializeToString()

    x = decode_tensor(request.message.inputs, "inputs", request.raw)
    feeds = runtime.prepare(x)

    def model(calls: int) -> None:
        for _ in range(calls):
            runtime.predict(feeds)

    def model_cold(calls: int) -> None:
        for _ in range(calls):
            fresh = parse_batch_request(payload)
            runtime.predict(runtime.prepare(decode_tensor(fresh.message.inputs, "inputs", fresh.raw)))

    steps = {"handler": handler, "parse": parse, "serialise": serialise, "model": model, "model+": model_cold}
    if args.only:
        steps = {args.only: steps[args.only]}
    for step in steps.values():
        step(50)  # warm-up
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            thread, process = time.thread_time(), time.process_time()
            step(args.calls)
            figures[name].append(
                ((time.thread_time() - thread) / args.calls, (time.process_time() - process) / args.calls)
            )
    print(f"µs per call, median of {args.rounds} rounds x {args.calls} calls ({'log on' if args.log else 'log off'})")
    for name, values in figures.items():
        thread = float(np.median([v[0] for v in values])) * 1e6
        process = float(np.median([v[1] for v in values])) * 1e6
        spread = ", ".join(f"{v[0] * 1e6:.0f}" for v in values)
        print(f"  {name:<10} thread {thread:7.1f}  process {process:7.1f}   (rounds: {spread})")
    if service.core.predlog is not None:
        service.core.predlog.stop()
        print(f"  prediction log: {service.core.predlog.flush_cpu_seconds:.2f} s of flush CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
