"""Prediction-log benchmark: what writing every prediction costs the agent (issue 16 targets).

    .venv/bin/python bench/predlog.py [--requests N] [--batch-calls N] [--rounds N]
    .venv/bin/python bench/predlog.py --requests 300 --batch-calls 50 --rounds 2   # a quick look

Starts one control plane and two agents as child processes on loopback, serving the same
deployment (the breast-cancer logistic regression of bench/predict.py): one with the prediction
log on (the default, sample rate 1.0: every row is journaled, written to Arrow segments and
shipped to the control plane, which stores them as Parquet), one with it off (`--log-buffer-mb
0`). Rounds alternate between them, so
background load hits both alike, and measure:

- single-row Predict latency at concurrency 1 (p50, pooled over the rounds);
- PredictBatch of 1,024 rows, one caller: rows per second (median over the rounds).

Targets: Predict p50 with the log <= 1.05x without; PredictBatch rows/s with the log >= 90%.
At the end it checks that the control plane holds every row the logging agent answered.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.predict import (  # noqa: E402
    BATCH_METHOD,
    PREDICT_METHOD,
    Processes,
    cpu_seconds,
    prepare_model,
    run_load,
)
from core.client import SluiceClient, batch_request  # noqa: E402
from protos import inference_pb2  # noqa: E402


def start_agent(procs: Processes, controlplane: str, root: Path, name: str, extra: list[str]) -> str:
    root.mkdir(parents=True, exist_ok=True)
    args = ["agent", "--controlplane", controlplane, "--listen", "127.0.0.1:0", "--name", name]
    args += ["--cache", str(root / "cache"), "--metrics-port", "0", *extra]
    return procs.start(args, root / "agent.log", r"listening on (\S+)").group(1)


def logged_rows(root: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in (root / "predictions").rglob("[0-9a-f]*.parquet"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="Predict calls per round and agent (default 2000)")
    parser.add_argument("--batch-calls", type=int, default=200, help="PredictBatch calls per round and agent")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (default 6)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="sluice-bench-predlog-"))
    procs = Processes()
    try:
        model, baseline, X = prepare_model(root, "logreg")
        cp = procs.controlplane(root)
        agents = {
            "log on": start_agent(procs, cp, root / "on", "bench-log-on", []),
            "log off": start_agent(procs, cp, root / "off", "bench-log-off", ["--log-buffer-mb", "0"]),
        }
        with SluiceClient(cp, token="") as client:
            client.register_version("bench", "v1", model, baseline)
            client.deploy("bench", "bench:v1")
            deadline = time.monotonic() + 60
            while True:
                sync = client.wait_for_sync("bench", timeout=10)
                if sync.in_sync and {"bench-log-on", "bench-log-off"} <= set(sync.synced_agents):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the agents did not apply the deployment")

        predict = inference_pb2.PredictRequest(
            deployment="bench", input=inference_pb2.Tensor(shape=[1, X.shape[1]], values=X[:1].ravel().tolist())
        ).SerializeToString()
        batch = batch_request("bench", np.resize(X, (1024, X.shape[1])).astype(np.float32)).SerializeToString()
        pids = {
            name: proc.pid for name, proc in zip(("control plane", "log on", "log off"), procs.children, strict=True)
        }
        cpu_batch = dict.fromkeys(pids, 0.0)
        batch_rows = dict.fromkeys(agents, 0)
        latencies: dict[str, list[np.ndarray]] = {name: [] for name in agents}
        rows_per_second: dict[str, list[float]] = {name: [] for name in agents}
        answered = 0
        for round_number in range(args.rounds):
            order = list(agents.items()) if round_number % 2 == 0 else list(reversed(agents.items()))
            for name, address in order:
                lat, _ = run_load(address, PREDICT_METHOD, predict, 1, args.requests)
                latencies[name].append(lat)
                before = {k: cpu_seconds(pid) for k, pid in pids.items()}
                _, calls_per_second = run_load(address, BATCH_METHOD, batch, 1, args.batch_calls)
                rows_per_second[name].append(calls_per_second * 1024)
                batch_rows[name] += (args.batch_calls + min(50, args.batch_calls)) * 1024
                # CPU of the agent measured, and of the control plane (segments arrive meanwhile)
                for k in (name, "control plane"):
                    cpu_batch[k] += cpu_seconds(pids[k]) - before[k]
                if name == "log on":
                    # run_load warms up with 50 calls per client process before it measures
                    answered += (
                        lat.size + min(50, args.requests) + (args.batch_calls + min(50, args.batch_calls)) * 1024
                    )
            print(f"  round {round_number + 1}/{args.rounds} measured", file=sys.stderr, flush=True)

        p50 = {name: float(np.percentile(np.concatenate(v), 50) * 1e3) for name, v in latencies.items()}
        p99 = {name: float(np.percentile(np.concatenate(v), 99) * 1e3) for name, v in latencies.items()}
        rates = {name: float(np.median(v)) for name, v in rows_per_second.items()}
        paired = float(np.median([np.median(a) / np.median(b) for a, b in zip(*latencies.values(), strict=True)]))
        print()
        print("| agent   | Predict p50 ms | Predict p99 ms | PredictBatch rows/s |")
        print("|---------|---------------:|---------------:|--------------------:|")
        for name in agents:
            print(f"| {name:<7} | {p50[name]:14.3f} | {p99[name]:14.3f} | {rates[name]:19,.0f} |")
        print()
        print(
            f"Predict p50 on/off: {p50['log on'] / p50['log off']:.3f}x (median of the round ratios {paired:.3f}x; "
            f"target <= 1.05x)"
        )
        print(f"PredictBatch rows/s on/off: {rates['log on'] / rates['log off']:.1%} (target >= 90%)")
        for name in agents:
            per_row = cpu_batch[name] / batch_rows[name]
            print(
                f"agent CPU in PredictBatch, {name}: {per_row * 1e6:.2f} s per million rows "
                f"({per_row * 1024 * 1e6:,.0f} us per 1,024-row call)"
            )
        total = sum(batch_rows.values())
        print(
            f"control plane CPU during PredictBatch: {cpu_batch['control plane'] / total * 1e6:.2f} s per million rows"
        )

        deadline = time.monotonic() + 120
        while logged_rows(root) < answered and time.monotonic() < deadline:
            time.sleep(0.5)
        print(f"rows at the control plane: {logged_rows(root):,} of {answered:,} answered by the logging agent")
    finally:
        procs.stop()
    written = re.search(
        r"prediction log: (\d+) row\(s\) written in ([\d.]+) s of CPU", (root / "on" / "agent.log").read_text()
    )
    if written:
        rows, seconds = int(written.group(1)), float(written.group(2))
        print(f"the flush thread of the logging agent: {seconds / rows * 1e6:.2f} s of CPU per million rows written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
