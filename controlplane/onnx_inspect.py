"""Checks that an uploaded file is a usable ONNX model and reads its signature.

The registry calls this before it stores anything (inside the model sandbox, as the first part of
`model_checks.prove_servable`), so a model that no agent could load is refused at `sluice version
register` with a reason a person can act on, instead of failing later on every agent. Every
failure is an `InvalidInput`; no raw onnx/onnxruntime exception escapes.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidInput

# onnxruntime's type strings -> numpy-style names.
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(bfloat16)": "bfloat16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "string",
}
_MAX_REASON = 300
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
# "/onnxruntime_src/x.cc:86 ns::Class::Method(const T&) reason": keep the reason.
_ORT_SOURCE = re.compile(r"/onnxruntime_src/\S+:\d+ [^(]*\([^)]*\)\s*")
_LOAD_PREFIX = re.compile(r"^Load model from .*? failed: ?")


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: numpy-style dtype, None for a symbolic or unknown dimension."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class ModelSignature:
    """What the registry stores about a model; task is 'classifier' or 'regressor'."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    task: str
    #: the trial run's answers on the baseline rows (class indices or values; None: no baseline),
    #: from which registration fixes the baseline's prediction histogram
    baseline_answers: np.ndarray | None = field(default=None, compare=False)
    #: a classifier's number of classes (0: unknown)
    n_classes: int = 0


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (artifacts are addressed by it)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(exc: BaseException) -> str:
    """An onnx/onnxruntime message on one line, without the '[ONNXRuntimeError] : 2 :' noise."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = _ORT_SOURCE.sub("", _ORT_PREFIX.sub("", text))
    text = _LOAD_PREFIX.sub("", text) or type(exc).__name__  # names a temporary upload path
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _spec(arg: Any) -> TensorSpec:
    dims = tuple(d if isinstance(d, int) and d >= 0 else None for d in (arg.shape or ()))
    return TensorSpec(str(arg.name), _DTYPES.get(arg.type, str(arg.type)), dims)


def _task(outputs: tuple[TensorSpec, ...]) -> str:
    """Classifier: an int64/string label output plus a float probabilities matrix."""
    has_label = any(o.dtype in ("int64", "string") and len(o.shape) <= 1 for o in outputs)
    has_probabilities = any(
        o.dtype in ("float32", "float64") and len(o.shape) == 2 for o in outputs
    )
    return "classifier" if has_label and has_probabilities else "regressor"


def _parse(path: Path, what: str) -> Any:
    """Parse the protobuf (without external data) to tell 'not ONNX at all' from 'invalid ONNX'."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model(str(path), format="protobuf", load_external_data=False)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InvalidInput(f"{what} is not an ONNX model: {_reason(exc)}") from exc
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise InvalidInput(
            f"{what} is not an ONNX model: it has no IR version or no graph "
            "(export it with torch.onnx, skl2onnx, tf2onnx...)"
        )
    return model


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor of a graph: initializers and constant attributes, subgraphs included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: Any) -> Iterator[Any]:
    for attribute in node.attribute:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        if attribute.HasField("g"):
            yield from _tensors(attribute.g)
        for subgraph in attribute.graphs:
            yield from _tensors(subgraph)


def _uses_external_data(model: Any) -> bool:
    from onnx import TensorProto

    tensors = itertools.chain(
        _tensors(model.graph),
        (t for f in model.functions for n in f.node for t in _node_tensors(n)),
    )
    return any(t.data_location == TensorProto.EXTERNAL for t in tensors)


def inspect_onnx_file(path: Path, display_name: str | None = None) -> ModelSignature:
    """Validate with onnx.checker and onnxruntime, then read the signature.

    `display_name` names the model in messages (default: the file name); the registry's upload
    path is a temporary file whose name would mean nothing to the user.
    """
    import onnx
    import onnxruntime as ort

    path = Path(path)
    what = display_name or path.name
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"{what} cannot be read: {exc.strerror or exc}") from exc
    if size == 0:
        raise InvalidInput(f"{what} is not an ONNX model: the file is empty")
    try:
        model = _parse(path, what)
        if _uses_external_data(model):
            raise InvalidInput(
                f"{what} keeps tensors in external data files; Sluice stores one file per version: "
                "re-save it with onnx.save_model(model, path, save_as_external_data=False)"
            )
        del model
        # The path form: the checker reads the file itself (no 2 GiB in-memory copy).
        onnx.checker.check_model(str(path))
    except InvalidInput:
        raise
    except onnx.checker.ValidationError as exc:
        raise InvalidInput(f"{what} fails the ONNX checker: {_reason(exc)}") from exc
    except Exception as exc:  # a crash in a parser is still the file's fault here
        raise InvalidInput(f"{what} cannot be checked as an ONNX model: {_reason(exc)}") from exc
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 4  # the reason is in the exception; no stderr noise
        options.intra_op_num_threads = 1  # only opened, never run: no thread pool needed
        # As the agents will open it, so a model that fails to optimise fails here.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        inputs = tuple(_spec(i) for i in session.get_inputs())
        outputs = tuple(_spec(o) for o in session.get_outputs())
        outputs_types = [(o.name, o.type) for o in session.get_outputs()]
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise InvalidInput(f"onnxruntime cannot open {what}: {_reason(exc)}") from exc
    if not inputs or not outputs:
        raise InvalidInput(f"{what} has no inputs or no outputs: there is nothing to serve")
    for name, kind in outputs_types:
        if not kind.startswith("tensor("):
            raise InvalidInput(
                f"{what}: output {name!r} is {kind}, not a tensor; agents serve tensor outputs "
                "only (export scikit-learn classifiers with options={id(model): {'zipmap': False}})"
            )
    return ModelSignature(inputs, outputs, _task(outputs))
