"""ControlPlane RPCs of the prediction log (SetLogSampleRate, ExportDataset)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path

import grpc

from controlplane.api import convert
from controlplane.api.auth import current_principal
from controlplane.api.base import ServiceBase
from controlplane.predlog import sampling
from controlplane.predlog.export import DatasetQuery, export_dataset
from core.errors import InvalidInput
from core.names import validate_name
from protos import controlplane_pb2

#: bytes of Parquet per DatasetChunk (well under gRPC's default 4 MiB message limit)
CHUNK_BYTES = 1 << 20


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
