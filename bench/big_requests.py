"""How long a one-row Predict waits behind big requests on the same agent (issue 13, suspected).

A real control plane and agent process on loopback serve a breast-cancer classifier. One thread
sends big requests back to back (Predict with one tensor of ROWS rows, then the same rows as
PredictBatch); meanwhile the main thread sends one-row Predicts and records their latency. Before
the fix a big Predict ran on the agent's event loop, so a probe waited for it (the review
measured 293 ms median behind 139k-row Predicts, 89 ms behind PredictBatch); since, a request of
4,096 rows or more runs on a worker thread, as PredictBatch always did.

    .venv/bin/python bench/big_requests.py
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.client import SluiceClient, batch_request
from protos import inference_pb2
from tests.agent.cluster import AgentProcess, wait_for_agents
from tests.harness import start_server
from tests.models import breast_cancer_rows, make_classifier_onnx

ROWS = 100_000  # 12 MB of float32: under the 16 MiB message limit
PROBES = 200


def probe_latencies(agent: AgentProcess, big: str) -> list[float]:
    assert agent.stub is not None
    stub = agent.stub
    rows = np.tile(breast_cancer_rows(100, seed=1), (ROWS // 100, 1)).astype(np.float32)
    stop = threading.Event()
    if big == "Predict":
        request = inference_pb2.PredictRequest(
            deployment="bench", input=inference_pb2.Tensor(shape=list(rows.shape), raw=rows.tobytes())
        )
        call = lambda: stub.Predict(request, timeout=60)  # noqa: E731
    else:
        batch = batch_request("bench", rows, ())
        call = lambda: stub.PredictBatch(batch, timeout=60)  # noqa: E731

    def load() -> None:
        while not stop.is_set():
            call()

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    time.sleep(1.0)  # the big requests are flowing
    one = breast_cancer_rows(1, seed=2).astype(np.float32)
    probe = inference_pb2.PredictRequest(
        deployment="bench", input=inference_pb2.Tensor(shape=[1, one.shape[1]], raw=one.tobytes())
    )
    latencies = []
    for _ in range(PROBES):
        started = time.perf_counter()
        stub.Predict(probe, timeout=60)
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.01)
    stop.set()
    loader.join(60)
    return latencies


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sluice-big-"))
    server = start_server(tmp)
    agent = None
    try:
        with SluiceClient(server.address, token="") as client:
            client.register_version("cancer", "v1", make_classifier_onnx(tmp, "logreg", 0))
            client.deploy("bench", "cancer:v1")
            agent = AgentProcess(server.address, "bench-agent", tmp / "cache", tmp / "agent.log")
            wait_for_agents(client, "bench", [agent.name])
        print(f"one-row Predict latency while another client sends {ROWS:,}-row requests ({PROBES} probes):")
        for big in ("Predict", "PredictBatch"):
            ms = np.array(probe_latencies(agent, big))
            print(f"  behind {big:<12} p50 {np.median(ms):7.1f} ms   p95 {np.percentile(ms, 95):7.1f} ms")
    finally:
        if agent is not None:
            agent.stop()
        server.stop()


if __name__ == "__main__":
    main()
