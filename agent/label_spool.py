"""Labels given to the agent's Feedback RPC, kept on disk until the control plane's label store
has them (docs/PREDICTION_LOG.md).

`add` returns once the label is in a batch file under `<cache>/labels/` (temporary name, fsync,
rename): labels waiting together are written together (group commit), so a burst of Feedback
calls costs one fsync per batch, not one per label. Each batch file is a serialized `LabelBatch`
of one deployment; the link sends it over AgentHub and deletes it only on its `LabelBatchAck`
(the control plane acks after its own durable write, or refuses the batch for good). Unacked
batches are sent again after a reconnect, after `RESEND_SECONDS`, and after a restart (the files
are still there). The directory is bounded: when `max_batches` files wait, new labels are dropped
and counted (`dropped`), never the ones already kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import defaultdict
from pathlib import Path

from google.protobuf.message import DecodeError

from protos import agent_pb2, common_pb2

log = logging.getLogger("sluice.agent")

DEFAULT_MAX_BATCHES = 10_000
MAX_BATCH_ROWS = 5_000  # below the control plane's labels.max_rows_per_message (10,000)
RESEND_SECONDS = 30.0
DROP_LOG_SECONDS = 60.0


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class LabelSpool:
    """The batches of labels waiting for the control plane. Used from the agent's event loop."""

    def __init__(self, directory: Path, max_batches: int = DEFAULT_MAX_BATCHES) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_batches = max_batches
        self._batches: dict[str, agent_pb2.LabelBatch] = {}  # batch id -> batch, oldest first
        self._sent_at: dict[str, float] = {}
        self._waiting: defaultdict[str, list[common_pb2.LabelRow]] = defaultdict(list)
        self._waiters: list[asyncio.Future[None]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.dropped = 0
        self.acked = 0
        self.refused = 0
        self._drop_logged = -DROP_LOG_SECONDS
        self._load()

    def _load(self) -> None:
        """Batches a previous run left (a crash included); a torn or unreadable file is dropped."""
        for path in sorted(self.directory.glob("*.pb")):
            batch = agent_pb2.LabelBatch()
            try:
                batch.ParseFromString(path.read_bytes())
            except (OSError, DecodeError):
                log.warning("dropping an unreadable label batch %s", path.name)
                path.unlink(missing_ok=True)
                continue
            self._batches[batch.batch_id] = batch
        for stale in self.directory.glob(".*.tmp"):  # a write a crash interrupted: never acked to anyone
            stale.unlink(missing_ok=True)
        if self._batches:
            log.info("%d label batch(es) from the previous run wait for the control plane", len(self._batches))

    def __len__(self) -> int:
        return len(self._batches)

    async def add(self, deployment: str, row: common_pb2.LabelRow) -> bool:
        """Keep one label; returns once it is on disk, or False when the spool is full (dropped)."""
        if len(self._batches) >= self.max_batches:
            self.dropped += 1
            now = time.monotonic()
            if now - self._drop_logged >= DROP_LOG_SECONDS:
                self._drop_logged = now
                log.warning(
                    "%d label batches wait for the control plane (the limit): %d label(s) dropped so far",
                    len(self._batches),
                    self.dropped,
                )
            return False
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[deployment].append(row)
        self._waiters.append(done)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_all())
        await asyncio.shield(done)
        return True

    async def _flush_all(self) -> None:
        """Write what waits, as long as something does (labels added meanwhile go in the next round)."""
        while self._waiters:
            waiting, self._waiting = self._waiting, defaultdict(list)
            waiters, self._waiters = self._waiters, []
            batches = []
            for deployment, rows in waiting.items():
                for start in range(0, len(rows), MAX_BATCH_ROWS):
                    batch_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
                    chunk = rows[start : start + MAX_BATCH_ROWS]
                    batches.append(agent_pb2.LabelBatch(batch_id=batch_id, deployment=deployment, rows=chunk))
            try:
                await asyncio.to_thread(self._write, batches)
            except OSError as exc:  # a full disk: the labels are not kept, and the callers learn it
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
                continue
            for batch in batches:
                self._batches[batch.batch_id] = batch
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _write(self, batches: list[agent_pb2.LabelBatch]) -> None:
        for batch in batches:
            _write_atomic(self.directory / f"{batch.batch_id}.pb", batch.SerializeToString())

    async def compact(self) -> int:
        """Merge the batches never sent, per deployment, into one (up to MAX_BATCH_ROWS rows): each
        batch becomes one import in the control plane's label store, so a client that calls
        Feedback once per prediction would otherwise make one import per label. The merged batch
        is on disk before the small ones go; a crash in between sends some labels twice, which the
        label store counts as duplicates and does not store again. Returns the batches merged."""
        groups: defaultdict[str, list[agent_pb2.LabelBatch]] = defaultdict(list)
        for batch_id, batch in self._batches.items():
            if batch_id not in self._sent_at and len(batch.rows) < MAX_BATCH_ROWS:
                groups[batch.deployment].append(batch)
        merged: list[tuple[agent_pb2.LabelBatch, list[agent_pb2.LabelBatch]]] = []
        for deployment, batches in groups.items():
            while len(batches) > 1:
                taken: list[agent_pb2.LabelBatch] = []
                rows = 0
                while batches and rows + len(batches[0].rows) <= MAX_BATCH_ROWS:
                    rows += len(batches[0].rows)
                    taken.append(batches.pop(0))
                if len(taken) < 2:
                    break
                # The first part's time and name keep the merged batch in its place (oldest first).
                batch_id = f"{taken[0].batch_id[:29]}-m{uuid.uuid4().hex[:6]}"
                combined = agent_pb2.LabelBatch(batch_id=batch_id, deployment=deployment)
                for part in taken:
                    combined.rows.extend(part.rows)
                merged.append((combined, taken))
        if not merged:
            return 0
        await asyncio.to_thread(self._write_merged, merged)
        for combined, parts in merged:
            for part in parts:
                self._batches.pop(part.batch_id, None)
            self._batches[combined.batch_id] = combined
        # oldest first again: a merged batch takes the place of its first part
        self._batches = dict(sorted(self._batches.items()))
        return sum(len(parts) for _combined, parts in merged)

    def _write_merged(self, merged: list[tuple[agent_pb2.LabelBatch, list[agent_pb2.LabelBatch]]]) -> None:
        for combined, parts in merged:
            _write_atomic(self.directory / f"{combined.batch_id}.pb", combined.SerializeToString())
            for part in parts:
                (self.directory / f"{part.batch_id}.pb").unlink(missing_ok=True)

    def to_send(self, now: float | None = None) -> list[agent_pb2.LabelBatch]:
        """Batches never sent on this stream, or sent RESEND_SECONDS ago without an ack, oldest first."""
        now = time.monotonic() if now is None else now
        return [
            b
            for batch_id, b in self._batches.items()
            if batch_id not in self._sent_at or now - self._sent_at[batch_id] >= RESEND_SECONDS
        ]

    def mark_sent(self, batch_id: str) -> None:
        if batch_id in self._batches:
            self._sent_at[batch_id] = time.monotonic()

    def forget_sent(self) -> None:
        """After a reconnect nothing is in flight."""
        self._sent_at.clear()

    def ack(self, ack: agent_pb2.LabelBatchAck) -> bool:
        """The control plane has the batch (or refused it for good): its file goes."""
        batch = self._batches.pop(ack.batch_id, None)
        self._sent_at.pop(ack.batch_id, None)
        if batch is None:
            return False
        if ack.ok:
            self.acked += 1
        else:
            self.refused += 1
            log.warning(
                "the control plane refused %d label(s) of deployment %s: %s",
                len(batch.rows),
                batch.deployment,
                ack.error[:300],
            )
        (self.directory / f"{ack.batch_id}.pb").unlink(missing_ok=True)
        return True
