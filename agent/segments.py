"""The feature columns that segment rules test, read from a request's rows (agent/router.py).

A feature is the model input of that name when it is one column ([rows] or [rows, 1]): from a
record it is the record's value of that name; from typed tensors the tensor of that name; from a
plain [rows, features] tensor of a one-input model only that input's own name when it is one
column. Only the names the deployment's rules test are read, and nothing is read when a
deployment has no segment rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from agent.records import RecordRows
from protos import inference_pb2
from runtime.inputs import InputSpec


def column_of(array: np.ndarray) -> np.ndarray | None:
    """An input of one column as one value per row; None for any other shape."""
    if array.ndim == 1:
        return array
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    return None


def _value(feature: inference_pb2.FeatureValue | None) -> Any:
    """A record's feature as a Python value (text, number, bool), None when missing or a list."""
    if feature is None:
        return None
    kind = feature.WhichOneof("kind")
    if kind in ("text", "number", "integer", "flag"):
        return getattr(feature, kind)
    return None


def _record_column(records: Sequence[inference_pb2.Record], name: str) -> np.ndarray:
    column = np.empty(len(records), dtype=object)
    column[:] = [_value(record.features.get(name)) for record in records]
    return column


def request_features(x: object, names: Iterable[str], inputs: Sequence[InputSpec]) -> dict[str, np.ndarray]:
    """The columns named `names` of a request's rows in whatever form it sent them (`Rows` of
    agent/core.py: records, tensors by input name, or one tensor), before any model checks them.
    A name the request does not carry as one column is left out (its rules do not match)."""
    out: dict[str, np.ndarray] = {}
    if isinstance(x, RecordRows):
        for name in names:
            out[name] = _record_column(x.records, name)
    elif isinstance(x, np.ndarray):
        if len(inputs) == 1 and inputs[0].name in names:
            column = column_of(x)
            if column is not None:
                out[inputs[0].name] = column
    elif isinstance(x, Mapping):
        for name in names:
            array = x.get(name)
            column = column_of(array) if isinstance(array, np.ndarray) else None
            if column is not None:
                out[name] = column
    return out


def feed_features(feeds: Mapping[str, np.ndarray], names: Iterable[str]) -> dict[str, np.ndarray]:
    """The columns named `names` of a batch the model's checks accepted (its feeds by input name)."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        array = feeds.get(name)
        column = column_of(array) if array is not None else None
        if column is not None:
            out[name] = column
    return out
