"""Agent footprint: memory with two models loaded, and the time from start to serving.

    .venv/bin/python bench/agent_footprint.py [--runs N] [--agent-arg=--log-buffer-mb=0]

Starts a control plane (SQLite in a temporary directory) as a child process, registers the two
committed fixture models and deploys each to its own deployment, then starts `sluice agent`
N times (a fresh cache each run, so it fetches both artifacts): prints the time from the
process start to its first applied snapshot, and the agent's resident memory (VmRSS) once both
deployments answer a prediction, again 3 s later (after the prediction log's first flush, which
loaded pyarrow before the log shipped record files), and that of its child processes (the model sandbox's forkserver,
which loaded and warmed up each model before the agent did). Also prints what `import
agent.server` alone costs.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SLUICE = [sys.executable, "-m", "cli"]
ROW = "[" + ",".join(["1.0"] * 30) + "]"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(path: Path, pattern: str, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and re.search(pattern, path.read_text(errors="replace")):
            return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError(f"{pattern!r} not in {path}")


def sluice(address: str, *args: str) -> None:
    subprocess.run([*SLUICE, "--controlplane", address, *args], check=True, capture_output=True, cwd=REPO)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages (the same libraries mapped by two processes) split between them."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no Pss")


def children_memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of a process's children: an agent's sandbox forkserver and its resource tracker."""
    rss = pss = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                rss += rss_mb(int(child))
                pss += pss_mb(int(child))
            except (FileNotFoundError, RuntimeError):
                pass
    return rss, pss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--agent-arg", action="append", default=[], help="one more `sluice agent` argument (repeatable)"
    )
    args = parser.parse_args()
    code = "import resource, agent.server; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    imported = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO).stdout)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        address = f"127.0.0.1:{free_port()}"
        cp_log = root / "cp.log"
        with cp_log.open("wb") as out:
            cp = subprocess.Popen(
                [*SLUICE, "controlplane", "--listen", address, "--db", str(root / "cp.db"),
                 "--artifacts", str(root / "art"), "--metrics-port", "0"],
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
            )  # fmt: skip
        try:
            wait_for(cp_log, "listening on")
            for version, kind in (("v1", "logreg"), ("v2", "constant")):
                fixture = REPO / "tests" / "fixtures" / f"classifier-{kind}.onnx"
                sluice(address, "version", "register", "bench", str(fixture), "--version", version)
            sluice(address, "deploy", "first", "bench:v1")
            sluice(address, "deploy", "second", "bench:v2")
            starts, rss, flushed, helpers, helpers_pss = [], [], [], [], []
            for run in range(args.runs):
                log = root / f"agent-{run}.log"
                port = free_port()
                begun = time.monotonic()
                with log.open("wb") as out:
                    agent = subprocess.Popen(
                        [*SLUICE, "agent", "--controlplane", address, "--listen", f"127.0.0.1:{port}",
                         "--cache", str(root / f"cache-{run}"), "--metrics-port", "0", "--name", f"bench-{run}",
                         *args.agent_arg],
                        stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                    )  # fmt: skip
                try:
                    starts.append(wait_for(log, "applied snapshot") - begun)
                    for deployment in ("first", "second"):
                        subprocess.run(
                            [*SLUICE, "predict", deployment, "--agent", f"127.0.0.1:{port}", "--input", ROW],
                            check=True, capture_output=True, cwd=REPO,
                        )  # fmt: skip
                    rss.append(rss_mb(agent.pid))
                    # The prediction log (on by default) writes its first segment within its flush
                    # interval (2 s), closing its first segments: the RSS of an agent that logs.
                    time.sleep(3.0)
                    flushed.append(rss_mb(agent.pid))
                    child_rss, child_pss = children_memory_mb(agent.pid)
                    helpers.append(child_rss)
                    helpers_pss.append(child_pss)
                finally:
                    agent.terminate()
                    agent.wait(20)
        finally:
            cp.terminate()
            cp.wait(20)
    print(f"import agent.server alone: {imported:.0f} MB max RSS")
    print(f"agent start -> first snapshot applied (2 models fetched): median {statistics.median(starts):.2f} s "
          f"(runs: {', '.join(f'{s:.2f}' for s in starts)})")
    print(f"agent RSS serving 2 models: median {statistics.median(rss):.0f} MB "
          f"(runs: {', '.join(f'{r:.0f}' for r in rss)})")
    print(f"agent RSS after the prediction log's first flush (--log-buffer-mb 0: no log): median "
          f"{statistics.median(flushed):.0f} MB (runs: {', '.join(f'{r:.0f}' for r in flushed)})")
    print(f"the agent's child processes (the model sandbox's forkserver and resource tracker): median "
          f"{statistics.median(helpers):.0f} MB RSS, {statistics.median(helpers_pss):.0f} MB PSS "
          f"(runs: {', '.join(f'{r:.0f}' for r in helpers)})")


if __name__ == "__main__":
    main()
