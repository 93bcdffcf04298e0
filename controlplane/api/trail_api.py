"""ControlPlane RPCs of the history, audit trail, identity and live events."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import grpc

from controlplane import audit, convert, deployment_reads
from controlplane.api.auth import current_principal
from controlplane.api.base import ServiceBase
from controlplane.api.bounded import ModelLanes
from controlplane.context import Context
from core.errors import ResourceExhausted
from core.names import validate_name
from protos import controlplane_pb2

# Sent while nothing happens, so a watcher can tell a quiet system from a dead connection.
WATCH_KEEPALIVE_SECONDS = 5.0


class TrailApi(ServiceBase):
    def __init__(self, ctx: Context, executor: ThreadPoolExecutor, lanes: ModelLanes | None = None) -> None:
        super().__init__(ctx, executor, lanes)
        self.watchers = 0  # open WatchEvents streams, bounded by limits.max_watchers
        #: open streams per principal name, bounded by limits.max_watchers_per_principal
        self.watchers_by_principal: Counter[str] = Counter()

    async def ListHistory(
        self, request: controlplane_pb2.ListHistoryRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListHistoryResponse:
        validate_name("deployment", request.deployment)
        entries = await self.run(deployment_reads.list_history, self.ctx, request.deployment, request.limit)
        return controlplane_pb2.ListHistoryResponse(entries=[convert.history_entry(e) for e in entries])

    async def ListAudit(
        self, request: controlplane_pb2.ListAuditRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListAuditResponse:
        if request.deployment:
            validate_name("deployment", request.deployment)
        events = await self.run(
            audit.list_audit, self.ctx.db, request.target, request.limit, request.deployment
        )
        return controlplane_pb2.ListAuditResponse(events=[convert.audit_event(e) for e in events])

    async def WhoAmI(
        self, request: controlplane_pb2.WhoAmIRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.WhoAmIResponse:
        principal = current_principal()
        return controlplane_pb2.WhoAmIResponse(principal=principal.name, role=principal.role.value)

    async def ListTokens(
        self, request: controlplane_pb2.ListTokensRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListTokensResponse:
        return controlplane_pb2.ListTokensResponse(
            tokens=[controlplane_pb2.TokenInfo(name=t.name, role=t.role) for t in self.ctx.config.tokens]
        )

    async def WatchEvents(
        self, request: controlplane_pb2.WatchEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[controlplane_pb2.Event]:
        if request.deployment:
            validate_name("deployment", request.deployment)
        limits = self.ctx.config.limits
        who = current_principal().name
        mine = self.watchers_by_principal[who]
        if mine >= limits.max_watchers_per_principal:
            raise ResourceExhausted(
                f"{who} already has {mine} event streams open; the limit per token is "
                f"{limits.max_watchers_per_principal} (limits.max_watchers_per_principal)"
            )
        if self.watchers >= limits.max_watchers:
            raise ResourceExhausted(
                f"{self.watchers} watchers are connected; the limit is {limits.max_watchers} (limits.max_watchers)"
            )
        queue = self.ctx.events.subscribe()
        self.watchers += 1
        self.watchers_by_principal[who] += 1
        try:
            yield controlplane_pb2.Event(kind="hello", summary="watching")
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), WATCH_KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield controlplane_pb2.Event(kind="heartbeat")
                    continue
                if request.deployment and event.deployment not in ("", request.deployment):
                    continue
                yield controlplane_pb2.Event(
                    id=event.id,
                    at=convert.timestamp(event.at),
                    kind=event.kind,
                    deployment=event.deployment,
                    summary=event.summary,
                )
        finally:
            self.watchers -= 1
            self.watchers_by_principal[who] -= 1
            if not self.watchers_by_principal[who]:
                del self.watchers_by_principal[who]
            self.ctx.events.unsubscribe(queue)
