"""Prediction-log segments received from agents: checked, written durably, recorded, then acked.

A segment is accepted when it is at most `[log] max_segment_bytes`, a record file (what an agent
of this release ships: `runtime.logrecords`, every record checked here), an Arrow IPC file (the
previous release's agents) or a Parquet file (the first releases'; told apart by their magic
bytes) whose columns are the log's (docs/PREDICTION_LOG.md) and whose rows all belong to the
(deployment, version) it claims, one the agent was sent. It is written as the log's Parquet file
(the others converted here: every reader reads Parquet) to
its final name in the hive layout (`deployment=D/date=YYYY-MM-DD/version=V/<agent id>-<segment
id>.parquet`) through a temporary file, fsync and rename, and recorded in `log_segments` in one
transaction; only then is it acknowledged. A resend of a recorded segment (same agent id and segment id) is acknowledged
without a second write. A file on disk without its row (a crash between the rename and the
commit) is not part of the log: the agent sends the segment again and the same path is written
again, then recorded.
"""

from __future__ import annotations

import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from controlplane.context import Context
from controlplane.datafiles import storage
from controlplane.predlog.s3backoff import buckets
from controlplane.store.models import LogSegmentRow, utcnow
from core.errors import InvalidInput, PermissionDenied
from core.names import validate_name
from core.text import printable
from runtime.logrecords import SegmentFormat, format_of
from runtime.logsegment import read_arrow, read_records, write_parquet

log = logging.getLogger("sluice.predlog")

SEGMENT_ID = re.compile(r"[0-9a-f-]{1,64}")
AGENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: the columns every segment has, with the type each must be
REQUIRED = {
    "ts": pa.timestamp("us", tz="UTC"),
    "deployment": pa.string(),
    "model": pa.string(),
    "version": pa.string(),
    "role": pa.string(),
    "experiment": pa.string(),
    "request_id": pa.string(),
    "routing_key": pa.string(),
    "agent": pa.string(),
    "latency_ms": pa.float64(),
}
OUTPUTS = ("label", "value", "probabilities")

Route = tuple[str, str, str]  # deployment, model, version


@dataclass(frozen=True)
class Segment:
    """A segment as an agent sent it (the LogSegment message, without gRPC)."""

    agent_id: str
    segment_id: str
    deployment: str
    model: str
    version: str
    date: str
    rows: int
    data: bytes
    #: set by an agent with an S3 sink: the segment is already at this s3:// URI (data is empty)
    uri: str = ""
    size: int = 0
    #: the agent's name (the rows' `agent` column, for a record file); "": the agent id
    agent_name: str = ""


@dataclass(frozen=True)
class Stored:
    path: Path
    new: bool  # False: a resend of a segment already recorded


def log_dir(ctx: Context) -> Path:
    """`[log] dir`, or `predictions` beside the artifacts directory (the data dir)."""
    configured = ctx.config.log.dir
    return Path(configured) if configured else ctx.artifacts.root.parent / "predictions"


def relative_path(segment: Segment) -> Path:
    return (
        Path(f"deployment={segment.deployment}")
        / f"date={segment.date}"
        / f"version={segment.version}"
        / f"{segment.agent_id}-{segment.segment_id}.parquet"
    )


def check_claims(segment: Segment, allowed: frozenset[Route] | None) -> None:
    """What the message says: well-formed names, and a route the agent was sent."""
    if not AGENT_ID.fullmatch(segment.agent_id):
        raise InvalidInput("a log segment needs a valid agent id")
    if not SEGMENT_ID.fullmatch(segment.segment_id):
        raise InvalidInput(f"segment id {segment.segment_id[:80]!r} is not 1-64 characters of 0-9, a-f and '-'")
    validate_name("deployment", segment.deployment)
    validate_name("model", segment.model)
    validate_name("version", segment.version)
    if not DATE.fullmatch(segment.date):
        raise InvalidInput(f"segment date {segment.date[:20]!r} is not YYYY-MM-DD")
    if allowed is not None and (segment.deployment, segment.model, segment.version) not in allowed:
        raise PermissionDenied(
            f"this agent was not sent {segment.model}:{segment.version} of deployment {segment.deployment!r}: "
            "it may not log predictions for it"
        )


def _check_schema(segment: Segment, schema: pa.Schema) -> None:
    for name, typ in REQUIRED.items():
        if name not in schema.names:
            raise InvalidInput(f"log segment {segment.segment_id} has no column {name!r}")
        if schema.field(name).type != typ:
            raise InvalidInput(
                f"log segment {segment.segment_id}: column {name!r} is {schema.field(name).type}, not {typ}"
            )
    if not any(name.startswith("in_") for name in schema.names):
        raise InvalidInput(f"log segment {segment.segment_id} has no input column (in_<name>)")
    if not any(name in schema.names for name in OUTPUTS):
        raise InvalidInput(f"log segment {segment.segment_id} has no output column ({', '.join(OUTPUTS)})")


def _check_rows(segment: Segment, held: int) -> None:
    if held != segment.rows:
        raise InvalidInput(f"log segment {segment.segment_id} says {segment.rows} rows and holds {held}")


def check_file(segment: Segment, max_bytes: int) -> pa.Table | None:
    """The bytes: a record, Parquet or Arrow IPC file of the log's columns whose rows are the
    claimed ones. Returns the rows of a record or Arrow file (to be written as Parquet), None for
    a Parquet file (stored as it is)."""
    if len(segment.data) > max_bytes:
        raise InvalidInput(
            f"log segment {segment.segment_id} is {len(segment.data)} bytes; the limit is {max_bytes} "
            "([log] max_segment_bytes)"
        )
    found = format_of(segment.data)
    if found is None:
        raise InvalidInput(
            f"log segment {segment.segment_id} is not a record, Parquet or Arrow IPC file (its first and last bytes)"
        )
    table: pa.Table | None = None
    try:
        if found is SegmentFormat.RECORDS:
            try:
                table = read_records(segment.data, segment.agent_name or segment.agent_id)
            except ValueError as exc:
                raise InvalidInput(f"log segment {segment.segment_id} is not a valid record file: {exc}") from None
            _check_rows(segment, table.num_rows)
            _check_schema(segment, table.schema)
            claimed = table.select(["deployment", "model", "version"])
        elif found is SegmentFormat.ARROW:
            table = read_arrow(segment.data)
            _check_rows(segment, table.num_rows)
            _check_schema(segment, table.schema)
            claimed = table.select(["deployment", "model", "version"])
        else:
            parquet = pq.ParquetFile(io.BytesIO(segment.data))
            _check_rows(segment, parquet.metadata.num_rows)
            _check_schema(segment, parquet.schema_arrow)
            claimed = parquet.read(columns=["deployment", "model", "version"])
    except (pa.ArrowException, OSError) as exc:
        kind = {SegmentFormat.ARROW: "Arrow IPC", SegmentFormat.PARQUET: "Parquet"}.get(found, "record")
        raise InvalidInput(f"log segment {segment.segment_id} is not a readable {kind} file: {exc}") from None
    for column, value in (("deployment", segment.deployment), ("model", segment.model), ("version", segment.version)):
        if claimed.num_rows and not pc.all(pc.equal(claimed.column(column), value)).as_py():
            raise InvalidInput(f"log segment {segment.segment_id}: not every row has {column} {value!r}")
    return table


MAX_URI = 1024


def check_uri(ctx: Context, segment: Segment, relative: Path) -> str:
    """A segment an agent put in its S3 bucket: the URI ends in the log's layout for this very
    segment, and the object is there with the claimed rows and size (read from its footer). A
    bucket the control plane cannot read now (its credentials, its endpoint) raises
    `s3backoff.Deferred`, at once while that bucket's backoff runs (controlplane/predlog/s3backoff.py)."""

    uri = segment.uri
    if len(uri) > MAX_URI or not uri.startswith(storage.S3) or not uri.endswith("/" + relative.as_posix()):
        raise InvalidInput(
            f"log segment {segment.segment_id}: URI {uri[:200]!r} is not s3://BUCKET/[PREFIX/]{relative.as_posix()}"
        )
    if ".." in uri.split("/"):
        raise InvalidInput(f"log segment {segment.segment_id}: URI {uri[:200]!r} has a '..' part")
    from pyarrow import fs

    bucket = storage.object_path(uri).split("/", 1)[0]
    key = (ctx.config.log.s3_endpoint, bucket)
    buckets.check(key)
    try:
        info = storage.filesystem(ctx).get_file_info(storage.object_path(uri))
    except OSError as exc:  # pyarrow: access denied, no credentials, endpoint unreachable
        where = ctx.config.log.s3_endpoint or "AWS"
        reason = (
            f"the control plane cannot read s3://{bucket} at {where}: {printable(str(exc)[:300])} "
            "(check its AWS credentials and [log] s3_endpoint / s3_region)"
        )
        raise buckets.failed(key, reason) from exc
    if deferred := buckets.succeeded(key):
        log.info("the control plane reads s3://%s again (%d segment announcement(s) were deferred)", bucket, deferred)
    if info.type == fs.FileType.NotFound:
        raise InvalidInput(f"log segment {segment.segment_id}: no object at {uri[:200]!r}")
    if info.size != segment.size:
        raise InvalidInput(f"log segment {segment.segment_id}: the object is {info.size} bytes, not {segment.size}")
    if segment.size > ctx.config.log.max_segment_bytes:
        raise InvalidInput(
            f"log segment {segment.segment_id} is {segment.size} bytes; the limit is "
            f"{ctx.config.log.max_segment_bytes} ([log] max_segment_bytes)"
        )
    with storage.reading():
        data = storage.local(ctx, uri).read_bytes()
    if format_of(data) is not SegmentFormat.PARQUET:  # read as it is by every reader of the log
        raise InvalidInput(f"log segment {segment.segment_id}: the object at {uri[:200]!r} is not a Parquet file")
    check_file(Segment(**{**segment.__dict__, "data": data}), ctx.config.log.max_segment_bytes)
    return uri


def _write_durably(path: Path, data: bytes | pa.Table) -> int:
    """`data` (bytes as they are, a table as the log's Parquet file) at `path`, never half
    visible: a temporary name, fsync, rename, fsync of the directory. Returns the file's size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        with open(tmp, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                write_parquet(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path.stat().st_size


def _recorded(ctx: Context, agent_id: str, segment_id: str) -> str | None:
    with ctx.db.session() as session:
        return session.scalar(
            select(LogSegmentRow.path).where(LogSegmentRow.agent_id == agent_id, LogSegmentRow.segment_id == segment_id)
        )


def receive_segment(ctx: Context, segment: Segment, allowed: frozenset[Route] | None = None) -> Stored:
    """Check, store and record one segment (InvalidInput / PermissionDenied: refused for good).

    `allowed`: the routes the agent was sent (None: any; callers that are not an agent's stream)."""
    check_claims(segment, allowed)
    root = log_dir(ctx)
    known = _recorded(ctx, segment.agent_id, segment.segment_id)
    if known is not None:
        return Stored(Path(known) if known.startswith("s3://") else root / known, new=False)
    relative = relative_path(segment)
    if segment.uri:
        recorded = check_uri(ctx, segment, relative)
        size = segment.size
    else:
        table = check_file(segment, ctx.config.log.max_segment_bytes)
        size = _write_durably(root / relative, segment.data if table is None else table)
        recorded = relative.as_posix()
    try:
        with ctx.db.session() as session:
            session.add(
                LogSegmentRow(
                    agent_id=segment.agent_id,
                    segment_id=segment.segment_id,
                    deployment=segment.deployment,
                    model=segment.model,
                    version=segment.version,
                    date=segment.date,
                    rows=segment.rows,
                    bytes=size,
                    path=recorded,
                    received_at=utcnow(),
                )
            )
    except IntegrityError:
        # The same segment, recorded meanwhile by a concurrent resend: the same bytes at the same path.
        return Stored(root / relative, new=False)
    return Stored(root / relative, new=True)


def recorded_files(ctx: Context, deployment: str = "") -> list[Path]:
    """The files of the recorded segments (what readers of the log read), oldest first; call it
    inside `storage.reading()` when S3 segments are read after it returns."""
    with ctx.db.session() as session:
        query = select(LogSegmentRow.path).where(LogSegmentRow.path != "").order_by(LogSegmentRow.id)  # "": purged
        if deployment:
            query = query.where(LogSegmentRow.deployment == deployment)
        paths = list(session.scalars(query))

    return [storage.local(ctx, p) for p in paths]
