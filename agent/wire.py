"""Vectorised protobuf encoding of PredictBatchResponse.rows (numpy, no per-row Python objects).

Building 1,024 RowResult messages one by one costs more than running a small model on the 1,024
rows. Rows without request ids have a fixed layout, so they are encoded with numpy into the wire
bytes of the `rows` field and merged into the response in one call (the C parser does the rest):

    RowResult  { int32 served_by = 2; int64 label = 3; double value = 4; }   (field 1 left empty)
    row        = 0x12, len(body), [0x10 varint served_by], [0x18 varint label], [0x21 8-byte value]
A field equal to its default (0) is left out, as every protobuf encoder does.
"""

from __future__ import annotations

import numpy as np

ROWS_TAG = 0x12  # PredictBatchResponse.rows: field 2, length-delimited
SERVED_BY_TAG = 0x10  # RowResult.served_by: field 2, varint
LABEL_TAG = 0x18  # RowResult.label: field 3, varint
VALUE_TAG = 0x21  # RowResult.value: field 4, fixed64


def varint_lengths(values: np.ndarray) -> np.ndarray:
    """Bytes of each uint64 as a protobuf varint (1-10)."""
    lengths = np.ones(values.shape[0], dtype=np.int64)
    rest = values >> np.uint64(7)
    while rest.any():
        lengths += rest > 0
        rest = rest >> np.uint64(7)
    return lengths


def _put_varints(out: np.ndarray, at: np.ndarray, values: np.ndarray, lengths: np.ndarray) -> None:
    for k in range(int(lengths.max(initial=0))):
        chosen = lengths > k
        chunk = (values[chosen] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = np.where(lengths[chosen] > k + 1, np.uint64(0x80), np.uint64(0))
        out[at[chosen] + k] = (chunk | more).astype(np.uint8)


def _encode_small_rows(served: np.ndarray, labels: np.ndarray | None, values: np.ndarray | None) -> bytes:
    """`encode_rows` when every served_by and label is in [0, 128): each varint is one byte.

    Every row is laid out in full in a fixed 15-byte template (tag, length, served_by, label,
    value), then the fields equal to 0 are masked out in one boolean selection.
    """
    n = served.shape[0]
    width = 6 + (9 if values is not None else 0)
    template = np.empty((n, width), dtype=np.uint8)
    keep = np.ones((n, width), dtype=bool)
    template[:, 0] = ROWS_TAG
    template[:, 2] = SERVED_BY_TAG
    template[:, 3] = served
    has = served != 0
    keep[:, 2] = keep[:, 3] = has
    body = 2 * has
    template[:, 4] = LABEL_TAG
    if labels is not None:
        template[:, 5] = labels
        has = labels != 0
        keep[:, 4] = keep[:, 5] = has
        body = body + 2 * has
    else:
        keep[:, 4] = keep[:, 5] = False
    if values is not None:
        bits = np.ascontiguousarray(values, dtype="<f8")
        template[:, 6] = VALUE_TAG
        template[:, 7:] = bits.view(np.uint8).reshape(n, 8)
        has = bits.view(np.uint64) != 0
        keep[:, 6:] = has[:, None]
        body = body + 9 * has
    template[:, 1] = body
    return template[keep].tobytes()


def encode_rows(served_by: np.ndarray, labels: np.ndarray | None, values: np.ndarray | None) -> bytes:
    """The wire bytes of `rows` (one RowResult per row, no request ids) for MergeFromString."""
    n = served_by.shape[0]
    # Class ids and route indices are small: the common case needs no varint arithmetic.
    if (
        n
        and 0 <= int(served_by.min()) <= int(served_by.max()) < 0x80
        and (labels is None or 0 <= int(labels.min()) <= int(labels.max()) < 0x80)
    ):
        return _encode_small_rows(served_by, labels, values)
    served = served_by.astype(np.int64).astype(np.uint64)  # int32 >= 0 here: same varint
    has_served = served != 0
    served_len = varint_lengths(served)
    body = np.where(has_served, 1 + served_len, 0)
    if labels is not None:
        label_bits = labels.astype(np.int64).view(np.uint64)  # negative int64: 10-byte varint
        has_label = label_bits != 0
        label_len = varint_lengths(label_bits)
        body = body + np.where(has_label, 1 + label_len, 0)
    if values is not None:
        value_bits = values.astype("<f8")
        has_value = value_bits.view(np.uint64) != 0
        body = body + np.where(has_value, 9, 0)
    sizes = 2 + body  # the row tag and a one-byte length (a body is at most 31 bytes)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    out = np.zeros(int(sizes.sum()), dtype=np.uint8)
    out[starts] = ROWS_TAG
    out[starts + 1] = body.astype(np.uint8)
    at = starts + 2
    out[at[has_served]] = SERVED_BY_TAG
    _put_varints(out, at[has_served] + 1, served[has_served], served_len[has_served])
    at = at + np.where(has_served, 1 + served_len, 0)
    if labels is not None:
        out[at[has_label]] = LABEL_TAG
        _put_varints(out, at[has_label] + 1, label_bits[has_label], label_len[has_label])
        at = at + np.where(has_label, 1 + label_len, 0)
    if values is not None:
        where = at[has_value]
        out[where] = VALUE_TAG
        raw = value_bits[has_value].view(np.uint8).reshape(-1, 8)
        out[where[:, None] + 1 + np.arange(8)] = raw
    return out.tobytes()
