"""The agent's connection to the control plane: one `Connect` stream, kept up forever.

Hello (stable id, cached sha256s, applied generations) -> HelloAck -> snapshots. Each snapshot
is applied (fetch + verify artifacts, open sessions, swap the table, persist) and only then ACKed,
or NACKed with the reasons; a reply that finds the outbox full (a backlog of reports) is kept
and queued at the next heartbeat, never dropped (the newest reply replaces an older one).
Heartbeats flow both ways; a control plane silent for several
heartbeats is treated as gone. Metric reports wait in a bounded buffer (on disk too: `agent.spool`)
until their ReportAck and are sent again, in order, after a reconnect; so are the label batches of
the Feedback RPC (`agent.label_spool`) until their LabelBatchAck. Reconnects back off
exponentially with jitter.

It stays one module: the reconnect loop, the session, report sending and snapshot apply/fetch all
act on the same channel, stub, outbox and connected state, and applying a snapshot itself is
already `agent.serving`'s; a split would only pass that state across a module boundary.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from agent.cache import AgentCache, ArtifactMismatch
from agent.label_spool import LabelSpool
from agent.reports import ReportBuffer
from agent.serving import ApplyError, ServingTable, SnapshotApplier
from core.text import printable
from protos import agent_pb2, agent_pb2_grpc
from runtime.logrecords import SegmentFormat

log = logging.getLogger("sluice.agent")

SOFTWARE_VERSION = "sluice-agent 0.1.0"
BACKOFF_START = 0.2
BACKOFF_CAP = 0.5  # keeps "a change lands within 2 s of a healed partition" true by default
DEFAULT_HEARTBEAT = 2.0
MISSED_HEARTBEATS = 3
FETCH_TIMEOUT = 300.0
# Messages waiting to be written to the control plane. Reports are resent from the ReportBuffer
# and heartbeats are only liveness, so a full outbox drops instead of growing without bound.
OUTBOX_LIMIT = 1000
# Room reports never take: snapshot replies, heartbeats and the Goodbye always find a place.
CONTROL_ROOM = 16
CONNECT_METHOD = "/sluice.v1.AgentHub/Connect"
#: what goes up the Connect stream: a message, or one serialised already off the event loop (a
#: prediction-log segment: serialising 8 MB costs about 2 ms, `agent.logship`)
Upward = agent_pb2.AgentMessage | bytes


def serialize_up(message: Upward) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


# Windows the control plane refused (ReportAck.refused) are logged at most this often per reason.
REFUSAL_LOG_SECONDS = 60.0


@dataclass
class LinkOptions:
    address: str
    name: str
    host: str
    serve_address: str
    labels: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    credentials: grpc.ChannelCredentials | None = None
    max_message_bytes: int = 16 * 1024 * 1024
    # Longest wait between reconnect attempts, and (at least 1 s) the longest a connect attempt may
    # take: how soon after a network cut heals the agent is back (and applies what changed meanwhile).
    reconnect_max_seconds: float = BACKOFF_CAP


def _now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


#: refusals by the control plane (it answered, and said no), with what to do about each
REFUSAL_HINTS = {
    grpc.StatusCode.UNAUTHENTICATED: " (set SLUICE_TOKEN to a token with role 'agent')",
    grpc.StatusCode.PERMISSION_DENIED: " (set SLUICE_TOKEN to a token with role 'agent')",
    grpc.StatusCode.FAILED_PRECONDITION: "",
}


def refusal_hint(exc: grpc.aio.AioRpcError) -> str:
    """What to do about a refusal, unless the control plane's message says it already (an id or
    name registered to another credential is no matter of the token's role)."""
    if exc.code() == grpc.StatusCode.PERMISSION_DENIED and "has role" not in (exc.details() or ""):
        return ""
    return REFUSAL_HINTS.get(exc.code(), "")


class ControlPlaneLink:
    """Owns the stream to the control plane. `run()` never returns until cancelled."""

    def __init__(
        self,
        options: LinkOptions,
        agent_id: str,
        cache: AgentCache,
        applier: SnapshotApplier,
        get_table: Callable[[], ServingTable | None],
        swap_table: Callable[[ServingTable], Awaitable[None]],
        reports: ReportBuffer,
        on_connected: Callable[[bool], None] = lambda _up: None,
        labels: LabelSpool | None = None,
        on_log_ack: Callable[[agent_pb2.LogSegmentAck], None] = lambda _ack: None,
    ) -> None:
        self.options = options
        self.agent_id = agent_id
        self.cache = cache
        self.applier = applier
        self.get_table = get_table
        self.swap_table = swap_table
        self.reports = reports
        #: Feedback's labels waiting for the control plane's label store
        self.labels = labels
        self.on_connected = on_connected
        self.on_log_ack = on_log_ack
        self.connected = False
        self.heartbeat_seconds = DEFAULT_HEARTBEAT
        self.report_seconds = 1.0
        self.connects = 0
        #: the newest log-segment format the control plane of the current stream takes (HelloAck)
        self.segment_format = SegmentFormat.PARQUET
        self.last_nack = ""
        self._outbox: asyncio.Queue[Upward] | None = None
        self._pending: agent_pb2.Snapshot | None = None
        self._snapshot_ready = asyncio.Event()
        #: the ACK/NACK of the newest applied snapshot when the outbox had no room for it
        self._owed_reply: agent_pb2.AgentMessage | None = None
        self._channel: grpc.aio.Channel | None = None
        self._stub: agent_pb2_grpc.AgentHubStub | None = None
        self._apply_lock = asyncio.Lock()
        #: windows the control plane refused, by reason, and when each reason was last logged
        self.refused_windows: dict[str, int] = {}
        self._refusal_logged: dict[str, float] = {}

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.options.token}"),) if self.options.token else ()

    # ---- the reconnect loop ----

    async def run(self) -> None:
        backoff = BACKOFF_START
        failures = 0  # in a row: the first is logged, then about once a minute
        while True:
            started = time.monotonic()
            connects_before = self.connects
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                if exc.code() in REFUSAL_HINTS:
                    if failures % 12 == 0:
                        log.warning(
                            "the control plane at %s refused this agent: %s%s",
                            self.options.address,
                            exc.details(),
                            refusal_hint(exc),
                        )
                elif failures % 12 == 0 or self.connects > connects_before:
                    log.info(
                        "control plane %s: %s %s%s (serving the last snapshot meanwhile; retrying)",
                        self.options.address,
                        exc.code().name,
                        exc.details() or "",
                        self._tls_hint(exc),
                    )
            except Exception:
                log.exception("control-plane stream failed")
            finally:
                self._set_connected(False)
                await self._close_channel()
            failures = 0 if self.connects > connects_before else failures + 1
            cap = self.options.reconnect_max_seconds
            if self.connects > connects_before and time.monotonic() - started > 2 * cap:
                backoff = BACKOFF_START  # it was up for a while: start over
            # Exponential backoff with jitter, never above the cap.
            delay = random.uniform(backoff / 2, backoff)
            log.debug("reconnecting in %.2f s", delay)
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, cap)

    def _tls_hint(self, exc: grpc.aio.AioRpcError) -> str:
        """gRPC reports a refused TLS handshake as a closed socket: say what to check."""
        if exc.code() != grpc.StatusCode.UNAVAILABLE or self.connects:
            return ""
        details = (exc.details() or "").lower()
        if self.options.credentials is not None and ("socket closed" in details or "handshake" in details):
            return (
                " - the TLS handshake failed: check that --tls-ca signed the control plane's certificate and,"
                " if it requires client certificates, that --tls-cert/--tls-key are signed by its client CA"
            )
        if self.options.credentials is None and ("socket closed" in details or "connection reset" in details):
            return " - if the control plane serves TLS, pass --tls-ca (env SLUICE_TLS_CA)"
        return ""

    def _set_connected(self, up: bool) -> None:
        if up != self.connected:
            self.connected = up
            self.on_connected(up)

    async def _close_channel(self) -> None:
        if self._channel is not None:
            channel, self._channel, self._stub = self._channel, None, None
            await channel.close(grace=None)

    def _open_channel(self) -> agent_pb2_grpc.AgentHubStub:
        limit = self.options.max_message_bytes
        channel_options = [
            ("grpc.max_receive_message_length", max(limit, 32 << 20)),
            ("grpc.max_send_message_length", max(limit, 32 << 20)),
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", int(self.options.reconnect_max_seconds * 1000)),
            # Also gRPC's connect timeout (20 s by default): a SYN lost in a cut link is retried soon.
            ("grpc.min_reconnect_backoff_ms", int(max(1.0, self.options.reconnect_max_seconds) * 1000)),
            # Each session opens a fresh channel: it must not inherit the backoff of a shared subchannel.
            ("grpc.use_local_subchannel_pool", 1),
        ]
        if self.options.credentials is not None:
            self._channel = grpc.aio.secure_channel(
                self.options.address, self.options.credentials, options=channel_options
            )
        else:
            self._channel = grpc.aio.insecure_channel(self.options.address, options=channel_options)
        self._stub = agent_pb2_grpc.AgentHubStub(self._channel)
        return self._stub

    def _hello(self) -> agent_pb2.AgentMessage:
        table = self.get_table()
        return agent_pb2.AgentMessage(
            hello=agent_pb2.Hello(
                agent_id=self.agent_id,
                name=self.options.name,
                host=self.options.host or socket.gethostname(),
                address=self.options.serve_address,
                labels=self.options.labels,
                cached_sha256=self.cache.cached_sha256s(),
                applied_generations=table.generations() if table is not None else {},
                applied_digests=table.digests() if table is not None else {},
                software_version=SOFTWARE_VERSION,
            )
        )

    async def _session(self) -> None:
        self._open_channel()
        assert self._channel is not None
        outbox: asyncio.Queue[Upward] = asyncio.Queue(OUTBOX_LIMIT)
        outbox.put_nowait(self._hello())
        self._outbox = outbox
        # Connect as the stub's, but its serializer also takes messages serialised already (`Upward`)
        connect = self._channel.stream_stream(
            CONNECT_METHOD, request_serializer=serialize_up, response_deserializer=agent_pb2.ControlMessage.FromString
        )
        call = connect(metadata=self.metadata)
        last_heard = time.monotonic()
        gone = False  # set by the watchdog: its cancel of the call ends this session, not the link

        async def writer() -> None:
            while True:
                await call.write(await outbox.get())

        async def watchdog() -> None:
            # A control plane that stopped talking (host gone, network cut) ends the stream.
            nonlocal gone
            while True:
                await asyncio.sleep(self.heartbeat_seconds / 2)
                silent = time.monotonic() - last_heard
                if silent > self.heartbeat_seconds * MISSED_HEARTBEATS + 1.0:
                    log.warning("control plane silent for %.1f s; reconnecting", silent)
                    gone = True
                    call.cancel()
                    return

        async def heartbeats() -> None:
            while True:
                await asyncio.sleep(self.heartbeat_seconds)
                self._send_owed_reply()
                if not outbox.full():  # a stalled stream is the watchdog's business
                    outbox.put_nowait(agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat(at=_now())))

        tasks = [asyncio.create_task(writer(), name="cp-writer")]
        try:
            while True:
                try:
                    read = await call.read()
                except asyncio.CancelledError:
                    # A locally cancelled call raises CancelledError in read(): when the watchdog
                    # did it, reconnect; when this task itself is being cancelled, stop.
                    current = asyncio.current_task()
                    if gone and current is not None and not current.cancelling():
                        return
                    raise
                if read is grpc.aio.EOF:
                    log.info("the control plane closed the stream")
                    return
                assert isinstance(read, agent_pb2.ControlMessage)
                message = read
                last_heard = time.monotonic()
                kind = message.WhichOneof("body")
                if kind == "hello_ack":
                    ack = message.hello_ack
                    if ack.heartbeat_seconds > 0:
                        self.heartbeat_seconds = ack.heartbeat_seconds
                    if ack.report_seconds > 0:
                        self.report_seconds = ack.report_seconds
                    self.segment_format = (  # an earlier control plane takes an earlier format
                        SegmentFormat.RECORDS
                        if ack.record_segments
                        else SegmentFormat.ARROW
                        if ack.arrow_segments
                        else SegmentFormat.PARQUET
                    )
                    self.connects += 1
                    self._owed_reply = None  # this stream starts with a fresh snapshot to answer
                    self._set_connected(True)
                    log.info("connected to the control plane at %s", self.options.address)
                    if len(tasks) == 1:
                        tasks += [
                            asyncio.create_task(watchdog(), name="cp-watchdog"),
                            asyncio.create_task(heartbeats(), name="cp-heartbeats"),
                            asyncio.create_task(self._apply_loop(), name="cp-apply"),
                        ]
                    self.reports.forget_sent()
                    self.send_reports()
                    if self.labels is not None:
                        self.labels.forget_sent()
                        self.send_labels()
                elif kind == "snapshot":
                    self._pending = message.snapshot  # newest wins: each snapshot is complete
                    self._snapshot_ready.set()
                elif kind == "log_segment_ack":
                    self.on_log_ack(message.log_segment_ack)
                elif kind == "report_ack":
                    self.reports.ack(message.report_ack.seq)
                    if message.report_ack.refused:
                        self._refused(message.report_ack)
                elif kind == "labels_ack" and self.labels is not None:
                    self.labels.ack(message.labels_ack)
                # heartbeats only refresh last_heard
        finally:
            self._outbox = None
            call.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _refused(self, ack: agent_pb2.ReportAck) -> None:
        """The report is stored, but some of its windows were not (a route this agent was not sent,
        counts beyond the control plane's limits...): count them, and say so now and then."""
        now = time.monotonic()
        for reason, n in sorted(ack.refused.items()):
            self.refused_windows[reason] = self.refused_windows.get(reason, 0) + n
            if now - self._refusal_logged.get(reason, -REFUSAL_LOG_SECONDS) >= REFUSAL_LOG_SECONDS:
                self._refusal_logged[reason] = now
                log.warning(
                    "the control plane refused %d window(s) of report %d (%s; %d so far); see its log",
                    n,
                    ack.seq,
                    printable(reason[:64]),
                    self.refused_windows[reason],
                )

    def send(self, message: Upward) -> bool:
        outbox = self._outbox
        if outbox is None or not self.connected or outbox.full():
            return False
        outbox.put_nowait(message)
        return True

    async def say_goodbye(self, reason: str, wait: float) -> None:
        """Tell the control plane this agent stops on purpose; wait (bounded) until it is written."""
        if not self.send(agent_pb2.AgentMessage(goodbye=agent_pb2.Goodbye(reason=reason))):
            return
        outbox = self._outbox
        deadline = asyncio.get_running_loop().time() + wait
        while outbox is not None and not outbox.empty() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)  # the writer has taken it: let it reach the wire

    def send_reports(self) -> int:
        """Queue the reports not yet in flight; returns how many were queued."""
        if not self.connected:
            return 0
        resend_after = max(10.0, 10 * self.report_seconds)
        sent = 0
        for report in self.reports.to_send(resend_after):
            outbox = self._outbox
            if outbox is None or outbox.qsize() >= OUTBOX_LIMIT - CONTROL_ROOM:
                break
            if not self.send(agent_pb2.AgentMessage(report=report)):
                break
            self.reports.mark_sent(report.seq)
            sent += 1
        return sent

    def send_labels(self) -> int:
        """Queue the label batches not in flight (as reports do, leaving the control room free)."""
        if not self.connected or self.labels is None:
            return 0
        sent = 0
        for batch in self.labels.to_send():
            outbox = self._outbox
            if outbox is None or outbox.qsize() >= OUTBOX_LIMIT - CONTROL_ROOM:
                break
            if not self.send(agent_pb2.AgentMessage(labels=batch)):
                break
            self.labels.mark_sent(batch.batch_id)
            sent += 1
        return sent

    # ---- snapshots ----

    async def _apply_loop(self) -> None:
        while True:
            await self._snapshot_ready.wait()
            self._snapshot_ready.clear()
            snapshot, self._pending = self._pending, None
            if snapshot is None:
                continue
            reply = await self.apply(snapshot)
            self._owed_reply = reply  # the newest reply replaces any older one still owed
            self._send_owed_reply()

    def _send_owed_reply(self) -> None:
        """Queue the owed ACK/NACK if there is room; otherwise it waits for the next heartbeat."""
        reply = self._owed_reply
        if reply is not None and self.send(reply):
            self._owed_reply = None

    async def apply(self, snapshot: agent_pb2.Snapshot) -> agent_pb2.AgentMessage:
        """Apply one snapshot; returns the ACK or NACK to send."""
        async with self._apply_lock:
            table, problems = await self.applier.apply(snapshot, self.get_table(), self.fetch)
            await self.swap_table(table)
            try:
                await asyncio.to_thread(self.cache.save_snapshot, table.applied_snapshot())
                in_use = [r.sha256 for d in table.deployments.values() for r in d.routes]
                await asyncio.to_thread(self.cache.collect_garbage, in_use)
            except OSError as exc:
                problems.append(f"cannot write the cache {self.cache.root}: {exc}")
        generations = table.generations()
        digests = table.digests()
        if problems:
            reason = "; ".join(problems)
            self.last_nack = reason
            log.warning("snapshot %s refused: %s", snapshot.snapshot_id, reason)
            return agent_pb2.AgentMessage(
                nack=agent_pb2.SnapshotNack(
                    snapshot_id=snapshot.snapshot_id, reason=reason, generations=generations, digests=digests
                )
            )
        log.info(
            "applied snapshot %s: %s",
            snapshot.snapshot_id,
            ", ".join(f"{n}@{g}" for n, g in sorted(generations.items())) or "no deployments",
        )
        return agent_pb2.AgentMessage(
            ack=agent_pb2.SnapshotAck(snapshot_id=snapshot.snapshot_id, generations=generations, digests=digests)
        )

    async def fetch(self, sha256: str) -> Path:
        """Download one artifact into the cache, verifying its sha256 (ApplyError when it fails)."""
        stub = self._stub
        if stub is None:
            raise ApplyError(f"artifact {sha256[:12]} is missing and the control plane is not connected")
        download = self.cache.begin_download(sha256)
        try:
            call = stub.FetchArtifact(
                agent_pb2.FetchArtifactRequest(sha256=sha256), metadata=self.metadata, timeout=FETCH_TIMEOUT
            )
            async for chunk in call:
                if chunk.offset != download.size:
                    raise ApplyError(
                        f"artifact {sha256[:12]}: chunk at offset {chunk.offset}, expected {download.size}"
                    )
                await asyncio.to_thread(download.write, chunk.data)
            return await asyncio.to_thread(download.commit)
        except ArtifactMismatch as exc:
            raise ApplyError(f"sha256 mismatch: {exc}") from exc
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise ApplyError(f"unknown artifact {sha256[:12]}: the control plane does not have it") from exc
            raise ApplyError(f"cannot fetch artifact {sha256[:12]}: {exc.code().name} {exc.details()}") from exc
        finally:
            download.discard()
