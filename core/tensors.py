"""sluice.v1 `Tensor` and `Record` messages to and from numpy, for the agent and its clients.

A Tensor carries its element type (`dtype`, FLOAT32 by default: what clients written before
typed tensors send) and its elements in exactly one field: `raw` (little-endian numbers), or the
field of its type (`values`, `float64_values`, `int64_values`, `bool_values`, `string_values`).
Strings travel as UTF-8 bytes and come out as a numpy object array of `str`. A Record is one row
as named feature values (`FeatureValue`: missing, number, integer, text, flag or a list).

Decoding raises `InvalidInput` naming the tensor and what was wrong; nothing here knows a model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from core.errors import InvalidInput
from protos import inference_pb2

#: the longest string element a request may carry, in UTF-8 bytes (categories are short; free
#: text for a text model fits too). gRPC's message limit bounds the total.
MAX_TEXT_BYTES = 65_536

DT = inference_pb2.DataType
_FLOAT32 = int(DT.DATA_TYPE_FLOAT32)  # a plain int: the enum wrapper's attribute lookup costs a µs per call
#: wire type -> (numpy dtype, name of the typed value field). Strings are object arrays of str.
DTYPES: dict[int, tuple[np.dtype, str]] = {
    DT.DATA_TYPE_FLOAT32: (np.dtype("<f4"), "values"),
    DT.DATA_TYPE_FLOAT64: (np.dtype("<f8"), "float64_values"),
    DT.DATA_TYPE_INT64: (np.dtype("<i8"), "int64_values"),
    DT.DATA_TYPE_INT32: (np.dtype("<i4"), "int64_values"),
    DT.DATA_TYPE_INT16: (np.dtype("<i2"), "int64_values"),
    DT.DATA_TYPE_INT8: (np.dtype("i1"), "int64_values"),
    DT.DATA_TYPE_UINT8: (np.dtype("u1"), "int64_values"),
    DT.DATA_TYPE_UINT16: (np.dtype("<u2"), "int64_values"),
    DT.DATA_TYPE_UINT32: (np.dtype("<u4"), "int64_values"),
    DT.DATA_TYPE_UINT64: (np.dtype("<u8"), "int64_values"),
    DT.DATA_TYPE_BOOL: (np.dtype(np.bool_), "bool_values"),
    DT.DATA_TYPE_FLOAT16: (np.dtype("<f2"), ""),
    DT.DATA_TYPE_STRING: (np.dtype(object), "string_values"),
}
_VALUE_FIELDS = ("values", "float64_values", "int64_values", "bool_values", "string_values")
_BY_NUMPY = {dtype.newbyteorder("<") if dtype.kind != "O" else dtype: wire for wire, (dtype, _) in DTYPES.items()}


def dtype_name(wire: int) -> str:
    """"FLOAT32", "STRING"... of a wire DataType (its number when this build does not know it)."""
    try:
        return DT.Name(wire).removeprefix("DATA_TYPE_")
    except ValueError:
        return str(wire)


def decode_tensor(
    tensor: inference_pb2.Tensor, what: str = "input", raw: bytes | memoryview | None = None
) -> np.ndarray:
    """The tensor as an array of its shape and type (strings: an object array of str).

    `raw`: the tensor's `raw` bytes when they were kept apart from the message (core.zero_copy),
    whose own `raw` is then empty. Protobuf copies `raw` on every read, so it is read once.
    """
    if raw is None:
        raw = tensor.raw
    wire = tensor.dtype
    if wire == _FLOAT32:
        # The path of every client written before typed tensors: `values` or `raw` float32 (a
        # FLOAT32 tensor is read from those two; checking the typed fields too would cost a µs).
        if raw:
            if len(tensor.values):
                raise InvalidInput(f"the {what} sets both 'values' and 'raw'; send one of them")
            return float32_array(tuple(tensor.shape), raw, (), what, "'raw'")
        values = tensor.values
        if len(values):
            return float32_array(tuple(tensor.shape), b"", values, what, "'raw'")
    entry = DTYPES.get(wire)
    if entry is None:
        known = ", ".join(dtype_name(d) for d in DTYPES)
        raise InvalidInput(f"the {what} has dtype {wire}, which this agent does not know ({known})")
    dtype, field = entry
    shape = tuple(tensor.shape)
    if wire == _FLOAT32 and not (
        tensor.float64_values or tensor.int64_values or tensor.bool_values or tensor.string_values
    ):
        return float32_array(shape, b"", (), what, "'raw'")  # no values at all: says what is missing
    sent = [name for name in _VALUE_FIELDS if len(getattr(tensor, name))] + (["raw"] if raw else [])
    if len(sent) > 1:
        raise InvalidInput(f"the {what} sets {' and '.join(repr(s) for s in sent)}; send its values in one field")
    kind = dtype_name(tensor.dtype)
    if sent and sent[0] not in ("raw", field):
        allowed = f"'{field}' or 'raw'" if dtype.kind != "O" else "'string_values'"
        raise InvalidInput(f"the {what} is {kind} but its values are in {sent[0]!r}: send them in {allowed}")
    check_shape(shape, what)
    if sent and sent[0] == "raw":
        if dtype.kind == "O":
            raise InvalidInput(f"the {what} is STRING: send its elements in 'string_values', not 'raw'")
        if len(raw) % dtype.itemsize:
            raise InvalidInput(
                f"the {what} 'raw' holds {len(raw)} bytes, not a whole number of {kind} elements "
                f"({dtype.itemsize} bytes each)"
            )
        array = from_raw(raw, dtype)
    elif dtype.kind == "O":
        array = text_array(tensor.string_values, what)
    elif not field:
        raise InvalidInput(f"the {what} is {kind}: send its elements as little-endian bytes in 'raw'")
    else:
        array = integer_array(getattr(tensor, field), dtype, what) if field == "int64_values" else np.asarray(
            getattr(tensor, field), dtype=dtype
        )
    return reshape(array, shape, what)


def from_raw(raw: bytes | memoryview, dtype: np.dtype | str) -> np.ndarray:
    """The elements of little-endian `raw` bytes, read in place (read-only) when they are aligned
    for `dtype`; bytes inside a received message may not be (core.zero_copy): then copied, as
    numpy and onnxruntime expect aligned elements."""
    array = np.frombuffer(raw, dtype=dtype)
    return array if array.flags.aligned else array.copy()


def float32_array(
    shape: tuple[int, ...], raw: bytes | memoryview, values: Sequence[float], what: str, raw_name: str
) -> np.ndarray:
    """float32 rows (our Tensor or an OIP input): little-endian `raw` bytes if any, else `values`."""
    if any(d < 0 for d in shape):
        raise InvalidInput(f"the {what} shape {list(shape)} has a negative dimension")
    if raw:
        if len(raw) % 4:
            raise InvalidInput(f"the {what} {raw_name} holds {len(raw)} bytes, not a whole number of float32s")
        array = from_raw(raw, "<f4")
    else:
        # fromiter fills a float32 buffer in one pass; np.array would first discover the dtype.
        array = np.fromiter(values, dtype=np.float32, count=len(values))
    return reshape(array, shape, what)


def integer_array(values: Sequence[int], dtype: np.dtype, what: str) -> np.ndarray:
    """int64 wire values as `dtype`, refusing any that do not fit it."""
    wide = np.asarray(values, dtype=np.int64)
    if dtype == np.int64 or not wide.size:
        return wide.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    bad = (wide < info.min) | (wide > min(info.max, np.iinfo(np.int64).max))
    if bad.any():
        index = int(np.argmax(bad))
        raise InvalidInput(f"the {what} element {index} is {int(wide[index])}, outside {dtype.name}'s range")
    return wide.astype(dtype)


def text_array(items: Sequence[bytes], what: str) -> np.ndarray:
    """UTF-8 elements as an object array of str; refuses bytes that are not UTF-8 and huge ones."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        if len(item) > MAX_TEXT_BYTES:
            raise InvalidInput(
                f"the {what} element {i} is {len(item)} bytes; a string may have at most {MAX_TEXT_BYTES}"
            )
        try:
            out[i] = item.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"the {what} element {i} is not UTF-8 text (byte {exc.start} is {item[exc.start]:#04x}); "
                "strings travel as UTF-8"
            ) from None
    return out


def check_shape(shape: tuple[int, ...], what: str) -> None:
    if not shape:
        raise InvalidInput(f"the {what} has no shape: send shape [rows, features]")
    if any(d < 0 for d in shape):
        raise InvalidInput(f"the {what} shape {list(shape)} has a negative dimension")


def reshape(array: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """`array` in `shape` (whose dimensions are not negative), or InvalidInput saying why not."""
    if not shape:
        raise InvalidInput(f"the {what} has no shape: send shape [rows, features]")
    expected = 1
    for d in shape:
        expected *= d
    if array.size != expected:
        raise InvalidInput(f"the {what} shape {list(shape)} needs {expected} values but {array.size} were sent")
    if shape[0] == 0:
        raise InvalidInput(f"the {what} has no rows: send at least one row")
    if expected == 0:
        # [2**40, 0] holds no values yet claims 2**40 rows: refused before anything sizes by rows
        raise InvalidInput(f"the {what} shape {list(shape)} has a dimension of 0: every row needs its features")
    return array.reshape(shape)


# ---- building requests (clients) ----


def encode_tensor(values: Any) -> inference_pb2.Tensor:
    """A typed Tensor of an array-like: numbers as little-endian `raw`, strings in `string_values`.

    Python ints become INT64, floats FLOAT64, bools BOOL and str STRING, unless `values` is a
    numpy array, whose dtype is kept (float32 stays FLOAT32).
    """
    array = np.asarray(values)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    if array.dtype.kind in "OUS":
        flat = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.ravel().tolist()]
        return inference_pb2.Tensor(shape=list(array.shape), dtype=DT.DATA_TYPE_STRING, string_values=flat)
    little = array.dtype.newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
    wire = _BY_NUMPY.get(little)
    if wire is None:
        raise InvalidInput(f"a tensor of {array.dtype} cannot travel: use a numeric, bool or string array")
    data = np.ascontiguousarray(array, dtype=little).tobytes()
    return inference_pb2.Tensor(shape=list(array.shape), dtype=wire, raw=data)  # type: ignore[arg-type]


def feature_value(value: Any, name: str = "") -> inference_pb2.FeatureValue:
    """One JSON-like value as a FeatureValue: None, bool, int, float, str, or a list of them."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return inference_pb2.FeatureValue(missing=True)
    if isinstance(value, bool | np.bool_):
        return inference_pb2.FeatureValue(flag=bool(value))
    if isinstance(value, int | np.integer):
        if not -(2**63) <= int(value) < 2**63:
            raise InvalidInput(f"feature {name!r} is {value}, beyond a 64-bit integer")
        return inference_pb2.FeatureValue(integer=int(value))
    if isinstance(value, float | np.floating):
        return inference_pb2.FeatureValue(number=float(value))
    if isinstance(value, str):
        return inference_pb2.FeatureValue(text=value)
    if isinstance(value, list | tuple | np.ndarray):
        items = [feature_value(v, name) for v in value]
        if any(item.WhichOneof("kind") == "list" for item in items):
            raise InvalidInput(f"feature {name!r} nests lists; a feature is a value or one list of values")
        return inference_pb2.FeatureValue(list=inference_pb2.FeatureList(values=items))
    raise InvalidInput(
        f"feature {name!r} is a {type(value).__name__}; send null, a number, a string, true/false or a list"
    )


def encode_record(features: Mapping[str, Any]) -> inference_pb2.Record:
    """One row of named feature values, e.g. {"plan": "pro", "age": 42, "income": None}."""
    if not isinstance(features, Mapping):
        raise InvalidInput(f"a record is an object of named feature values, not a {type(features).__name__}")
    record = inference_pb2.Record()
    for name, value in features.items():
        record.features[str(name)].CopyFrom(feature_value(value, str(name)))
    return record


def feature_python(value: inference_pb2.FeatureValue) -> Any:
    """A FeatureValue back as a Python value (None for missing)."""
    kind = value.WhichOneof("kind")
    if kind == "list":
        return [feature_python(v) for v in value.list.values]
    if kind is None or kind == "missing":
        return None
    return getattr(value, kind)
