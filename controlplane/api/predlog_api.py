"""ControlPlane RPCs of the prediction log (SetLogSampleRate, ExportDataset)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path

import grpc

from controlplane import convert
from controlplane.api.auth import current_principal
from controlplane.api.base import ServiceBase
from controlplane.monitoring.state import state_of
from controlplane.predlog import purge, sampling
from controlplane.predlog.export import DatasetQuery, export_dataset
from core.errors import InvalidInput
from core.names import validate_name
from protos import controlplane_pb2

#: bytes of Parquet per DatasetChunk (well under gRPC's default 4 MiB message limit)
CHUNK_BYTES = 1 << 20
#: a purge reports its progress every this many segments
PROGRESS_EVERY = 20


def _read_chunk(path: Path, offset: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(CHUNK_BYTES)


def dataset_query(request: controlplane_pb2.ExportDatasetRequest) -> DatasetQuery:
    """The request as the domain's query (names checked, unset times and version left None)."""
    validate_name("deployment", request.deployment)
    version = None
    if request.HasField("version") and (request.version.model or request.version.version):
        version = convert.parse_ref(request.version)
    since = request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None
    until = request.until.ToDatetime(tzinfo=UTC) if request.HasField("until") else None
    query = DatasetQuery(request.deployment, since, until, version, request.labeled_only)
    query.check()
    return query


def summary_message(s: purge.PurgeSummary) -> controlplane_pb2.PurgeSummary:
    return controlplane_pb2.PurgeSummary(
        segments_scanned=s.segments_scanned,
        segments_rewritten=s.segments_rewritten,
        segments_deleted=s.segments_deleted,
        rows_removed=s.rows_removed,
        bytes_freed=s.bytes_freed,
        labels_removed=s.labels_removed,
    )


class PredictionLogApi(ServiceBase):
    async def SetLogSampleRate(
        self, request: controlplane_pb2.SetLogSampleRateRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.Deployment:
        validate_name("deployment", request.deployment)
        rate = sampling.check_rate(request.sample_rate)
        info = await self.run(
            sampling.set_log_sample_rate, self.ctx, current_principal(), request.deployment, rate, request.reason
        )
        return convert.deployment(info)

    async def ExportDataset(
        self, request: controlplane_pb2.ExportDatasetRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[controlplane_pb2.DatasetChunk]:
        """The header (rows, size), then the file in chunks; the temporary file goes either way."""
        query = dataset_query(request)
        exported = await self.run(export_dataset, self.ctx, query)
        try:
            yield controlplane_pb2.DatasetChunk(
                header=controlplane_pb2.DatasetExportHeader(rows=exported.rows, size=exported.size)
            )
            offset = 0
            while offset < exported.size:
                data = await self.run(_read_chunk, exported.path, offset)
                if not data:
                    raise InvalidInput("the export file ended early")  # never: it is ours and closed
                offset += len(data)
                yield controlplane_pb2.DatasetChunk(data=data)
        finally:
            exported.path.unlink(missing_ok=True)

    async def PurgeLog(
        self, request: controlplane_pb2.PurgeLogRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[controlplane_pb2.PurgeLogProgress]:
        """One segment a step, a progress message every PROGRESS_EVERY steps, then the summary."""

        validate_name("deployment", request.deployment)
        spec = purge.PurgeSpec(request.deployment, request.older_than_seconds, request.routing_key)
        principal = current_principal()
        run = await self.run(purge.begin, self.ctx, spec)
        total = len(run.segment_ids)
        try:
            for done, pk in enumerate(run.segment_ids, start=1):
                await self.run(purge.purge_segment, self.ctx, run, pk)
                if done % PROGRESS_EVERY == 0 and done < total:
                    yield controlplane_pb2.PurgeLogProgress(segments_done=done, segments_total=total)
        except BaseException:
            purge.release(run)
            raise
        summary = await self.run(purge.finish, self.ctx, principal, run, request.reason)
        metrics = state_of(self.ctx).metrics
        if summary.segments_deleted:
            metrics.log_segments_deleted.labels("purge").inc(summary.segments_deleted)
        if summary.bytes_freed:
            metrics.log_bytes_deleted.labels("purge").inc(summary.bytes_freed)
        yield controlplane_pb2.PurgeLogProgress(
            segments_done=total, segments_total=total, summary=summary_message(summary)
        )
