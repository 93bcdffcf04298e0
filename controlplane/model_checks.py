"""What the control plane asks of a model, run inside the sandbox (`runtime.sandbox`).

`prove_servable` is registration's check: the ONNX checks and signature of `onnx_inspect`, then
the model opened as an agent opens it (`runtime.model.ModelRuntime`) and run on the baseline rows,
or on a row of zeros shaped by its input when there is no baseline. `score` runs a model over the
rows of an offline evaluation. Both run in a child process with memory, CPU and time limits, so a
model that allocates gigabytes or never finishes is refused instead of taking the control plane
with it; `check_model` and `score_rows` are the calls the registry and `offline` make.

The functions that run in the child import only onnx, numpy, onnxruntime and `core`, all loaded
once by the sandbox's forkserver (never SQLAlchemy or scipy).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx  # noqa: F401 - imported here so the sandbox's forkserver loads it once, not each child

from controlplane.config import ModelsConfig
from controlplane.onnx_inspect import ModelSignature, inspect_onnx_file
from controlplane.tables import CATEGORICAL, Table
from core.errors import FailedPrecondition, InvalidInput
from runtime import sandbox
from runtime.model import Feeds, ModelRuntime, all_finite, feed_rows
from runtime.session import ort_reason

BATCH_ROWS = 10_000

# The forkserver also runs the ONNX checker once, so no registration's child pays for its start-up.
sandbox.preload("controlplane.sandbox_warmup")


def _width(signature: ModelSignature) -> int | None:
    """Feature count of a single [rows, features] input, None when not fixed."""
    if len(signature.inputs) != 1 or len(signature.inputs[0].shape) != 2:
        return None
    return signature.inputs[0].shape[1]


def table_feeds(runtime: ModelRuntime, table: Table) -> Feeds | np.ndarray:
    """A table's rows as the model's feeds, each input from the column of its name (as the record
    form maps a row's features): a complete numeric table for a model of one float input
    [rows, n] is that input's matrix, columns in file order. ValueError says what does not fit."""
    single = runtime.inputs[0] if len(runtime.inputs) == 1 else None
    if single is not None and single.kind != "string" and len(single.shape) == 2 and single.shape[1] != 1:
        if not table.complete_numeric():
            raise ValueError(
                f"the model takes one {single.describe()} input; every column must be numeric and complete"
            )
        return runtime.validate_input(table.matrix())
    missing = [s.name for s in runtime.inputs if s.name not in table.columns]
    if missing:
        raise ValueError(
            f"it has no column {', '.join(repr(n) for n in missing[:10])}; the model takes {runtime.describe_inputs()}"
        )
    columns: dict[str, np.ndarray] = {}
    for spec in runtime.inputs:
        column = table.columns[spec.name]
        if spec.kind == "string" and table.kind(spec.name) != CATEGORICAL:
            raise ValueError(f"column {spec.name!r} holds numbers; input {spec.name!r} takes strings")
        if spec.kind != "string" and table.kind(spec.name) == CATEGORICAL:
            raise ValueError(f"column {spec.name!r} holds text; input {spec.name!r} takes {spec.type_text()} numbers")
        columns[spec.name] = column
    return runtime.prepare(columns)


def _run_rows(runtime: ModelRuntime, x: np.ndarray | Feeds, finite: bool, names: bool = False) -> np.ndarray:
    """The answer per row (labels of a classifier, values of a regressor), in batches; `finite`:
    NaN or infinity out is a failure, as agents make it. `names`: a classifier with text classes
    answers its class names rather than their indices."""
    parts: list[np.ndarray] = []
    rows = x.shape[0] if isinstance(x, np.ndarray) else feed_rows(x)
    for start in range(0, rows, BATCH_ROWS):
        batch = slice(start, start + BATCH_ROWS)
        result = runtime.predict(x[batch] if isinstance(x, np.ndarray) else {n: v[batch] for n, v in x.items()})
        for output in (result.probabilities, result.values):
            if finite and output is not None and output.dtype.kind == "f" and not all_finite(output):
                bad = int(np.argwhere(~np.isfinite(output.reshape(output.shape[0], -1)))[0][0]) + start
                raise ValueError(f"it answers NaN or infinity for row {bad}, which agents refuse to serve")
        answer = result.labels if runtime.task == "classifier" else result.values
        if names and result.class_labels is not None:
            answer = result.class_labels
        assert answer is not None  # a classifier answers labels, a regressor values
        parts.append(answer)
    return np.concatenate(parts)


def prove_servable(path: str, what: str, sample: np.ndarray | Table | None) -> ModelSignature:
    """The signature of a model that loads and answers as agents will run it (in the sandbox)."""
    signature = inspect_onnx_file(Path(path), what)
    width = _width(signature)
    if isinstance(sample, np.ndarray) and width is not None and sample.shape[1] != width:
        raise InvalidInput(f"the baseline has {sample.shape[1]} features but the model expects {width}")
    try:
        runtime = ModelRuntime(Path(path))
    except ValueError as exc:
        raise InvalidInput(f"agents cannot serve {what}: {exc}") from exc
    if sample is None:
        try:
            runtime.warm_up()
        except Exception as exc:  # onnxruntime's pybind exceptions share no useful base
            raise InvalidInput(
                f"{what} fails on a row of zeros shaped {runtime.expected_shape()}: {ort_reason(exc)}"
            ) from exc
        return signature
    try:
        x = table_feeds(runtime, sample) if isinstance(sample, Table) else runtime.validate_input(sample)
    except ValueError as exc:
        raise InvalidInput(f"the baseline does not fit {what}: {exc}") from exc
    try:
        answers = _run_rows(runtime, x, finite=True)
    except Exception as exc:  # onnxruntime's pybind exceptions share no useful base
        raise InvalidInput(f"{what} fails on its baseline rows: {ort_reason(exc)}") from exc
    if answers.ndim > 1:  # a multi-output regressor: its first output, as agents count it
        answers = answers.reshape(answers.shape[0], -1)[:, 0]
    n_classes = len(runtime.classes) if runtime.classes is not None else 0
    return dataclasses.replace(signature, baseline_answers=answers, n_classes=n_classes)


def score(path: str, ref: str, what: str, x: np.ndarray | Table) -> tuple[str, np.ndarray]:
    """(task, the answer per row) of one version over an evaluation's rows (in the sandbox); a
    classifier with text classes answers class names."""
    try:
        runtime = ModelRuntime(Path(path))
        feeds = table_feeds(runtime, x) if isinstance(x, Table) else runtime.validate_input(x)
    except ValueError as exc:
        raise InvalidInput(f"{ref} cannot score {what}: {exc}") from None
    try:
        return runtime.task, _run_rows(runtime, feeds, finite=False, names=True)
    except Exception as exc:  # onnxruntime's pybind exceptions share no useful base
        raise InvalidInput(f"{ref} fails on {what}: {ort_reason(exc)}") from exc


def _limit_error(subject: str, exc: sandbox.SandboxError, timeout_key: str, memory_key: str) -> FailedPrecondition:
    if isinstance(exc, sandbox.SandboxMemory):
        hint = f"raise [models] {memory_key} if the model really needs it"
    elif isinstance(exc, sandbox.SandboxTimeout):
        hint = f"raise [models] {timeout_key} if the model is just slow"
    else:
        hint = "the model cannot be served"
    return FailedPrecondition(f"{subject} {exc.message}; {hint}")


def check_model(config: ModelsConfig, path: Path, what: str, sample: np.ndarray | Table | None) -> ModelSignature:
    """`prove_servable` in the sandbox with the registration limits of the config."""
    limits = sandbox.Limits(config.inspect_timeout_seconds, config.inspect_memory_mb)
    try:
        return sandbox.run(prove_servable, str(path), what, sample, limits=limits)
    except sandbox.SandboxError as exc:
        doing = "loading it and running it on its baseline rows" if sample is not None else "loading and running it"
        raise _limit_error(
            f"{what} was refused: {doing}", exc, "inspect_timeout_seconds", "inspect_memory_mb"
        ) from None


def score_rows(config: ModelsConfig, path: Path, ref: str, what: str, x: np.ndarray | Table) -> tuple[str, np.ndarray]:
    """`score` in the sandbox with the evaluation limits of the config."""
    limits = sandbox.Limits(config.evaluate_timeout_seconds, config.evaluate_memory_mb)
    try:
        return sandbox.run(score, str(path), ref, what, x, limits=limits)
    except sandbox.SandboxError as exc:
        raise _limit_error(
            f"{ref} could not score {what}: it", exc, "evaluate_timeout_seconds", "evaluate_memory_mb"
        ) from None
