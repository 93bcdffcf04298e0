"""One onnxruntime session per model version, with input checks that name the expected shape.

The agent must not depend on the control plane: this module imports only numpy and onnxruntime.
`InferenceSession.run` is thread-safe and a `ModelRuntime` holds no mutable state after
`__init__`, so one instance serves every request thread.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

# onnxruntime type strings -> numpy dtypes of the tensors we feed or read.
_NUMPY_TYPES: dict[str, np.dtype] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(double)": np.dtype(np.float64),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int16)": np.dtype(np.int16),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(bool)": np.dtype(np.bool_),
}
_FLOAT_TYPES = ("tensor(float)", "tensor(double)", "tensor(float16)")
_INT_TYPES = ("tensor(int64)", "tensor(int32)", "tensor(int16)", "tensor(int8)", "tensor(uint8)")
_MAX_REASON = 300
_SMALL = 256  # values: below this a Python-level finiteness check beats numpy's dispatch
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
# "/onnxruntime_src/x.cc:86 ns::Class::Method(const T&) reason": keep the reason.
_ORT_SOURCE = re.compile(r"/onnxruntime_src/\S+:\d+ [^(]*\([^)]*\)\s*")


@dataclass(frozen=True)
class PredictionResult:
    """One batch's answer: classifiers fill labels and probabilities, regressors values.

    labels int64 [rows]; probabilities float32 [rows, classes]; values float32 [rows].
    """

    labels: np.ndarray | None
    probabilities: np.ndarray | None
    values: np.ndarray | None


def _reason(exc: BaseException) -> str:
    """onnxruntime's message on one line, without the '[ONNXRuntimeError] : 2 : ...' noise."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = _ORT_SOURCE.sub("", _ORT_PREFIX.sub("", text))
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def all_finite(x: np.ndarray) -> bool:
    """`np.isfinite(x).all()` for a float array, cheaper for the few values of a one-row call.

    A sum is finite only when no term is NaN or infinite, so a finite Python sum of a small array
    proves the answer; a few float32 values cannot overflow a Python float, and a float64 overflow
    only sends the array to numpy's exact check. Measured in the agent's Predict handler, numpy's
    ufunc + reduction took 10 µs right after the event loop woke up; the sum about 2 µs.
    """
    if x.size <= _SMALL and math.isfinite(sum(x.ravel().tolist())):
        return True
    return bool(np.isfinite(x).all())


def _dim(d: object) -> int | None:
    return d if isinstance(d, int) and d >= 0 else None


class ModelRuntime:
    """An open onnxruntime session plus what its tensors look like, checked once at load.

    Task detection follows the registry's rule (controlplane.onnx_inspect): a classifier has an
    integer label output and a float [rows, classes] probabilities output; anything else with a
    numeric output is a regressor whose first float output is the value.
    """

    def __init__(self, path: Path, intra_op_threads: int = 1) -> None:
        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(int(intra_op_threads), 1)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors surface as exceptions; keep stderr quiet
        # Worker threads that spin between runs would steal CPU from the gRPC threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's pybind exceptions share no useful base
            raise ValueError(_reason(exc)) from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise ValueError(
                f"the model has {len(inputs)} inputs ({names}); agents serve models with exactly "
                "one [rows, features] input"
            )
        (spec,) = inputs
        if spec.type not in _NUMPY_TYPES:
            raise ValueError(
                f"the model's input {spec.name!r} is {spec.type}; a numeric tensor is needed"
            )
        self.input_name: str = spec.name
        self.input_dtype: np.dtype = _NUMPY_TYPES[spec.type]
        self.input_shape: tuple[int | None, ...] = tuple(_dim(d) for d in (spec.shape or ()))
        if len(self.input_shape) < 1:
            raise ValueError(f"the model's input {spec.name!r} is a scalar; it needs a batch axis")
        self.rank = len(self.input_shape)
        # (axis, size) of every fixed dimension; the batch axis is fixed only in odd exports.
        self._fixed = tuple((a, d) for a, d in enumerate(self.input_shape) if d is not None)
        outputs = self.session.get_outputs()
        self.output_names: list[str] = [o.name for o in outputs]
        self.label_output: str | None = None
        self.probabilities_output: str | None = None
        self.value_output: str | None = None
        self._identify_outputs(outputs)
        self.task = "classifier" if self.label_output is not None else "regressor"
        self._fetch = (
            [self.label_output, self.probabilities_output]
            if self.task == "classifier"
            else [self.value_output]
        )
        self._expected = self._describe_expected()
        self._classifier = self.task == "classifier"
        # The hot path calls the C session directly: InferenceSession.run re-checks the input
        # names and OrtValue ownership in Python on every call, which `validate_input` already
        # settled (and costs as much as running a small model on one row).
        native = getattr(self.session, "_sess", None)
        self._run = native.run if native is not None and hasattr(native, "run") else self.session.run

    def _identify_outputs(self, outputs: list[ort.NodeArg]) -> None:
        def rank(o: ort.NodeArg) -> int:
            return len(o.shape or ())

        labels = [o for o in outputs if o.type in (*_INT_TYPES, "tensor(string)") and rank(o) <= 1]
        matrices = [o for o in outputs if o.type in _FLOAT_TYPES and rank(o) == 2]
        if labels and matrices:
            label = next((o for o in labels if o.name == "label"), labels[0])
            if label.type == "tensor(string)":
                raise ValueError(
                    f"the model's label output {label.name!r} holds strings; agents serve integer "
                    "class ids (encode the classes as 0..K-1 before training)"
                )
            probabilities = next((o for o in matrices if o.name == "probabilities"), matrices[0])
            self.label_output, self.probabilities_output = label.name, probabilities.name
            return
        for types in (_FLOAT_TYPES, _INT_TYPES):
            value = next((o for o in outputs if o.type in types), None)
            if value is not None:
                shape = [_dim(d) for d in (value.shape or ())]
                if any(d is not None and d > 1 for d in shape[1:]):
                    raise ValueError(
                        f"the model's output {value.name!r} has shape {shape}: agents serve one "
                        "value per row (multi-output regressors are not supported)"
                    )
                self.value_output = value.name
                return
        kinds = ", ".join(f"{o.name} {o.type}" for o in outputs)
        raise ValueError(f"the model has no numeric tensor output to serve ({kinds})")

    # ---- shape ----

    @property
    def n_features(self) -> int | None:
        """Width of a [rows, features] input; None when the model leaves it open."""
        return self.input_shape[1] if self.rank == 2 else None

    def expected_shape(self) -> str:
        dims = [
            "rows" if a == 0 and d is None else "?" if d is None else str(d)
            for a, d in enumerate(self.input_shape)
        ]
        return "[" + ", ".join(dims) + "]"

    def _describe_expected(self) -> str:
        return f"a {self.input_dtype.name} tensor of shape {self.expected_shape()}"

    def validate_input(self, x: np.ndarray) -> np.ndarray:
        """The batch as a C-contiguous array of the model's dtype, or ValueError saying why not.

        No copy is made when `x` is already C-contiguous with the right dtype.
        """
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if x.ndim != self.rank:
            raise ValueError(f"expected {self._expected}, got {list(x.shape)} (rank {x.ndim})")
        for axis, size in self._fixed:
            if x.shape[axis] != size:
                raise ValueError(f"expected {self._expected}, got {list(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"the batch is empty: expected {self._expected} with at least one row")
        if x.dtype != self.input_dtype:
            if x.dtype.kind not in "fiub":
                raise ValueError(f"expected {self._expected}, got {x.dtype} values")
            with np.errstate(over="ignore", invalid="ignore"):
                # float64 beyond float32's range becomes inf and is refused below.
                x = x.astype(self.input_dtype)
        x = np.ascontiguousarray(x)
        if x.dtype.kind == "f" and not all_finite(x):
            position = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
            where = f"row {position[0]}, feature {position[1]}" if x.ndim == 2 else list(position)
            raise ValueError(
                f"inputs contain NaN or infinity ({where} is {x[position]}); every feature must "
                "be a finite number"
            )
        return x

    # ---- running ----

    def predict(self, x: np.ndarray) -> PredictionResult:
        """Run a batch that `validate_input` accepted (the hot path: it is not checked again)."""
        x = np.ascontiguousarray(x, dtype=self.input_dtype)  # no-op for a validated batch
        outputs = self._run(self._fetch, {self.input_name: x}, None)
        rows = x.shape[0]
        if self._classifier:
            labels = outputs[0]
            if labels.ndim != 1:
                labels = labels.reshape(rows)
            if labels.dtype != np.int64:
                labels = labels.astype(np.int64)
            return PredictionResult(labels, outputs[1], None)
        values = np.asarray(outputs[0]).reshape(-1)
        if values.shape[0] != rows:
            raise ValueError(f"the model answered {values.shape[0]} values for {rows} rows")
        if values.dtype != np.float32:
            values = values.astype(np.float32)
        return PredictionResult(None, None, values)

    def run_raw(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output by name for the given feeds (the Open Inference Protocol path).

        Raises ValueError for feeds the model cannot take (wrong names, dtype, shape).
        """
        if set(feeds) != {self.input_name}:
            raise ValueError(
                f"the model takes one input named {self.input_name!r}, got {sorted(feeds)}"
            )
        x = self.validate_input(feeds[self.input_name])
        try:
            outputs = self.session.run(None, {self.input_name: x})
        except Exception as exc:  # e.g. a shape only the graph knows to be wrong
            raise ValueError(f"the model cannot run on this input: {_reason(exc)}") from exc
        return dict(zip(self.output_names, outputs, strict=True))

    def warm_up(self) -> None:
        """One zero batch, so the first real request does not pay for lazy initialisation."""
        shape = tuple(1 if d is None else d for d in self.input_shape)
        self.session.run(self._fetch, {self.input_name: np.zeros(shape, dtype=self.input_dtype)})

    def __repr__(self) -> str:
        return f"ModelRuntime({self.path.name}, {self.task}, input {self.expected_shape()})"
