"""Retention of the prediction log and the label store, and their disk use.

`[log] retention_days`: a segment whose day (the UTC day of its first row) is more than that many
days before today is deleted. `[log] max_bytes`: then, while the recorded segments of all
deployments hold more than that, the oldest (by day, then by arrival) are deleted. `[labels]
retention_days`: label imports older than that are deleted. 0 turns a bound off (the default).

Record first, then file: the records of a batch are deleted in one transaction (with one audit
entry `log.retention` per deployment), then their files. So a reader that lists the recorded
files after the commit never meets a record without its file; a crash between the commit and
the unlink leaves a file no reader reads (not part of the log, as a file renamed into place
before its record). A reader that listed a file just before the commit and opens it just after
the unlink fails that once (`sluice status` logs it and answers the live figures).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select, update

from controlplane import audit
from controlplane.context import Context
from controlplane.datafiles import files, storage
from controlplane.domain import SYSTEM
from controlplane.store.models import LabelImportRow, LogSegmentRow, utcnow

log = logging.getLogger("sluice.predlog")

#: records deleted per transaction
BATCH = 1000


@dataclass
class RetentionResult:
    segments_by_age: int = 0
    segments_by_size: int = 0
    rows: int = 0
    bytes: int = 0
    label_imports: int = 0
    #: deployment -> (segments, rows, bytes)
    by_deployment: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))


@dataclass(frozen=True)
class LogUsage:
    """What one deployment's recorded log and labels hold."""

    segments: int = 0
    rows: int = 0
    bytes: int = 0
    label_files: int = 0
    label_bytes: int = 0


def _delete_segments(ctx: Context, ids: list[int], reason: str, result: RetentionResult) -> None:
    """Delete these segment records (one transaction per batch, audited per deployment), then their files."""
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        doomed: list[str] = []
        per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        with ctx.db.session() as session:
            rows = session.execute(
                select(LogSegmentRow.deployment, LogSegmentRow.path, LogSegmentRow.rows, LogSegmentRow.bytes).where(
                    LogSegmentRow.id.in_(chunk)
                )
            ).all()
            session.execute(delete(LogSegmentRow).where(LogSegmentRow.id.in_(chunk)))
            for deployment, path, n_rows, n_bytes in rows:
                if path:
                    doomed.append(path)
                per[deployment][0] += 1
                per[deployment][1] += n_rows
                per[deployment][2] += n_bytes
            for deployment, (segments, n_rows, n_bytes) in per.items():
                audit.record(
                    session, SYSTEM, "log.retention", deployment,
                    reason=reason, segments=segments, rows=n_rows, bytes=n_bytes,
                )  # fmt: skip
        for path in doomed:
            _delete(ctx, path)
        for deployment, (segments, n_rows, n_bytes) in per.items():
            totals = result.by_deployment[deployment]
            totals[0] += segments
            totals[1] += n_rows
            totals[2] += n_bytes
            result.rows += n_rows
            result.bytes += n_bytes


def _delete(ctx: Context, path: str) -> None:
    try:
        storage.delete(ctx, path)
    except OSError as exc:  # the record is gone: the file (or object) is no longer part of the log
        log.warning("could not delete %s: %s", path, exc)


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # the record is gone: the file is no longer part of the log
        log.warning("could not delete %s: %s", path, exc)


def retention_once(ctx: Context, now: datetime | None = None) -> RetentionResult:
    """One pass of the retention job (see the module's docstring)."""
    now = now or utcnow()
    cfg = ctx.config.log
    result = RetentionResult()
    if cfg.retention_days > 0:
        cutoff = (now - timedelta(days=cfg.retention_days)).date().isoformat()
        with ctx.db.session() as session:
            ids = list(session.scalars(select(LogSegmentRow.id).where(LogSegmentRow.date < cutoff)))
        _delete_segments(ctx, ids, "age", result)
        result.segments_by_age = len(ids)
    if cfg.max_bytes > 0:
        ids = []
        with ctx.db.session() as session:
            total = int(session.scalar(select(func.coalesce(func.sum(LogSegmentRow.bytes), 0))) or 0)
            if total > cfg.max_bytes:
                query = select(LogSegmentRow.id, LogSegmentRow.bytes).order_by(LogSegmentRow.date, LogSegmentRow.id)
                for pk, size in session.execute(query.execution_options(yield_per=BATCH)):
                    if total <= cfg.max_bytes:
                        break
                    ids.append(pk)
                    total -= size
        _delete_segments(ctx, ids, "size", result)
        result.segments_by_size = len(ids)
    if ctx.config.labels.retention_days > 0:
        result.label_imports = _expire_labels(ctx, now - timedelta(days=ctx.config.labels.retention_days))
    return result


def _expire_labels(ctx: Context, before: datetime) -> int:
    root = files.labels_dir(ctx.config, ctx.artifacts.root)
    with ctx.db.session() as session:
        rows = session.execute(
            select(LabelImportRow.id, LabelImportRow.deployment, LabelImportRow.path).where(
                LabelImportRow.created_at < before
            )
        ).all()
        if not rows:
            return 0
        session.execute(delete(LabelImportRow).where(LabelImportRow.id.in_([r.id for r in rows])))
        per: dict[str, int] = defaultdict(int)
        for r in rows:
            per[r.deployment] += 1
        for deployment, count in per.items():
            audit.record(session, SYSTEM, "labels.retention", deployment, imports=count, before=before.isoformat())
    for r in rows:
        if r.path:
            _unlink(root / r.path)
    return len(rows)


def usage(ctx: Context, deployment: str = "") -> dict[str, LogUsage]:
    """Recorded segments, rows and bytes of each deployment's log (only `deployment`'s when given),
    and its label files' count and size: sums in SQL over `log_segments.bytes` and
    `label_imports.bytes` (no file is read, except once for an import recorded before that column)."""
    _fill_label_sizes(ctx, deployment)
    segments = select(
        LogSegmentRow.deployment, func.count(), func.sum(LogSegmentRow.rows), func.sum(LogSegmentRow.bytes)
    ).where(LogSegmentRow.path != "")
    imports = select(LabelImportRow.deployment, func.count(), func.sum(LabelImportRow.bytes)).where(
        LabelImportRow.path != ""
    )
    if deployment:
        segments = segments.where(LogSegmentRow.deployment == deployment)
        imports = imports.where(LabelImportRow.deployment == deployment)
    with ctx.db.session() as session:
        log_rows = session.execute(segments.group_by(LogSegmentRow.deployment)).all()
        label_rows = session.execute(imports.group_by(LabelImportRow.deployment)).all()
    labels = {name: (int(count), int(size or 0)) for name, count, size in label_rows}
    result: dict[str, LogUsage] = {}
    for name, count, n_rows, n_bytes in log_rows:
        n_files, label_bytes = labels.get(name, (0, 0))
        result[name] = LogUsage(int(count), int(n_rows or 0), int(n_bytes or 0), n_files, label_bytes)
    for name, (n_files, label_bytes) in labels.items():
        if name not in result:
            result[name] = LogUsage(label_files=n_files, label_bytes=label_bytes)
    return result


def _fill_label_sizes(ctx: Context, deployment: str) -> None:
    """Store the file size of each import recorded before migration 0012 (NULL `bytes`): read
    from disk once (a file gone counts 0), then never again."""
    unknown = select(LabelImportRow.id, LabelImportRow.path).where(LabelImportRow.bytes.is_(None))
    if deployment:
        unknown = unknown.where(LabelImportRow.deployment == deployment)
    with ctx.db.session() as session:
        rows = session.execute(unknown).all()
    if not rows:
        return
    root = files.labels_dir(ctx.config, ctx.artifacts.root)
    sizes: dict[str, int] = {}
    for import_id, path in rows:
        try:
            sizes[import_id] = (root / path).stat().st_size if path else 0
        except OSError:
            sizes[import_id] = 0
    with ctx.db.session() as session:
        for import_id, size in sizes.items():
            # only if still unknown: a purge that rewrote the file meanwhile stored its new size
            session.execute(
                update(LabelImportRow)
                .where(LabelImportRow.id == import_id, LabelImportRow.bytes.is_(None))
                .values(bytes=size)
            )
