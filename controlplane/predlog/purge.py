"""`sluice log purge DEPLOYMENT --older-than 30d | --routing-key KEY`: personal data gone from the files.

A purge reads each candidate segment of the deployment (every recorded one for a routing key;
those whose day is not after the cut-off's for an age), and when some rows match:
- some rows remain: the rest is written to a new file beside it (temporary name, fsync, rename),
  the segment's record takes the new path, rows and bytes in one transaction, then the old file
  is deleted;
- no row remains: the record becomes a tombstone (no path, 0 rows, 0 bytes: readers skip it, and
  a late resend of the segment by its agent stays a no-op instead of bringing the rows back), then
  the file is deleted.
A record thus never names a missing file, and the rows are gone from the disk, not hidden. Then
the labels of the purged request ids are removed from the label files the same way (a new file,
the import's record updated, the old file deleted). Labels that arrive later for those ids count
as unknown ids, as for any request that was never logged. One audit entry (`log.purge`) records
the summary; the routing key is recorded as its sha256 only, so the audit does not keep the
personal data the purge removed.

Each segment is one step (the RPC reports progress between steps): a purge cut short leaves each
segment either purged or untouched, and running it again finishes the work.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from controlplane import audit
from controlplane.context import Context
from controlplane.datafiles import files, storage
from controlplane.deployment_reads import find_deployment
from controlplane.domain import Principal
from controlplane.labels.store import deployment_lock
from controlplane.store.models import LabelImportRow, LogSegmentRow, utcnow
from core.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

MAX_ROUTING_KEY = 256
#: at most 100 years: a longer age is a typo, and the cut-off must stay a valid date
MAX_OLDER_THAN_SECONDS = 100 * 365 * 86400.0

_purge_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_purge_guard = threading.Lock()


def _purge_lock(deployment: str) -> threading.Lock:
    with _purge_guard:
        return _purge_locks[deployment]


@dataclass(frozen=True)
class PurgeSpec:
    """What to purge: rows older than `older_than_seconds`, or rows of `routing_key` (one of them)."""

    deployment: str
    older_than_seconds: float = 0.0
    routing_key: str = ""

    def check(self) -> None:
        by_age = self.older_than_seconds != 0.0
        if by_age == bool(self.routing_key):
            raise InvalidInput("a purge needs exactly one of --older-than AGE and --routing-key KEY")
        if by_age and not (math.isfinite(self.older_than_seconds) and self.older_than_seconds > 0):
            raise InvalidInput(f"--older-than must be a positive duration, got {self.older_than_seconds!r} s")
        if by_age and self.older_than_seconds > MAX_OLDER_THAN_SECONDS:
            raise InvalidInput("--older-than is more than 100 years")
        if len(self.routing_key) > MAX_ROUTING_KEY:
            raise InvalidInput(f"the routing key is {len(self.routing_key)} characters; the limit is {MAX_ROUTING_KEY}")


@dataclass
class PurgeSummary:
    segments_scanned: int = 0
    segments_rewritten: int = 0
    #: the recorded segments' bytes before less after (0 when the rewrites came out larger)
    segments_deleted: int = 0
    rows_removed: int = 0
    bytes_freed: int = 0
    labels_removed: int = 0


@dataclass
class PurgeRun:
    """One purge under way: its candidates, what it removed so far and the request ids to unlabel."""

    spec: PurgeSpec
    cutoff: datetime
    segment_ids: list[int]
    summary: PurgeSummary = field(default_factory=PurgeSummary)
    request_ids: set[str] = field(default_factory=set)
    lock: threading.Lock | None = None


def begin(ctx: Context, spec: PurgeSpec, now: datetime | None = None) -> PurgeRun:
    """Check the request, take the deployment's purge lock and list the candidate segments."""
    spec.check()
    now = now or utcnow()
    cutoff = now - timedelta(seconds=spec.older_than_seconds)
    with ctx.db.session() as session:
        find_deployment(session, spec.deployment)
        query = (
            select(LogSegmentRow.id)
            .where(LogSegmentRow.deployment == spec.deployment, LogSegmentRow.path != "")
            .order_by(LogSegmentRow.id)
        )
        if spec.older_than_seconds:
            # a segment's date is the day of its first row: a later day holds no row before the cut-off
            query = query.where(LogSegmentRow.date <= cutoff.date().isoformat())
        ids = list(session.scalars(query))
    lock = _purge_lock(spec.deployment)
    if not lock.acquire(timeout=0):
        raise InvalidInput(f"a purge of {spec.deployment!r} is already running; wait for it to end")
    return PurgeRun(spec, cutoff, ids, lock=lock)


def _matcher(run: PurgeRun) -> Callable[[pa.Table], pa.Array]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if run.spec.routing_key:
        key = run.spec.routing_key
        return lambda t: pc.fill_null(pc.equal(t.column("routing_key"), key), False)
    cutoff = pa.scalar(run.cutoff, type=pa.timestamp("us", tz="UTC"))
    return lambda t: pc.fill_null(pc.less(t.column("ts"), cutoff), False)


def purge_segment(ctx: Context, run: PurgeRun, segment_pk: int) -> None:
    """One step: remove the matching rows of one recorded segment (see the module's docstring)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with ctx.db.session() as session:
        row = session.get(LogSegmentRow, segment_pk)
        if row is None or not row.path:
            return
        relative, old_bytes = row.path, row.bytes
    run.summary.segments_scanned += 1
    with storage.reading():
        table = pq.read_table(storage.local(ctx, relative))
    mask = _matcher(run)(table)
    removed = int(pc.sum(mask).as_py() or 0)
    if removed == 0:
        return
    ids = pc.unique(pc.drop_null(table.filter(mask).column("request_id"))).to_pylist()
    kept = table.filter(pc.invert(mask))
    new_relative, size = "", 0
    if kept.num_rows:
        new_relative = storage.sibling(relative)
        size = storage.write_table(ctx, new_relative, kept)
    with ctx.db.session() as session:
        row = session.get(LogSegmentRow, segment_pk, with_for_update=True)
        if row is None or row.path != relative:  # retention removed it meanwhile: nothing to record
            if new_relative:
                storage.delete(ctx, new_relative)
            return
        row.path, row.rows, row.bytes = new_relative, kept.num_rows, size
    storage.delete(ctx, relative)
    run.request_ids.update(str(i) for i in ids)
    run.summary.rows_removed += removed
    run.summary.bytes_freed += old_bytes - size  # a rewrite may come out larger: the net counts
    if kept.num_rows:
        run.summary.segments_rewritten += 1
    else:
        run.summary.segments_deleted += 1


def purge_labels(ctx: Context, deployment: str, request_ids: set[str]) -> int:
    """Remove the labels of `request_ids` from the deployment's label files; returns how many."""
    if not request_ids:
        return 0
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = files.labels_dir(ctx.config, ctx.artifacts.root)
    wanted = pa.array(sorted(request_ids), type=pa.string())
    removed = 0
    with deployment_lock(deployment):
        with ctx.db.session() as session:
            imports = session.execute(
                select(LabelImportRow.id, LabelImportRow.path).where(
                    LabelImportRow.deployment == deployment, LabelImportRow.path != ""
                )
            ).all()
        for import_id, relative in imports:
            table = pq.read_table(root / relative)
            mask = pc.is_in(table.column("request_id"), value_set=wanted)
            count = int(pc.sum(mask).as_py() or 0)
            if count == 0:
                continue
            kept = table.filter(pc.invert(mask))
            new_relative = storage.sibling(relative) if kept.num_rows else ""
            size = files.write_parquet_atomically(kept, root / new_relative) if new_relative else 0
            with ctx.db.session() as session:
                row = session.get(LabelImportRow, import_id, with_for_update=True)
                if row is None or row.path != relative:
                    if new_relative:
                        (root / new_relative).unlink(missing_ok=True)
                    continue
                row.path, row.bytes = new_relative, size
            (root / relative).unlink(missing_ok=True)
            removed += count
    return removed


def finish(ctx: Context, principal: Principal, run: PurgeRun, reason: str = "") -> PurgeSummary:
    """Remove the labels of the purged request ids, audit the summary, release the lock."""
    try:
        run.summary.labels_removed = purge_labels(ctx, run.spec.deployment, run.request_ids)
        run.summary.bytes_freed = max(run.summary.bytes_freed, 0)
        details: dict[str, object] = {
            "segments_rewritten": run.summary.segments_rewritten,
            "segments_deleted": run.summary.segments_deleted,
            "rows_removed": run.summary.rows_removed,
            "bytes_freed": run.summary.bytes_freed,
            "labels_removed": run.summary.labels_removed,
            "reason": reason,
        }
        if run.spec.routing_key:
            details["routing_key_sha256"] = hashlib.sha256(run.spec.routing_key.encode()).hexdigest()
        else:
            details["older_than_seconds"] = run.spec.older_than_seconds
            details["cutoff"] = run.cutoff.isoformat()
        with ctx.db.session() as session:
            audit.record(session, principal, "log.purge", run.spec.deployment, **details)
    finally:
        release(run)
    ctx.events.publish(
        "deployment",
        run.spec.deployment,
        f"prediction log purged: {run.summary.rows_removed} row(s), {run.summary.labels_removed} label(s)",
    )
    return run.summary


def release(run: PurgeRun) -> None:
    if run.lock is not None:
        run.lock.release()
        run.lock = None


def purge(ctx: Context, principal: Principal, spec: PurgeSpec, reason: str = "") -> PurgeSummary:
    """The whole purge in one call (scripts and tests; the RPC runs the steps itself)."""
    run = begin(ctx, spec)
    try:
        for pk in run.segment_ids:
            purge_segment(ctx, run, pk)
    except BaseException:
        release(run)
        raise
    return finish(ctx, principal, run, reason)
