"""The record form mapped onto a model's inputs (agent/records.py), without a model or a server."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from agent.records import RecordRows
from core.errors import InvalidInput
from core.tensors import encode_record
from protos import inference_pb2
from runtime.inputs import InputSpec

SPECS = (
    InputSpec("age", np.dtype(np.float64), (None, 1), accepts_missing=True),
    InputSpec("visits", np.dtype(np.int64), (None, 1)),
    InputSpec("member", np.dtype(np.bool_), (None,)),
    InputSpec("plan", np.dtype(object), (None, 1)),
    InputSpec("scores", np.dtype(np.float32), (None, 3)),
)
GOOD = {"age": 41.5, "visits": 3, "member": True, "plan": "pro", "scores": [1, 2.5, -1]}


def columns(*records: dict[str, Any]) -> dict[str, np.ndarray]:
    wire = [inference_pb2.Record.FromString(encode_record(r).SerializeToString()) for r in records]
    return RecordRows(wire).columns(SPECS)


def test_records_become_one_typed_column_per_input() -> None:
    out = columns(GOOD, GOOD | {"age": None, "visits": 2**40 + 1, "member": 0, "plan": "", "scores": [0, 0, 0]})
    assert out["age"].dtype == np.float64 and out["age"].shape == (2, 1) and math.isnan(out["age"][1, 0])
    assert out["visits"].tolist() == [[3], [2**40 + 1]] and out["visits"].dtype == np.int64
    assert out["member"].tolist() == [True, False] and out["member"].shape == (2,)
    assert out["plan"].tolist() == [["pro"], [""]] and out["plan"].dtype == object
    assert out["scores"].dtype == np.float32 and out["scores"].tolist() == [[1, 2.5, -1], [0, 0, 0]]
    # zero and integral numbers take the checked path and come out the same
    assert columns(GOOD | {"age": 0, "visits": 4.0})["visits"].tolist() == [[4]]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"visits": 2.5}, "record 1 feature 'visits' is 2.5; input 'visits' takes integers"),
        ({"visits": None}, "is null; input 'visits' is int64 and cannot hold a missing value"),
        ({"member": 2}, "takes true/false (or 0/1)"),
        ({"member": "yes"}, "a string where a number is expected"),
        ({"plan": None}, "takes a string (a category), not a missing value"),
        ({"plan": True}, "is true/false: a number where a string is expected"),
        ({"scores": [1, 2]}, "has 2 values; input 'scores' takes 3"),
        ({"scores": 1.0}, "is one value; it takes a list of 3"),
        ({"member": [True]}, "is a list; it takes one value"),
        ({"scores": [1, 2, "x"]}, "item 2 is a string"),
        ({"age": True}, "is true/false; input 'age' takes float64 numbers"),
    ],
)
def test_a_mistyped_feature_is_refused_by_record_and_name(change: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        columns(GOOD, GOOD | change)
    message = str(caught.value)
    assert says in message and "record 1" in message, message


def test_missing_unknown_and_empty_records() -> None:
    without = {k: v for k, v in GOOD.items() if k != "plan"}
    with pytest.raises(InvalidInput, match="record 0 lacks 'plan'; the model takes"):
        columns(without)
    with pytest.raises(InvalidInput, match=r"record 0 lacks 'plan' and has unknown feature\(s\) 'colour'"):
        columns(without | {"colour": "red"})
    with pytest.raises(InvalidInput, match="record 1 is empty"):
        columns(GOOD, {})
    with pytest.raises(InvalidInput, match="no records"):
        RecordRows([]).columns(SPECS)
