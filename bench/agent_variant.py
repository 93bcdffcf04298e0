"""`sluice agent` with one part of its PredictBatch work taken away, for bench/handler_floor.py.

    .venv/bin/python bench/agent_variant.py VARIANT agent --controlplane ... (the `sluice agent` arguments)

VARIANT is one of:

- `real`: the agent as it is;
- `timed`: the agent as it is, with the thread CPU time of each step of PredictBatch summed
  (`time.thread_time` around it: a microsecond or two of its own per step) and written to its log
  as a `STEPS` line every TIMED_EVERY_SECONDS; steps nest (`handler` holds `predict_batch`, which
  holds `run`, which holds `prepare` and `model`), and `folds` run on the recorder's own thread;
- `no-books`: the answer's bookkeeping (metric window, histograms, Prometheus, prediction log,
  shadows), which runs after the answer is sent, skipped;
- `no-model`: each model answers its first batch again without running (onnxruntime's share
  removed, every other step of the handler and its bookkeeping as they are);
- `canned`: PredictBatch answers its first response again without doing anything (what the agent's
  gRPC server, parser and serialiser cost on their own).

A measuring tool only: nothing here is part of the product, and only this script patches anything.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = ("real", "timed", "no-books", "no-model", "canned")
#: how often the `timed` agent writes its step times to its log (stderr)
TIMED_EVERY_SECONDS = 2.0


def take_model_away() -> None:
    from runtime.model import ModelRuntime, PredictionResult

    run = ModelRuntime.predict
    first: dict[int, PredictionResult] = {}

    def predict(self: ModelRuntime, feeds: Any) -> PredictionResult:
        if id(self) not in first:
            first[id(self)] = run(self, feeds)
        return first[id(self)]

    ModelRuntime.predict = predict  # type: ignore[method-assign]


def time_steps() -> None:
    import threading
    import time

    import agent.core
    import agent.services
    from agent.recorder import MetricsRecorder
    from runtime.model import ModelRuntime

    steps = ("handler", "rows_in", "prepare", "predict_batch", "run", "model", "bookkeeping", "folds")
    # step -> [calls, seconds]; every key made here, so the writer thread never sees the dict grow
    totals: dict[str, list[float]] = {step: [0, 0.0] for step in steps}

    def add(step: str, started: float) -> None:
        total = totals[step]
        total[0] += 1
        total[1] += time.thread_time() - started

    def timed(step: str, function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                add(step, started)

        return call

    handle = agent.services.InferenceService.PredictBatch

    async def predict_batch(self: Any, call: Any, context: Any) -> Any:
        started = time.thread_time()  # no awaits inside below THREAD_ROWS: all of it on this thread
        try:
            return await handle(self, call, context)
        finally:
            add("handler", started)

    agent.services.InferenceService.PredictBatch = predict_batch  # type: ignore[method-assign]
    agent.services.rows_in = timed("rows_in", agent.services.rows_in)
    agent.core.prepare = timed("prepare", agent.core.prepare)
    agent.core.AgentCore.predict_batch = timed("predict_batch", agent.core.AgentCore.predict_batch)  # type: ignore[method-assign]
    agent.core.AgentCore._run = timed("run", agent.core.AgentCore._run)  # type: ignore[method-assign]
    agent.core.AgentCore._after = timed("bookkeeping", agent.core.AgentCore._after)  # type: ignore[method-assign]
    ModelRuntime.predict = timed("model", ModelRuntime.predict)  # type: ignore[method-assign]
    MetricsRecorder._fold_into = timed("folds", MetricsRecorder._fold_into)  # type: ignore[method-assign]

    def write() -> None:
        while True:
            time.sleep(TIMED_EVERY_SECONDS)
            calls = totals["handler"][0]
            if calls:
                line = ", ".join(f"{step} {seconds / calls * 1e6:.0f}" for step, (_, seconds) in totals.items())
                print(f"STEPS {calls} calls, us per call: {line}", file=sys.stderr, flush=True)

    threading.Thread(target=write, name="steps", daemon=True).start()


def take_books_away() -> None:
    from agent.core import AgentCore

    def after(self: AgentCore, *args: Any, **kwargs: Any) -> None:
        return None

    AgentCore._after = after  # type: ignore[method-assign]


def take_handler_away() -> None:
    from agent.services import InferenceService

    handle = InferenceService.PredictBatch
    first: list[Any] = []

    async def predict_batch(self: InferenceService, call: Any, context: Any) -> Any:
        if not first:
            first.append(await handle(self, call, context))
        return first[0]

    InferenceService.PredictBatch = predict_batch  # type: ignore[method-assign]


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in VARIANTS:
        print(f"usage: agent_variant.py {{{','.join(VARIANTS)}}} agent ARGS...", file=sys.stderr)
        return 2
    variant = sys.argv[1]
    if variant == "timed":
        time_steps()
    elif variant == "no-books":
        take_books_away()
    elif variant == "no-model":
        take_model_away()
    elif variant == "canned":
        take_handler_away()
    from cli import main as sluice

    return sluice(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
