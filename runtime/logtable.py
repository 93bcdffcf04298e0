"""The columns of a prediction-log segment (docs/PREDICTION_LOG.md, "Columns").

`build_table` turns the answers of one (deployment, model, version) into one Arrow table: a
column per model input of its own type, the outputs, and what identifies the request. The control
plane builds it from each record file an agent ships (`runtime.logrecords`) and writes it as the
log's Parquet file; an agent builds it only for an S3 sink or a control plane of an earlier
release (`runtime.logsegment`). Needs pyarrow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from runtime.logrecords import Entry

# ---- columns ----


def _input_column(parts: list[np.ndarray]) -> pa.Array:
    """One model input's column: its own type; a [rows, k] input (k > 1) as a fixed-size list of
    k, a [rows] or [rows, 1] input as plain values."""
    x = parts[0] if len(parts) == 1 else np.concatenate(parts)
    width = int(np.prod(x.shape[1:]))
    if x.ndim == 1 or width == 1:
        return _flat(x.reshape(-1))
    flat = _flat(x.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width)


def _flat(x: np.ndarray) -> pa.Array:
    if x.dtype == object or x.dtype.kind in "US":
        return pa.array(x.astype(object) if x.dtype.kind in "US" else x, type=pa.string())
    return pa.array(x)  # NaN stays NaN: a missing value the model was given, not a null


def _label_column(entries: list[Entry]) -> pa.Array:
    """Each row's class as text: the class name where the model says it, else its index."""
    first = entries[0]
    same = all(e.classes == first.classes and e.labels is not None and e.labels.dtype != object for e in entries)
    if first.classes and same:
        # The common case: class indices of one model's classes, taken in one call (a take per
        # entry cost 3-4 µs each, 50 of them per flush of 1,024-row batches).
        indices = np.concatenate([e.labels.reshape(-1) for e in entries if e.labels is not None])
        if indices.size and indices.min() >= 0 and indices.max() < len(first.classes):
            return pa.array(list(first.classes), type=pa.string()).take(pa.array(indices))
    parts = []
    for e in entries:
        labels = e.labels
        assert labels is not None
        if labels.dtype == object:  # class names already
            parts.append(pa.array(labels.reshape(-1), type=pa.string()))
            continue
        labels = labels.reshape(-1)
        known = e.classes is not None and len(e.classes) > 0
        if known and labels.size and labels.min() >= 0 and labels.max() < len(e.classes or ()):
            parts.append(pa.array(list(e.classes or ()), type=pa.string()).take(pa.array(labels)))
        else:
            parts.append(pa.array(labels.astype(str).astype(object), type=pa.string()))
    return pa.concat_arrays(parts)


def _probabilities_column(parts: list[np.ndarray]) -> pa.Array:
    width = max(p.shape[1] for p in parts)
    x = np.concatenate([p if p.shape[1] == width else np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in parts])
    n = x.shape[0]
    offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(x, np.float32).reshape(-1)))


def _value_column(parts: list[np.ndarray]) -> pa.Array:
    x = np.concatenate(parts).astype(np.float64, copy=False)
    if x.ndim == 1:
        return pa.array(x)
    return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), int(x.shape[1]))


def _per_row(values: Sequence[Sequence[str] | str], counts: list[int]) -> pa.Array:
    """request ids / routing keys: per row where given, null where not."""
    if not any(values):  # none given (a batch without ids or keys): nulls, built in C++
        return pa.nulls(sum(counts), type=pa.string())
    out: list[str | None] = []
    for given, n in zip(values, counts, strict=True):
        if isinstance(given, str):
            out.extend([given or None] * n)
        elif len(given) == n:
            out.extend(given)
        else:
            out.extend([None] * n)
    return pa.array(out, type=pa.string())


def build_table(entries: list[Entry], agent: str) -> pa.Table:
    """The rows of entries of one (deployment, model, version), as one Arrow table."""
    counts = [e.rows for e in entries]
    total = sum(counts)

    def repeat(value: str) -> pa.Array:
        """One text `total` times, its buffers made directly (a `take` of one value cost 14x as
        much: 330 µs per 50,000 rows, for each of the six constant columns of a flush)."""
        raw = value.encode("utf-8", "surrogatepass")
        if len(raw) * total >= 2**31:  # beyond 32-bit offsets (never with names and a bounded buffer)
            return pa.array([value], type=pa.string()).take(np.zeros(total, dtype=np.int32))
        offsets = np.arange(total + 1, dtype=np.int32) * np.int32(len(raw))
        return pa.Array.from_buffers(pa.string(), total, [None, pa.py_buffer(offsets), pa.py_buffer(raw * total)])

    def per_entry(values: list[str]) -> pa.Array:
        """One value per entry, repeated over its rows (taken in C++, no Python object per row)."""
        unique = sorted(set(values))
        if len(unique) == 1:
            return repeat(unique[0])
        index = {v: i for i, v in enumerate(unique)}
        positions = np.repeat(np.array([index[v] for v in values], dtype=np.int32), counts)
        return pa.array(unique, type=pa.string()).take(positions)

    first = entries[0]
    ts = np.repeat(np.array([int(e.ts * 1e6) for e in entries], dtype=np.int64), counts)
    latency = np.repeat(np.array([e.latency_ms for e in entries], dtype=np.float64), counts)
    columns: dict[str, pa.Array] = {
        "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
        "deployment": repeat(first.deployment),
        "model": repeat(first.model),
        "version": repeat(first.version),
        "role": per_entry([e.role for e in entries]),
        "experiment": per_entry([e.experiment for e in entries]),
        "request_id": _per_row([e.request_ids for e in entries], counts),
        "routing_key": _per_row([e.keys for e in entries], counts),
        "agent": repeat(agent),
        "latency_ms": pa.array(latency),
    }
    for name in first.feeds:
        columns[f"in_{name}"] = _input_column([e.feeds[name] for e in entries])
    if first.labels is not None:
        columns["label"] = _label_column([e for e in entries if e.labels is not None])
    if first.values is not None:
        columns["value"] = _value_column([e.values for e in entries if e.values is not None])
    if first.probabilities is not None:
        columns["probabilities"] = _probabilities_column(
            [e.probabilities for e in entries if e.probabilities is not None]
        )
    return pa.table(columns)
