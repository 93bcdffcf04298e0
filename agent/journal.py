"""The open metric window on disk, so predictions answered before a crash still count.

Reports are spooled once a window closes (`agent.spool`), but a window is open for a second and
holds everything answered since the last close: a SIGKILLed agent lost those counts. Each window
now has a journal file, `DIR/WINDOWID.journal`, and every request the recorder counts appends one
small record to it (one `os.write` under the recorder's lock: no fsync, no Python buffering). The
page cache outlives the process, so a process crash (SIGKILL, the OOM killer, a segfault in a
native library) loses nothing; a host crash (power cut, kernel panic) may lose the unsynced tail
of the open window only, as an fsync per prediction would cost more than the prediction.

When the window closes, its report goes to the spool tagged with the window id, and only then is
the journal deleted. On start, a journal left behind is either already in the spool (the agent
died between the two steps: deleted) or becomes a recovered report of its own.

A recovered window holds what the records carry: requests, rows, errors by status code, refused
inputs and latencies. Feature histograms, the prediction histogram, the reservoir sample and
feedback joins of that last second are not journaled (they would put the rows themselves on the
request path); the next windows carry them again.

Records (little-endian), after `MAGIC` and the window's start (f64 seconds since the epoch):

    K  u16 key, then deployment, model, version, role, experiment (each u16 length + UTF-8)
    P  u16 key, u32 rows, f64 latency seconds          one answered request
    E  u16 key, u8 refused, u8 length, status name     one failed request
    R  u16 key                                         one input refused before routing

A key is defined (K) in a journal before its first use; a torn last record is ignored.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

from agent.window import RouteInfo, VersionKey, Window
from agent.window_report import build_report
from core.vocabulary import ServingRole
from protos import agent_pb2

log = logging.getLogger("sluice.agent")

MAGIC = b"SLJRNL1\n"
SUFFIX = ".journal"
_START = struct.Struct("<d")
_KEY = struct.Struct("<cH")
_TEXT = struct.Struct("<H")
_PREDICTION = struct.Struct("<cHId")
_ERROR = struct.Struct("<cHBB")
_REJECTED = struct.Struct("<cH")
MAX_KEYS = 65535
MAX_ROWS = 2**32 - 1

#: (deployment, model, version, role, experiment)
JournalKey = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class ClosedJournal:
    """The journal of a window that was just closed: delete it once its report is spooled."""

    window_id: bytes
    path: Path

    def remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:  # a later start finds its report in the spool and deletes it then
            log.warning("cannot remove the window journal %s: %s", self.path, exc)


class WindowJournal:
    """Appends the open window's records. Not thread-safe: the recorder calls it under its lock."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        #: journals of earlier runs, listed before this one creates its own
        self.leftovers = sorted(self.directory.glob(f"*{SUFFIX}"))
        self._fd: int | None = None
        self._path: Path | None = None
        self._id = b""
        self._keys: dict[JournalKey, int] = {}
        self._written = 0  # records in the open journal
        #: writes that failed (the window is then journaled incompletely: a crash would undercount)
        self.failures = 0

    def open(self, start: float) -> None:
        """Start the journal of a window opened at `start` (time.time())."""
        self._id = uuid.uuid4().bytes
        self._path = self.directory / f"{self._id.hex()}{SUFFIX}"
        self._keys = {}
        self._written = 0
        try:
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            os.write(self._fd, MAGIC + _START.pack(start))
        except OSError as exc:
            self._failed(exc)

    def rotate(self, start: float) -> ClosedJournal | None:
        """Close the current window's journal (returned) and open the next one's."""
        closed = ClosedJournal(self._id, self._path) if self._path is not None else None
        self._close_fd()
        self.open(start)
        return closed

    def close(self) -> ClosedJournal | None:
        """Stop journaling. An empty journal is deleted; one with records is returned, and stays on
        disk until removed (the next start recovers it otherwise)."""
        closed = ClosedJournal(self._id, self._path) if self._path is not None else None
        self._close_fd()
        self._path = None
        if closed is not None and not self._written:
            closed.remove()
            return None
        return closed

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    # ---- records (under the recorder's lock) ----

    def prediction(self, key: VersionKey, role: str, experiment: str, rows: int, latency: float) -> None:
        if self._fd is not None:
            index, definition = self._index(key, role, experiment)
            if index >= 0:
                self._write(definition + _PREDICTION.pack(b"P", index, min(rows, MAX_ROWS), latency))

    def error(self, key: VersionKey, role: str, experiment: str, code: str, refused: bool) -> None:
        if self._fd is not None:
            index, definition = self._index(key, role, experiment)
            if index >= 0:
                name = code.encode()[:255]
                self._write(definition + _ERROR.pack(b"E", index, int(refused), len(name)) + name)

    def rejected(self, key: VersionKey, role: str, experiment: str) -> None:
        if self._fd is not None:
            index, definition = self._index(key, role, experiment)
            if index >= 0:
                self._write(definition + _REJECTED.pack(b"R", index))

    def _index(self, key: VersionKey, role: str, experiment: str) -> tuple[int, bytes]:
        """The key's index in this journal, and its definition when it is new (written first)."""
        full = (key[0], key[1], key[2], str(role), experiment)
        index = self._keys.get(full)
        if index is not None:
            return index, b""
        if len(self._keys) >= MAX_KEYS:
            return -1, b""
        index = self._keys[full] = len(self._keys)
        return index, _KEY.pack(b"K", index) + b"".join(_text(part) for part in full)

    def _write(self, data: bytes) -> None:
        """One write per record: a process killed mid-way leaves whole records (or a torn last one)."""
        assert self._fd is not None
        try:
            os.write(self._fd, data)
            self._written += 1
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        self.failures += 1
        if self.failures == 1 or self.failures % 1000 == 0:
            log.warning(
                "cannot write the metric window journal in %s (%d failures): %s; "
                "a crash now would lose the open window's counts",
                self.directory,
                self.failures,
                exc,
            )
        self._close_fd()  # the rest of this window goes unjournaled; the next window tries again


def _text(value: str) -> bytes:
    data = value.encode()[:65535]
    return _TEXT.pack(len(data)) + data


# ---- recovery ----


@dataclass(frozen=True)
class Recovered:
    window_id: bytes
    report: agent_pb2.MetricReport | None


def window_id_of(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.name[: -len(SUFFIX)])
    except ValueError:
        return b""


def recover(path: Path) -> Recovered:
    """The report of a journal left by a crashed run (None when it holds nothing to count)."""
    window_id = window_id_of(path)
    try:
        data = path.read_bytes()
        ended = path.stat().st_mtime
    except OSError as exc:
        log.warning("cannot read the window journal %s: %s", path, exc)
        return Recovered(window_id, None)
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _START.size:
        return Recovered(window_id, None)
    (start,) = _START.unpack_from(data, len(MAGIC))
    if not math.isfinite(start):
        start = ended
    windows: dict[VersionKey, Window] = {}
    routes: dict[VersionKey, RouteInfo] = {}
    keys: dict[int, tuple[VersionKey, str]] = {}
    offset = len(MAGIC) + _START.size
    try:
        while offset < len(data):
            kind = data[offset : offset + 1]
            if kind == b"K":
                _, index = _KEY.unpack_from(data, offset)
                offset += _KEY.size
                parts = []
                for _ in range(5):
                    (size,) = _TEXT.unpack_from(data, offset)
                    offset += _TEXT.size
                    if offset + size > len(data):
                        raise struct.error("torn text")
                    parts.append(data[offset : offset + size].decode(errors="replace"))
                    offset += size
                deployment, model, version, role, experiment = parts
                key = (deployment, model, version)
                keys[index] = (key, role)
                if key not in routes:
                    routes[key] = RouteInfo(deployment, model, version, _role(role), experiment, "")
                continue
            if kind == b"P":
                _, index, rows, latency = _PREDICTION.unpack_from(data, offset)
                offset += _PREDICTION.size
                window = _window(windows, keys, index)
                window.requests += 1
                window.rows += rows
                if latency >= 0 and math.isfinite(latency):
                    window.latencies.append(latency)
            elif kind == b"E":
                _, index, refused, size = _ERROR.unpack_from(data, offset)
                offset += _ERROR.size
                if offset + size > len(data):
                    break
                code = data[offset : offset + size].decode(errors="replace")
                offset += size
                window = _window(windows, keys, index)
                window.requests += 1
                window.errors[code] += 1
                if refused:
                    window.rejected += 1
            elif kind == b"R":
                _, index = _REJECTED.unpack_from(data, offset)
                offset += _REJECTED.size
                _window(windows, keys, index).rejected += 1
            else:
                break  # not a record: a torn or corrupt tail
    except (struct.error, KeyError):
        pass  # a torn last record (or a key whose definition was torn): keep what came before
    if not any(not w.empty() for w in windows.values()):
        return Recovered(window_id, None)
    end = max(ended, start)
    return Recovered(window_id, build_report(windows, routes, start, end, 0))


def _window(windows: dict[VersionKey, Window], keys: dict[int, tuple[VersionKey, str]], index: int) -> Window:
    key, role = keys[index]
    window = windows.get(key)
    if window is None:
        window = windows[key] = Window(role=role)
    return window


def _role(word: str) -> ServingRole:
    try:
        return ServingRole(word)
    except ValueError:
        return ServingRole.CHAMPION
