"""An agent's side of AgentHub.Connect, driven by a test: the attacker's script of the hostile-agent
tests (issue 13), and the well-behaved agent it attacks.

One Connect stream over a real channel (plaintext, or TLS with `credentials`), optionally with a
bearer token and its own heartbeats; the test sends AgentMessages and reads ControlMessages.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from protos import agent_pb2, agent_pb2_grpc
from tests.harness import unique


class ScriptedAgent:
    """One Connect stream driven by the test. `agent_id` defaults to a fresh id; `hello` fields
    (name, labels, applied_generations...) override the defaults."""

    def __init__(
        self,
        target: str,
        *,
        token: str = "",
        credentials: grpc.ChannelCredentials | None = None,
        heartbeat: float = 0.0,
        **hello: Any,
    ) -> None:
        self.id: str = hello.pop("agent_id", None) or uuid.uuid4().hex
        self.channel = (
            grpc.secure_channel(target, credentials) if credentials is not None else grpc.insecure_channel(target)
        )
        self._up: queue.Queue[agent_pb2.AgentMessage | None] = queue.Queue()
        self.received: queue.Queue[Any] = queue.Queue()
        fields = {"agent_id": self.id, "name": unique("evil"), "host": "h", "address": "127.0.0.1:1", **hello}
        self.name: str = fields["name"]
        self._up.put(agent_pb2.AgentMessage(hello=agent_pb2.Hello(**fields)))
        metadata = [("authorization", f"Bearer {token}")] if token else []
        self.call = agent_pb2_grpc.AgentHubStub(self.channel).Connect(iter(self._up.get, None), metadata=metadata)
        self.seq = 0
        self._closed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if heartbeat > 0:  # a live agent beats; without, the control plane marks it lost
            threading.Thread(target=self._beat, args=(heartbeat,), daemon=True).start()

    def _read(self) -> None:
        try:
            for message in self.call:
                self.received.put(message)
        except grpc.RpcError as exc:
            self.received.put(exc)
        else:
            self.received.put(EOFError("the control plane ended the stream"))

    def _beat(self, every: float) -> None:
        while not self._closed.wait(every):
            self.send(agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat()))

    def next(self, kind: str, timeout: float = 15.0) -> Any:
        """The next message of this kind (others are skipped); a refused stream raises its RpcError."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.received.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(item, BaseException):
                raise item
            if item.WhichOneof("body") == kind:
                return getattr(item, kind)

    def refusal(self, timeout: float = 15.0) -> grpc.RpcError:
        """The status that ended the stream, which must end before any hello_ack."""
        try:
            ack = self.next("hello_ack", timeout)
        except grpc.RpcError as exc:
            return exc
        raise AssertionError(f"the stream was accepted: {ack}")

    def ended(self, timeout: float = 15.0) -> BaseException:
        """Wait for the stream to end (the messages before are skipped); how it ended."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.received.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(item, BaseException):
                return item

    def snapshot_with(self, deployment: str, generation: int) -> agent_pb2.Snapshot:
        """The next snapshot that carries at least `generation` of `deployment`."""
        while True:
            snapshot = self.next("snapshot")
            if any(d.name == deployment and d.generation >= generation for d in snapshot.deployments):
                return snapshot

    def ack(self, snapshot: agent_pb2.Snapshot, **extra: int) -> None:
        """ACK a snapshot (plus `extra` deployment generations of the script's choosing)."""
        generations = {d.name: d.generation for d in snapshot.deployments} | extra
        digests = {d.name: d.digest for d in snapshot.deployments}
        ack = agent_pb2.SnapshotAck(snapshot_id=snapshot.snapshot_id, generations=generations, digests=digests)
        self.send(agent_pb2.AgentMessage(ack=ack))

    def send(self, message: agent_pb2.AgentMessage) -> None:
        self._up.put(message)

    def report(
        self, *windows: agent_pb2.VersionWindow, ago: timedelta = timedelta(0), seq: int | None = None
    ) -> agent_pb2.ReportAck:
        """Send one report (the next seq, or `seq` again: a replay) and wait for its ACK (it was
        committed, whatever it refused)."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        report = agent_pb2.MetricReport(agent_id=self.id, seq=seq, window_seconds=1.0, windows=windows)
        report.window_start.FromDatetime(datetime.now(UTC) - ago)
        self._up.put(agent_pb2.AgentMessage(report=report))
        while (ack := self.next("report_ack")).seq != seq:
            pass
        return ack

    def serve(self, deployment: str, generation: int) -> None:
        """ACK the first snapshot with `deployment` at `generation` or later, as an agent that
        applied it does (other messages meanwhile are dropped)."""
        self.ack(self.snapshot_with(deployment, generation))

    def close(self) -> None:
        self._closed.set()
        self._up.put(None)
        self.call.cancel()
        self.channel.close()
