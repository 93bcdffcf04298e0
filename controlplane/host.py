"""What an area of the control plane needs of the server that installs it.

`controlplane.components` hands the server to each area's `install` (agenthub, monitoring,
experiments): it adds gRPC services to `grpc_server`, starts loops with `spawn`, registers
cleanup with `on_stop`. The areas name this protocol, not `controlplane.server`, so the imports
go one way: the server imports the areas, never the reverse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from controlplane.context import Context
from core.decoding import DecodingRegistrar

#: a background loop: runs for the server's lifetime (restarted by `spawn` if it fails)
BackgroundLoop = Callable[[], Awaitable[None]]


class Listening(Protocol):
    @property
    def listen(self) -> str:
        """The address the server was asked to listen on (`--listen`)."""
        ...


class AreaHost(Protocol):
    #: where /metrics was asked to be (None: off), then where it is (the monitoring area binds it)
    metrics_port: int | None

    @property
    def ctx(self) -> Context | None: ...

    @property
    def options(self) -> Listening: ...

    @property
    def address(self) -> str:
        """Where the server listens (host:port), for the processes it starts (retraining)."""
        ...

    @property
    def grpc_server(self) -> DecodingRegistrar: ...

    @property
    def executor(self) -> ThreadPoolExecutor: ...

    def spawn(self, name: str, loop_fn: BackgroundLoop) -> None: ...

    def on_stop(self, fn: Callable[[], Awaitable[None]]) -> None: ...
