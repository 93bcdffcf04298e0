"""A snapshot is ACKed only after the agent serves it: after the routing table was swapped and the
snapshot persisted, never on receipt (an early ACK makes "in sync" a lie while the swap is slow)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from agent.cache import AgentCache
from agent.link import ControlPlaneLink, LinkOptions
from agent.reports import ReportBuffer
from agent.serving import ServingTable, SnapshotApplier
from protos import agent_pb2, agent_pb2_grpc

SNAPSHOT_ID = 11
SWAP_SECONDS = 0.5  # a slow swap (warm-up of big sessions): an early ACK would arrive inside it


class Hub(agent_pb2_grpc.AgentHubServicer):
    def __init__(self, order: list[str]) -> None:
        self.order = order
        self.acked = asyncio.Event()

    async def Connect(self, request_iterator, context):  # type: ignore[no-untyped-def, override]
        yield agent_pb2.ControlMessage(hello_ack=agent_pb2.HelloAck(heartbeat_seconds=1, report_seconds=1))
        yield agent_pb2.ControlMessage(snapshot=agent_pb2.Snapshot(snapshot_id=SNAPSHOT_ID))

        async def read() -> None:
            async for message in request_iterator:
                if message.WhichOneof("body") in ("ack", "nack"):
                    self.order.append(f"{message.WhichOneof('body')} {message.ack.snapshot_id}")
                    self.acked.set()

        reader = asyncio.create_task(read())
        try:
            while True:
                await asyncio.sleep(0.2)
                yield agent_pb2.ControlMessage(heartbeat=agent_pb2.Heartbeat())
        finally:
            reader.cancel()


async def test_the_ack_follows_the_swap_and_the_saved_snapshot(tmp_path: Path) -> None:
    order: list[str] = []
    hub = Hub(order)
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentHubServicer_to_server(hub, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    cache = AgentCache(tmp_path / "cache")

    async def swap(table: ServingTable) -> None:
        order.append("swap started")
        await asyncio.sleep(SWAP_SECONDS)
        order.append(f"swapped {table.applied_snapshot().snapshot_id}")

    link = ControlPlaneLink(
        LinkOptions(address=f"127.0.0.1:{port}", name="order", host="h", serve_address="h:1"),
        cache.agent_id(),
        cache,
        SnapshotApplier(cache),
        lambda: None,
        swap,
        ReportBuffer(cache.agent_id(), 10, reserve=cache.reserve_seqs),
    )
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(hub.acked.wait(), timeout=30)
        assert order == ["swap started", f"swapped {SNAPSHOT_ID}", f"ack {SNAPSHOT_ID}"]
        saved = cache.load_snapshot()
        assert saved is not None and saved.snapshot_id == SNAPSHOT_ID  # persisted before the ACK too
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop(None)
