"""What an agent does with the control plane's refusals: a log hint only where it helps, and
windows refused in a report's ack (issue 13) counted by reason and logged once a minute per reason
rather than once per report (the report itself was stored, so it is dropped)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata

from agent.cache import AgentCache
from agent.link import ControlPlaneLink, LinkOptions, refusal_hint
from agent.reports import ReportBuffer
from agent.serving import SnapshotApplier
from protos import agent_pb2, agent_pb2_grpc


class Hub(agent_pb2_grpc.AgentHubServicer):
    """Acknowledges every report, refusing one window of each as an unknown route."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    async def Connect(self, request_iterator, context):  # type: ignore[no-untyped-def, override]
        yield agent_pb2.ControlMessage(hello_ack=agent_pb2.HelloAck(heartbeat_seconds=1, report_seconds=1))
        async for message in request_iterator:
            if message.WhichOneof("body") == "report":
                seq = message.report.seq
                self.acked.append(seq)
                yield agent_pb2.ControlMessage(
                    report_ack=agent_pb2.ReportAck(seq=seq, refused={"unknown_route": 1})
                )


async def test_refused_windows_are_counted_and_logged_once_per_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub = Hub()
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentHubServicer_to_server(hub, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    cache = AgentCache(tmp_path / "cache")
    reports = ReportBuffer(cache.agent_id(), 10, reserve=cache.reserve_seqs)
    for _ in range(3):
        reports.add(agent_pb2.MetricReport(window_seconds=1.0))
    link = ControlPlaneLink(
        LinkOptions(address=f"127.0.0.1:{port}", name="refused", host="h", serve_address="h:1"),
        cache.agent_id(),
        cache,
        SnapshotApplier(cache),
        lambda: None,
        lambda table: asyncio.sleep(0),
        reports,
    )
    task = asyncio.create_task(link.run())
    try:
        with caplog.at_level(logging.WARNING, logger="sluice.agent"):
            async with asyncio.timeout(30):
                while len(reports) or link.refused_windows.get("unknown_route", 0) < 3:
                    await asyncio.sleep(0.05)
        assert len(hub.acked) == 3 and link.refused_windows == {"unknown_route": 3}
        logged = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(logged) == 1 and "unknown_route" in logged[0]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop(None)


def refused(code: grpc.StatusCode, details: str) -> AioRpcError:
    return AioRpcError(code, Metadata(), Metadata(), details)


def test_a_role_refusal_says_which_token_to_set_an_ownership_refusal_needs_no_hint() -> None:
    role = refused(grpc.StatusCode.PERMISSION_DENIED, "eve has role viewer, which may not call Connect")
    assert "SLUICE_TOKEN" in refusal_hint(role)
    # The id or name belongs to another credential: the message says what to do; a token hint would mislead.
    owned = refused(grpc.StatusCode.PERMISSION_DENIED, "agent id a1 is registered to another credential, ...")
    assert refusal_hint(owned) == ""
    assert "SLUICE_TOKEN" in refusal_hint(refused(grpc.StatusCode.UNAUTHENTICATED, "the token is not valid"))
    assert refusal_hint(refused(grpc.StatusCode.FAILED_PRECONDITION, "already connected")) == ""
