"""A request's rows in the three forms a caller may send them (one tensor, tensors by input name,
or records), decoded without a model, counted, then checked against the model they were routed
to (`prepare`, which turns them into onnxruntime's feeds or says what does not fit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from agent.records import RecordRows
from core.errors import InvalidInput
from core.tensors import decode_tensor
from protos import inference_pb2
from runtime.model import Feeds, ModelRuntime

#: a request's rows before the routed version's checks: one array (a one-input model), arrays by
#: input name, or records
Rows = np.ndarray | Mapping[str, np.ndarray] | RecordRows


def rows_of(x: Rows) -> int:
    """How many rows a request carries (its first input's, until the checks compare them)."""
    if isinstance(x, np.ndarray):
        return int(x.shape[0])
    if isinstance(x, RecordRows):
        return x.rows
    first = next(iter(x.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 0


def prepare(runtime: ModelRuntime, x: Rows, deployment: str) -> Feeds:
    """The model's feeds from a request's rows, or InvalidInput saying what does not fit."""
    if isinstance(x, RecordRows):
        x = x.columns(runtime.inputs)
    try:
        return runtime.prepare(x)
    except ValueError as exc:
        raise InvalidInput(f"deployment {deployment}: {exc}") from None


def rows_in(
    tensor: inference_pb2.Tensor | None,
    named: Mapping[str, inference_pb2.Tensor],
    records: Sequence[inference_pb2.Record],
    what: str = "input",
    raw: memoryview | None = None,
) -> Rows:
    """A request's rows in the form it sent them: one tensor, tensors by input name, or records.
    `raw`: the tensor's raw bytes, kept apart from it (core.zero_copy)."""
    if tensor is not None and not named and not records:  # the common case first
        return decode_tensor(tensor, what, raw)
    given = ((f"'{what}'", tensor is not None), ("'named_inputs'", bool(named)), ("'records'", bool(records)))
    forms = [name for name, sent in given if sent]
    if len(forms) > 1:
        several = "not both" if len(forms) == 2 else "not all three"
        raise InvalidInput(f"send one of {', '.join(forms)}, {several}: they are alternative forms of the rows")
    if tensor is not None:
        return decode_tensor(tensor, what, raw)
    if named:
        return {name: decode_tensor(t, f"input {name[:128]!r}") for name, t in named.items()}
    if records:
        return RecordRows(records)
    raise InvalidInput(
        f"no input: send '{what}' (a tensor [rows, features]), 'named_inputs' (a tensor per model input) "
        "or 'records' (named feature values per row)"
    )
