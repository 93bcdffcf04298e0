"""Serving benchmark: agent Predict / OIP ModelInfer / PredictBatch against their floors.

    .venv/bin/python bench/predict.py [--requests N] [--rounds N] [--batch-calls N] [--kind logreg|gbm]
    .venv/bin/python bench/predict.py --requests 300 --rounds 2 --batch-calls 100   # a quick look

Starts a control plane and one agent as child processes on loopback, plus a bare grpc.aio echo
server (the floor: same transport, same payload, no work). Client load runs in separate
processes (at most 4, concurrency split between them), with bounded request counts. Prints a
table of p50/p99 latency and throughput at concurrency 1, 8 and 32, and rows/s of PredictBatch
with 1,024 rows against raw onnxruntime on the same rows.

Fairness: every target gets the same warm-up (50 calls per client process, not timed), the client
processes of a cell start measuring together behind a barrier, throughput counts only the timed
span, and the rounds interleave the targets so a burst of background load hits them alike. The
"median of the round ratios" column divides each round's p50 by the echo's p50 of the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from controlplane.onnx_export import export_onnx  # noqa: E402
from controlplane.sample_data import breast_cancer_arrays  # noqa: E402
from controlplane.training import train_model, write_baseline  # noqa: E402
from core.client import SluiceClient, batch_request  # noqa: E402
from protos import inference_pb2, oip_pb2  # noqa: E402

CONCURRENCY = (1, 8, 32)
MAX_CLIENT_PROCESSES = 4
ECHO_METHOD = "/bench.Echo/Echo"
PREDICT_METHOD = "/sluice.v1.Inference/Predict"
INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
BATCH_METHOD = "/sluice.v1.Inference/PredictBatch"


@dataclass
class Result:
    name: str
    concurrency: int
    p50_ms: float
    p99_ms: float
    per_second: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the floor: a bare grpc.aio echo server ----


def echo_server(port: int, ready: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    import grpc

    async def main() -> None:
        async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return request

        handler = grpc.method_handlers_generic_handler(
            "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
        )
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination()

    asyncio.run(main())


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds so far of a process, or of one of its threads (/proc)."""
    stat = Path(f"/proc/{pid}/stat") if tid is None else Path(f"/proc/{pid}/task/{tid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_echo() -> tuple[mp.Process, int]:
    """The echo server, started in a child process (spawned), and its port."""
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    port = free_port()
    echo = ctx.Process(target=echo_server, args=(port, ready), daemon=True)
    echo.start()
    if not ready.wait(60) or echo.pid is None:
        echo.kill()
        raise RuntimeError("echo server did not start")
    return echo, port


def deploy_bench(controlplane: str, model: Path, baseline: Path) -> None:
    """Register `model` as bench:v1, deploy it as `bench`, and wait until every agent applied it."""
    with SluiceClient(controlplane, token="") as client:
        client.register_version("bench", "v1", model, baseline)
        client.deploy("bench", "bench:v1")
        if not client.wait_for_sync("bench", timeout=60).in_sync:
            raise RuntimeError("the agents did not apply the deployment")


# ---- load generation (runs in child processes) ----


def load_worker(
    address: str,
    method: str,
    payload: bytes,
    concurrency: int,
    requests: int,
    out: mp.Queue,  # type: ignore[type-arg]
    start_together: Any,  # a multiprocessing Barrier shared by the client processes of one cell
) -> None:
    import grpc

    async def main() -> tuple[list[float], float, float]:
        async with grpc.aio.insecure_channel(
            address,
            options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)],
        ) as channel:
            call = channel.unary_unary(method)  # bytes in, bytes out: no client-side protobuf work
            for _ in range(min(50, requests)):
                await call(payload, timeout=30)
            latencies: list[float] = []
            share = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]

            async def one(n: int) -> None:
                for _ in range(n):
                    start = time.perf_counter()
                    await call(payload, timeout=30)
                    latencies.append(time.perf_counter() - start)

            # Throughput counts the measured requests only, not the process start, the channel
            # set-up or the warm-up above; the processes of a cell start measuring together
            # (CLOCK_MONOTONIC is the same clock in every process), so their spans overlap.
            start_together.wait(120)
            started = time.monotonic()
            await asyncio.gather(*(one(n) for n in share))
            return latencies, started, time.monotonic()

    out.put(asyncio.run(main()))


def run_load(address: str, method: str, payload: bytes, concurrency: int, requests: int) -> tuple[np.ndarray, float]:
    """Latencies (s) of every request and the aggregate throughput (requests/s)."""
    ctx = mp.get_context("spawn")
    processes = min(concurrency, MAX_CLIENT_PROCESSES)
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    barrier = ctx.Barrier(processes)
    per_process = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    workers = [
        ctx.Process(
            target=load_worker,
            args=(address, method, payload, c, requests * c // concurrency, out, barrier),
        )
        for c in per_process
    ]
    for w in workers:
        w.start()
    results = [out.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(60)
    latencies = np.concatenate([np.asarray(r[0]) for r in results])
    # Throughput: all requests over the span from the common start to the last one done.
    elapsed = max(r[2] for r in results) - min(r[1] for r in results)
    return latencies, latencies.size / elapsed


# ---- raw onnxruntime ----


def raw_session(model: Path) -> tuple[Any, str]:
    """The same onnxruntime session the agent opens (runtime.model settings), nothing around it."""
    from runtime.model import ModelRuntime

    runtime = ModelRuntime(model)
    return runtime.session, runtime.input_name


def raw_onnxruntime(model: Path, rows: np.ndarray, concurrency: int, requests: int) -> tuple[np.ndarray, float]:
    session, name = raw_session(model)
    single = [rows[i : i + 1] for i in range(min(256, rows.shape[0]))]
    for x in single[:50]:
        session.run(None, {name: x})
    per_thread = requests // concurrency

    def loop(_: int) -> list[float]:
        out = []
        for i in range(per_thread):
            start = time.perf_counter()
            session.run(None, {name: single[i % len(single)]})
            out.append(time.perf_counter() - start)
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        parts = list(pool.map(loop, range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies = np.concatenate([np.asarray(p) for p in parts])
    return latencies, latencies.size / elapsed


def raw_batch_rows_per_second(model: Path, rows: np.ndarray, calls: int, threads: int = 1) -> float:
    """onnxruntime alone on the same rows; `threads` callers share the session."""
    session, name = raw_session(model)
    for _ in range(5):
        session.run(None, {name: rows})

    def loop(_: int) -> None:
        for _ in range(calls // threads):
            session.run(None, {name: rows})

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, range(threads)))
    return (calls // threads) * threads * rows.shape[0] / (time.perf_counter() - started)


def batch_rows_per_second(address: str, payload: bytes, rows: int, calls: int, concurrency: int = 1) -> float:
    _latencies, per_second = run_load(address, BATCH_METHOD, payload, concurrency, calls)
    return per_second * rows


# ---- the system under test ----


class Processes:
    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def start(
        self, args: list[str], log: Path, pattern: str, timeout: float = 120, entry: tuple[str, ...] = ("-m", "cli")
    ) -> re.Match[str]:
        """Start `python ENTRY ARGS` (the `sluice` command by default) and wait for `pattern` in its log."""
        handle = log.open("wb")
        proc = subprocess.Popen(
            [sys.executable, *entry, *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        self.children.append(proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, log.read_text(errors="replace"))
            if found:
                return found
            if proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{args[0]} did not start:\n{log.read_text()[-2000:]}")

    def controlplane(self, root: Path) -> str:
        """A control plane on a free port with its store under `root`; its address."""
        port = free_port()
        args = ["controlplane", "--listen", f"127.0.0.1:{port}", "--db", f"sqlite:///{root / 'cp.db'}"]
        args += ["--artifacts", str(root / "artifacts"), "--metrics-port", "0"]
        self.start(args, root / "cp.log", r"listening on")
        return f"127.0.0.1:{port}"

    def agent(self, controlplane: str, root: Path, name: str = "bench") -> str:
        """An agent of `controlplane` on a free port, its cache under `root`; its address."""
        args = ["agent", "--controlplane", controlplane, "--listen", "127.0.0.1:0", "--name", name]
        found = self.start(
            [*args, "--cache", str(root / "agent"), "--metrics-port", "0"], root / "agent.log", r"listening on (\S+)"
        )
        return found.group(1)

    def stop(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.children:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def prepare_model(root: Path, kind: str) -> tuple[Path, Path, np.ndarray]:
    X, y = breast_cancer_arrays()
    model = root / f"{kind}.onnx"
    export_onnx(train_model(X, y, kind, 0), X.shape[1], model)
    baseline = root / "baseline.npy"
    write_baseline(X, baseline)
    return model, baseline, X.astype(np.float32)


def fmt_row(result: Result, floor: Result | None, round_ratio: float | None) -> str:
    ratio = f"{result.p50_ms / floor.p50_ms:5.2f}x" if floor else "    -"
    paired = f"{round_ratio:5.2f}x" if round_ratio is not None else "    -"
    return (
        f"| {result.name:<24} | {result.concurrency:>4} | {result.p50_ms:8.3f} | {result.p99_ms:8.3f} "
        f"| {result.per_second:10.0f} | {ratio:>11} | {paired:>13} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per round and cell (default 1000)")
    parser.add_argument("--batch-calls", type=int, default=200, help="PredictBatch calls (default 200)")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds per cell (default 6)")
    parser.add_argument("--kind", default="logreg", help="model kind (logreg or gbm; default logreg)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    procs = Processes()
    echo: mp.Process | None = None
    try:
        model, baseline, X = prepare_model(root, args.kind)
        cp = procs.controlplane(root)
        agent = procs.agent(cp, root)
        deploy_bench(cp, model, baseline)
        echo, echo_port = start_echo()

        row = X[:1]
        predict = inference_pb2.PredictRequest(
            deployment="bench", input=inference_pb2.Tensor(shape=[1, X.shape[1]], values=row.ravel().tolist())
        ).SerializeToString()
        infer_request = oip_pb2.ModelInferRequest(model_name="bench")
        infer_request.inputs.add(name="input", datatype="FP32", shape=[1, X.shape[1]])
        infer_request.raw_input_contents.append(row.astype("<f4").tobytes())
        infer = infer_request.SerializeToString()
        targets: list[tuple[str, Callable[[int], tuple[np.ndarray, float]]]] = [
            (
                "echo floor (grpc.aio)",
                lambda c: run_load(f"127.0.0.1:{echo_port}", ECHO_METHOD, predict, c, args.requests),
            ),
            ("agent Predict", lambda c: run_load(agent, PREDICT_METHOD, predict, c, args.requests)),
            ("agent OIP ModelInfer", lambda c: run_load(agent, INFER_METHOD, infer, c, args.requests)),
            ("raw onnxruntime per row", lambda c: raw_onnxruntime(model, X, c, args.requests)),
        ]
        # Rounds interleave the targets, so a burst of background load hits all of them alike;
        # each cell pools the latencies of every round.
        pooled: dict[tuple[str, int], list[np.ndarray]] = {}
        rates: dict[tuple[str, int], list[float]] = {}
        for round_number in range(args.rounds):
            for c in CONCURRENCY:
                for name, measure in targets:
                    latencies, per_second = measure(c)
                    pooled.setdefault((name, c), []).append(latencies)
                    rates.setdefault((name, c), []).append(per_second)
            print(f"  round {round_number + 1}/{args.rounds} measured", file=sys.stderr, flush=True)
        # The fairest ratio on a shared machine: p50 over the echo's p50 of the same round and
        # concurrency (measured seconds apart), then the median over the rounds.
        round_ratios: dict[tuple[str, int], float] = {}
        for name, _ in targets[1:]:
            for c in CONCURRENCY:
                pairs = zip(pooled[(name, c)], pooled[(targets[0][0], c)], strict=True)
                round_ratios[(name, c)] = float(np.median([np.median(a) / np.median(e) for a, e in pairs]))
        results: dict[tuple[str, int], Result] = {}
        for name, _ in targets:
            for c in CONCURRENCY:
                latencies = np.concatenate(pooled[(name, c)])
                results[(name, c)] = Result(
                    name,
                    c,
                    float(np.percentile(latencies, 50) * 1e3),
                    float(np.percentile(latencies, 99) * 1e3),
                    float(np.median(rates[(name, c)])),
                )

        batch_rows = np.resize(X, (1024, X.shape[1])).astype(np.float32)
        batch_request_message = batch_request("bench", batch_rows)  # columnar answer only
        batch = batch_request_message.SerializeToString()
        batch_request_message.columnar_only = False  # what a client written before release 0.2 sends
        legacy_batch = batch_request_message.SerializeToString()
        batch_results: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, measure_batch in (
                ("agent PredictBatch, 1 caller", lambda: batch_rows_per_second(agent, batch, 1024, args.batch_calls)),
                (
                    "agent PredictBatch, 4 callers",
                    lambda: batch_rows_per_second(agent, batch, 1024, args.batch_calls, concurrency=4),
                ),
                (
                    "agent, with deprecated rows",
                    lambda: batch_rows_per_second(agent, legacy_batch, 1024, args.batch_calls),
                ),
                ("raw onnxruntime, 1 thread", lambda: raw_batch_rows_per_second(model, batch_rows, args.batch_calls)),
                (
                    "raw onnxruntime, 2 threads",
                    lambda: raw_batch_rows_per_second(model, batch_rows, args.batch_calls, threads=2),
                ),
                (
                    "echo of the same request",
                    lambda: 1024 * run_load(f"127.0.0.1:{echo_port}", ECHO_METHOD, batch, 1, args.batch_calls)[1],
                ),
            ):
                batch_results.setdefault(name, []).append(measure_batch())
        batch_rates = {name: float(np.median(values)) for name, values in batch_results.items()}
        agent_rows = batch_rates["agent PredictBatch, 1 caller"]
        raw_rows = batch_rates["raw onnxruntime, 1 thread"]
    finally:
        if echo is not None:
            echo.kill()
        procs.stop()

    print()
    print(
        f"Model: breast-cancer {args.kind} (30 features), {args.rounds} x {args.requests} requests per cell, "
        f"{os.cpu_count()} CPUs, loopback."
    )
    print()
    print("| target                   | conc | p50 (ms) | p99 (ms) |      req/s | p50 vs echo | median of the |")
    print("|                          |      |          |          |            |    (pooled) | round ratios  |")
    print("| ------------------------ | ---: | -------: | -------: | ---------: | ----------: | ------------: |")
    for (name, c), result in results.items():
        floor = results[("echo floor (grpc.aio)", c)] if not name.startswith("echo") else None
        print(fmt_row(result, floor, round_ratios.get((name, c))))
    print()
    print("| PredictBatch, 1,024 rows per call | rows/s |")
    print("| --------------------------------- | -----: |")
    for name, rate in batch_rates.items():
        print(f"| {name:<33} | {rate:,.0f} |")
    print(f"| PredictBatch (1 caller) / raw (1 thread) | {agent_rows / raw_rows:.0%} |")
    four, echo_rows = batch_rates["agent PredictBatch, 4 callers"], batch_rates["echo of the same request"]
    print(f"| PredictBatch (4 callers) / raw (1 thread) | {four / raw_rows:.0%} |")
    print(f"| PredictBatch (1 caller) / echo of the request | {agent_rows / echo_rows:.0%} |")
    legacy_rows = batch_rates["agent, with deprecated rows"]
    print(f"| PredictBatch with deprecated rows / echo of the request | {legacy_rows / echo_rows:.0%} |")
    print()
    for c in CONCURRENCY:
        p50 = results[("agent Predict", c)].p50_ms / results[("echo floor (grpc.aio)", c)].p50_ms
        paired = round_ratios[("agent Predict", c)]
        verdict = "met" if max(p50, paired) <= 1.3 else "met (one measure)" if min(p50, paired) <= 1.3 else "MISSED"
        print(
            f"Target Predict p50 <= 1.3x echo p50 (concurrency {c}): pooled {p50:.2f}x, "
            f"median of rounds {paired:.2f}x -> {verdict}"
        )
    share = agent_rows / raw_rows
    print(f"Target PredictBatch >= 50% of raw onnxruntime rows/s: {share:.0%} -> {'met' if share >= 0.5 else 'MISSED'}")
    of_echo = agent_rows / echo_rows
    verdict = "met" if of_echo >= 0.8 else "MISSED"
    print(f"Target PredictBatch >= 80% of the echo of the request: {of_echo:.0%} -> {verdict}")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
