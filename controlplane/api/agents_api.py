"""ControlPlane RPCs about serving agents (ListAgents, WaitForSync). Owned by the agents area."""

from __future__ import annotations

import asyncio
import math
import time

import grpc

from controlplane import convert
from controlplane.agenthub import fleet
from controlplane.api import paging
from controlplane.api.base import ServiceBase
from controlplane.domain import DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS
from core.errors import InvalidInput
from core.names import validate_name
from protos import controlplane_pb2

POLL_SECONDS = 0.5
#: agents per ListAgents answer at most: each carries its labels and one line per deployment
MAX_PAGE = 200


def _agent(status: fleet.AgentStatus) -> controlplane_pb2.AgentInfo:
    return controlplane_pb2.AgentInfo(
        id=status.id,
        name=status.name,
        host=status.host,
        address=status.address,
        labels=status.labels,
        state=status.state,
        last_seen=convert.timestamp(status.last_seen),
        connected_at=convert.timestamp(status.connected_at),
        last_nack=status.last_nack,
        deployments=[
            controlplane_pb2.DeploymentSync(
                deployment=d.deployment,
                applied_generation=d.applied_generation,
                desired_generation=d.desired_generation,
                in_sync=d.in_sync,
            )
            for d in status.deployments
        ],
    )


class AgentsApi(ServiceBase):
    async def ListAgents(
        self, request: controlplane_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListAgentsResponse:
        after = paging.decode_token("ListAgents", request.page_token, str, str)
        size = paging.page_size(request.page_size, MAX_PAGE)
        found = await self.run(fleet.list_agents, self.ctx, size + 1, tuple(after) if after else None)
        page = found[:size]
        token = paging.encode_token("ListAgents", page[-1].name, page[-1].id) if len(found) > size else ""
        return controlplane_pb2.ListAgentsResponse(agents=[_agent(a) for a in page], next_page_token=token)

    async def WaitForSync(
        self, request: controlplane_pb2.WaitForSyncRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.WaitForSyncResponse:
        validate_name("deployment", request.deployment)
        timeout = request.timeout_seconds or DEFAULT_WAIT_SECONDS
        if not math.isfinite(timeout) or timeout < 0 or timeout > MAX_WAIT_SECONDS:
            raise InvalidInput(f"timeout_seconds must be between 0 and {MAX_WAIT_SECONDS:.0f}, got {timeout}")
        deadline = time.monotonic() + timeout
        left = context.time_remaining()
        if left is not None:  # answer with the current status before the caller's deadline passes
            deadline = min(deadline, time.monotonic() + max(0.0, left - 0.5))
        # Every ACK publishes an "agent" event: wake on events, and poll as a safety net.
        events = self.ctx.events.subscribe()
        try:
            while True:
                status = await self.run(fleet.sync_status, self.ctx, request.deployment, request.generation)
                remaining = deadline - time.monotonic()
                if status.settled or remaining <= 0:  # applied everywhere, or refused where not
                    break
                try:
                    await asyncio.wait_for(events.get(), min(remaining, POLL_SECONDS))
                except TimeoutError:
                    pass
        finally:
            self.ctx.events.unsubscribe(events)
        return controlplane_pb2.WaitForSyncResponse(
            in_sync=status.in_sync,
            generation=status.generation,
            synced_agents=status.synced,
            lagging_agents=status.lagging,
            refused_agents=status.refused,
        )
