"""ControlPlane RPCs of the label store (SubmitLabels, ListLabelImports)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import grpc

from controlplane import convert
from controlplane.api.auth import current_principal
from controlplane.api.base import ServiceBase
from controlplane.labels import store
from controlplane.labels.incoming import PendingImport
from controlplane.labels.wire import label_inputs
from core.errors import InvalidInput
from core.names import validate_name
from protos import common_pb2, controlplane_pb2


def label_import_message(summary: store.ImportSummary) -> controlplane_pb2.LabelImport:
    return controlplane_pb2.LabelImport(
        import_id=summary.import_id,
        deployment=summary.deployment,
        principal=summary.principal,
        created_at=convert.timestamp(summary.created_at),
        rows=summary.rows,
        accepted=summary.accepted,
        duplicates=summary.duplicates,
        replaced=summary.replaced,
        unknown_ids=summary.unknown_ids,
        late=summary.late,
        refused=summary.refused,
        refusals=summary.refusals,
        replayed=summary.replayed,
        source=summary.source.value,
    )


def _take(pending: PendingImport, rows: Sequence[common_pb2.LabelRow]) -> None:
    pending.add(label_inputs(rows))


class LabelsApi(ServiceBase):
    async def SubmitLabels(
        self,
        request_iterator: AsyncIterator[controlplane_pb2.SubmitLabelsRequest],
        context: grpc.aio.ServicerContext,
    ) -> controlplane_pb2.LabelImport:
        pending: PendingImport | None = None
        recorded: store.ImportSummary | None = None
        ended: int | None = None  # the rows the end message counts
        async for message in request_iterator:
            kind = message.WhichOneof("payload")
            if ended is not None:
                raise InvalidInput("a message came after the import's end")
            if kind == "end":
                if pending is None and recorded is None:
                    raise InvalidInput("the import must start with a header (deployment and import id)")
                ended = message.end.rows
            elif kind == "header":
                if pending is not None or recorded is not None:
                    raise InvalidInput("the import has two headers")
                header = message.header
                validate_name("deployment", header.deployment)
                began = await self.run(
                    store.begin_import, self.ctx, header.deployment, header.import_id, atomic=header.atomic
                )
                if isinstance(began, PendingImport):
                    pending = began
                else:
                    recorded = began  # a retry: its rows were taken before; they are not read again
            elif kind == "batch":
                if recorded is not None:
                    continue
                if pending is None:
                    raise InvalidInput("the import must start with a header (deployment and import id)")
                await self.run(_take, pending, message.batch.rows)
            else:
                raise InvalidInput("a SubmitLabels message carries no header, batch or end")
        if recorded is not None:
            return label_import_message(recorded)
        if pending is None:
            raise InvalidInput("the import is empty: no header was sent")
        if ended is None:
            raise InvalidInput(
                f"the import was cut off after {pending.rows} rows (no end message): nothing of it was stored"
            )
        if ended != pending.rows:
            raise InvalidInput(f"the import's end counts {ended} rows but {pending.rows} arrived: nothing was stored")
        summary = await self.run(store.finish_import, self.ctx, current_principal(), pending)
        return label_import_message(summary)

    async def ListLabelImports(
        self, request: controlplane_pb2.ListLabelImportsRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListLabelImportsResponse:
        validate_name("deployment", request.deployment)
        summaries = await self.run(store.list_imports, self.ctx, request.deployment, request.limit)
        return controlplane_pb2.ListLabelImportsResponse(imports=[label_import_message(s) for s in summaries])
