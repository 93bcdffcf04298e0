"""The prediction log's rows on disk from the moment they are kept, so a SIGKILL loses none.

The log's buffer (`agent.predlog`) waits up to one flush interval (2 s) before it writes its
rows as a Parquet segment; an agent killed in between lost those rows, while its metric counts of
the same requests survived in the window journal (`agent.journal`): the log and the metrics
disagreed (issue 16's done-when: "agent SIGKILLed ... the request count and the logged rows are
exact"). Now every entry the buffer keeps is also appended to the open journal file,
`<log>/journal/<id>.wal` (one `os.writev`, no fsync: the page cache outlives a process crash, as
the metric journal's). A flush closes the file and opens the next one (under the buffer's lock,
so a file holds exactly the entries of one flush), writes the segments, then deletes the file.

Segments written from a journal have ids derived from it (`<journal id>-<group>-<part>`), so the
same entries give the same segment ids: a journal that a crash left behind after its segments
were written gives them again at the next start, and the control plane acknowledges a segment it
already has without storing it twice (never doubled). A journal left behind is written as
segments by the flush thread when the agent starts.

Record: u32 header length, u32 body length, a JSON header (the entry's fields; each array's
dtype and shape, or the values of an object array), then the numeric arrays' bytes in order. A
torn last record (the process died mid-write) is ignored. No pickle: the file is data only.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from agent.predlog import Entry

log = logging.getLogger("sluice.agent")

MAGIC = b"SLLOGJ1\n"
SUFFIX = ".wal"
_LENGTHS = struct.Struct("<II")
#: buffers per `os.writev` (POSIX guarantees 16 at least, Linux takes 1,024): one per model input
#: and output; a record of more is joined and written whole
_MAX_BUFFERS = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 16


def _array_head(x: Any, arrays: list[np.ndarray]) -> dict[str, Any] | None:
    if x is None:
        return None
    a = np.asarray(x)
    if a.dtype == object:  # strings (and None / NaN for a missing one): their values, as JSON
        return {"values": a.ravel().tolist(), "shape": list(a.shape)}
    a = np.ascontiguousarray(a)
    arrays.append(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape)}


def encode(entry: Entry) -> list[bytes | memoryview]:
    """One record as the buffers to write one after the other (`LogJournal.write`): the lengths
    and the header, then a view of each numeric array's own memory (no copy: a 1,024-row batch's
    arrays are 140 KB, and copying them twice cost as much as writing them)."""
    arrays: list[np.ndarray] = []
    keys = entry.keys if isinstance(entry.keys, str) else list(entry.keys)
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
        "request_ids": list(entry.request_ids),
        "keys": keys,
        "rows": entry.rows,
    }
    header = json.dumps(head, separators=(",", ":")).encode("utf-8", "surrogatepass")
    views = [a.reshape(-1).view(np.uint8).data for a in arrays if a.size]
    body = sum(v.nbytes for v in views)
    return [_LENGTHS.pack(len(header), body) + header, *views]


def _array(head: dict[str, Any] | None, body: bytes, offset: list[int]) -> np.ndarray | None:
    if head is None:
        return None
    shape = tuple(head["shape"])
    if "values" in head:
        out = np.empty(len(head["values"]), dtype=object)
        out[:] = head["values"]
        return out.reshape(shape)
    dtype = np.dtype(head["dtype"])
    count = int(np.prod(shape, dtype=np.int64))
    array = np.frombuffer(body, dtype=dtype, count=count, offset=offset[0]).reshape(shape)
    offset[0] += count * dtype.itemsize
    return array


def decode(header: bytes, body: bytes) -> Entry:
    from agent.predlog import Entry

    h = json.loads(header.decode("utf-8", "surrogatepass"))
    offset = [0]
    feeds = {name: _array(x, body, offset) for name, x in h["feeds"].items()}
    labels = _array(h["labels"], body, offset)
    values = _array(h["values"], body, offset)
    probabilities = _array(h["probabilities"], body, offset)
    return Entry(
        h["ts"], h["deployment"], h["model"], h["version"], h["role"], h["experiment"],
        {k: v for k, v in feeds.items() if v is not None}, labels, h["classes"], values, probabilities,
        h["latency_ms"], h["request_ids"], h["keys"], h["rows"],
    )  # fmt: skip


def read(path: Path) -> Iterator[Entry]:
    """The entries of a journal file, in the order written; a torn or unreadable tail ends it."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        return
    at = len(MAGIC)
    while at + _LENGTHS.size <= len(data):
        head_len, body_len = _LENGTHS.unpack_from(data, at)
        start = at + _LENGTHS.size
        end = start + head_len + body_len
        if end > len(data):
            log.warning("prediction log journal %s: a torn last record is ignored", path.name)
            return
        try:
            yield decode(data[start : start + head_len], data[start + head_len : end])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("prediction log journal %s: an unreadable record ends it: %s", path.name, exc)
            return
        at = end


class LogJournal:
    """The open journal file of the prediction log's buffer; not thread-safe (the log's lock)."""

    def __init__(self, directory: Path, first_id: str) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        #: files a previous run left (oldest first): written as segments by the flush thread
        self.leftovers = sorted(self.dir.glob(f"*{SUFFIX}"))
        self._fd: int | None = None
        self.id = ""
        self._open(first_id)

    def _open(self, journal_id: str) -> None:
        self.id = journal_id
        self._fd = None
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            log.warning("prediction log: cannot open the journal %s: %s; rows wait in memory only", self.path, exc)
            return
        try:
            os.write(fd, MAGIC)
        except OSError as exc:
            os.close(fd)
            log.warning("prediction log: cannot write the journal %s: %s; rows wait in memory only", self.path, exc)
            return
        self._fd = fd

    @property
    def path(self) -> Path:
        return self.dir / f"{self.id}{SUFFIX}"

    def write(self, record: list[bytes | memoryview]) -> None:
        """Append one record (its buffers, `encode`) with one `os.writev`; a failure (a full disk)
        costs crash-durability, never the row."""
        if self._fd is None:
            return
        try:
            total = sum(len(b) if isinstance(b, bytes) else b.nbytes for b in record)
            done = os.writev(self._fd, record) if len(record) <= _MAX_BUFFERS else 0
            if done < total:  # a short write (a signal, the disk filling up) or too many buffers
                rest = memoryview(b"".join(record))[done:]
                while rest:
                    rest = rest[os.write(self._fd, rest) :]
        except OSError as exc:
            log.warning("prediction log: the journal %s failed: %s; rows wait in memory only", self.path, exc)
            os.close(self._fd)
            self._fd = None

    def rotate(self, next_id: str | None) -> Path:
        """Close the open file and return it; open the next one unless `next_id` is None."""
        done = self.path
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if next_id is not None:
            self._open(next_id)
        return done
