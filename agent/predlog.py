"""The prediction log's writer on the agent: answered predictions -> segment files on disk.

The request path appends each answer the log keeps to the open record file of its (deployment,
model, version), `<cache>/log/journal/<id>.wal` (`agent.logjournal`: one `os.writev` of a JSON
header and views of the arrays the model already has, `runtime.logrecords`' format). A background
thread (`run`) flushes every `flush_seconds`, or sooner once `flush_rows` rows wait: it closes
every open file with a footer (what it holds: route, date, rows), fsyncs it and moves it into
`<cache>/log/pending/`, so a segment is never half visible and survives a crash of the agent. The
file the request path appended to is the segment shipped: the control plane builds the log's
Arrow table and Parquet file from it, so this agent never imports pyarrow for a local sink (an S3
sink, or a control plane of an earlier release, converts in the shipper: `runtime.logsegment`).
Pending Arrow or Parquet segments an earlier release left are shipped as they are. Shipping the
pending segments is `agent.logship`'s job.

Bound, never silent: the bytes of the pending and open files (`buffer_bytes`, `--log-buffer-mb`).
Rows that find it full, or a disk that cannot take them, are dropped and counted
(`dropped_rows`, carried in every metric report, which raises an alert upstream).

Sampling is per deployment (its snapshot's `log_sample_rate`) and decided from a hash of the
request id, so a request and its shadows' answers are kept or left out together.

A file the agent was appending to when it was killed is made a segment at the next start
(`recover`), its torn last record cut off: a SIGKILL loses no row the log kept.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agent.logjournal import LogJournal, OpenFile, utc_date
from agent.logpending import SegmentInfo, read_info, segment_files
from protos import agent_pb2
from runtime.logread import scan
from runtime.logrecords import MAGIC, SUFFIX, Entry, Footer, Record, encode, encode_footer

log = logging.getLogger("sluice.agent")

#: the bound of the open and pending files: about 6 million rows of the bench's 30-feature model
#: with request ids (record files are not compressed: 175 bytes a row), hours of a busy agent's
#: traffic while its control plane is away; the previous release's 256 MB of zstd Arrow held as many
DEFAULT_BUFFER_MB = 1024
DEFAULT_FLUSH_SECONDS = 2.0
DEFAULT_FLUSH_ROWS = 50_000
#: a segment's size: well inside one message to the control plane (`agent.logship`)
DEFAULT_SEGMENT_BYTES = 8 << 20
PENDING = "pending"
_HASH_SPACE = float(1 << 32)


def sampled(request_id: str, rate: float) -> bool:
    """Whether `request_id` is logged at `rate` (0..1): a stable hash, the same in every process."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return zlib.crc32(request_id.encode("utf-8", "surrogatepass")) / _HASH_SPACE < rate


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- the log ----


class PredictionLog:
    """The agent's prediction log: its open record files and the flush thread behind them."""

    def __init__(
        self,
        root: Path,
        agent: str,
        buffer_bytes: int = DEFAULT_BUFFER_MB << 20,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        self.pending_dir = root / PENDING
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self.agent = agent
        self.buffer_bytes = buffer_bytes
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._rows = 0  # rows appended since the last flush
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rates: dict[str, float] = {}
        self._dropped = 0
        self.written_rows = 0
        #: CPU time the flush thread spent closing segments (the log's cost, off the request path)
        self.flush_cpu_seconds = 0.0
        for stale in self.pending_dir.glob(".tmp-*"):  # a recovery cut off by a crash: never visible
            stale.unlink(missing_ok=True)
        #: the open record files, appended to on the request path (`agent.logjournal`)
        self.journal = LogJournal(root / "journal", segment_bytes)
        self._bytes_lock = threading.Lock()
        #: the pending segments by id (what a previous run left, then what this one writes): the
        #: shipper asks often, the directory is read once
        self._pending: dict[str, SegmentInfo] = {}
        self._pending_bytes = 0
        for path in segment_files(self.pending_dir):
            found = read_info(path)
            if found is not None:
                self._pending[found.segment_id] = found
            # a file that is not a segment of ours still takes its room in the bound
            self._pending_bytes += found.size if found is not None else path.stat().st_size

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
        """Keep one answer (of `rows` rows), if sampled and there is room: appended to its
        version's open record file at once."""
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
        for part, record in self._records(entry):
            self._keep(part, record)

    def _records(self, entry: Entry) -> list[tuple[Entry, Record]]:
        """The entry's record, or the records of row slices of it where one would not fit a
        segment (a very large batch)."""
        try:
            record = encode(entry)
        except (TypeError, ValueError) as exc:  # not expected: an input no record can hold
            log.warning("prediction log: an entry of %s cannot be recorded: %s; dropped", entry.deployment, exc)
            self.drop(entry.rows)
            return []
        if record.size <= self.segment_bytes // 2 or entry.rows <= 1:
            return [(entry, record)]
        step = max(1, entry.rows * self.segment_bytes // (2 * record.size))
        return [out for start in range(0, entry.rows, step) for out in self._records(entry.sliced(start, start + step))]

    def _keep(self, entry: Entry, record: Record) -> None:
        with self._lock:
            if self._pending_bytes + self.journal.bytes + record.size > self.buffer_bytes:
                self._dropped += entry.rows
                return
            if not self.journal.write(entry, record):
                self._dropped += entry.rows
                return
            self._rows += entry.rows
            full = self._rows >= self.flush_rows
        if full:
            self._wake.set()

    def drop(self, rows: int) -> None:
        """Count rows that will never reach the control plane."""
        with self._lock:
            self._dropped += rows

    @property
    def dropped_rows(self) -> int:
        """Rows dropped since this agent started (a full buffer or disk, a refused segment):
        reported in every metric report, never silent."""
        return self._dropped

    # ---- the flush thread ----

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="sluice-predlog", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close what is open as segments (a clean shutdown loses nothing), then end the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        else:
            self.flush()

    def run(self) -> None:
        try:
            self.recover()
        except Exception:
            log.exception("the prediction log could not recover the files of its last run")
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            started = time.thread_time()
            try:
                self.flush()
            except Exception:
                log.exception("the prediction log could not close a segment")
            self.flush_cpu_seconds += time.thread_time() - started
        try:
            self.flush()
        except Exception:
            log.exception("the prediction log could not close its last segment")

    def recover(self) -> None:
        """Make segments of the record files a previous run left open (killed before their
        flush): their whole records, one segment per route (an earlier release's file mixed
        them), with ids derived from the file's (the same after a crash during this); then delete
        the files."""
        for path in self.journal.leftovers:
            try:
                entries, _ = scan(path.read_bytes())
            except OSError as exc:
                log.warning("prediction log: cannot read %s: %s", path, exc)
                continue
            routes: dict[tuple[str, str, str], list[Entry]] = {}
            for e in entries:
                routes.setdefault(e.route, []).append(e)
            written = 0
            for g, group in enumerate(routes.values()):
                try:
                    written += self._rewrite(group, f"{path.stem}-{g:04d}").rows
                except OSError as exc:
                    log.warning(
                        "prediction log: %d row(s) of the last run are lost: %s", sum(e.rows for e in group), exc
                    )
                    self.drop(sum(e.rows for e in group))
            if written:
                log.info("prediction log: %d row(s) of the last run recovered from %s", written, path.name)
            path.unlink(missing_ok=True)
        self.journal.leftovers = []

    def _rewrite(self, entries: list[Entry], segment_id: str) -> SegmentInfo:
        first = entries[0]
        tmp = self.pending_dir / f".tmp-{segment_id}{SUFFIX}"
        footer = Footer(first.deployment, first.model, first.version, utc_date(first.ts), sum(e.rows for e in entries))
        try:
            with open(tmp, "wb") as handle:
                handle.write(MAGIC)
                for e in entries:
                    handle.writelines(encode(e).buffers)
                handle.write(encode_footer(footer))
                handle.flush()
                os.fsync(handle.fileno())
            return self._publish(segment_id, tmp, footer)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def flush(self) -> list[SegmentInfo]:
        """Close every open record file and make each with rows a pending segment; returns them."""
        with self._lock:
            files = self.journal.take()
            self._rows = 0
        written: list[SegmentInfo] = []
        for f in files:
            if not f.rows:  # opened, then its only record failed
                f.path.unlink(missing_ok=True)
                continue
            try:
                written.append(self._seal(f))
            except OSError as exc:  # a full or failing disk: serving goes on, the rows are counted
                self.drop(f.rows)
                f.path.unlink(missing_ok=True)
                log.warning(
                    "prediction log: %d row(s) could not be written to %s: %s; dropped",
                    f.rows, self.pending_dir, exc.strerror or exc,
                )  # fmt: skip
        if written:
            _fsync_dir(self.pending_dir)
            _fsync_dir(self.journal.dir)
        return written

    def _seal(self, f: OpenFile) -> SegmentInfo:
        """A closed file's footer, fsync, then its move into the pending directory."""
        footer = f.footer()
        with open(f.path, "ab") as handle:
            handle.write(encode_footer(footer))
            handle.flush()
            os.fsync(handle.fileno())
        return self._publish(f.segment_id, f.path, footer, sync=False)

    def _publish(self, segment_id: str, path: Path, footer: Footer, sync: bool = True) -> SegmentInfo:
        final = self.pending_dir / f"{segment_id}{SUFFIX}"
        os.replace(path, final)
        if sync:
            _fsync_dir(self.pending_dir)
        size = final.stat().st_size
        f = footer
        info = SegmentInfo(segment_id, final, f.deployment, f.model, f.version, f.date, f.rows, size)
        with self._bytes_lock:
            replaced = self._pending.get(segment_id)  # written again after a crash: counted once
            self._pending_bytes += size - (replaced.size if replaced is not None else 0)
            self._pending[segment_id] = info
        self.written_rows += footer.rows
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
