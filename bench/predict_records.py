"""Record form vs typed tensors: agent Predict p50 on the same mixed-type model and rows.

    .venv/bin/python bench/predict_records.py [--requests N] [--rounds N] [--rows N]

Starts a control plane and one agent as child processes on loopback (as bench/predict.py does),
registers and deploys the mixed-type pipeline of the tests (`tests/models.py`: skl2onnx export of
Pipeline(ColumnTransformer(OneHotEncoder on 2 string columns, SimpleImputer + StandardScaler on 3
float64 columns), LogisticRegression) with string classes: 5 inputs [rows, 1]), then sends the same
rows as one Predict in each form, pre-serialised, from separate client processes: `records` (one
Record of 5 named features per row) and `named_inputs` (5 typed tensors: 3 FLOAT64 as raw bytes, 2
STRING). Rounds interleave the two forms; each round's ratio is its record p50 over its tensor
p50, and the figure is the median of those ratios (target: at most 1.5).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from predict import PREDICT_METHOD, Processes, run_load  # noqa: E402

from core.client import SluiceClient, predict_request  # noqa: E402
from tests.models import make_mixed_onnx, mixed_columns, mixed_records, mixed_rows  # noqa: E402

CONCURRENCY = (1, 8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per round and cell (default 1000)")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds (default 6)")
    parser.add_argument("--rows", type=int, default=1, help="rows per request (default 1)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="sluice-bench-records-"))
    procs = Processes()
    try:
        model = make_mixed_onnx(root)
        cp = procs.controlplane(root)
        agent = procs.agent(cp, root)
        with SluiceClient(cp, token="") as client:
            client.register_version("mixed", "v1", model)
            client.deploy("mixed", "mixed:v1")
            if not client.wait_for_sync("mixed", timeout=60).in_sync:
                raise RuntimeError("the agent did not apply the deployment")

        rows = mixed_rows(args.rows, seed=1)
        payloads = {
            "records": predict_request("mixed", records=mixed_records(rows)).SerializeToString(),
            "typed tensors": predict_request("mixed", inputs=mixed_columns(rows)).SerializeToString(),
        }
        pooled: dict[tuple[str, int], list[np.ndarray]] = {}
        for round_number in range(args.rounds):
            for c in CONCURRENCY:
                for name, payload in payloads.items():
                    latencies, _ = run_load(agent, PREDICT_METHOD, payload, c, args.requests)
                    pooled.setdefault((name, c), []).append(latencies)
            print(f"  round {round_number + 1}/{args.rounds} measured", file=sys.stderr, flush=True)
    finally:
        procs.stop()

    print()
    print(
        f"Model: mixed-type pipeline (5 inputs: 3 float64, 2 string), {args.rows} row(s) per request, "
        f"{args.rounds} x {args.requests} requests per cell, {os.cpu_count()} CPUs, loopback."
    )
    print()
    print("| form          | conc | bytes | p50 (ms) | p99 (ms) | record p50 / tensor p50 (median of rounds) |")
    print("| ------------- | ---: | ----: | -------: | -------: | -----------------------------------------: |")
    verdicts = []
    for c in CONCURRENCY:
        ratios = [
            float(np.median(r) / np.median(t))
            for r, t in zip(pooled[("records", c)], pooled[("typed tensors", c)], strict=True)
        ]
        ratio = float(np.median(ratios))
        verdicts.append((c, ratio, ratios))
        for name, payload in payloads.items():
            latencies = np.concatenate(pooled[(name, c)])
            p50, p99 = np.percentile(latencies, 50) * 1e3, np.percentile(latencies, 99) * 1e3
            shown = f"{ratio:.2f}x" if name == "records" else ""
            print(f"| {name:<13} | {c:>4} | {len(payload):>5} | {p50:8.3f} | {p99:8.3f} | {shown:>42} |")
    print()
    for c, ratio, ratios in verdicts:
        rounds = ", ".join(f"{r:.2f}" for r in ratios)
        verdict = "met" if ratio <= 1.5 else "MISSED"
        print(f"Target record p50 <= 1.5x typed-tensor p50 (concurrency {c}): {ratio:.2f}x (rounds {rounds})", end="")
        print(f" -> {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
