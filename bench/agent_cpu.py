"""The agent process's own CPU time per 1,024-row PredictBatch call, with the echo server's beside it.

    .venv/bin/python bench/agent_cpu.py [--calls N] [--rounds N]

Starts the control plane, one agent and the echo server as `bench/predict.py` does, then in each
round sends `--calls` columnar PredictBatch calls (1 caller, after `run_load`'s 50 warm-up calls)
to the agent and the same request to the echo, and divides each process's utime + stime (from
/proc, clock ticks of 10 ms) by the calls it answered. On a shared machine this moves much less
with the background load than rows/s, which it prints too. Each process's CPU is also split by
thread (/proc/PID/task): the event loop (the main thread, where every handler runs), gRPC's C-core
threads (`event_engine`) and the other Python threads (the recorder's folds, the report loop's
worker, shadows, gRPC's poller).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.predict import (
    BATCH_METHOD,
    ECHO_METHOD,
    Processes,
    cpu_seconds,
    deploy_bench,
    prepare_model,
    run_load,
    start_echo,
)
from core.client import batch_request

WARM_UP = 50  # calls run_load makes before it measures


def thread_seconds(pid: int) -> dict[str, float]:
    """CPU seconds so far of the process's threads by kind: the event loop, gRPC core, other threads."""
    kinds = {"loop": 0.0, "grpc core": 0.0, "other": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            seconds = cpu_seconds(pid, int(task.name))
            name = (task / "comm").read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        kind = "loop" if task.name == str(pid) else "grpc core" if name == "event_engine" else "other"
        kinds[kind] += seconds
    return kinds


def split(before: dict[str, float], after: dict[str, float], calls: int) -> str:
    return ", ".join(f"{kind} {(after[kind] - before[kind]) / calls * 1e6:,.0f}" for kind in after)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=450, help="measured calls per round and target (default 450)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, agent and echo alternating (default 3)")
    parser.add_argument(
        "--agent-arg",
        action="append",
        default=[],
        help="one more `sluice agent` argument, e.g. --agent-arg=--log-buffer-mb=0 (repeatable)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sluice-agent-cpu-"))
    procs = Processes()
    echo: mp.Process | None = None
    try:
        model, baseline, X = prepare_model(root, "logreg")
        cp = procs.controlplane(root)
        agent_args = ["agent", "--controlplane", cp, "--listen", "127.0.0.1:0", "--name", "bench"]
        agent_args += ["--cache", str(root / "agent"), "--metrics-port", "0", *args.agent_arg]
        found = procs.start(agent_args, root / "agent.log", r"listening on (\S+)")
        agent, agent_pid = found.group(1), procs.children[-1].pid
        deploy_bench(cp, model, baseline)
        echo, echo_port = start_echo()
        payload = batch_request("bench", np.resize(X, (1024, X.shape[1])).astype(np.float32)).SerializeToString()
        answered = args.calls + WARM_UP
        for number in range(args.rounds):
            before, threads = cpu_seconds(agent_pid), thread_seconds(agent_pid)
            _, agent_rate = run_load(agent, BATCH_METHOD, payload, 1, args.calls)
            agent_cpu = (cpu_seconds(agent_pid) - before) / answered
            agent_threads = split(threads, thread_seconds(agent_pid), answered)
            before, threads = cpu_seconds(echo.pid), thread_seconds(echo.pid)
            _, echo_rate = run_load(f"127.0.0.1:{echo_port}", ECHO_METHOD, payload, 1, args.calls)
            echo_cpu = (cpu_seconds(echo.pid) - before) / answered
            echo_threads = split(threads, thread_seconds(echo.pid), answered)
            print(
                f"round {number + 1}: agent CPU per call {agent_cpu * 1e6:,.0f} us, {agent_rate * 1024:,.0f} rows/s | "
                f"echo CPU per call {echo_cpu * 1e6:,.0f} us, {echo_rate * 1024:,.0f} rows/s | "
                f"agent / echo rows/s {agent_rate / echo_rate:.0%}\n"
                f"  by thread, us per call: agent {agent_threads} | echo {echo_threads}",
                flush=True,
            )
    finally:
        if echo is not None:
            echo.kill()
        procs.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
