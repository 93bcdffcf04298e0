"""The event loop's CPU per PredictBatch call for gRPC alone: a typed handler that does nothing.

    .venv/bin/python bench/aio_floor.py [--calls N] [--rounds N]

In this process, on loopback: a `grpc.aio` server with two methods, the echo of `bench/predict.py`
(a generic handler: the request's bytes back, nothing parsed) and a typed handler (the request
parsed as a `PredictBatchRequest` by protobuf, a small canned `PredictBatchResponse` serialised
back, nothing else), each called `--calls` times in a row with the same serialised 1,024-row
request of 30 float32 features. Prints the server thread's CPU per call (utime + stime of its
/proc task) and rows/s. The agent's loop CPU per call (`bench/agent_cpu.py`) minus the typed
figure is the agent's own work on its loop: routing, checks, the model, the answer, bookkeeping.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.predict import cpu_seconds
from core.client import batch_request
from protos import inference_pb2

ROWS = 1024


def thread_cpu(tid: int) -> float:
    return cpu_seconds(os.getpid(), tid)


async def echo(request: bytes, context: Any) -> bytes:
    return request


CANNED = inference_pb2.PredictBatchResponse(
    labels=np.zeros(ROWS, "<i8").tobytes(), served_by=np.zeros(ROWS, "<i4").tobytes()
)


async def typed(request: inference_pb2.PredictBatchRequest, context: Any) -> inference_pb2.PredictBatchResponse:
    return CANNED


def handler(kind: str) -> grpc.RpcMethodHandler:
    if kind == "echo":
        return grpc.unary_unary_rpc_method_handler(echo)
    return grpc.unary_unary_rpc_method_handler(
        typed,
        request_deserializer=inference_pb2.PredictBatchRequest.FromString,
        response_serializer=inference_pb2.PredictBatchResponse.SerializeToString,
    )


def measure(kind: str, request: bytes, calls: int) -> tuple[float, float]:
    """(server thread CPU seconds per call, rows/s) of `calls` calls in a row."""
    port: list[int] = []
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Floor", {"M": handler(kind)}),))
        port.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await server.stop(None)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    ready.wait()
    assert thread.native_id is not None
    with grpc.insecure_channel(f"127.0.0.1:{port[0]}") as channel:
        call = channel.unary_unary("/bench.Floor/M")
        for _ in range(100):  # warm-up
            call(request)
        cpu, wall = thread_cpu(thread.native_id), time.perf_counter()
        for _ in range(calls):
            call(request)
        cpu, wall = thread_cpu(thread.native_id) - cpu, time.perf_counter() - wall
    stop.set()
    thread.join()
    return cpu / calls, calls * ROWS / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    x = np.random.default_rng(0).random((ROWS, 30), dtype=np.float32)
    request = batch_request("d", x, ()).SerializeToString()
    for r in range(args.rounds):
        for kind in ("echo", "typed"):
            cpu, rows = measure(kind, request, args.calls)
            print(f"round {r + 1}: {kind:<5} server loop CPU {cpu * 1e6:5.0f} us per call, {rows:,.0f} rows/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
