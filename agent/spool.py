"""Metric reports on disk from the moment they are built until their ReportAck.

Before this spool, unacknowledged reports lived in memory and reached the cache only on a
graceful stop: an agent SIGKILLed (or OOM-killed) while the control plane was down lost every
window it had buffered. Now `ReportBuffer.add` appends each report here (write + fsync) before
the link may send it, and a restarted agent loads what is left and sends it again with the same
seq numbers, so the control plane's receipts keep each report exactly-once.

Layout: `DIR/NNNNNNNNNNNN.seg`, segment files numbered in creation order. A segment starts with
`MAGIC` and holds records appended one after the other:

    length of the report (u32 BE) | crc32 of both lengths + window id + report (u32 BE) |
    length of the window id (u8) | window id | MetricReport bytes

The checksum covers the lengths too, and a report is never empty (it carries the agent id), so a
run of zero bytes (a hole a crash may leave in a file) is not taken for a record.

The window id names the open-window journal the report was built from (`agent.journal`): on a
restart, a journal whose window is already in the spool was closed in time and is not recovered
a second time. A crash mid-append leaves at most a torn or unchecksummed tail on the newest
segment; `load` keeps the whole records before it and cuts the rest off.

Acknowledgements are kept in memory only (`settle`); a segment is deleted once every report in it
is settled (acknowledged, or dropped by the buffer's capacity), by `compact`. So after a crash
the reports acknowledged but still sharing a segment with an unacknowledged one are sent again:
the control plane takes them for the replays they are. A segment holds at most
`segment_records` reports, which bounds that resend.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from protos import agent_pb2

log = logging.getLogger("sluice.agent")

MAGIC = b"SLSPOOL1"
SEGMENT_SUFFIX = ".seg"
#: reports per segment file: bounds what is resent after a crash (ACKed but not yet compacted)
SEGMENT_RECORDS = 64
_HEADER = struct.Struct(">IIB")
_LENGTHS = struct.Struct(">IB")


@dataclass(frozen=True)
class Spooled:
    """One report found on disk, with the id of the window journal it was built from (b"": none)."""

    report: agent_pb2.MetricReport
    window_id: bytes


def encode_record(report: agent_pb2.MetricReport, window_id: bytes = b"") -> bytes:
    if len(window_id) > 255:
        raise ValueError("a window id is at most 255 bytes")
    data = report.SerializeToString()
    crc = _checksum(len(data), len(window_id), window_id, data)
    return _HEADER.pack(len(data), crc, len(window_id)) + window_id + data


def _checksum(size: int, id_size: int, window_id: bytes, data: bytes) -> int:
    return zlib.crc32(data, zlib.crc32(window_id, zlib.crc32(_LENGTHS.pack(size, id_size))))


def decode_records(data: bytes) -> tuple[list[Spooled], int]:
    """The whole records of a segment's body, and the length they take (the rest is a torn tail)."""
    out: list[Spooled] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        size, crc, id_size = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        end = start + id_size + size
        if end > len(data) or size == 0:
            break  # torn: the write did not finish (or a hole of zeros)
        window_id = data[start : start + id_size]
        body = data[start + id_size : end]
        if _checksum(size, id_size, window_id, body) != crc:
            break  # torn (a power cut may persist a length before its bytes) or corrupt
        report = agent_pb2.MetricReport()
        try:
            report.ParseFromString(body)
        except Exception:  # noqa: BLE001 - checksummed yet unreadable: treat as the end
            break
        out.append(Spooled(report, bytes(window_id)))
        offset = end
    return out, offset


class ReportSpool:
    """Append-only segment files of unacknowledged reports. Thread-safe.

    `append` runs on the thread that closes windows (it fsyncs); `settle` runs on the event loop
    when an ack arrives and only touches memory, so an ack never waits for a disk.
    """

    def __init__(self, directory: Path, segment_records: int = SEGMENT_RECORDS) -> None:
        if segment_records < 1:
            raise ValueError("a segment holds at least one report")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_records = segment_records
        self._io = threading.Lock()  # appends, rolls and deletions of files
        self._lock = threading.Lock()  # the in-memory state below
        #: segment -> seqs in it not yet settled
        self._unsettled: dict[Path, set[int]] = {}
        self._segment_of: dict[int, Path] = {}
        self._active: BinaryIO | None = None
        self._active_path: Path | None = None
        self._active_count = 0
        self._next_number = 1
        #: bytes cut off torn tails by the last `load`
        self.discarded_bytes = 0

    # ---- start ----

    def load(self) -> list[Spooled]:
        """Every report left by earlier runs, in seq order (duplicates once); torn tails are cut off.

        Call once, before the first `append`.
        """
        found: dict[int, Spooled] = {}
        self.discarded_bytes = 0
        for path in self.segments():
            self._next_number = max(self._next_number, _number(path) + 1)
            try:
                data = path.read_bytes()
            except OSError as exc:
                log.warning("cannot read the report spool segment %s: %s; skipped", path, exc)
                continue
            if not data.startswith(MAGIC):
                log.warning("%s is not a report spool segment (%d bytes); removed", path, len(data))
                path.unlink(missing_ok=True)
                continue
            records, used = decode_records(data[len(MAGIC) :])
            tail = len(data) - len(MAGIC) - used
            if tail:
                self.discarded_bytes += tail
                log.warning("report spool %s: a torn tail of %d bytes discarded (a crash mid-write)", path, tail)
                with path.open("r+b") as handle:
                    handle.truncate(len(MAGIC) + used)
                    handle.flush()
                    os.fsync(handle.fileno())
            seqs = set()
            for record in records:
                seq = int(record.report.seq)
                if seq in found:
                    continue
                found[seq] = record
                seqs.add(seq)
                self._segment_of[seq] = path
            if seqs:
                self._unsettled[path] = seqs
            else:
                path.unlink(missing_ok=True)
        return [found[seq] for seq in sorted(found)]

    def segments(self) -> list[Path]:
        return sorted(p for p in self.directory.glob(f"*{SEGMENT_SUFFIX}") if _number(p) >= 0)

    # ---- appending ----

    def append(self, report: agent_pb2.MetricReport, window_id: bytes = b"") -> None:
        """Write one report and fsync it; raises OSError (the caller keeps the report in memory)."""
        record = encode_record(report, window_id)
        with self._io:
            handle, path = self._writable()
            try:
                handle.write(record)
                handle.flush()
                os.fsync(handle.fileno())
            except OSError:
                # What reached the file may be a torn record: never append behind it.
                self._close_active()
                raise
            self._active_count += 1
            with self._lock:
                self._unsettled.setdefault(path, set()).add(int(report.seq))
                self._segment_of[int(report.seq)] = path
            if self._active_count >= self.segment_records:
                self._close_active()

    def _writable(self) -> tuple[BinaryIO, Path]:
        if self._active is not None and self._active_path is not None:
            return self._active, self._active_path
        path = self.directory / f"{self._next_number:012d}{SEGMENT_SUFFIX}"
        self._next_number += 1
        handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600), "ab")
        try:
            handle.write(MAGIC)
            handle.flush()
            os.fsync(handle.fileno())
            _fsync_dir(self.directory)  # the new name itself survives a power cut
        except OSError:
            handle.close()
            path.unlink(missing_ok=True)
            raise
        self._active, self._active_path, self._active_count = handle, path, 0
        return handle, path

    def _close_active(self) -> None:
        if self._active is not None:
            try:
                self._active.close()
            except OSError:
                pass
        self._active, self._active_path, self._active_count = None, None, 0

    # ---- acknowledgements ----

    def settle(self, seq: int) -> None:
        """The report needs no disk copy any more (acknowledged, or dropped on overflow)."""
        with self._lock:
            path = self._segment_of.pop(seq, None)
            if path is not None:
                self._unsettled.get(path, set()).discard(seq)

    def compact(self) -> int:
        """Delete the segments whose reports are all settled; returns how many were deleted."""
        removed = 0
        with self._io:
            with self._lock:
                done = [path for path, seqs in self._unsettled.items() if not seqs]
                for path in done:
                    del self._unsettled[path]
            for path in done:
                if path == self._active_path:
                    self._close_active()  # the next report starts a new segment
                try:
                    path.unlink(missing_ok=True)
                    removed += 1
                except OSError as exc:
                    log.warning("cannot remove the settled report spool segment %s: %s", path, exc)
        return removed

    def unsettled(self) -> int:
        with self._lock:
            return len(self._segment_of)

    def close(self) -> None:
        with self._io:
            self._close_active()


def _number(path: Path) -> int:
    stem = path.name[: -len(SEGMENT_SUFFIX)]
    return int(stem) if stem.isdigit() else -1


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
