"""Shipping the prediction log's pending segments to the control plane over AgentHub.

Oldest first, at most `max_in_flight` unacknowledged at a time; a segment is deleted only when its
LogSegmentAck arrives: ok (the control plane wrote and recorded it) or an error (refused for good:
its rows are counted as dropped, so the loss is reported). Without an ack a segment is sent again
after `resend_seconds`, and everything in flight is sent again on a new stream (the link's
`connects` changed), so a reconnect or an agent restart loses nothing; the control plane
acknowledges a repeat without writing it twice.

A segment goes as the record file it is (`runtime.logrecords`) to a control plane of this
release; one of an earlier release is sent Arrow or Parquet (`HelloAck`), converted in a worker
thread (`runtime.logsegment`: pyarrow loads then), so an agent upgraded before its control plane
loses no row.

With an S3 sink (`agent/logsink.py`) each segment is first uploaded to the bucket (as the log's
Parquet file, converted from the pending record file in a worker thread), then only its
URI, rows and size travel over AgentHub; the local copy is deleted on the ack, as above. A sink
that is down leaves the segments in the bounded local buffer: uploads are retried with
exponential backoff (0.5 s doubling to 30 s), oldest first, and none is lost within the buffer.
A control plane that cannot read the bucket (its credentials) answers with a deferral
(`retry_after_seconds`): the segments stay, said once in the log, and are announced again only
after that backoff (controlplane/predlog/s3backoff.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from agent.link import Upward
from agent.logpending import SegmentInfo
from agent.logsink import S3Sink
from agent.predlog import PredictionLog
from core.text import printable
from protos import agent_pb2
from runtime.logrecords import SegmentFormat, format_of

log = logging.getLogger("sluice.agent")

#: the segment formats, oldest first: a control plane takes the newest it names and every older one
_RELEASES = (SegmentFormat.PARQUET, SegmentFormat.ARROW, SegmentFormat.RECORDS)
DEFAULT_IN_FLIGHT = 4
#: a segment bigger than this would not fit one message to the control plane (16 MiB by default):
#: sending it would break the stream again and again, so it is dropped and counted instead
MAX_SEND_BYTES = 12 << 20
RESEND_SECONDS = 30.0
SHIP_SECONDS = 0.5
#: backoff of uploads to an S3 sink that failed: from the first, doubling, up to the cap
UPLOAD_BACKOFF = 0.5
UPLOAD_BACKOFF_CAP = 30.0


class LogShipper:
    """Which pending segments are in flight (sent on which stream, when), and their acks."""

    def __init__(
        self,
        predlog: PredictionLog,
        send: Callable[[Upward], bool],
        stream: Callable[[], int],
        max_in_flight: int = DEFAULT_IN_FLIGHT,
        resend_seconds: float = RESEND_SECONDS,
        max_send_bytes: int = MAX_SEND_BYTES,
        sink: S3Sink | None = None,
        accepts: Callable[[], SegmentFormat] = lambda: SegmentFormat.RECORDS,
    ) -> None:
        """`send` queues a message on the current stream (False: not connected, or no room);
        `stream` numbers the streams (the link's `connects`): a new one means nothing is in flight;
        `accepts` is the newest segment format the control plane takes (the link's HelloAck)."""
        self.predlog = predlog
        self.send = send
        self.stream = stream
        self.max_in_flight = max_in_flight
        self.resend_seconds = resend_seconds
        self.max_send_bytes = max_send_bytes
        #: segment id -> (the segment, stream it was sent on, when)
        self._in_flight: dict[str, tuple[SegmentInfo, int, float]] = {}
        self.acked = 0
        self.refused = 0
        self.sink = sink
        self.accepts = accepts
        #: segment id -> (URI, size) of segments already in the bucket, waiting for the ack
        self._uploaded: dict[str, tuple[str, int]] = {}
        self.upload_failures = 0
        self._backoff = 0.0
        self._next_upload = 0.0
        #: announcements the control plane deferred (it cannot read the bucket now), and until when
        #: nothing more is announced (its backoff, LogSegmentAck.retry_after_seconds)
        self.deferred = 0
        self._deferred_until = 0.0

    def _live(self) -> dict[str, tuple[SegmentInfo, int, float]]:
        """What is really still in flight: sent on this stream, not too long ago."""
        stream, now = self.stream(), time.monotonic()
        self._in_flight = {
            k: v for k, v in self._in_flight.items() if v[1] == stream and now - v[2] < self.resend_seconds
        }
        return self._in_flight

    async def ship(self) -> int:
        """Send the oldest pending segments not in flight, up to the bound; returns how many."""
        live = self._live()
        room = self.max_in_flight - len(live)
        if room <= 0:
            return 0
        pending = self.predlog.pending()
        sent = 0
        for info in pending:
            if room <= 0:
                break
            if info.segment_id in live:
                continue
            if self.sink is not None:
                if time.monotonic() < self._deferred_until:
                    break  # the control plane cannot read the bucket yet: one try per its backoff
                message = await self._uploaded_message(info)
                if message is None:
                    break  # the sink is down: later, oldest first
                if not self.send(message):
                    break
                self._in_flight[info.segment_id] = (info, self.stream(), time.monotonic())
                room -= 1
                sent += 1
                continue
            if info.size > self.max_send_bytes:
                log.warning(
                    "log segment %s is %d bytes, beyond the %d a message may carry: its %d row(s) are dropped",
                    info.segment_id, info.size, self.max_send_bytes, info.rows,
                )  # fmt: skip
                self.predlog.drop(info.rows)
                self.predlog.remove(info)
                continue
            try:  # read, converted if need be, put in its message and serialised off the event loop
                built = await asyncio.to_thread(self._message, info)
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:  # unreadable, or not convertible (pyarrow: ArrowInvalid)
                log.warning(
                    "log segment %s cannot be read (%s): its %d row(s) are dropped",
                    info.segment_id, printable(str(exc)[:300]), info.rows,
                )  # fmt: skip
                self.predlog.drop(info.rows)
                self.predlog.remove(info)
                continue
            if not self.send(built):
                break
            self._in_flight[info.segment_id] = (info, self.stream(), time.monotonic())
            room -= 1
            sent += 1
        return sent

    def _message(self, info: SegmentInfo) -> bytes:
        """The serialised AgentMessage (the link sends bytes as they are): serialising an 8 MB
        segment costs about 2 ms, which the event loop does not pay."""
        return info.message(self._read(info)).SerializeToString()

    def _read(self, info: SegmentInfo) -> bytes:
        """The segment's bytes in a format the control plane takes (in a worker thread)."""
        data = info.path.read_bytes()
        found, wanted = format_of(data), self.accepts()
        if found is None:
            raise ValueError("not a segment: neither a record, an Arrow nor a Parquet file")
        if _RELEASES.index(found) <= _RELEASES.index(wanted):
            return data
        from runtime.logsegment import to_arrow, to_parquet  # pyarrow: only for an earlier control plane

        if wanted is SegmentFormat.ARROW:
            return to_arrow(data, self.predlog.agent)
        return to_parquet(data, self.predlog.agent)

    async def _uploaded_message(self, info: SegmentInfo) -> agent_pb2.AgentMessage | None:
        """The segment's message once it is in the bucket (uploading it first), or None while
        the sink is failing (backing off)."""
        assert self.sink is not None
        done = self._uploaded.get(info.segment_id)
        if done is None:
            if time.monotonic() < self._next_upload:
                return None
            try:
                done = await asyncio.to_thread(self.sink.upload, info, self.predlog.agent)
            except FileNotFoundError:
                return None  # acked and removed meanwhile
            except (OSError, ValueError) as exc:  # pyarrow: ArrowIOError, ArrowInvalid
                self.upload_failures += 1
                self._backoff = min(UPLOAD_BACKOFF_CAP, self._backoff * 2 if self._backoff else UPLOAD_BACKOFF)
                self._next_upload = time.monotonic() + self._backoff
                log.warning(
                    "could not upload log segment %s to %s (%s); %d segment(s) wait on disk, next try in %.1f s",
                    info.segment_id, self.sink.location.uri, printable(str(exc)[:300]),
                    len(self.predlog.pending()), self._backoff,
                )  # fmt: skip
                return None
            self._backoff = 0.0
            self._uploaded[info.segment_id] = done
        uri, size = done
        message = info.message(b"")
        message.log_segment.uri, message.log_segment.size = uri, size
        return message

    def on_ack(self, ack: agent_pb2.LogSegmentAck) -> None:
        """The control plane has the segment (ok) or refused it for good: the copy goes."""
        found = self._in_flight.pop(ack.segment_id, None)
        if found is None:
            return  # an ack of a segment already acked (a resend crossed its first ack)
        info = found[0]
        if not ack.ok and ack.retry_after_seconds > 0:  # not refused: kept, announced again later
            self._defer(ack)
            return
        if ack.ok and self._deferred_until:
            self._deferred_until = 0.0
            log.info("the control plane records the log segments of %s again", self._where())
        if ack.ok:
            self.acked += 1
        else:
            self.refused += 1
            self.predlog.drop(info.rows)
            log.warning(
                "the control plane refused log segment %s (%d rows of %s): %s",
                info.segment_id, info.rows, info.deployment, printable(ack.error[:300]),
            )  # fmt: skip
        self._uploaded.pop(info.segment_id, None)
        self.predlog.remove(info)

    def _defer(self, ack: agent_pb2.LogSegmentAck) -> None:
        self.deferred += 1
        first = not self._deferred_until
        self._deferred_until = time.monotonic() + ack.retry_after_seconds
        (log.warning if first else log.debug)(
            "the control plane does not record the log segments of %s yet: %s; %d segment(s) wait on disk "
            "(uploaded ones in the bucket too), next announcement in %.0f s",
            self._where(), printable(ack.error[:400]), len(self.predlog.pending()), ack.retry_after_seconds,
        )  # fmt: skip

    def _where(self) -> str:
        return self.sink.location.uri if self.sink is not None else "this agent"

    async def run(self, seconds: float = SHIP_SECONDS) -> None:
        while True:
            try:
                await self.ship()
            except Exception:
                log.exception("could not ship the prediction log's segments")
            await asyncio.sleep(seconds)
