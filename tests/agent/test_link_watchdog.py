"""The agent's link gives up on a control plane that went silent (a cut network, no RST) and
reconnects: the watchdog's cancel of the stream ends that session, never the link itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from agent.cache import AgentCache
from agent.link import ControlPlaneLink, LinkOptions
from agent.reports import ReportBuffer
from agent.serving import ServingTable, SnapshotApplier
from protos import agent_pb2, agent_pb2_grpc

HEARTBEAT = 0.2


class SilentHub(agent_pb2_grpc.AgentHubServicer):
    """Answers Hello, then says nothing more while keeping the stream open (like a dead peer)."""

    def __init__(self) -> None:
        self.connects = 0

    async def Connect(self, request_iterator, context):  # type: ignore[no-untyped-def, override]
        self.connects += 1
        yield agent_pb2.ControlMessage(hello_ack=agent_pb2.HelloAck(heartbeat_seconds=HEARTBEAT, report_seconds=1))
        await asyncio.sleep(3600)


async def test_a_silent_controlplane_is_left_and_the_link_reconnects(tmp_path: Path) -> None:
    hub = SilentHub()
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentHubServicer_to_server(hub, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    cache = AgentCache(tmp_path / "cache")

    async def swap(_table: ServingTable) -> None:
        return None

    link = ControlPlaneLink(
        LinkOptions(address=f"127.0.0.1:{port}", name="watchdog", host="h", serve_address="h:1",
                    reconnect_max_seconds=0.2),
        cache.agent_id(),
        cache,
        SnapshotApplier(cache),
        lambda: None,
        swap,
        ReportBuffer(cache.agent_id(), 10, reserve=cache.reserve_seqs),
    )  # fmt: skip
    task = asyncio.create_task(link.run())
    try:
        # Silent for 3 heartbeats + 1 s -> the stream is cancelled -> a new one within the backoff.
        for _ in range(100):
            if link.connects >= 2:
                break
            await asyncio.sleep(0.1)
        assert link.connects >= 2 and hub.connects >= 2, "the link did not come back after the watchdog fired"
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop(None)
