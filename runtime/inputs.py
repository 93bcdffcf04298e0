"""A model's inputs and the checks that turn a request's arrays into what onnxruntime takes.

Each input of an ONNX model has a type (the numeric types, bool, string) and a shape, usually
[rows, 1] (one column, as skl2onnx exports a ColumnTransformer's columns) or [rows, k]. `coerce`
checks one array against one input and converts it losslessly, or raises ValueError with a
message that names the input and what was wrong: a string where a number is expected (and the
reverse), a fraction for an integer input, a value out of the type's range, NaN for an input whose
graph cannot handle missing values, a shape that does not fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# onnxruntime type strings -> numpy dtypes of the tensors we feed or read (strings: object of str).
NUMPY_TYPES: dict[str, np.dtype] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(double)": np.dtype(np.float64),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int16)": np.dtype(np.int16),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint64)": np.dtype(np.uint64),
    "tensor(uint32)": np.dtype(np.uint32),
    "tensor(uint16)": np.dtype(np.uint16),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(bool)": np.dtype(np.bool_),
    "tensor(string)": np.dtype(object),
}
_SMALL = 256  # values: below this a Python-level finiteness check beats numpy's dispatch


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


def kind_of(dtype: np.dtype) -> str:
    """'float', 'int', 'bool' or 'string' (anything numpy keeps as objects/text is a string)."""
    if dtype.kind == "f":
        return "float"
    if dtype.kind in "iu":
        return "int"
    if dtype.kind == "b":
        return "bool"
    return "string"


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name, numpy dtype, shape (None: not fixed) and whether its graph
    turns a missing value (NaN) into a finite answer (`accepts_missing`, float inputs only)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]
    accepts_missing: bool = False
    #: 'float', 'int', 'bool' or 'string' (from dtype)
    kind: str = field(init=False)
    #: (axis, size) of every fixed dimension
    fixed: tuple[tuple[int, int], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", kind_of(self.dtype))
        object.__setattr__(self, "fixed", tuple((a, d) for a, d in enumerate(self.shape) if d is not None))

    @property
    def width(self) -> int | None:
        """Values per row of a [rows] (1) or [rows, k] (k) input; None when not fixed or higher rank."""
        if len(self.shape) == 1:
            return 1
        if len(self.shape) == 2:
            return self.shape[1]
        return None

    def shape_text(self) -> str:
        dims = ["rows" if a == 0 and d is None else "?" if d is None else str(d) for a, d in enumerate(self.shape)]
        return "[" + ", ".join(dims) + "]"

    def type_text(self) -> str:
        return "string" if self.kind == "string" else self.dtype.name

    def describe(self) -> str:
        return f"{self.type_text()} {self.shape_text()}"

    def expected(self) -> str:
        return f"a {self.type_text()} tensor of shape {self.shape_text()}"


def spec_of(name: str, onnx_type: str, shape: object) -> InputSpec:
    if onnx_type not in NUMPY_TYPES:
        raise ValueError(f"the model's input {name!r} is {onnx_type}; agents serve numeric, bool and string tensors")
    dims = tuple(d if isinstance(d, int) and d >= 0 else None for d in (shape or ()))  # type: ignore[attr-defined]
    if not dims:
        raise ValueError(f"the model's input {name!r} is a scalar; it needs a batch axis")
    return InputSpec(name, NUMPY_TYPES[onnx_type], dims)


def _where(x: np.ndarray, position: tuple[int, ...]) -> str:
    if x.ndim == 2:
        return f"row {position[0]}" + (f", feature {position[1]}" if x.shape[1] > 1 else "")
    return str(list(position))


def coerce(spec: InputSpec, x: np.ndarray, named: bool = True) -> np.ndarray:
    """`x` as a C-contiguous array of the input's dtype and shape, or ValueError saying why not.

    No copy is made when `x` already fits. `named`: messages start with the input's name (a
    model with one input is not named: "expected a float32 tensor of shape [rows, 30], ...").
    """
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    shape = spec.shape
    if x.ndim != len(shape) and named:
        if x.ndim == 1 and len(shape) == 2 and shape[1] in (1, None):
            x = x.reshape(-1, 1)  # a column sent as [rows]
        elif x.ndim == 2 and len(shape) == 1 and x.shape[1] == 1:
            x = x.reshape(-1)
    lead = f"input {spec.name!r}: " if named else ""
    if x.ndim != len(shape):
        raise ValueError(f"{lead}expected {spec.expected()}, got {list(x.shape)} (rank {x.ndim})")
    for axis, size in spec.fixed:
        if x.shape[axis] != size:
            raise ValueError(f"{lead}expected {spec.expected()}, got {list(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{lead}the batch is empty: expected {spec.expected()} with at least one row")
    want = spec.kind
    if x.dtype != spec.dtype:
        sent = kind_of(x.dtype)
        if want == "string":
            if sent != "string":
                raise ValueError(
                    f"{lead}expected {spec.expected()}, got {x.dtype} values: a number where a string is expected"
                )
            x = x.astype(object)
        elif sent == "string":
            raise ValueError(
                f"{lead}expected {spec.expected()}, got {x.dtype} values: a string where a number is expected"
            )
        else:
            x = _convert(spec, x, lead)
    x = np.ascontiguousarray(x)
    if want == "float":
        if not all_finite(x):
            _check_missing(spec, x, lead)
    elif want == "string":
        values = x.ravel().tolist()
        odd = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
        if odd is not None:
            raise ValueError(f"{lead}expected {spec.expected()}, element {odd} is not a string")
    return x


def _convert(spec: InputSpec, x: np.ndarray, lead: str) -> np.ndarray:
    want = spec.kind
    if want == "float":
        with np.errstate(over="ignore", invalid="ignore"):
            # beyond float32's range becomes inf and is refused by the finiteness check
            return x.astype(spec.dtype)
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            position = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{lead}expected {spec.expected()}; {_where(x, position)} is {x[position]}: an integer input "
                "cannot hold a missing or infinite value"
            )
        fraction = x != np.trunc(x)
        if fraction.any():
            position = tuple(int(i) for i in np.argwhere(fraction)[0])
            raise ValueError(
                f"{lead}expected {spec.expected()}; {_where(x, position)} is {x[position]}, not an integer"
            )
    if want == "bool":
        if x.dtype.kind != "b":
            bad = ~np.isin(x, (0, 1))
            if bad.any():
                position = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(
                    f"{lead}expected {spec.expected()} (true/false or 0/1); {_where(x, position)} is {x[position]}"
                )
        return x.astype(np.bool_)
    if x.dtype.kind in "iub" and np.can_cast(x.dtype, spec.dtype):
        return x.astype(spec.dtype)
    info = np.iinfo(spec.dtype)
    with np.errstate(invalid="ignore"):
        outside = (x < info.min) | (x > info.max)
    if outside.any():
        position = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(f"{lead}expected {spec.expected()}; {_where(x, position)} is {x[position]}, outside its range")
    return x.astype(spec.dtype)


def _check_missing(spec: InputSpec, x: np.ndarray, lead: str) -> None:
    """Non-finite float values: infinity is always refused, NaN unless the graph handles it."""
    subject = f"{lead}inputs contain" if not lead else f"{lead}values contain"
    infinite = np.isinf(x)
    if infinite.any():
        position = tuple(int(i) for i in np.argwhere(infinite)[0])
        raise ValueError(
            f"{subject} NaN or infinity ({_where(x, position)} is {x[position]}); every feature must be a finite "
            "number"
        )
    if spec.accepts_missing:
        return
    position = tuple(int(i) for i in np.argwhere(np.isnan(x))[0])
    raise ValueError(
        f"{subject} NaN or infinity ({_where(x, position)} is nan); every feature must be a finite number: this "
        "version's graph does not handle missing values there (it has no imputer)"
    )
