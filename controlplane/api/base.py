"""What every servicer mixin shares: the domain context and a way to run blocking work."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from controlplane.api.bounded import ModelLanes
from controlplane.context import Context

T = TypeVar("T")


class ServiceBase:
    def __init__(self, ctx: Context, executor: ThreadPoolExecutor, lanes: ModelLanes | None = None) -> None:
        self.ctx = ctx
        self.executor = executor
        #: registrations and evaluations run models: each kind on its own few threads (the owner
        #: of lanes it passes shuts them down; lanes made here start no thread until used)
        self.lanes = lanes if lanes is not None else ModelLanes(ctx.config.models)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking domain code (SQL, files, onnxruntime) off the event loop."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)
