"""What the model sandbox costs: its forkserver's start, a job, registration's check, an agent's probe.

    .venv/bin/python bench/sandbox.py [--repeat N]

Prints, for the breast-cancer classifiers (logistic regression and 50-tree gradient boosting, 30
features, 569 baseline rows): the old in-process check (`inspect_onnx_file`) beside registration's
sandboxed check (`check_model`, without and with the baseline), and an agent's in-process
`open_runtime` beside its sandboxed probe; the median of N runs each. The forkserver's start is
measured in a fresh interpreter per process kind (control plane: numpy, onnxruntime, onnx and the
warm-ups; agent: numpy, onnxruntime, agent.serving), as the first job's time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FIRST_JOB = """
import operator, sys, time
from runtime import sandbox
def main():
    sandbox.preload(*sys.argv[1:])
    begun = time.perf_counter()
    sandbox.run(operator.add, 1, 2, limits=sandbox.Limits(60, 2048))
    first = time.perf_counter() - begun
    begun = time.perf_counter()
    sandbox.run(operator.add, 1, 2, limits=sandbox.Limits(60, 2048))
    print(first, time.perf_counter() - begun)
if __name__ == "__main__":
    main()
"""


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        begun = time.perf_counter()
        fn()
        times.append((time.perf_counter() - begun) * 1000)
    return statistics.median(times)


def forkserver_start(modules: list[str], runs: int) -> tuple[float, float]:
    """(first job, second job) in seconds, median over fresh interpreters."""
    firsts, seconds = [], []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "first_job.py"
        script.write_text(FIRST_JOB)
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, str(script), *modules], capture_output=True, text=True, check=True,
                cwd=REPO, env={"PYTHONPATH": str(REPO)},
            )  # fmt: skip
            first, second = map(float, out.stdout.split())
            firsts.append(first)
            seconds.append(second)
    return statistics.median(firsts), statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    import numpy as np

    from agent.serving import open_runtime, probe_runtime
    from controlplane.config import ModelsConfig
    from controlplane.model_checks import check_model
    from controlplane.onnx_inspect import inspect_onnx_file
    from runtime import sandbox
    from tests.models import make_baseline, make_classifier_onnx

    cp = ["controlplane.model_checks", "controlplane.sandbox_warmup"]
    for name, modules in (("control plane", cp), ("agent", ["agent.serving"])):
        first, second = forkserver_start(modules, 3)
        print(f"{name}: first job (starts the forkserver) {first:.2f} s, the next {second * 1000:.0f} ms")

    limits = sandbox.Limits(60, 2048)
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp)
        baseline = np.load(make_baseline(models))
        config = ModelsConfig()
        sandbox.start(*cp, "agent.serving")
        check_model(config, make_classifier_onnx(models), "warm", None)  # the forkserver is up
        print(f"an empty job: {median_ms(lambda: sandbox.run(len, (), limits=limits), args.repeat):.1f} ms")
        for kind in ("logreg", "gbm"):
            path = make_classifier_onnx(models, kind)
            figures = {
                "in-process inspect (before)": lambda path=path: inspect_onnx_file(path),
                "sandboxed check, row of zeros": lambda path=path: check_model(config, path, "m", None),
                "sandboxed check, 569 baseline rows": lambda path=path: check_model(config, path, "m", baseline),
                "agent: in-process open_runtime": lambda path=path: open_runtime(path),
                "agent: sandboxed probe": lambda path=path: sandbox.run(probe_runtime, str(path), limits=limits),
            }
            for label, fn in figures.items():
                print(f"{kind:6} {label:36} {median_ms(fn, args.repeat):7.1f} ms")
    sandbox.shutdown()


if __name__ == "__main__":
    main()
