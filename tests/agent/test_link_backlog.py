"""A snapshot's ACK reaches the control plane even when a backlog of metric reports fills the
agent's outbox (issue 11: the ACK was dropped when the outbox was full, and never sent again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from agent.cache import AgentCache
from agent.link import OUTBOX_LIMIT, ControlPlaneLink, LinkOptions
from agent.reports import ReportBuffer
from agent.serving import ServingTable, SnapshotApplier
from protos import agent_pb2, agent_pb2_grpc

HEARTBEAT = 0.2
SNAPSHOT_ID = 7


class SlowHub(agent_pb2_grpc.AgentHubServicer):
    """Says hello, lets the agent queue its backlog, sends a snapshot, and only then starts reading.
    It beats all along, so the agent never takes it for gone (a reconnect would hide a lost ACK)."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.reports = 0
        self.connects = 0
        self.done = asyncio.Event()

    async def Connect(self, request_iterator, context):  # type: ignore[no-untyped-def, override]
        self.connects += 1
        yield agent_pb2.ControlMessage(hello_ack=agent_pb2.HelloAck(heartbeat_seconds=HEARTBEAT, report_seconds=1))

        async def beats(seconds: float) -> AsyncIterator[agent_pb2.ControlMessage]:
            for _ in range(int(seconds / 0.1)):
                await asyncio.sleep(0.1)
                yield agent_pb2.ControlMessage(heartbeat=agent_pb2.Heartbeat())

        async for beat in beats(1.0):  # the agent queues its reports; nothing is read
            yield beat
        yield agent_pb2.ControlMessage(snapshot=agent_pb2.Snapshot(snapshot_id=SNAPSHOT_ID))
        async for beat in beats(1.0):  # the agent applies it and replies into its clogged outbox
            yield beat

        async def read() -> None:
            async for message in request_iterator:
                kind = message.WhichOneof("body")
                if kind == "ack":
                    self.acked.append(message.ack.snapshot_id)
                    self.done.set()
                elif kind == "report":
                    self.reports += 1

        reader = asyncio.create_task(read())
        try:
            async for beat in beats(3600):
                yield beat
        finally:
            reader.cancel()


async def test_an_ack_behind_a_backlog_of_reports_is_delivered(tmp_path: Path) -> None:
    hub = SlowHub()
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentHubServicer_to_server(hub, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    cache = AgentCache(tmp_path / "cache")
    backlog = OUTBOX_LIMIT * 5 // 2  # ~8 KB each: the stream takes several MB unread, the outbox the rest
    reports = ReportBuffer(cache.agent_id(), backlog, reserve=cache.reserve_seqs)
    for _ in range(backlog):
        window = agent_pb2.VersionWindow(deployment="web", reservoir=[0.5] * 2000, reservoir_features=20)
        reports.add(agent_pb2.MetricReport(windows=[window]))

    async def swap(_table: ServingTable) -> None:
        return None

    link = ControlPlaneLink(
        LinkOptions(address=f"127.0.0.1:{port}", name="backlog", host="h", serve_address="h:1"),
        cache.agent_id(),
        cache,
        SnapshotApplier(cache),
        lambda: None,
        swap,
        reports,
    )
    task = asyncio.create_task(link.run())
    try:
        await asyncio.sleep(0.5)
        link.send_reports()  # as the agent's report loop does every window: the outbox fills up
        assert link._outbox is not None and link._outbox.qsize() >= OUTBOX_LIMIT * 9 // 10  # clogged
        await asyncio.wait_for(hub.done.wait(), timeout=30)
        assert hub.acked == [SNAPSHOT_ID] and hub.connects == 1  # on the first stream, not after a reconnect
        assert hub.reports > 0  # the backlog was really there, ahead of the ACK
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop(None)
