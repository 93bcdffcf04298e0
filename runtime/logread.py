"""Reading the prediction log's record files (`runtime.logrecords` writes them; the format is there).

A control plane reads an agent's segment as untrusted input: `read_segment` checks every field,
dtype, shape and length and raises ValueError saying what is wrong, before any row is kept. The
agent reads its own files back after a crash (`scan`), where a torn last record just ends them,
and finds a closed file's footer (`read_footer`).

Needs numpy only (no pyarrow).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from runtime.logrecords import END, FOOTER_LENGTH, LENGTHS, MAGIC, Entry, Footer, SegmentFormat, format_of

#: a record's header above this is refused (a 1,024-row batch's header is about 45 KB)
MAX_HEADER_BYTES = 64 << 20
#: the numeric dtypes an array of a record may have (kind: bool, int, unsigned, float)
_KINDS = frozenset("biuf")


def _text(h: dict[str, Any], key: str) -> str:
    value = h.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} is not text")
    return value


def _number(h: dict[str, Any], key: str) -> float:
    value = h.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key!r} is not a finite number")
    return float(value)


def _texts(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} is not a list of text")
    return value


def _lines(head: Any, body: memoryview, offset: list[int], rows: int, what: str) -> list[str]:
    """Request ids or routing keys: a JSON list, or UTF-8 lines in the body; none or one per row."""
    if isinstance(head, dict):
        n, size = head.get("lines"), head.get("bytes")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (n, size)):
            raise ValueError(f"{what}: 'lines' and 'bytes' are not non-negative whole numbers")
        assert isinstance(n, int) and isinstance(size, int)
        if offset[0] + size > len(body):
            raise ValueError(f"{what}: its {size} bytes go past the record's body")
        try:
            text = bytes(body[offset[0] : offset[0] + size]).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise ValueError(f"{what} are not UTF-8") from None
        offset[0] += size
        values = text.split("\n")
        if len(values) != n:
            raise ValueError(f"{what}: {len(values)} lines, the header says {n}")
    else:
        values = _texts(head, what)
    if len(values) not in (0, rows):
        raise ValueError(f"{len(values)} {what} for {rows} rows")
    return values


def _shape(head: dict[str, Any], what: str) -> tuple[int, ...]:
    shape = head.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 8
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise ValueError(f"{what}: the shape is not 1-8 non-negative whole numbers")
    return tuple(shape)


def _array(head: Any, body: memoryview, offset: list[int], rows: int, what: str) -> np.ndarray | None:
    """One array of a record, checked: its head's form, a numeric dtype, a first dimension of
    `rows` and bytes that are there."""
    if head is None:
        return None
    if not isinstance(head, dict):
        raise ValueError(f"{what} is not an array description")
    shape = _shape(head, what)
    if shape[0] != rows:
        raise ValueError(f"{what} has {shape[0]} rows, the record says {rows}")
    count = math.prod(shape)
    if "values" in head:
        values = head["values"]
        if not isinstance(values, list) or len(values) != count:
            raise ValueError(f"{what}: {count} values expected")
        if not all(v is None or isinstance(v, str | int | float) for v in values):
            raise ValueError(f"{what}: values may be text, numbers or null only")
        out = np.empty(count, dtype=object)
        out[:] = values
        return out.reshape(shape)
    try:
        dtype = np.dtype(_text(head, "dtype"))
    except (TypeError, ValueError):
        raise ValueError(f"{what}: {str(head.get('dtype'))[:40]!r} is not a dtype") from None
    if dtype.kind not in _KINDS or dtype.byteorder == ">" or dtype.itemsize > 8 or dtype.fields is not None:
        raise ValueError(f"{what}: dtype {dtype.str} is not a little-endian bool, integer or float")
    size = count * dtype.itemsize
    if offset[0] + size > len(body):
        raise ValueError(f"{what}: its {size} bytes go past the record's body")
    array = np.frombuffer(body, dtype=dtype, count=count, offset=offset[0]).reshape(shape)
    offset[0] += size
    return array


def decode(header: bytes | memoryview, body: memoryview) -> Entry:
    """One record, checked (ValueError says what is wrong)."""
    try:
        h = json.loads(bytes(header).decode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the header is not JSON: {exc}") from None
    if not isinstance(h, dict):
        raise ValueError("the header is not a JSON object")
    rows = h.get("rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise ValueError("'rows' is not a non-negative whole number")
    feeds_head = h.get("feeds")
    if not isinstance(feeds_head, dict) or not feeds_head:
        raise ValueError("'feeds' is not a non-empty object")
    offset = [0]
    feeds: dict[str, np.ndarray] = {}
    for name, x in feeds_head.items():
        array = _array(x, body, offset, rows, f"input {name[:40]!r}")
        if array is None:
            raise ValueError(f"input {name[:40]!r} has no array")
        feeds[name] = array
    labels = _array(h.get("labels"), body, offset, rows, "'labels'")
    values = _array(h.get("values"), body, offset, rows, "'values'")
    probabilities = _array(h.get("probabilities"), body, offset, rows, "'probabilities'")
    if labels is None and values is None and probabilities is None:
        raise ValueError("the record has no output")
    if probabilities is not None and probabilities.ndim != 2:
        raise ValueError("'probabilities' is not [rows, classes]")
    classes = h.get("classes")
    ids = _lines(h.get("request_ids"), body, offset, rows, "request ids")
    keys = h.get("keys")
    if not isinstance(keys, str):
        keys = _lines(keys, body, offset, rows, "routing keys")
    if offset[0] != len(body):
        raise ValueError(f"the body has {len(body) - offset[0]} bytes that nothing claims")
    return Entry(
        _number(h, "ts"), _text(h, "deployment"), _text(h, "model"), _text(h, "version"), _text(h, "role"),
        _text(h, "experiment"), feeds, labels, None if classes is None else _texts(classes, "'classes'"), values,
        probabilities, _number(h, "latency_ms"), ids, keys, rows,
    )  # fmt: skip


def _records(data: memoryview, end: int, strict: bool) -> tuple[list[Entry], int]:
    """The records in data[len(MAGIC):end], and where the last whole one ends. Not `strict`: a
    torn or unreadable record ends the list; strict: it raises ValueError."""
    entries: list[Entry] = []
    at = len(MAGIC)
    while at < end:
        if at + LENGTHS.size > end:
            if strict:
                raise ValueError(f"{end - at} stray bytes after record {len(entries) + 1}")
            break
        head_len, body_len = LENGTHS.unpack_from(data, at)
        start = at + LENGTHS.size
        stop = start + head_len + body_len
        if head_len > MAX_HEADER_BYTES or stop > end:
            if strict:
                raise ValueError(f"record {len(entries) + 1} goes past the end of the file")
            break
        try:
            entries.append(decode(data[start : start + head_len], data[start + head_len : stop]))
        except ValueError as exc:
            if strict:
                raise ValueError(f"record {len(entries) + 1}: {exc}") from None
            break
        at = stop
    return entries, at


def scan(data: bytes) -> tuple[list[Entry], int]:
    """An agent's own file, open when it died: its whole records, and where the last one ends."""
    if not data.startswith(MAGIC):
        return [], 0
    return _records(memoryview(data), len(data), strict=False)


def read_footer(tail: bytes) -> Footer | None:
    """The footer of a closed record file from its last bytes (at least 4 KB of them, or all);
    None when it has none or it is damaged."""
    if not tail.endswith(END):
        return None
    try:
        return _footer_at(memoryview(tail), 0)[0]
    except ValueError:
        return None


def _footer_at(data: memoryview, floor: int) -> tuple[Footer, int]:
    """The footer that `data` ends with (before END), and where it starts; it may not start
    before `floor`. ValueError says what is wrong."""
    tail = len(data) - len(END) - FOOTER_LENGTH.size
    if tail < floor:
        raise ValueError("the file is too short for its footer")
    (n,) = FOOTER_LENGTH.unpack_from(data, tail)
    if n > tail - floor:
        raise ValueError("the footer's length goes past the start of the file")
    return _footer(data[tail - n : tail]), tail - n


def _footer(raw: bytes | memoryview) -> Footer:
    try:
        d = json.loads(bytes(raw))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("the footer is not JSON") from None
    if not isinstance(d, dict):
        raise ValueError("the footer is not a JSON object")
    rows = d.get("rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise ValueError("the footer's 'rows' is not a non-negative whole number")
    return Footer(_text(d, "deployment"), _text(d, "model"), _text(d, "version"), _text(d, "date"), rows)


def read_segment(data: bytes | memoryview) -> tuple[list[Entry], Footer]:
    """Every record of a closed record file and its footer, all checked: ValueError says what is
    wrong (the control plane refuses the segment with it). The entries' arrays are views of
    `data`."""
    view = memoryview(data)
    if format_of(view) is not SegmentFormat.RECORDS:
        raise ValueError("not a record file of the prediction log (its first and last bytes)")
    footer, start = _footer_at(view, len(MAGIC))
    entries, _ = _records(view, start, strict=True)
    held = sum(e.rows for e in entries)
    if held != footer.rows:
        raise ValueError(f"the footer says {footer.rows} rows and the records hold {held}")
    for e in entries:
        if e.route != (footer.deployment, footer.model, footer.version):
            raise ValueError(
                f"a record of {e.deployment[:64]}/{e.model[:64]}:{e.version[:64]} in a file of "
                f"{footer.deployment[:64]}/{footer.model[:64]}:{footer.version[:64]}"
            )
    return entries, footer
