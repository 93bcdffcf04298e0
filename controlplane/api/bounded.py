"""A lane for heavy calls: its own few threads and a bounded wait line.

Registrations and offline evaluations run models in the sandbox, which may take up to its timeout.
On the shared executor enough of them would hold every thread and stall every other RPC
(ListVersions, Deploy, the agents' ACKs). Each kind gets a lane instead: at most `workers` run at
once on the lane's own threads, at most `waiting` more wait on the event loop (holding no thread,
bounded by their deadline), and a call beyond that is refused RESOURCE_EXHAUSTED at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from controlplane.config import ModelsConfig
from core.errors import ResourceExhausted

T = TypeVar("T")

#: calls that may wait for a free worker, per worker
WAITING_PER_WORKER = 4


class Lane:
    def __init__(self, name: str, workers: int, what: str, setting: str) -> None:
        """`what`: the calls in a message ("offline evaluations"); `setting`: the config key of `workers`."""
        self.workers = workers
        self.waiting = workers * WAITING_PER_WORKER
        self.what = what
        self.setting = setting
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"sluice-{name}")
        self._slots: asyncio.Semaphore | None = None
        self._admitted = 0  # running or waiting

    @property
    def admitted(self) -> int:
        return self._admitted

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on one of the lane's threads, or ResourceExhausted when the line is full."""
        if self._admitted >= self.workers + self.waiting:
            raise ResourceExhausted(
                f"{self.workers} {self.what} are running and {self.waiting} waiting, the most this control plane "
                f"takes ([models] {self.setting} = {self.workers}); try again when one has finished"
            )
        if self._slots is None:  # made on the loop that serves the calls
            self._slots = asyncio.Semaphore(self.workers)
        self._admitted += 1
        try:
            async with self._slots:
                call = functools.partial(contextvars.copy_context().run, fn, *args)
                return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        finally:
            self._admitted -= 1

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class ModelLanes:
    """The lanes of the calls that run models: registrations and offline evaluations."""

    def __init__(self, models: ModelsConfig) -> None:
        self.register = Lane("register", models.register_concurrency, "registrations", "register_concurrency")
        self.evaluate = Lane("evaluate", models.evaluate_concurrency, "offline evaluations", "evaluate_concurrency")

    def shutdown(self) -> None:
        self.register.shutdown()
        self.evaluate.shutdown()
