"""In-process event bus: committed changes fan out to agent pushes and TUI watchers.

Domain code runs in worker threads; subscribers are asyncio queues on the server's loop, so
`publish` hops onto the loop thread-safely. A slow subscriber loses old events (its queue is
bounded) rather than slowing the control plane: every event only means "re-read the state".
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime

from controlplane.store.models import utcnow

SUBSCRIBER_QUEUE_SIZE = 1000


@dataclass(frozen=True)
class Event:
    id: int
    kind: str  # deployment | traffic | experiment | alert | agent | version | metrics
    deployment: str
    summary: str
    at: datetime = field(default_factory=utcnow)


class EventBus:
    def __init__(self, queue_size: int = SUBSCRIBER_QUEUE_SIZE) -> None:
        self.queue_size = queue_size  # per subscriber: limits.event_queue
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, kind: str, deployment: str = "", summary: str = "") -> Event:
        with self._lock:
            event = Event(next(self._ids), kind, deployment, summary)
        loop = self._loop
        if loop is None or loop.is_closed():
            return event
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(event)
        else:
            loop.call_soon_threadsafe(self._deliver, event)
        return event

    def _deliver(self, event: Event) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                queue.get_nowait()  # drop the oldest: events are hints to re-read
            queue.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self.queue_size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._subscribers.discard(queue)
