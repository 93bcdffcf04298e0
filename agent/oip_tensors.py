"""Open Inference Protocol tensors to and from numpy, as tritonclient writes and reads them.

Every OIP datatype travels either in its `contents` field or as one entry of
`raw_input_contents` per input: little-endian elements, and for BYTES each element preceded by
its length as a 4-byte little-endian integer (Triton's serialisation). An input's datatype must
match the model's input (strings are BYTES) or widen to it without loss (FP32 into a float64
input, INT32 into an int64 one); anything else is refused with the datatype the model takes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from core.errors import InvalidInput
from core.tensors import float32_array, integer_array, reshape, text_array
from protos import oip_pb2
from runtime.inputs import InputSpec
from runtime.model import ModelRuntime

#: datatype -> (numpy dtype, its field of InferTensorContents; "" when only raw carries it)
OIP_TYPES: dict[str, tuple[np.dtype, str]] = {
    "BOOL": (np.dtype(np.bool_), "bool_contents"),
    "UINT8": (np.dtype("u1"), "uint_contents"),
    "UINT16": (np.dtype("<u2"), "uint_contents"),
    "UINT32": (np.dtype("<u4"), "uint_contents"),
    "UINT64": (np.dtype("<u8"), "uint64_contents"),
    "INT8": (np.dtype("i1"), "int_contents"),
    "INT16": (np.dtype("<i2"), "int_contents"),
    "INT32": (np.dtype("<i4"), "int_contents"),
    "INT64": (np.dtype("<i8"), "int64_contents"),
    "FP16": (np.dtype("<f2"), ""),
    "FP32": (np.dtype("<f4"), "fp32_contents"),
    "FP64": (np.dtype("<f8"), "fp64_contents"),
    "BYTES": (np.dtype(object), "bytes_contents"),
}
_BY_NUMPY = {dtype.newbyteorder("="): name for name, (dtype, _) in OIP_TYPES.items() if dtype.kind != "O"}
_LENGTH = struct.Struct("<I")
InferInput = oip_pb2.ModelInferRequest.InferInputTensor


def datatype_of(dtype: np.dtype) -> str:
    """The OIP datatype of a numpy dtype (object and text: BYTES)."""
    if dtype.kind in "OUS":
        return "BYTES"
    return _BY_NUMPY.get(dtype.newbyteorder("="), "FP32")


def takes(spec: InputSpec, datatype: str) -> bool:
    """Whether an input of this datatype fits the model's input without loss."""
    if spec.kind == "string" or datatype == "BYTES":
        return spec.kind == "string" and datatype == "BYTES"
    sent, want = OIP_TYPES[datatype][0], spec.dtype
    same_family = (sent.kind == "f") == (want.kind == "f") and (sent.kind == "b") == (want.kind == "b")
    return same_family and bool(np.can_cast(sent, want, casting="safe"))


def unpack_bytes(raw: bytes, what: str) -> list[bytes]:
    """Triton's BYTES serialisation: each element as a 4-byte little-endian length, then its bytes."""
    items: list[bytes] = []
    offset, end = 0, len(raw)
    while offset < end:
        if end - offset < 4:
            raise InvalidInput(f"the {what} raw_input_contents ends inside an element's 4-byte length")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if length > end - offset:
            raise InvalidInput(
                f"the {what} raw_input_contents element {len(items)} claims {length} bytes but only "
                f"{end - offset} follow"
            )
        items.append(raw[offset : offset + length])
        offset += length
    return items


def pack_bytes(items: Sequence[str | bytes]) -> bytes:
    """The inverse of `unpack_bytes` (str elements as UTF-8)."""
    parts = []
    for item in items:
        data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
        parts.append(_LENGTH.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def decode_input(tensor: InferInput, raw: bytes | None) -> np.ndarray:
    """One input as an array of its datatype and shape (BYTES: an object array of str)."""
    what = f"input {tensor.name[:128]!r}"
    entry = OIP_TYPES.get(tensor.datatype)
    if entry is None:
        raise InvalidInput(
            f"{what} has datatype {tensor.datatype[:32]!r}; the Open Inference Protocol's are {', '.join(OIP_TYPES)}"
        )
    dtype, field = entry
    shape = tuple(tensor.shape)
    if tensor.datatype == "FP32":  # the common case, unchanged since the first release
        return float32_array(shape, raw or b"", tensor.contents.fp32_contents, what, "raw_input_contents")
    contents = tensor.contents
    others = [
        name
        for name in ("bool_contents", "int_contents", "int64_contents", "uint_contents", "uint64_contents",
                     "fp32_contents", "fp64_contents", "bytes_contents")
        if name != field and len(getattr(contents, name))
    ]
    if others:
        raise InvalidInput(f"{what} is {tensor.datatype} but sets {others[0]}; send {field or 'raw_input_contents'}")
    if raw is not None:
        if dtype.kind == "O":
            array = text_array(unpack_bytes(raw, what), what)
        else:
            if len(raw) % dtype.itemsize:
                raise InvalidInput(
                    f"{what} raw_input_contents holds {len(raw)} bytes, not a whole number of {tensor.datatype} "
                    f"elements ({dtype.itemsize} bytes each)"
                )
            array = np.frombuffer(raw, dtype=dtype)
    elif not field:
        raise InvalidInput(f"{what} is {tensor.datatype}: send it in raw_input_contents")
    elif dtype.kind == "O":
        array = text_array(contents.bytes_contents, what)
    elif field in ("int_contents", "int64_contents", "uint_contents"):
        array = integer_array(getattr(contents, field), dtype, what)
    else:
        array = np.asarray(getattr(contents, field), dtype=dtype)
    return reshape(array, shape, what)


def decode_inputs(request: oip_pb2.ModelInferRequest, runtime: ModelRuntime) -> np.ndarray | dict[str, np.ndarray]:
    """The request's inputs checked against the model's (names, datatypes) and decoded.

    A model with one input takes one input whatever its name (as it always has); a model with
    several takes one per input name.
    """
    inputs = request.inputs
    specs = runtime.inputs
    model = request.model_name[:128]
    if len(inputs) != len(specs):
        wanted = ", ".join(f"{s.name} {datatype_of(s.dtype)} {list(metadata_shape(s))}" for s in specs)
        count = "exactly one input" if len(specs) == 1 else f"{len(specs)} inputs"
        raise InvalidInput(f"model {model!r} takes {count} ({wanted}), got {len(inputs)}")
    raws: list[bytes | None] = [None] * len(inputs)
    if request.raw_input_contents:
        if len(request.raw_input_contents) != len(inputs):
            raise InvalidInput(
                f"raw_input_contents has {len(request.raw_input_contents)} entries for {len(inputs)} input"
                + ("s" if len(inputs) != 1 else "")
            )
        for tensor in inputs:
            if tensor.HasField("contents") and tensor.contents.ByteSize():
                raise InvalidInput(
                    f"input {tensor.name[:128]!r} sets both contents and raw_input_contents; send one, not both"
                )
        raws = list(request.raw_input_contents)
    if len(specs) == 1:
        (tensor,), (spec,) = inputs, specs
        _check_datatype(tensor, spec)
        return decode_input(tensor, raws[0])
    by_name = {spec.name: spec for spec in specs}
    out: dict[str, np.ndarray] = {}
    for tensor, raw in zip(inputs, raws, strict=True):
        named = by_name.get(tensor.name)
        if named is None:
            raise InvalidInput(f"model {model!r} has no input {tensor.name[:128]!r}; it takes {', '.join(by_name)}")
        if tensor.name in out:
            raise InvalidInput(f"input {tensor.name[:128]!r} is sent twice")
        _check_datatype(tensor, named)
        out[tensor.name] = decode_input(tensor, raw)
    return out


def _check_datatype(tensor: InferInput, spec: InputSpec) -> None:
    if tensor.datatype not in OIP_TYPES:
        return  # decode_input names the datatypes there are
    if not takes(spec, tensor.datatype):
        raise InvalidInput(
            f"input {tensor.name[:128]!r} has datatype {tensor.datatype!r}; the model takes "
            f"{datatype_of(spec.dtype)}"
        )


def metadata_shape(spec: InputSpec) -> list[int]:
    return [-1 if d is None else int(d) for d in spec.shape]


def encode_output(array: np.ndarray) -> tuple[str, bytes]:
    """An output's datatype and raw_output_contents entry."""
    if array.dtype.kind in "OUS":
        return "BYTES", pack_bytes(array.ravel().tolist())
    datatype = datatype_of(array.dtype)
    return datatype, np.ascontiguousarray(array, OIP_TYPES[datatype][0]).tobytes()
