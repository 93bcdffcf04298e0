"""Bad input to AgentHub: malformed Connect streams and artifact fetches, and bad messages on an open stream."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pytest

from protos import agent_pb2
from tests.security.bad_input.support import (
    EXHAUSTED,
    GARBAGE,
    GRPC_CORE_TEXT,
    HUGE,
    INVALID,
    NOT_FOUND,
    OK,
    TRAVERSAL,
    Case,
    DbSnapshot,
    Env,
    _serialize,
    assert_serving,
    check_case,
    empty_stream,
    hello,
    ref,
)

pytestmark = pytest.mark.xdist_group("bad-input")

CASES = [
    Case("connect-empty-stream", "hub", "Connect", [], OK, "", empty_stream),
    Case(
        "connect-heartbeat-first",
        "hub",
        "Connect",
        [agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat())],
        INVALID,
        "must be a Hello",
    ),
    Case(
        "connect-report-first",
        "hub",
        "Connect",
        [agent_pb2.AgentMessage(report=agent_pb2.MetricReport(seq=1))],
        INVALID,
        "must be a Hello",
    ),
    Case("connect-empty-message", "hub", "Connect", [agent_pb2.AgentMessage()], INVALID, "must be a Hello"),
    Case("connect-garbage", "hub", "Connect", [GARBAGE], INVALID, "AgentMessage"),
    Case("connect-no-agent-id", "hub", "Connect", [hello(agent_id="")], INVALID, "agent_id"),
    Case("connect-traversal-id", "hub", "Connect", [hello(agent_id=TRAVERSAL)], INVALID, "agent_id"),
    Case("connect-id-trailing-newline", "hub", "Connect", [hello(agent_id="probe\n")], INVALID, "agent_id"),
    Case("connect-rtl-name", "hub", "Connect", [hello(name="agent\u202e1")], INVALID, "may only contain"),
    Case("connect-100kB-host", "hub", "Connect", [hello(host=HUGE)], INVALID, "the limit is 255"),
    Case(
        "connect-too-many-labels",
        "hub",
        "Connect",
        [hello(labels={f"k{i}": "v" for i in range(1000)})],
        INVALID,
        "labels",
    ),
    Case("connect-empty-label-key", "hub", "Connect", [hello(labels={"": "v"})], INVALID, "keys must be"),
    Case("connect-oversized", "hub", "Connect", [hello(host="h" * (2 << 20))], EXHAUSTED, GRPC_CORE_TEXT),
    Case(
        "fetch-bogus-sha256",
        "hub",
        "FetchArtifact",
        agent_pb2.FetchArtifactRequest(sha256="not-a-sha"),
        INVALID,
        "not a sha256",
    ),
    Case(
        "fetch-traversal",
        "hub",
        "FetchArtifact",
        agent_pb2.FetchArtifactRequest(sha256=TRAVERSAL),
        INVALID,
        "not a sha256",
    ),
    Case(
        "fetch-uppercase-sha256",
        "hub",
        "FetchArtifact",
        agent_pb2.FetchArtifactRequest(sha256="AB" * 32),
        INVALID,
        "not a sha256",
    ),
    Case(
        "fetch-sha256-trailing-newline",
        "hub",
        "FetchArtifact",
        lambda env: agent_pb2.FetchArtifactRequest(sha256=env.model_sha256 + "\n"),
        INVALID,
        "not a sha256",
    ),
    Case(
        "fetch-unknown-sha256",
        "hub",
        "FetchArtifact",
        agent_pb2.FetchArtifactRequest(sha256="0" * 64),
        NOT_FOUND,
        "no artifact",
    ),
    Case(
        "fetch-offset-past-end",
        "hub",
        "FetchArtifact",
        lambda env: agent_pb2.FetchArtifactRequest(sha256=env.model_sha256, offset=2**63),
        INVALID,
        "past the end",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(env: Env, case: Case) -> None:
    check_case(env, case)


# ---- messages on an open AgentHub.Connect stream ----


def _stream(env: Env, outgoing: queue.Queue[Any]) -> Any:
    def requests() -> Iterator[bytes]:
        while (item := outgoing.get()) is not None:
            yield _serialize(item)

    connect = env.channels["cp"].stream_stream(
        "/sluice.v1.AgentHub/Connect",
        request_serializer=lambda raw: raw,
        response_deserializer=agent_pb2.ControlMessage.FromString,
    )
    return connect(requests(), timeout=60)


def report(seq: int, *windows: agent_pb2.VersionWindow) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(report=agent_pb2.MetricReport(seq=seq, window_seconds=1.0, windows=windows))


def test_agent_stream_refuses_malformed_messages(env: Env) -> None:
    """After a valid Hello, bad ACKs, NACKs and reports change nothing and are not acknowledged.

    A stream carries no status per message: the hub refuses a bad one by not applying it (and,
    for a metric report, by not acknowledging it, or skipping the window that is malformed).
    """
    outgoing: queue.Queue[Any] = queue.Queue()
    call = _stream(env, outgoing)
    try:
        outgoing.put(hello(agent_id="stream-probe", name="stream-probe"))
        responses = iter(call)
        assert next(responses).WhichOneof("body") == "hello_ack"
        assert next(responses).WhichOneof("body") == "snapshot"
        state = DbSnapshot(env.cp.options.db_url.removeprefix("sqlite:///"), None, {"agents": {"last_seen"}})
        before = state.take()
        unknown_role = agent_pb2.VersionWindow(
            deployment="web",
            version=ref("cancer", "v1"),
            role=99,
            requests=5,
            rows=5,  # type: ignore[arg-type]
        )
        for message in (
            agent_pb2.AgentMessage(ack=agent_pb2.SnapshotAck(snapshot_id=1, generations={"web": -1})),
            agent_pb2.AgentMessage(ack=agent_pb2.SnapshotAck(snapshot_id=1, generations={TRAVERSAL: 1})),
            agent_pb2.AgentMessage(ack=agent_pb2.SnapshotAck(snapshot_id=1, generations={HUGE: 1})),
            agent_pb2.AgentMessage(nack=agent_pb2.SnapshotNack(snapshot_id=1, reason="x", generations={"web": -5})),
            report(2**64 - 1),  # beyond the int64 the store keeps
            report(7, unknown_role),  # an enum number protobuf accepts but Sluice does not know
            report(8),  # a valid, empty report: its ACK shows everything before it was handled
        ):
            outgoing.put(message)
        acked: list[int] = []
        for message in responses:
            if message.WhichOneof("body") == "report_ack":
                acked.append(message.report_ack.seq)
                if message.report_ack.seq == 8:
                    break
        assert acked == [7, 8], f"acknowledged {acked}: a report with an impossible seq must not be"
        after = state.take()
        receipts = set(after.pop("metric_receipts")) - set(before.pop("metric_receipts"))
        assert len(receipts) == 2 and all("stream-probe" in r for r in receipts)
        assert after == before, "a malformed message on the stream changed the database"
        state.close()
    finally:
        outgoing.put(None)
        call.cancel()
    assert_serving(env)
