"""The live side of AgentHub: one session per connected agent, pushes, heartbeats, loss detection.

A session is the server half of one `Connect` stream: an outbox of ControlMessages (snapshots,
heartbeats, report acks) and the time the agent was last heard from. An agent silent for
`lost_after_missed` heartbeats is marked lost and an `agent_lost` alert is opened; it resolves
when the agent connects again.

The push is level-triggered: every committed change (EventBus kinds deployment / traffic /
experiment) marks a snapshot as owed, and the push loop rebuilds one from SQL and queues it on
every session until a rebuild succeeds (a failed rebuild is retried with backoff, never dropped).
A connecting agent is handed a snapshot only when none is owed: never one older than the newest
commit the hub has heard of. The loop owes one when it starts, so nothing committed before it
subscribed is missed.

Every snapshot queued on a session is noted in the agent's route ledger (`routes.py`): its metric
reports are ingested only for the routes it was sent, and each ack counts the windows refused.

Over 400 lines: the Connect loop, the push loop, the event intake and the ingest lanes all read
and change the same state (the sessions, the snapshot owed, the route ledgers); split apart they
would share it through module globals or pass it everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.agenthub import agents
from controlplane.agenthub.identity import NOBODY, Binding, Credential
from controlplane.agenthub.routes import RouteLedger, RouteLedgers, routes_of
from controlplane.agenthub.snapshot import build_snapshot
from controlplane.context import Context
from controlplane.labels.feedback import store_feedback
from controlplane.labels.wire import label_inputs
from controlplane.monitoring import alerts
from controlplane.monitoring.ingest import ingest_report
from controlplane.monitoring.state import state_of
from controlplane.predlog.s3backoff import Deferred
from controlplane.predlog.segments import Segment, receive_segment
from core.errors import FailedPrecondition, InvalidInput, PermissionDenied, Unavailable
from core.text import printable
from core.vocabulary import AgentState, Health
from protos import agent_pb2

log = logging.getLogger("sluice.agenthub")

PUSH_KINDS = frozenset({"deployment", "traffic", "experiment"})
OUTBOX_LIMIT = 10_000
DEFAULT_REPORT_SECONDS = 1.0
LOSS_CHECKS = 4  # silence checks per heartbeat
RECENT_SNAPSHOTS = 16  # per session: enough for any NACK still in flight
REBUILD_RETRY_SECONDS = (0.1, 5.0)  # first and longest wait before trying a failed rebuild again
#: how often agents away longer than agents.forget_after_seconds are looked for: a tenth of it,
#: within these bounds
EXPIRY_CHECK_SECONDS = (0.1, 600.0)

T = TypeVar("T")


@dataclass(eq=False)
class Session:
    hello: agents.AgentHello
    peer: str
    #: when this stream's connect was recorded: every state write for it is conditional on it
    epoch: datetime
    outbox: asyncio.Queue[agent_pb2.ControlMessage | None] = field(default_factory=asyncio.Queue)
    last_seen: float = field(default_factory=time.monotonic)
    closed: bool = False
    lost: bool = False
    #: the agent said Goodbye: its stream ends because it stops on purpose
    leaving: bool = False
    #: generation of each deployment in the last snapshot queued on this session
    sent_generations: dict[str, int] = field(default_factory=dict)
    #: the same for the last few snapshots by id, to know what a (late) NACK refused
    recent_snapshots: dict[int, dict[str, int]] = field(default_factory=dict)
    #: snapshot_nack alerts of this agent may be open (from a NACK, or from before it connected)
    nack_alerts: bool = True
    #: messages queued for this agent before its stream is closed (limits.agent_outbox)
    outbox_limit: int = OUTBOX_LIMIT
    #: what the stream's caller proved (its token, its client certificate)
    credential: Credential = NOBODY
    #: the routes this agent was sent (kept by the hub across its streams): what it may report
    routes: RouteLedger = field(default_factory=lambda: RouteLedger(0.0))
    #: the last bulk write of this stream (a label batch, a log segment), run beside the stream
    bulk: asyncio.Future[None] | None = None

    @property
    def agent_id(self) -> str:
        return self.hello.id

    @property
    def name(self) -> str:
        return self.hello.name

    def send(self, message: agent_pb2.ControlMessage) -> None:
        if self.closed:
            return
        if self.outbox.qsize() >= self.outbox_limit:
            log.warning("agent %s is not reading its stream; closing it", self.name)
            self.close()
            return
        self.outbox.put_nowait(message)

    def send_snapshot(self, snapshot: agent_pb2.Snapshot) -> None:
        if self.closed:
            return
        self.routes.sent(routes_of(snapshot))
        self.sent_generations = {d.name: d.generation for d in snapshot.deployments}
        self.recent_snapshots[snapshot.snapshot_id] = self.sent_generations
        while len(self.recent_snapshots) > RECENT_SNAPSHOTS:
            del self.recent_snapshots[next(iter(self.recent_snapshots))]
        self.send(agent_pb2.ControlMessage(snapshot=snapshot))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.outbox.put_nowait(None)


def _now_timestamp() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


class AgentHub:
    def __init__(self, ctx: Context, executor: Executor, report_seconds: float = DEFAULT_REPORT_SECONDS) -> None:
        self.ctx = ctx
        self.executor = executor
        self.report_seconds = report_seconds
        self.sessions: dict[str, Session] = {}
        #: per agent id, the routes it was sent: its reports for any other are refused
        self.routes = RouteLedgers(
            ctx.config.limits.report_route_grace_seconds, ctx.config.retention.receipt_seconds
        )
        # Agents without a live stream that may still come back: id -> (when they went quiet,
        # the epoch of their last stream; None: from before this process started).
        self.departed: dict[str, tuple[float, datetime | None]] = {}
        self._snapshot: agent_pb2.Snapshot | None = None
        self._snapshot_lock = asyncio.Lock()
        self._next_snapshot_id = time.time_ns() // 1000
        #: a change was committed that no built snapshot shows yet (level-triggered push)
        self._owed = True
        self._events: asyncio.Queue[Any] | None = None
        self._recording: set[asyncio.Future[None]] = set()  # departures being written
        #: one Hello at a time between its checks and its session being registered
        self._opening = asyncio.Lock()
        self._stopping = False

    @property
    def heartbeat_seconds(self) -> float:
        return self.ctx.config.agents.heartbeat_seconds

    @property
    def lost_after(self) -> float:
        return self.ctx.config.agents.heartbeat_seconds * self.ctx.config.agents.lost_after_missed

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    # ---- snapshots ----

    def _take_events(self) -> None:
        """Fold the change events that arrived into `_owed` (a burst owes one snapshot)."""
        queue = self._events
        while queue is not None and not queue.empty():
            if queue.get_nowait().kind in PUSH_KINDS:
                self._owed = True

    async def fresh_snapshot(self) -> agent_pb2.Snapshot:
        """The snapshot of the newest committed state; rebuilt (and pushed to every session) when
        one is owed. Raises when the rebuild fails: the debt stays for the push loop to retry."""
        async with self._snapshot_lock:
            self._take_events()
            if not self._owed and self._snapshot is not None:
                return self._snapshot
            self._owed = False  # a change committed from now on owes the next one
            try:
                snapshot = await self.run(build_snapshot, self.ctx, self._next_snapshot_id + 1)
            except BaseException:
                self._owed = True
                raise
            self._next_snapshot_id += 1
            self._snapshot = snapshot
            for session in list(self.sessions.values()):
                session.send_snapshot(snapshot)
            return snapshot

    async def push_loop(self) -> None:
        """Push after every committed change until the push succeeds; bursts collapse into one."""
        self._events = queue = self.ctx.events.subscribe()
        self._owed = True  # whatever was committed before this loop subscribed
        retry = REBUILD_RETRY_SECONDS[0]
        try:
            while True:
                self._take_events()
                if not self._owed:
                    event = await queue.get()
                    if event.kind in PUSH_KINDS:
                        self._owed = True
                    continue
                try:
                    await self.fresh_snapshot()
                    retry = REBUILD_RETRY_SECONDS[0]
                except Exception as exc:  # noqa: BLE001 - the debt stays: retried below
                    log.warning("could not build the agents' snapshot (%s); trying again in %.1f s", exc, retry)
                    await asyncio.sleep(retry)
                    retry = min(retry * 2, REBUILD_RETRY_SECONDS[1])
        finally:
            self._events = None
            self.ctx.events.unsubscribe(queue)

    # ---- sessions ----

    def _check_live(self, hello: agents.AgentHello, credential: Credential) -> None:
        """A live stream is replaced only by a reconnect of the same agent: same id, same name,
        a credential that may act for it. Refused otherwise, and the live stream stays."""
        binding = Binding.of(self.ctx.config)
        old = self.sessions.get(hello.id)
        if old is not None and not old.closed:
            if not binding.may_act_for(credential, old.credential):
                raise agents.refused_id(hello.id)
            if old.name != hello.name:
                raise FailedPrecondition(
                    f"agent id {hello.id} is connected as {old.name!r}; a Hello under another name cannot "
                    "replace its stream (stop that agent first, or give this one its own --cache directory)"
                )
        twin = next((s for s in self.sessions.values() if s.name == hello.name and s.agent_id != hello.id), None)
        if twin is not None and not twin.closed:
            if not binding.may_act_for(credential, twin.credential):
                raise agents.refused_name(hello.name)
            # Two agents under one name would make `sluice agents`, alerts and --wait ambiguous.
            raise FailedPrecondition(
                f"an agent named {hello.name!r} is already connected (from {twin.hello.host or twin.peer}, "
                f"id {twin.agent_id[:12]}); start this one with another --name"
            )

    async def open(self, hello: agents.AgentHello, peer: str, credential: Credential = NOBODY) -> Session:
        self._check_live(hello, credential)
        # Nothing older than the newest commit: a store that cannot build it refuses the stream
        # (UNAVAILABLE); the agent keeps serving its cache and connects again.
        await self.fresh_snapshot()
        async with self._opening:  # the checks, the record and the registration as one step
            self._check_live(hello, credential)
            connected = await self.run(agents.agent_connected, self.ctx, hello, credential)
            old = self.sessions.get(hello.id)
            if old is not None:
                log.info("agent %s connected again; closing its previous stream", hello.name)
                old.close()
            session = Session(
                hello=hello,
                peer=peer,
                epoch=connected.epoch,
                outbox_limit=self.ctx.config.limits.agent_outbox,
                credential=credential,
                routes=self.routes.open(hello.id),
            )
            self.sessions[hello.id] = session
            self.departed.pop(hello.id, None)
        if connected.previous == AgentState.LOST:
            await self._alert(resolve=True, kind="agent_lost", agent_id=hello.id)
        self.ctx.events.publish("agent", "", f"agent {hello.name} connected from {hello.address or peer}")
        log.info("agent %s (%s) connected from %s", hello.name, hello.id, peer)
        session.send(
            agent_pb2.ControlMessage(
                hello_ack=agent_pb2.HelloAck(
                    heartbeat_seconds=self.heartbeat_seconds,
                    report_seconds=self.report_seconds,
                    arrow_segments=True,
                    record_segments=True,
                )
            )
        )
        # The newest built: any rebuild from here on reaches this session through `sessions`.
        snapshot = self._snapshot
        assert snapshot is not None
        session.send_snapshot(snapshot)
        return session

    async def close(self, session: Session) -> None:
        session.close()
        if self.sessions.get(session.agent_id) is not session:
            return  # replaced by a newer stream of the same agent
        del self.sessions[session.agent_id]
        self.routes.left(session.agent_id)
        if session.lost or self._stopping:
            return
        # Stopped on purpose (it said Goodbye): never lost, no alert. Otherwise it may come back, or be lost.
        state = AgentState.STOPPED if session.leaving else AgentState.DISCONNECTED
        if not session.leaving:
            self.departed[session.agent_id] = (session.last_seen, session.epoch)
        # The stream's handler is often being cancelled right now (the peer went away): the record
        # runs as its own task, so a cancel cannot cut it off between the write and the event.
        record = asyncio.ensure_future(self._record_departure(session, state))
        self._recording.add(record)
        record.add_done_callback(self._recording.discard)
        await asyncio.shield(record)

    async def _record_departure(self, session: Session, state: str) -> None:
        try:
            previous = await self.run(agents.set_state, self.ctx, session.agent_id, state, session.epoch)
        except Exception:
            log.exception("could not record that agent %s is %s", session.name, state)
            return
        if previous is None:
            log.info("agent %s: an older stream ended after a newer one connected; nothing to record", session.name)
            return
        self.ctx.events.publish("agent", "", f"agent {session.name} {state}")
        log.info("agent %s %s", session.name, state)

    async def handle(self, session: Session, message: agent_pb2.AgentMessage) -> None:
        """One message from an agent. Errors are logged; the stream stays up."""
        session.last_seen = time.monotonic()
        kind = message.WhichOneof("body")
        if kind == "heartbeat":
            return
        if kind == "ack":
            await self._on_ack(session, message.ack)
        elif kind == "nack":
            await self._on_nack(session, message.nack)
        elif kind == "report":
            await self._on_report(session, message.report)
        elif kind == "labels":
            self._in_bulk_lane(session, self._on_labels(session, message.labels))
        elif kind == "log_segment":
            self._in_bulk_lane(session, self._on_log_segment(session, message.log_segment))
        elif kind == "goodbye":
            session.leaving = True
            reason = printable(message.goodbye.reason[:200]) or "no reason given"
            log.info("agent %s says goodbye: %s", session.name, reason)
        elif kind == "hello":
            log.warning("agent %s sent a second Hello on one stream; ignored", session.name)

    @staticmethod
    def _in_bulk_lane(session: Session, work: Coroutine[Any, Any, None]) -> None:
        """Label batches and log segments are stored one after another in the stream's own lane,
        beside its other messages: an ACK or a metric report behind a slow bulk write is never
        held up (a rollout waits on ACKs). The agent bounds what it has in flight."""
        previous = session.bulk

        async def in_turn() -> None:
            if previous is not None:
                with contextlib.suppress(BaseException):
                    await previous
            await work

        session.bulk = asyncio.ensure_future(in_turn())

    async def _on_ack(self, session: Session, ack: agent_pb2.SnapshotAck) -> None:
        generations = dict(ack.generations)
        await self.run(agents.record_applied, self.ctx, session.agent_id, generations, dict(ack.digests))
        if session.nack_alerts:
            session.nack_alerts = False
            # Deployments it was sent: an ACK naming others (invented) costs no query each.
            for deployment in ("", *(d for d in generations if d in session.sent_generations)):
                await self._alert(resolve=True, kind="snapshot_nack", agent_id=session.agent_id, deployment=deployment)
        self.ctx.events.publish("agent", "", f"agent {session.name} applied snapshot {ack.snapshot_id}")

    async def _on_nack(self, session: Session, nack: agent_pb2.SnapshotNack) -> None:
        generations = dict(nack.generations)
        # Free text from the agent (often an exception's, on several lines): kept, made printable,
        # so the alert, the event and the log line below cannot carry an escape sequence or a newline.
        reason = printable(nack.reason[: agents.MAX_NACK_TEXT]) or "no reason given"
        # What this snapshot asked for and the agent does not serve: refused (unknown id: nothing).
        asked = session.recent_snapshots.get(nack.snapshot_id, {})
        refused = {d: g for d, g in asked.items() if generations.get(d, 0) < g}
        await self.run(
            agents.record_nack, self.ctx, session.agent_id, reason, generations, refused, dict(nack.digests)
        )
        session.nack_alerts = True
        session.routes.refused()  # it keeps serving what it had: those routes stay reportable
        lagging = [d for d, g in session.sent_generations.items() if generations.get(d, 0) < g] or [""]
        for deployment in lagging:
            await self._alert(
                resolve=False,
                kind="snapshot_nack",
                agent_id=session.agent_id,
                deployment=deployment,
                severity=Health.WARNING,
                message=f"agent {session.name} refused snapshot {nack.snapshot_id}: {reason}",
            )
        self.ctx.events.publish("agent", "", f"agent {session.name} refused snapshot: {reason}")
        log.warning("agent %s NACKed snapshot %s: %s", session.name, nack.snapshot_id, reason)

    async def _on_report(self, session: Session, report: agent_pb2.MetricReport) -> None:
        try:
            allowed = session.routes.allowed()  # read here, in the loop that updates the ledger
            receipt = await self.run(ingest_report, self.ctx, session.agent_id, report, allowed)
        except Exception:
            # Not acknowledged: the agent keeps the report and sends it again.
            log.exception("could not store metric report %s of agent %s", report.seq, session.name)
            return
        ack = agent_pb2.ReportAck(seq=report.seq, refused=receipt.refused)
        session.send(agent_pb2.ControlMessage(report_ack=ack))

    async def _on_labels(self, session: Session, batch: agent_pb2.LabelBatch) -> None:
        """Labels of the agent's Feedback RPC: acked once the label store has them (or refused them
        for good); a failure to store them now is not acked, so the agent sends them again."""

        try:
            deployments = {route[0] for route in session.routes.allowed()}
            rows = label_inputs(batch.rows)
            error = await self.run(
                store_feedback,
                self.ctx,
                session.agent_id,
                session.name,
                batch.batch_id,
                batch.deployment,
                rows,
                deployments,
            )
        except Exception:
            log.exception("could not store label batch %s of agent %s", printable(batch.batch_id[:64]), session.name)
            return
        if error:
            log.warning("agent %s: label batch refused: %s", session.name, printable(error))
        ack = agent_pb2.LabelBatchAck(batch_id=batch.batch_id, ok=not error, error=error)
        session.send(agent_pb2.ControlMessage(labels_ack=ack))

    async def _on_log_segment(self, session: Session, message: agent_pb2.LogSegment) -> None:
        """Store one prediction-log segment, then ack it; a refusal is acked with its reason (the
        agent drops the segment and counts its rows), a failure to store it is not acked (resent)."""

        segment = Segment(
            agent_id=session.agent_id,
            agent_name=session.name,
            segment_id=message.segment_id,
            deployment=message.deployment,
            model=message.version.model,
            version=message.version.version,
            date=message.date,
            rows=int(message.rows),
            data=message.data,
            uri=message.uri,
            size=int(message.size),
        )

        received = state_of(self.ctx).metrics.log_segments_received
        try:
            allowed = session.routes.allowed()  # read here, in the loop that updates the ledger
            stored = await self.run(receive_segment, self.ctx, segment, allowed)
        except Deferred as exc:  # its bucket is unreadable now: said once per outage, then counted
            self._deferred(session, message, exc)
            return
        except (InvalidInput, PermissionDenied) as exc:
            shown = printable(message.segment_id[:64])
            log.warning("refused log segment %s of agent %s: %s", shown, session.name, exc)
            received.labels("refused").inc()
            ack = agent_pb2.LogSegmentAck(segment_id=message.segment_id, ok=False, error=str(exc))
        except Exception:
            shown = printable(message.segment_id[:64])
            log.exception("could not store log segment %s of agent %s", shown, session.name)
            return
        else:
            received.labels("stored" if stored.new else "replay").inc()
            ack = agent_pb2.LogSegmentAck(segment_id=message.segment_id, ok=True)
        session.send(agent_pb2.ControlMessage(log_segment_ack=ack))

    def _deferred(self, session: Session, message: agent_pb2.LogSegment, exc: Deferred) -> None:
        """Tell the agent to keep the segment and send it again after the bucket's backoff."""

        bucket = message.uri.removeprefix("s3://").split("/", 1)[0]
        if exc.first:
            log.warning(
                "log segments of agent %s are not recorded yet: %s; the agent keeps them and sends them "
                "again after a backoff (now %.0f s, up to 10 min); sluice_log_segments_deferred_total counts them",
                session.name, exc, exc.retry_after,
            )  # fmt: skip
        state_of(self.ctx).metrics.log_segments_deferred.labels(printable(bucket[:63])).inc()
        ack = agent_pb2.LogSegmentAck(
            segment_id=message.segment_id, ok=False, error=str(exc), retry_after_seconds=exc.retry_after
        )
        session.send(agent_pb2.ControlMessage(log_segment_ack=ack))

    async def _alert(self, *, resolve: bool, kind: str, agent_id: str, deployment: str = "", **kw: Any) -> None:
        try:
            if resolve:
                await self.run(alerts.resolve_alert, self.ctx, deployment=deployment, kind=kind, agent_id=agent_id)
            else:
                await self.run(alerts.open_alert, self.ctx, deployment=deployment, kind=kind, agent_id=agent_id, **kw)
        except Exception:
            log.exception("could not %s alert %s for agent %s", "resolve" if resolve else "open", kind, agent_id)

    # ---- heartbeats and loss ----

    def startup(self) -> None:
        """Before serving: agents the store believed connected have no stream to this process."""
        now = time.monotonic()
        for agent_id in agents.reset_at_start(self.ctx):
            self.departed[agent_id] = (now, None)

    async def heartbeat_loop(self) -> None:
        # Beats go out once per heartbeat; silence is checked LOSS_CHECKS times as often, so an
        # agent is marked lost within a fraction of a heartbeat after `lost_after_missed` of them.
        checks = 0
        while True:
            await asyncio.sleep(self.heartbeat_seconds / LOSS_CHECKS)
            checks += 1
            await self.tick(beat=checks % LOSS_CHECKS == 0)

    async def tick(self, beat: bool = True) -> None:
        """Mark silent agents lost; with `beat`, also send every live session a heartbeat."""
        now = time.monotonic()
        message = agent_pb2.ControlMessage(heartbeat=agent_pb2.Heartbeat(at=_now_timestamp()))
        alive: dict[str, datetime] = {}
        for session in list(self.sessions.values()):
            if now - session.last_seen > self.lost_after:
                session.lost = True
                session.close()
                self.sessions.pop(session.agent_id, None)
                self.routes.left(session.agent_id)
                await self._mark_lost(session.agent_id, session.name, now - session.last_seen, session.epoch)
            elif beat:
                session.send(message)
                alive[session.agent_id] = session.epoch
        for agent_id, (since, epoch) in list(self.departed.items()):
            if now - since > self.lost_after and agent_id not in self.sessions:
                del self.departed[agent_id]
                name = await self.run(agents.agent_name, self.ctx, agent_id)
                await self._mark_lost(agent_id, name, now - since, epoch)
        if alive:
            try:
                await self.run(agents.touch, self.ctx, alive)
            except Exception:
                log.exception("could not record agent heartbeats")

    async def _mark_lost(self, agent_id: str, name: str, silent: float, epoch: datetime | None) -> None:
        previous = await self.run(agents.set_state, self.ctx, agent_id, AgentState.LOST, epoch)
        if previous is None or previous == AgentState.LOST:
            return  # reconnected since (a newer epoch), unknown, or already lost
        log.warning("agent %s lost: silent for %.1f s", name, silent)
        await self._alert(
            resolve=False,
            kind="agent_lost",
            agent_id=agent_id,
            severity=Health.WARNING,
            message=(
                f"agent {name} has been silent for {silent:.0f} s "
                f"({self.ctx.config.agents.lost_after_missed} missed heartbeats)"
            ),
        )
        self.ctx.events.publish("agent", "", f"agent {name} lost")

    # ---- forgetting agents gone for long ----

    async def expiry_loop(self) -> None:
        forget_after = self.ctx.config.agents.forget_after_seconds
        pause = min(max(forget_after / 10, EXPIRY_CHECK_SECONDS[0]), EXPIRY_CHECK_SECONDS[1])
        while True:
            await self.forget_gone()
            await asyncio.sleep(pause)

    async def forget_gone(self) -> int:
        """Forget every agent away longer than agents.forget_after_seconds; returns how many.

        Each agent is forgotten in its own transaction: one that fails is logged, counted in
        sluice_job_failures_total{job="agent_expiry"} and tried again next round; the others go on.
        """

        forget_after = self.ctx.config.agents.forget_after_seconds
        cutoff = datetime.now(UTC) - timedelta(seconds=forget_after)
        note = f"resolved: the agent was forgotten after {forget_after:g} s away (agents.forget_after_seconds)"
        forgotten = 0
        for agent_id in await self.run(agents.gone_since, self.ctx, cutoff):
            if agent_id in self.sessions:
                continue
            try:
                gone = await self.run(agents.forget, self.ctx, agent_id, cutoff, note)
            except Unavailable:
                raise  # the database is down: the loop tries again next round
            except Exception:
                log.exception("forgetting agent %s failed; trying again next round", agent_id)
                state_of(self.ctx).metrics.job_failures.labels("agent_expiry", "").inc()
                continue
            if gone is None:
                continue  # it came back meanwhile
            forgotten += 1
            self.departed.pop(agent_id, None)
            for info in gone.alerts:
                alerts.announce(self.ctx, info, "resolved")
            self.ctx.events.publish("agent", "", f"agent {gone.name} forgotten after {forget_after:g} s away")
            log.info("agent %s (%s) forgotten: away longer than %g s", gone.name, agent_id, forget_after)
        return forgotten

    async def stop(self) -> None:
        self._stopping = True
        for session in list(self.sessions.values()):
            session.close()
        await asyncio.gather(*self._recording, return_exceptions=True)
