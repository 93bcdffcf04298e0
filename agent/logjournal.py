"""The prediction log's open record files: one per (deployment, model, version), appended to on the
request path, closed and handed over as segments by each flush.

Every entry the log keeps is appended at once to its version's open file, `<log>/journal/<id>.wal`
(one `os.writev` of the header and views of the arrays' memory, no fsync: the page cache outlives
a crash of the process), in the format of `runtime.logrecords`. A file is closed when it reaches
the segment size, or at the next flush, which writes its footer, fsyncs it and moves it as it is
into the pending directory (`agent.predlog`): the file the agent appended to is the segment it
ships. So a SIGKILL loses no row the log kept (the next start finds the open files here and
turns them into segments) and the agent never builds a table.

Not thread-safe: the log's lock guards it.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runtime.logrecords import MAGIC, SUFFIX, Entry, Footer, Record

log = logging.getLogger("sluice.agent")

#: buffers per `os.writev` (POSIX guarantees 16 at least, Linux takes 1,024): one per model input
#: and output; a record of more is joined and written whole
_MAX_BUFFERS = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 16

Route = tuple[str, str, str]  # deployment, model, version


def new_segment_id() -> str:
    """Time-ordered (sorting the names gives the oldest first) and unique without coordination."""
    return f"{time.time_ns():020d}-{secrets.token_hex(4)}"


def utc_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


@dataclass
class OpenFile:
    """A record file being appended to, or closed and waiting for the flush."""

    segment_id: str
    path: Path
    fd: int | None
    deployment: str
    model: str
    version: str
    date: str  # of its first entry (UTC): the log's date partition
    rows: int = 0
    size: int = len(MAGIC)

    def footer(self) -> Footer:
        return Footer(self.deployment, self.model, self.version, self.date, self.rows)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class LogJournal:
    """The open record files, by route, and those closed since the last flush."""

    def __init__(self, directory: Path, segment_bytes: int) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        #: files a previous run left open (oldest first): made segments by the flush thread
        self.leftovers = sorted(self.dir.glob(f"*{SUFFIX}"))
        self._open: dict[Route, OpenFile] = {}
        self._closed: list[OpenFile] = []
        #: bytes in the files not yet handed to a flush (open and closed): they count against the
        #: log's bound with the pending ones
        self.bytes = 0

    def write(self, entry: Entry, record: Record) -> bool:
        """Append one record to its route's file (a new file when there is none, or the record
        would take it past the segment size). False: it could not be written (a full or failing
        disk): the caller drops and counts its rows."""
        buffers, size = record
        current = self._open.get(entry.route)
        if current is not None and current.rows and current.size + size > self.segment_bytes:
            self._close(entry.route)
            current = None
        if current is None:
            current = self._new(entry)
            if current is None:
                return False
        assert current.fd is not None
        try:
            done = os.writev(current.fd, buffers) if len(buffers) <= _MAX_BUFFERS else 0
            if done < size:  # a short write (a signal, the disk filling up) or too many buffers
                rest = memoryview(b"".join(buffers))[done:]
                while rest:
                    rest = rest[os.write(current.fd, rest) :]
        except OSError as exc:
            log.warning("prediction log: cannot append to %s: %s; the entry's rows are dropped", current.path, exc)
            try:  # the file must end with a whole record: cut what part of this one was written
                os.ftruncate(current.fd, current.size)
            except OSError:
                pass
            self._close(entry.route)
            return False
        current.rows += entry.rows
        current.size += size
        self.bytes += size
        return True

    def _new(self, entry: Entry) -> OpenFile | None:
        segment_id = new_segment_id()
        path = self.dir / f"{segment_id}{SUFFIX}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            log.warning("prediction log: cannot open %s: %s; the entry's rows are dropped", path, exc)
            return None
        try:
            os.write(fd, MAGIC)
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            log.warning("prediction log: cannot write %s: %s; the entry's rows are dropped", path, exc)
            return None
        opened = OpenFile(segment_id, path, fd, entry.deployment, entry.model, entry.version, utc_date(entry.ts))
        self._open[entry.route] = opened
        self.bytes += opened.size
        return opened

    def _close(self, route: Route) -> None:
        done = self._open.pop(route)
        done.close()
        self._closed.append(done)

    def take(self) -> list[OpenFile]:
        """Close every file and hand them over (oldest first), emptied of rows or not: the flush
        makes segments of those with rows and deletes the others."""
        for route in list(self._open):
            self._close(route)
        taken, self._closed = self._closed, []
        self.bytes = 0
        return sorted(taken, key=lambda f: f.segment_id)
