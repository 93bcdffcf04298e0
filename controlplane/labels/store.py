"""The label store: imports of labels, each a Parquet file plus a summary row in SQL.

An import begins (`begin_import`: the deployment and its task are looked up, a known import id is
answered with its recorded summary), takes batches of rows (`PendingImport.add`), and ends
(`finish_import`): its rows are judged against the stored labels and the prediction log
(`classify.judge`), the rows to keep are written to `<labels dir>/deployment=D/<import id>.parquet`
(temporary file, fsync, rename), then the summary row and its audit entry commit in one
transaction. Only then is the import acknowledged.
"""

from __future__ import annotations

import functools
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from controlplane import audit
from controlplane.context import Context
from controlplane.datafiles import files, storage
from controlplane.deployment_reads import find_deployment
from controlplane.domain import Principal
from controlplane.labels.classify import files_literal, judge
from controlplane.labels.incoming import ImportTarget, PendingImport, label_schema, validate_import_id
from controlplane.store.db import insert_ignore
from controlplane.store.models import LabelImportRow, ModelVersionRow, TrafficSplitRow, utcnow
from core.errors import Conflict, FailedPrecondition
from core.vocabulary import LabelSource, ModelTask

if TYPE_CHECKING:
    import pyarrow as pa

MAX_LIST = 200
DEFAULT_LIST = 20

# One import of a deployment is judged at a time in this process, so two concurrent imports
# naming one request count it once as new and once as replaced (replicas sharing PostgreSQL may
# still judge concurrently: both rows are stored and the newer wins on read, only counts differ).
_deployment_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def _lock_for(deployment: str) -> threading.Lock:
    with _locks_guard:
        return _deployment_locks[deployment]


def deployment_lock(deployment: str) -> threading.Lock:
    """Held while a deployment's label files are judged or rewritten (imports, purges)."""
    return _lock_for(deployment)


@dataclass(frozen=True)
class ImportSummary:
    """What an import did. rows = accepted + duplicates + refused; replaced, unknown_ids and late
    count among the accepted rows."""

    import_id: str
    deployment: str
    principal: str
    source: LabelSource
    created_at: datetime
    rows: int
    accepted: int
    duplicates: int
    replaced: int
    unknown_ids: int
    late: int
    refused: int
    refusals: list[str] = field(default_factory=list)
    #: answered from the record of an earlier call with this import id: nothing stored now
    replayed: bool = False


def _summary(row: LabelImportRow, replayed: bool) -> ImportSummary:
    return ImportSummary(
        import_id=row.id,
        deployment=row.deployment,
        principal=row.principal,
        source=LabelSource(row.source),
        created_at=row.created_at,
        rows=row.rows,
        accepted=row.accepted,
        duplicates=row.duplicates,
        replaced=row.replaced,
        unknown_ids=row.unknown_ids,
        late=row.late,
        refused=row.refused,
        refusals=list(row.refusals or []),
        replayed=replayed,
    )


def _recorded(row: LabelImportRow | None, deployment: str) -> ImportSummary | None:
    if row is None:
        return None
    if row.deployment != deployment:
        raise Conflict(
            f"import id {row.id!r} was already used for deployment {row.deployment!r}; "
            "choose another import id for this deployment"
        )
    return _summary(row, replayed=True)


def labels_root(ctx: Context) -> Path:
    return files.labels_dir(ctx.config, ctx.artifacts.root)


def begin_import(
    ctx: Context,
    deployment: str,
    import_id: str,
    *,
    atomic: bool,
    source: LabelSource = LabelSource.IMPORT,
) -> PendingImport | ImportSummary:
    """A new import, or the summary recorded for this import id (a retry: nothing is stored)."""
    validate_import_id(import_id)
    with ctx.db.session() as session:
        deployment_row = find_deployment(session, deployment)
        recorded = _recorded(session.get(LabelImportRow, import_id), deployment)
        if recorded is not None:
            return recorded
        task = session.scalar(
            select(ModelVersionRow.task)
            .join(TrafficSplitRow, TrafficSplitRow.version_id == ModelVersionRow.id)
            .where(TrafficSplitRow.deployment_id == deployment_row.id)
            .limit(1)
        )
    if task is None:
        raise FailedPrecondition(f"deployment {deployment!r} serves no version: there is nothing to label")
    target = ImportTarget(deployment, import_id, ModelTask(task), atomic, source)
    return PendingImport(target, ctx.config.labels)


def finish_import(ctx: Context, principal: Principal, pending: PendingImport) -> ImportSummary:
    """Judge, write and record the import; returns its summary. Nothing is visible to readers
    until the summary row commits."""
    target = pending.target
    root = labels_root(ctx)
    # storage.reading(): the S3 segments resolved for the judgement stay cached until it is done
    with _lock_for(target.deployment), storage.reading():
        with ctx.db.session() as session:
            recorded = _recorded(session.get(LabelImportRow, target.import_id), target.deployment)
            if recorded is not None:  # the same import id finished meanwhile
                return recorded
            # An agent's Feedback batch (one a second per agent) is about predictions that agent
            # served and is stored as it is: judging it against every stored label and logged
            # segment would make each batch slower than the last, and a repeat is caught by its
            # batch id (and the newest label wins on read). Imports are judged in full.
            feedback = target.source == LabelSource.FEEDBACK
            label_files = [] if feedback else files.recorded_label_files(session, root, target.deployment)
            log_files = (
                []
                if feedback
                else files.prediction_log_files(session, functools.partial(storage.local, ctx), target.deployment)
            )
        received_at = utcnow()
        judged = judge(
            pending.table(),
            label_files=label_files,
            log_files=log_files,
            import_id=target.import_id,
            received_at=received_at,
            late_after_seconds=ctx.config.labels.late_after_seconds,
        )
        relative, size = "", 0
        if judged.to_write.num_rows:
            path = files.import_file(target.deployment, target.import_id)
            size = files.write_parquet_atomically(judged.to_write.cast(label_schema()), root / path)
            relative = str(path)
        row = LabelImportRow(
            id=target.import_id,
            deployment=target.deployment,
            principal=principal.name,
            source=target.source.value,
            atomic=target.atomic,
            created_at=received_at,
            rows=pending.rows,
            accepted=judged.accepted,
            duplicates=judged.duplicates,
            replaced=judged.replaced,
            unknown_ids=0 if feedback else judged.unknown_ids,
            late=0 if feedback else judged.late,
            refused=pending.refused,
            refusals=list(pending.refusals),
            path=relative,
            bytes=size,
        )
        values = {c.key: getattr(row, c.key) for c in LabelImportRow.__table__.columns}
        with ctx.db.session() as session:
            if not insert_ignore(session, LabelImportRow.__table__, values):  # type: ignore[arg-type]
                # Another call with this import id won the race: its (equal) file stands.
                recorded = _recorded(session.get(LabelImportRow, target.import_id), target.deployment)
                assert recorded is not None
                return recorded
            if target.source == LabelSource.IMPORT:  # an agent's Feedback batches are listed, not audited
                audit.record(
                    session,
                    principal,
                    "labels.import",
                    target.deployment,
                    import_id=target.import_id,
                    rows=pending.rows,
                    accepted=judged.accepted,
                    duplicates=judged.duplicates,
                    replaced=judged.replaced,
                    unknown_ids=judged.unknown_ids,
                    late=judged.late,
                    refused=pending.refused,
                )
    if target.source == LabelSource.IMPORT:
        summary = f"{judged.accepted} labels stored by import {target.import_id}"
        ctx.events.publish("labels", target.deployment, summary)
    return _summary(row, replayed=False)


def list_imports(ctx: Context, deployment: str, limit: int = DEFAULT_LIST) -> list[ImportSummary]:
    """The deployment's imports, newest first."""
    limit = min(limit or DEFAULT_LIST, MAX_LIST)
    with ctx.db.session() as session:
        find_deployment(session, deployment)
        query = (
            select(LabelImportRow)
            .where(LabelImportRow.deployment == deployment)
            .order_by(LabelImportRow.created_at.desc(), LabelImportRow.id.desc())
            .limit(limit)
        )
        return [_summary(row, replayed=False) for row in session.scalars(query)]


def current_labels(ctx: Context, deployment: str) -> pa.Table:
    """Each labelled request's current label (the newest `received_at` wins): columns request_id,
    label, value, event_time, received_at, import_id. What joins with the prediction log read."""
    import duckdb

    with ctx.db.session() as session:
        find_deployment(session, deployment)
        label_files = files.recorded_label_files(session, labels_root(ctx), deployment)
    if not label_files:
        return label_schema().empty_table()
    con = duckdb.connect(config={"threads": 2})
    try:
        table = con.sql(
            f"""
            SELECT request_id, label, value, event_time, received_at, import_id
            FROM read_parquet({files_literal(label_files)}, union_by_name = true)
            QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY received_at DESC, import_id DESC) = 1
            ORDER BY request_id
            """
        ).to_arrow_table()
    finally:
        con.close()
    return table.cast(label_schema())
