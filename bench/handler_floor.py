"""How much of the echo's PredictBatch rate an agent keeps when part of its work is taken away.

    .venv/bin/python bench/handler_floor.py [--calls N] [--rounds N] [--agent-arg=...]

Issue 12 asks PredictBatch (1,024 rows, 1 caller) for >= 80% of the rows/s of a bare `grpc.aio`
echo of the same request. This bench says where that rate is lost. It starts one control plane,
the echo server (bench/predict.py's) and five agents of the same deployment (the breast-cancer
logistic regression), each through bench/agent_variant.py:

- `real`: the agent as it is;
- `timed`: the agent as it is, timing each step of PredictBatch in its own process (thread CPU
  per call of the handler, its parts, the bookkeeping after the answer and the recorder's folds;
  printed at the end);
- `no-books`: without the bookkeeping that follows each answer (metric window, histograms,
  Prometheus, prediction log, shadows);
- `no-model`: every step of the handler and its bookkeeping, but onnxruntime's run replaced by
  its first answer;
- `canned`: the handler replaced by its first answer (gRPC, the request's parser and the answer's
  serialiser remain).

Each round sends `--calls` columnar 1,024-row PredictBatch calls (1 caller, after 50 warm-up
calls) to each agent, each followed at once by the same number to the echo, and prints every
agent / echo ratio of rows/s; the last lines are the medians over the rounds.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.agent_variant import TIMED_EVERY_SECONDS, VARIANTS
from bench.predict import BATCH_METHOD, ECHO_METHOD, Processes, deploy_bench, prepare_model, run_load, start_echo
from core.client import batch_request

VARIANT_SCRIPT = str(Path(__file__).resolve().parent / "agent_variant.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per round and target (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--agent-arg", action="append", default=[], help="one more `sluice agent` argument (repeatable)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sluice-handler-floor-"))
    procs = Processes()
    echo: mp.Process | None = None
    try:
        model, baseline, X = prepare_model(root, "logreg")
        cp = procs.controlplane(root)
        agents: dict[str, str] = {}
        for variant in VARIANTS:
            agent_args = ["agent", "--controlplane", cp, "--listen", "127.0.0.1:0", "--name", variant]
            agent_args += ["--cache", str(root / variant), "--metrics-port", "0", *args.agent_arg]
            found = procs.start(
                agent_args, root / f"{variant}.log", r"listening on (\S+)", entry=(VARIANT_SCRIPT, variant)
            )
            agents[variant] = found.group(1)
        deploy_bench(cp, model, baseline)
        echo, echo_port = start_echo()
        payload = batch_request("bench", np.resize(X, (1024, X.shape[1])).astype(np.float32)).SerializeToString()
        ratios: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        for number in range(args.rounds):
            cells = []
            for variant, address in agents.items():
                _, agent_rate = run_load(address, BATCH_METHOD, payload, 1, args.calls)
                _, echo_rate = run_load(f"127.0.0.1:{echo_port}", ECHO_METHOD, payload, 1, args.calls)
                ratios[variant].append(agent_rate / echo_rate)
                share = f"{agent_rate / echo_rate:.0%} of the echo's {echo_rate * 1024:,.0f}"
                cells.append(f"{variant} {agent_rate * 1024:,.0f} rows/s ({share})")
            print(f"round {number + 1}: " + "; ".join(cells), flush=True)
        for variant, values in ratios.items():
            spread = ", ".join(f"{v:.0%}" for v in values)
            print(f"{variant:<9} agent / echo rows/s: median {statistics.median(values):.0%} (rounds: {spread})")
        time.sleep(TIMED_EVERY_SECONDS * 1.5)  # the timed agent's last figures reach its log
        steps = [line for line in (root / "timed.log").read_text().splitlines() if "STEPS" in line]
        if steps:
            print("the timed agent, thread CPU per call over all its calls:", steps[-1].split("STEPS ", 1)[1])
    finally:
        if echo is not None:
            echo.kill()
        procs.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
