"""Typed tensors and records on the wire (core.tensors): lossless both ways, clear refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import InvalidInput
from core.tensors import MAX_TEXT_BYTES, decode_tensor, encode_record, encode_tensor, feature_python
from protos import inference_pb2

DT = inference_pb2.DataType


@pytest.mark.parametrize(
    "array",
    [
        np.array([[2**40 + 1], [-(2**62)]], dtype=np.int64),
        np.array([[0.1, 1e300]], dtype=np.float64),
        np.array([[1.5, -2.25]], dtype=np.float32),
        np.array([[True], [False]]),
        np.array([[7], [-7]], dtype=np.int8),
        np.array([[2**64 - 1]], dtype=np.uint64),
        np.array([[1.5]], dtype=np.float16),
        np.array([["pro"], ["żółw ✓"]], dtype=object),
    ],
    ids=lambda a: str(a.dtype),
)
def test_every_type_round_trips_unchanged(array: np.ndarray) -> None:
    decoded = decode_tensor(inference_pb2.Tensor.FromString(encode_tensor(array).SerializeToString()))
    assert decoded.shape == array.shape
    assert decoded.dtype == array.dtype and decoded.tolist() == array.tolist()


def test_typed_value_fields_decode_like_raw() -> None:
    ints = decode_tensor(inference_pb2.Tensor(shape=[2, 1], dtype=DT.DATA_TYPE_INT64, int64_values=[2**40 + 1, 3]))
    assert ints.dtype == np.int64 and ints[0, 0] == 2**40 + 1
    doubles = decode_tensor(inference_pb2.Tensor(shape=[1, 2], dtype=DT.DATA_TYPE_FLOAT64, float64_values=[0.1, 2]))
    assert doubles.dtype == np.float64 and doubles.tolist() == [[0.1, 2.0]]
    flags = decode_tensor(inference_pb2.Tensor(shape=[2], dtype=DT.DATA_TYPE_BOOL, bool_values=[True, False]))
    assert flags.tolist() == [True, False]
    small = decode_tensor(inference_pb2.Tensor(shape=[1], dtype=DT.DATA_TYPE_INT8, int64_values=[-128]))
    assert small.dtype == np.int8 and small.tolist() == [-128]
    # An old client's float32 tensor is what it always was.
    legacy = decode_tensor(inference_pb2.Tensor(shape=[1, 2], values=[1.0, 2.0]))
    assert legacy.dtype == np.float32 and legacy.tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize(
    ("tensor", "says"),
    [
        (inference_pb2.Tensor(shape=[1], dtype=DT.DATA_TYPE_STRING, string_values=[b"\xff\xfe"]), "not UTF-8 text"),
        (
            inference_pb2.Tensor(shape=[1], dtype=DT.DATA_TYPE_STRING, string_values=[b"x" * (MAX_TEXT_BYTES + 1)]),
            f"at most {MAX_TEXT_BYTES}",
        ),
        (inference_pb2.Tensor(shape=[1], dtype=DT.DATA_TYPE_INT8, int64_values=[300]), "outside int8's range"),
        (inference_pb2.Tensor(shape=[1], dtype=DT.DATA_TYPE_INT64, float64_values=[1.0]), "send them in"),
        (inference_pb2.Tensor(shape=[1], dtype=DT.DATA_TYPE_INT64, raw=b"\x00" * 3), "not a whole number"),
        (inference_pb2.Tensor(shape=[1], dtype=DT.DATA_TYPE_STRING, raw=b"abcd"), "not 'raw'"),
        (inference_pb2.Tensor(shape=[2], dtype=DT.DATA_TYPE_INT64, int64_values=[1]), "needs 2 values"),
        (inference_pb2.Tensor(shape=[1], dtype=DT.DATA_TYPE_FLOAT16, float64_values=[1.0]), "'raw'"),
        (inference_pb2.Tensor(shape=[1], dtype=99, raw=b"\x00"), "does not know"),
        (inference_pb2.Tensor(shape=[1], dtype=DT.DATA_TYPE_INT64, int64_values=[1], raw=b"\x00" * 8), "one field"),
        (inference_pb2.Tensor(shape=[1], string_values=[b"a"]), "is FLOAT32 but its values are in 'string_values'"),
    ],
)
def test_malformed_tensors_are_refused_with_a_reason(tensor: inference_pb2.Tensor, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        decode_tensor(tensor)


def test_records_carry_every_json_kind_losslessly() -> None:
    features = {"plan": "pro", "age": 2**40 + 1, "income": None, "ratio": 0.5, "member": True}
    record = encode_record(features | {"scores": [1, 2.5], "x": math.nan})
    decoded = inference_pb2.Record.FromString(record.SerializeToString()).features
    assert {name: decoded[name].WhichOneof("kind") for name in decoded} == {
        "plan": "text",
        "age": "integer",
        "income": "missing",
        "ratio": "number",
        "member": "flag",
        "scores": "list",
        "x": "missing",
    }
    assert feature_python(decoded["age"]) == 2**40 + 1 and feature_python(decoded["scores"]) == [1, 2.5]
    with pytest.raises(InvalidInput, match="nests lists"):
        encode_record({"m": [[1]]})
    with pytest.raises(InvalidInput, match="beyond a 64-bit integer"):
        encode_record({"big": 2**64})
    with pytest.raises(InvalidInput, match="is a dict"):
        encode_record({"odd": {}})
