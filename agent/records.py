"""The record form of a request: rows as named feature values, mapped onto a model's inputs.

A record names every feature the model takes, by its input name, and nothing else: an input of
shape [rows] or [rows, 1] takes one value, an input of shape [rows, k] a list of k values. Values
become columns of the input's type: numbers (and integers, exact up to 2^63) for numeric inputs,
text for string inputs, true/false (or 0/1) for bool inputs, and `missing` (JSON null) becomes NaN
for a float input, which the model's checks then accept only where its graph handles it.

The mapping needs the model the request was routed to, so it runs after routing, inside the
checks that count a refusal against that version (`AgentCore.run`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.errors import InvalidInput
from core.tensors import MAX_TEXT_BYTES
from protos import inference_pb2
from runtime.inputs import InputSpec

_LISTED = 10  # names listed in a message at most
_SHORT_TEXT = MAX_TEXT_BYTES // 4  # characters: at most 4 UTF-8 bytes each, so surely within the limit


class RecordRows:
    """The records of one request, not yet mapped onto a model."""

    __slots__ = ("records",)

    def __init__(self, records: Sequence[inference_pb2.Record]) -> None:
        self.records = records

    @property
    def rows(self) -> int:
        return len(self.records)

    def columns(self, inputs: Sequence[InputSpec]) -> dict[str, np.ndarray]:
        """One array per input, rows in record order; InvalidInput names the record and feature."""
        if not self.records:
            raise InvalidInput("no records: send one record of named feature values per row")
        maps = [record.features for record in self.records]
        width = len(inputs)
        for i, features in enumerate(maps):
            if len(features) != width:
                names = {spec.name for spec in inputs}
                if not features:
                    raise InvalidInput(f"record {i} is empty: send the features {_names(names)}")
                _refuse_names(i, features, names)
        return {spec.name: _array(_column(maps, spec, inputs), spec) for spec in inputs}


def _column(maps: list[Any], spec: InputSpec, inputs: Sequence[InputSpec]) -> list[Any]:
    """The values of one input over every record (the hot loop: a few upb calls per value): one
    value per record for an input of one column, a list per record for an input of k columns."""
    name = spec.name
    out: list[Any] = []
    append = out.append
    scalar = spec.width == 1
    number = scalar and spec.kind == "float"
    text = scalar and spec.kind == "string"
    for i, features in enumerate(maps):
        value = features.get(name)
        if value is None:  # as many features as inputs, so another one is unknown
            _refuse_names(i, features, {s.name for s in inputs})
        # A oneof holds one field: a non-zero number (a non-empty text) is the value, no
        # WhichOneof needed; zero, empty and every other kind take the checked path.
        if number:
            x = value.number
            if x:
                append(x)
                continue
        elif text:
            t = value.text
            if t and len(t) <= _SHORT_TEXT:
                append(t)
                continue
        append(_cell(value, spec, i))
    return out


def _names(names: set[str] | list[str]) -> str:
    ordered = sorted(names)
    shown = ", ".join(repr(n[:64]) for n in ordered[:_LISTED])
    return shown + (f" and {len(ordered) - _LISTED} more" if len(ordered) > _LISTED else "")


def _refuse_names(i: int, features: Any, names: set[str]) -> None:
    missing = [n for n in names if n not in features]
    unknown = [n for n in features if n not in names]
    problems = []
    if missing:
        problems.append(f"lacks {_names(missing)}")
    if unknown:
        problems.append(f"has unknown feature(s) {_names(unknown)}")
    raise InvalidInput(f"record {i} {' and '.join(problems)}; the model takes {_names(names)}")


def _cell(value: inference_pb2.FeatureValue, spec: InputSpec, row: int) -> Any:
    """One feature of one record: a scalar, or the k values of a [rows, k] input."""
    width = spec.width
    if len(spec.shape) > 2:
        raise InvalidInput(
            f"input {spec.name!r} has shape {spec.shape_text()}: send it as a tensor (named_inputs), not in a record"
        )
    if value.WhichOneof("kind") == "list":
        items = value.list.values
        if width == 1 and len(spec.shape) == 1:
            raise InvalidInput(f"record {row} feature {spec.name!r} is a list; it takes one value")
        if width == 1 and len(items) == 1:  # [x] for a column of one value: that value
            return _scalar(items[0], spec, row, 0)
        if width is not None and len(items) != width:
            raise InvalidInput(
                f"record {row} feature {spec.name!r} has {len(items)} values; input {spec.name!r} takes {width}"
            )
        return [_scalar(item, spec, row, j) for j, item in enumerate(items)]
    if width is not None and width > 1:
        raise InvalidInput(f"record {row} feature {spec.name!r} is one value; it takes a list of {width}")
    return _scalar(value, spec, row, None)


def _scalar(value: inference_pb2.FeatureValue, spec: InputSpec, row: int, item: int | None) -> Any:
    kind = value.WhichOneof("kind")
    where = f"record {row} feature {spec.name!r}" + (f" item {item}" if item is not None else "")
    want = spec.kind
    if kind is None:
        raise InvalidInput(f"{where} has no value: send null, a number, a string or true/false")
    if kind == "list":
        raise InvalidInput(f"{where} is a nested list; a feature is a value or one list of values")
    if want == "string":
        if kind == "text":
            if len(value.text) > _SHORT_TEXT and len(value.text.encode("utf-8")) > MAX_TEXT_BYTES:
                raise InvalidInput(f"{where} is longer than {MAX_TEXT_BYTES} bytes")
            return value.text
        if kind == "missing":
            raise InvalidInput(f"{where} is null; input {spec.name!r} takes a string (a category), not a missing value")
        raise InvalidInput(f"{where} is {_shown(value, kind)}: a number where a string is expected")
    if kind == "text":
        raise InvalidInput(
            f"{where} is a string; input {spec.name!r} takes {spec.type_text()}: a string where a number is expected"
        )
    if kind == "missing":
        if want != "float":
            raise InvalidInput(
                f"{where} is null; input {spec.name!r} is {spec.type_text()} and cannot hold a missing value"
            )
        return math.nan
    if kind == "flag":
        if want != "bool":
            raise InvalidInput(f"{where} is true/false; input {spec.name!r} takes {spec.type_text()} numbers")
        return value.flag
    if want == "bool":
        number = value.integer if kind == "integer" else value.number
        if number not in (0, 1):
            raise InvalidInput(f"{where} is {number}; input {spec.name!r} takes true/false (or 0/1)")
        return bool(number)
    if want == "int":
        if kind == "integer":
            return value.integer
        number = value.number
        if not math.isfinite(number) or not number.is_integer():
            raise InvalidInput(f"{where} is {number}; input {spec.name!r} takes integers ({spec.type_text()})")
        return int(number)
    return value.integer if kind == "integer" else value.number


def _shown(value: inference_pb2.FeatureValue, kind: str) -> str:
    return "true/false" if kind == "flag" else repr(getattr(value, kind))


def _array(values: list[Any], spec: InputSpec) -> np.ndarray:
    """The input's array: [rows] or [rows, 1] from one value per record, [rows, k] from lists."""
    rows = len(values)
    if spec.width == 1:
        shape: tuple[int, ...] = (rows,) if len(spec.shape) == 1 else (rows, 1)
    else:
        lengths = {len(v) for v in values}
        if len(lengths) > 1:
            raise InvalidInput(f"the records' lists for input {spec.name!r} have different lengths")
        shape = (rows, lengths.pop())
    if spec.kind == "string":
        out = np.empty(shape, dtype=object)
        out[:] = values if len(shape) == 2 and shape[1] != 1 else np.asarray(values, dtype=object).reshape(shape)
        return out
    if spec.kind == "int":
        info = np.iinfo(spec.dtype)
        flat = values if spec.width == 1 else [v for row in values for v in row]
        for j, v in enumerate(flat):
            if not info.min <= v <= info.max:
                raise InvalidInput(f"input {spec.name!r} value {j} is {v}, outside {spec.dtype.name}'s range")
    return np.array(values, dtype=spec.dtype).reshape(shape)
