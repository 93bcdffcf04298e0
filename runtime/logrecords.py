"""The prediction log's record files: what an agent appends for every answer it keeps, and ships.

An agent appends each answer it keeps to the open file of its (deployment, model, version), one
`os.writev` on the request path (`agent.logjournal`). A flush closes the file with a footer and
moves it, as it is, into the pending directory: that file is the segment the agent ships, and the
control plane builds the log's Arrow table and Parquet file from it (`runtime.logtable`). So an
agent with a local sink never loads pyarrow (about 60 MB) and its flush is an fsync and a rename.

File (docs/PREDICTION_LOG.md, "Segments"):

    MAGIC  record*  [footer  u32 footer length  END]

- record: u32 header length, u32 body length, a JSON header (the entry's fields; for each array
  its dtype and shape, or the values of an object array), then the body: the numeric arrays'
  bytes in the order of the header (feeds, labels, values, probabilities), then the request ids
  and the routing keys as UTF-8 lines where the header says `{"lines": n, "bytes": b}` (JSON
  encoding 1,024 ids cost 100-180 µs on the request path, joining them 15; a list of ids of which
  one holds a newline stays a JSON list).
- footer: JSON {deployment, model, version, date, rows}; an open file has none yet.

No pickle: the file is data only. This module writes it; `runtime.logread` reads it (a control
plane as untrusted input, the agent its own files after a crash).

Needs numpy only (no pyarrow): the agent imports it on the request path.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np

MAGIC = b"SLLOGJ1\n"
END = b"SLLOGJE\n"
#: the suffix of record files (open in the journal directory, closed in the pending one)
SUFFIX = ".wal"
PARQUET_MAGIC = b"PAR1"
#: an Arrow IPC *file* (not stream) starts with these 6 bytes (then 2 of padding) and ends with them
ARROW_MAGIC = b"ARROW1"
#: a record starts with its header's and its body's lengths
LENGTHS = struct.Struct("<II")
#: the footer's length, between the footer and END
FOOTER_LENGTH = struct.Struct("<I")


class SegmentFormat(StrEnum):
    """The formats of a segment's bytes, told apart by their magic bytes (`format_of`)."""

    RECORDS = "wal"  # this module's: what an agent of this release ships
    ARROW = "arrow"  # an Arrow IPC file: the previous release's agents
    PARQUET = "parquet"  # the log's own format: agents of the first releases, and S3 sinks

    @property
    def suffix(self) -> str:
        return f".{self.value}"


def format_of(data: bytes | memoryview) -> SegmentFormat | None:
    """The format a segment's bytes start and end with; None: none of them (not a segment)."""
    if len(data) >= len(MAGIC) + len(END) and data[: len(MAGIC)] == MAGIC and data[-len(END) :] == END:
        return SegmentFormat.RECORDS
    if len(data) >= 12 and data[:4] == PARQUET_MAGIC and data[-4:] == PARQUET_MAGIC:
        return SegmentFormat.PARQUET
    if len(data) >= 12 and data[:6] == ARROW_MAGIC and data[-6:] == ARROW_MAGIC:
        return SegmentFormat.ARROW
    return None


@dataclass(frozen=True)
class Entry:
    """One answer of one version, as the request path hands it over (references, no copies)."""

    ts: float  # seconds since the epoch, when it was answered
    deployment: str
    model: str
    version: str
    role: str
    experiment: str
    feeds: dict[str, np.ndarray]
    labels: np.ndarray | None  # class names (str), or indices into `classes`
    classes: Sequence[str] | None  # the text of each class (None: the index is the label)
    values: np.ndarray | None
    probabilities: np.ndarray | None
    latency_ms: float
    request_ids: Sequence[str]  # one per row, or empty
    keys: Sequence[str] | str  # one per row, one for every row, or empty
    rows: int

    @property
    def route(self) -> tuple[str, str, str]:
        return self.deployment, self.model, self.version

    def sliced(self, start: int, stop: int) -> Entry:
        """Rows [start, stop) of this entry (views of its arrays)."""

        def cut(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else x[start:stop]

        keys = self.keys if isinstance(self.keys, str) or len(self.keys) != self.rows else self.keys[start:stop]
        ids = self.request_ids[start:stop] if len(self.request_ids) == self.rows else self.request_ids
        return Entry(
            self.ts, self.deployment, self.model, self.version, self.role, self.experiment,
            {k: v[start:stop] for k, v in self.feeds.items()}, cut(self.labels), self.classes, cut(self.values),
            cut(self.probabilities), self.latency_ms, ids, keys, min(stop, self.rows) - start,
        )  # fmt: skip


@dataclass(frozen=True)
class Footer:
    """What a closed record file holds: its one (deployment, model, version), the UTC date of its
    first entry, and its rows."""

    deployment: str
    model: str
    version: str
    date: str
    rows: int


# ---- writing ----


def _array_head(x: Any, arrays: list[np.ndarray]) -> dict[str, Any] | None:
    if x is None:
        return None
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind in "US":  # strings (None / NaN for a missing one): as JSON
        return {"values": a.ravel().tolist(), "shape": list(a.shape)}
    a = np.ascontiguousarray(a)
    arrays.append(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape)}


def _lines_head(values: Sequence[str] | str, texts: list[bytes]) -> Any:
    """Request ids or routing keys: one text as it is, a list as UTF-8 lines in the body (JSON
    where one of them holds a newline)."""
    if isinstance(values, str) or not values:
        return values if isinstance(values, str) else []
    joined = "\n".join(values)
    if joined.count("\n") != len(values) - 1:
        return list(values)
    raw = joined.encode("utf-8", "surrogatepass")
    texts.append(raw)
    return {"lines": len(values), "bytes": len(raw)}


class Record(NamedTuple):
    """One encoded record: the buffers to write one after the other, and their total size."""

    buffers: list[bytes | memoryview]
    size: int


def encode(entry: Entry) -> Record:
    """One record: the lengths and the header, then a view of each numeric array's own memory
    (no copy: a 1,024-row batch's arrays are 140 KB, and copying them twice cost as much as
    writing them)."""
    arrays: list[np.ndarray] = []
    texts: list[bytes] = []
    head = {
        "ts": entry.ts,
        "deployment": entry.deployment,
        "model": entry.model,
        "version": entry.version,
        "role": entry.role,
        "experiment": entry.experiment,
        "feeds": {name: _array_head(x, arrays) for name, x in entry.feeds.items()},
        "labels": _array_head(entry.labels, arrays),
        "classes": list(entry.classes) if entry.classes is not None else None,
        "values": _array_head(entry.values, arrays),
        "probabilities": _array_head(entry.probabilities, arrays),
        "latency_ms": entry.latency_ms,
        "request_ids": _lines_head(entry.request_ids, texts),
        "keys": _lines_head(entry.keys, texts),
        "rows": entry.rows,
    }
    header = json.dumps(head, separators=(",", ":")).encode("utf-8", "surrogatepass")
    views: list[bytes | memoryview] = [a.reshape(-1).view(np.uint8).data for a in arrays if a.size]
    body = sum(a.nbytes for a in arrays) + sum(map(len, texts))
    views += texts
    first = LENGTHS.pack(len(header), body) + header
    return Record([first, *views], len(first) + body)


def encode_footer(footer: Footer) -> bytes:
    raw = json.dumps(footer.__dict__, separators=(",", ":")).encode()
    return raw + FOOTER_LENGTH.pack(len(raw)) + END
