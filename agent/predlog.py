"""The prediction log's writer on the agent: answered predictions -> segment files on disk.

The request path only appends (`PredictionLog.append`, a tuple of references under a lock: the
arrays the model already has, nothing copied or converted). A background thread (`run`) flushes
every `flush_seconds`, or sooner once `flush_rows` rows wait: it groups the entries by
(deployment, model, version), builds one Arrow table per group and writes it as Arrow IPC files
(zstd buffers, `runtime.logsegment`) into `<cache>/log/pending/` (temporary name, fsync, rename,
fsync of the directory), so a segment is never half visible and survives a crash of the agent.
The control plane turns each into the log's Parquet file when it receives it: Parquet costs the
writer ten times the CPU of an Arrow file, and here it would compete with serving. Pending Parquet
segments (written by an earlier release) are shipped as they are. Shipping the pending segments
is `agent.logship`'s job.

Bounds, never silent: rows waiting in memory (`max_buffer_rows`) and the bytes of the pending
directory (`buffer_bytes`, `[log] agent_buffer_mb`). Rows that find either full are dropped and
counted (`dropped_rows`, carried in every metric report, which raises an alert upstream).

Sampling is per deployment (its snapshot's `log_sample_rate`) and decided from a hash of the
request id, so a request and its shadows' answers are kept or left out together.

Every entry the buffer keeps is journaled on disk until its flush is done (`agent.logjournal`),
so an agent killed between an answer and the flush loses no row: the next start writes them.

Over 400 lines: the buffer, its journal, the flush and the set of pending segments share one
lock and one set of counters; split apart they would have to share them across modules.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agent.logjournal import SUFFIX as JOURNAL_SUFFIX
from agent.logjournal import LogJournal, encode
from protos import agent_pb2

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("sluice.agent")

DEFAULT_BUFFER_MB = 256
DEFAULT_FLUSH_SECONDS = 2.0
DEFAULT_FLUSH_ROWS = 50_000
#: rows waiting in memory for the flush thread; beyond it new rows are dropped and counted
DEFAULT_MAX_BUFFER_ROWS = 1_000_000
#: a segment's Arrow size (an upper bound of its Parquet size): well inside one gRPC message
DEFAULT_SEGMENT_BYTES = 8 << 20
#: the schema's key-value metadata entry that says what a segment holds (read back at start)
META_KEY = b"sluice.segment"
PENDING = "pending"
#: the names of closed segments (time-ordered digits first): never a ".tmp-" file being written.
#: This release writes `.arrow`; `.parquet` ones are an earlier release's, shipped as they are.
SEGMENT_GLOBS = ("[0-9]*.arrow", "[0-9]*.parquet")
#: the suffix of the segments this release writes
SUFFIX = ".arrow"
_HASH_SPACE = float(1 << 32)


def sampled(request_id: str, rate: float) -> bool:
    """Whether `request_id` is logged at `rate` (0..1): a stable hash, the same in every process."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return zlib.crc32(request_id.encode("utf-8", "surrogatepass")) / _HASH_SPACE < rate


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


@dataclass(frozen=True)
class SegmentInfo:
    """What a pending segment holds: read from its schema's metadata."""

    segment_id: str
    path: Path
    deployment: str
    model: str
    version: str
    date: str
    rows: int
    size: int

    def message(self, data: bytes) -> agent_pb2.LogSegment:
        from protos import common_pb2

        return agent_pb2.LogSegment(
            segment_id=self.segment_id,
            deployment=self.deployment,
            version=common_pb2.VersionRef(model=self.model, version=self.version),
            date=self.date,
            rows=self.rows,
            data=data,
        )


def new_segment_id() -> str:
    """Time-ordered (sorting the names gives the oldest first) and unique without coordination."""
    return f"{time.time_ns():020d}-{secrets.token_hex(4)}"


def segment_files(directory: Path) -> list[Path]:
    """The closed segments in a pending directory (either format), oldest first."""
    return sorted((p for pattern in SEGMENT_GLOBS for p in directory.glob(pattern)), key=lambda p: p.name)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- the log ----


class PredictionLog:
    """The agent's prediction log: an in-memory buffer and the segment writer behind it."""

    def __init__(
        self,
        root: Path,
        agent: str,
        buffer_bytes: int = DEFAULT_BUFFER_MB << 20,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        max_buffer_rows: int = DEFAULT_MAX_BUFFER_ROWS,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        self.pending_dir = root / PENDING
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self.agent = agent
        self.buffer_bytes = buffer_bytes
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self.max_buffer_rows = max_buffer_rows
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._entries: list[Entry] = []
        self._rows = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rates: dict[str, float] = {}
        self._dropped = 0
        self.written_rows = 0
        #: CPU time the flush thread spent writing segments (the log's cost, off the request path)
        self.flush_cpu_seconds = 0.0
        for stale in self.pending_dir.glob(".tmp-*"):  # a flush cut off by a crash: never visible
            stale.unlink(missing_ok=True)
        #: every kept entry is on disk too until its flush is done (`agent.logjournal`)
        self.journal = LogJournal(root / "journal", new_segment_id())
        self._bytes_lock = threading.Lock()
        #: the pending segments by id (what a previous run left, then what this one writes): the
        #: shipper asks often, the directory is read once
        self._pending: dict[str, SegmentInfo] = {}
        files = segment_files(self.pending_dir)
        for path in files:
            from agent.logformat import read_info  # pyarrow: only when a previous run left segments

            found = read_info(path)
            if found is not None:
                self._pending[found.segment_id] = found
        self._pending_bytes = sum(p.stat().st_size for p in files)

    # ---- configuration ----

    def configure(self, snapshot: agent_pb2.Snapshot) -> None:
        """The sample rate of each deployment (1.0 unless its snapshot says otherwise)."""
        self._rates = {
            d.name: (d.log_sample_rate if d.HasField("log_sample_rate") else 1.0) for d in snapshot.deployments
        }

    def rate(self, deployment: str) -> float:
        return self._rates.get(deployment, 1.0)

    # ---- the request path ----

    def append(
        self,
        deployment: str,
        model: str,
        version: str,
        role: str,
        experiment: str,
        feeds: dict[str, np.ndarray],
        labels: np.ndarray | None,
        classes: Sequence[str] | None,
        values: np.ndarray | None,
        probabilities: np.ndarray | None,
        latency_seconds: float,
        request_ids: Sequence[str],
        keys: Sequence[str] | str,
    ) -> None:
        """Keep one answer (of `rows` rows) for the next flush, if sampled and there is room."""
        rate = self._rates.get(deployment, 1.0)
        if rate <= 0.0:
            return
        n = int(next(iter(feeds.values())).shape[0])
        if rate < 1.0:
            if not request_ids:  # a batch sent without ids: not joinable anyway, sampled at random
                keep = np.random.random(n) < rate
            else:
                keep = np.fromiter((sampled(i, rate) for i in request_ids), dtype=bool, count=n)
            if not keep.any():
                return
            if not keep.all():
                rows = np.flatnonzero(keep)
                feeds = {name: x[rows] for name, x in feeds.items()}
                labels = labels[rows] if labels is not None else None
                values = values[rows] if values is not None else None
                probabilities = probabilities[rows] if probabilities is not None else None
                request_ids = [request_ids[i] for i in rows.tolist()] if request_ids else request_ids
                keys = [keys[i] for i in rows.tolist()] if not isinstance(keys, str) and len(keys) == n else keys
                n = int(rows.shape[0])
        entry = Entry(
            time.time(), deployment, model, version, role, experiment, feeds, labels, classes, values, probabilities,
            latency_seconds * 1000.0, request_ids, keys, n,
        )  # fmt: skip
        try:
            record: list[bytes | memoryview] | None = encode(entry)
        except (TypeError, ValueError) as exc:  # not expected: the row still goes to the buffer
            log.warning("prediction log: an entry of %s could not be journaled: %s", deployment, exc)
            record = None
        with self._lock:
            if self._rows + n > self.max_buffer_rows:
                self._dropped += n
                return
            self._entries.append(entry)
            self._rows += n
            if record is not None:  # under the lock: a journal file holds exactly one flush's entries
                self.journal.write(record)
            full = self._rows >= self.flush_rows
        if full:
            self._wake.set()

    def drop(self, rows: int) -> None:
        """Count rows that will never reach the control plane."""
        with self._lock:
            self._dropped += rows

    @property
    def dropped_rows(self) -> int:
        """Rows dropped since this agent started (a full buffer, a refused segment): reported in
        every metric report, never silent."""
        return self._dropped

    # ---- the flush thread ----

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="sluice-predlog", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what waits (a clean shutdown loses nothing), then end the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        else:
            self.flush()
        with self._lock:  # everything is written: the open journal holds nothing
            self.journal.rotate(None).unlink(missing_ok=True)

    def run(self) -> None:
        try:
            self.recover()
        except Exception:
            log.exception("the prediction log could not recover its journal")
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            started = time.thread_time()
            try:
                self.flush()
            except Exception:
                log.exception("the prediction log could not write a segment")
            self.flush_cpu_seconds += time.thread_time() - started
        try:
            self.flush()
        except Exception:
            log.exception("the prediction log could not write its last segment")

    def recover(self) -> None:
        """Write the entries of the journals a previous run left (killed before their flush) as
        segments, with the ids that flush would have given them; then delete the journals."""
        from agent.logjournal import read

        for path in self.journal.leftovers:
            try:
                entries = list(read(path))
            except OSError as exc:
                log.warning("prediction log: cannot read the journal %s: %s", path, exc)
                continue
            if entries:
                written = self._write_entries(entries, path.name.removesuffix(JOURNAL_SUFFIX))
                rows = sum(i.rows for i in written)
                log.info("prediction log: %d row(s) of the last run recovered from %s", rows, path.name)
            path.unlink(missing_ok=True)
        self.journal.leftovers = []

    def flush(self) -> list[SegmentInfo]:
        """Write every waiting entry as segments; returns what was written."""
        with self._lock:
            entries, self._entries = self._entries, []
            self._rows = 0
            if not entries:
                return []
            journal_id = self.journal.id
            done = self.journal.rotate(new_segment_id())
        written = self._write_entries(entries, journal_id)
        done.unlink(missing_ok=True)  # every entry is in a segment, or counted as dropped
        return written

    def _write_entries(self, entries: list[Entry], journal_id: str) -> list[SegmentInfo]:
        """Segments of the entries, named `<journal id>-<group>-<part>`: the same entries give the
        same ids, so a journal written again after a crash doubles nothing upstream."""
        # pyarrow (about 35 MB and 0.3 s to import) is loaded here, in this thread, with the first
        # rows: an agent that logs nothing never pays for it, and its start stays as fast.
        import pyarrow as pa

        from agent.logformat import build_table

        groups: dict[tuple[str, str, str], list[Entry]] = {}
        for e in entries:
            groups.setdefault((e.deployment, e.model, e.version), []).append(e)
        written: list[SegmentInfo] = []
        for g, group in enumerate(groups.values()):
            try:
                table = build_table(group, self.agent)
            except (pa.ArrowException, ValueError, TypeError) as exc:
                # Rows whose inputs cannot be a column of one type (a model of unusual inputs):
                # counted as dropped, never blocking the other groups.
                log.warning(
                    "prediction log: %d row(s) of %s could not be written: %s", len(group), group[0].deployment, exc
                )
                self.drop(sum(e.rows for e in group))
                continue
            written += self._write(group[0], table, f"{journal_id}-{g:04d}")
        return written

    def _write(self, first: Entry, table: pa.Table, prefix: str) -> list[SegmentInfo]:
        n = table.num_rows
        per_segment = max(1, int(n * self.segment_bytes / max(table.nbytes, 1)))
        out: list[SegmentInfo] = []
        for k, start in enumerate(range(0, n, per_segment)):
            part = table.slice(start, per_segment)
            if self._pending_bytes + part.nbytes > self.buffer_bytes:
                self.drop(part.num_rows)
                log.warning(
                    "prediction log: the pending directory %s is full (%d MB): %d row(s) dropped",
                    self.pending_dir, self.buffer_bytes >> 20, part.num_rows,
                )  # fmt: skip
                continue
            try:
                out.append(self._write_segment(first, part, f"{prefix}-{k:04d}"))
            except OSError as exc:  # a full or failing disk: serving goes on, the rows are counted
                self.drop(part.num_rows)
                log.warning(
                    "prediction log: %d row(s) could not be written to %s: %s; dropped",
                    part.num_rows, self.pending_dir, exc.strerror or exc,
                )  # fmt: skip
        return out

    def _write_segment(self, first: Entry, table: pa.Table, segment_id: str) -> SegmentInfo:
        from runtime.logsegment import write_arrow

        day = datetime.fromtimestamp(table.column("ts")[0].value / 1e6, UTC).strftime("%Y-%m-%d")
        meta = {
            "deployment": first.deployment,
            "model": first.model,
            "version": first.version,
            "date": day,
            "rows": table.num_rows,
        }
        table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
        tmp = self.pending_dir / f".tmp-{segment_id}{SUFFIX}"
        final = self.pending_dir / f"{segment_id}{SUFFIX}"
        try:
            with open(tmp, "wb") as handle:
                write_arrow(table, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
            _fsync_dir(self.pending_dir)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        size = final.stat().st_size
        info = SegmentInfo(segment_id, final, first.deployment, first.model, first.version, day, table.num_rows, size)
        with self._bytes_lock:
            replaced = self._pending.get(segment_id)  # written again from a journal: counted once
            self._pending_bytes += size - (replaced.size if replaced is not None else 0)
            self._pending[segment_id] = info
        if replaced is not None and replaced.path != final:  # an earlier release's Parquet copy
            replaced.path.unlink(missing_ok=True)
        self.written_rows += table.num_rows
        return info

    # ---- pending segments ----

    def pending(self) -> list[SegmentInfo]:
        """Every pending segment, oldest first (the ids sort by time)."""
        with self._bytes_lock:
            return [self._pending[k] for k in sorted(self._pending)]

    def remove(self, info: SegmentInfo) -> None:
        """The control plane has it (or refused it for good): the local copy goes."""
        with self._bytes_lock:
            self._pending.pop(info.segment_id, None)
        try:
            size = info.path.stat().st_size
            info.path.unlink()
        except FileNotFoundError:
            return
        with self._bytes_lock:
            self._pending_bytes = max(0, self._pending_bytes - size)

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes
