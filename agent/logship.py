"""Shipping the prediction log's pending segments to the control plane over AgentHub.

Oldest first, at most `max_in_flight` unacknowledged at a time; a segment is deleted only when its
LogSegmentAck arrives: ok (the control plane wrote and recorded it) or an error (refused for good:
its rows are counted as dropped, so the loss is reported). Without an ack a segment is sent again
after `resend_seconds`, and everything in flight is sent again on a new stream (the link's
`connects` changed), so a reconnect or an agent restart loses nothing; the control plane
acknowledges a repeat without writing it twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from agent.predlog import PredictionLog, SegmentInfo
from core.text import printable
from protos import agent_pb2

log = logging.getLogger("sluice.agent")

DEFAULT_IN_FLIGHT = 4
#: a segment bigger than this would not fit one message to the control plane (16 MiB by default):
#: sending it would break the stream again and again, so it is dropped and counted instead
MAX_SEND_BYTES = 12 << 20
RESEND_SECONDS = 30.0
SHIP_SECONDS = 0.5


class LogShipper:
    """Which pending segments are in flight (sent on which stream, when), and their acks."""

    def __init__(
        self,
        predlog: PredictionLog,
        send: Callable[[agent_pb2.AgentMessage], bool],
        stream: Callable[[], int],
        max_in_flight: int = DEFAULT_IN_FLIGHT,
        resend_seconds: float = RESEND_SECONDS,
        max_send_bytes: int = MAX_SEND_BYTES,
    ) -> None:
        """`send` queues a message on the current stream (False: not connected, or no room);
        `stream` numbers the streams (the link's `connects`): a new one means nothing is in flight."""
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
            if info.size > self.max_send_bytes:
                log.warning(
                    "log segment %s is %d bytes, beyond the %d a message may carry: its %d row(s) are dropped",
                    info.segment_id, info.size, self.max_send_bytes, info.rows,
                )  # fmt: skip
                self.predlog.drop(info.rows)
                self.predlog.remove(info)
                continue
            try:
                data = await asyncio.to_thread(info.path.read_bytes)
            except FileNotFoundError:
                continue
            if not self.send(agent_pb2.AgentMessage(log_segment=info.message(data))):
                break
            self._in_flight[info.segment_id] = (info, self.stream(), time.monotonic())
            room -= 1
            sent += 1
        return sent

    def on_ack(self, ack: agent_pb2.LogSegmentAck) -> None:
        """The control plane has the segment (ok) or refused it for good: the copy goes."""
        found = self._in_flight.pop(ack.segment_id, None)
        if found is None:
            return  # an ack of a segment already acked (a resend crossed its first ack)
        info = found[0]
        if ack.ok:
            self.acked += 1
        else:
            self.refused += 1
            self.predlog.drop(info.rows)
            log.warning(
                "the control plane refused log segment %s (%d rows of %s): %s",
                info.segment_id, info.rows, info.deployment, printable(ack.error[:300]),
            )  # fmt: skip
        self.predlog.remove(info)

    async def run(self, seconds: float = SHIP_SECONDS) -> None:
        while True:
            try:
                await self.ship()
            except Exception:
                log.exception("could not ship the prediction log's segments")
            await asyncio.sleep(seconds)
