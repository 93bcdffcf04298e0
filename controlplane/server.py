"""The control plane process: gRPC server lifecycle, background loops and graceful shutdown."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from controlplane import components
from controlplane.api.auth import AuthInterceptor, TokenBook
from controlplane.api.bounded import ModelLanes
from controlplane.api.service import ControlPlaneService
from controlplane.artifacts import ArtifactStore
from controlplane.config import Config, load_config
from controlplane.context import Context
from controlplane.defaults import DEFAULT_ARTIFACTS, DEFAULT_DB, DEFAULT_LISTEN
from controlplane.events import EventBus
from controlplane.host import BackgroundLoop
from controlplane.store.db import Database
from core.decoding import DecodingRegistrar
from core.errors import InvalidInput, Unavailable
from core.lifecycle import metrics_port_for, split_listen_address, wait_for_stop_signal
from protos import controlplane_pb2, controlplane_pb2_grpc

log = logging.getLogger("sluice.controlplane")

SERVICE_NAMES = ("sluice.v1.ControlPlane", "sluice.v1.AgentHub")


def is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(i[4][0]).is_loopback for i in socket.getaddrinfo(host, None))
        except OSError:
            return False


@dataclass
class ServerOptions:
    listen: str = DEFAULT_LISTEN
    db_url: str = DEFAULT_DB
    artifacts: Path = Path(DEFAULT_ARTIFACTS)
    config_path: Path | None = None
    allow_insecure: bool = False
    metrics_port: int | None = None  # None: the --listen port + 1 (7400 -> 7401); 0: off
    config: Config | None = None  # already loaded (the CLI, tests): takes precedence over config_path


@dataclass
class ControlPlaneServer:
    options: ServerOptions
    ctx: Context | None = None
    port: int = 0
    metrics_port: int | None = None  # what /metrics was asked to use (0: any free port), then the bound one
    _server: grpc.aio.Server | None = None
    _registrar: DecodingRegistrar | None = None
    _health: health.aio.HealthServicer | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _executor: ThreadPoolExecutor | None = None
    _lanes: ModelLanes | None = None
    _stoppers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop(grace=0)  # a refused start leaves no listener, thread or loop behind
            raise

    async def _start(self) -> None:
        options = self.options
        config = options.config or load_config(options.config_path)
        book = TokenBook(config.tokens)
        tls = bool(config.tls.cert_file)
        try:  # before anything else is judged about the address
            _host, listen_port = split_listen_address(options.listen)
            self.metrics_port = metrics_port_for(listen_port, options.metrics_port)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if not book.enabled and not is_loopback(options.listen) and not options.allow_insecure:
            raise InvalidInput(
                f"refusing to listen on {options.listen} without tokens: configure tokens "
                "(config file or SLUICE_TOKENS), listen on 127.0.0.1, or pass --allow-insecure"
            )
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sluice-db")
        loop = asyncio.get_running_loop()
        events = EventBus(config.limits.event_queue)
        events.bind(loop)
        db = await loop.run_in_executor(self._executor, Database, options.db_url)
        self.ctx = Context(
            db=db,
            artifacts=ArtifactStore(options.artifacts, config.limits.max_artifact_bytes),
            config=config,
            events=events,
        )
        limit = config.limits.max_message_bytes
        self._server = grpc.aio.server(
            interceptors=[AuthInterceptor(book, config.limits.default_deadline_seconds)],
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),
            ],
        )
        # Every service registers through this, so an undecodable request gets INVALID_ARGUMENT.
        self._registrar = DecodingRegistrar(self._server)
        self._lanes = ModelLanes(config.models)
        controlplane_pb2_grpc.add_ControlPlaneServicer_to_server(
            ControlPlaneService(self.ctx, self._executor, self._lanes), self._registrar
        )
        self._add_components()
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._registrar)
        self._registrar.enable_reflection((*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))
        try:
            if tls:
                from core.tls import server_credentials_from

                credentials = server_credentials_from(
                    config.tls.cert_file, config.tls.key_file, config.tls.client_ca_file
                )
                self.port = self._server.add_secure_port(options.listen, credentials)
            else:
                self.port = self._server.add_insecure_port(options.listen)
        except RuntimeError as exc:  # newer grpcio raises where older ones returned port 0
            raise InvalidInput(f"cannot listen on {options.listen}: the address is in use or invalid ({exc})") from exc
        if self.port == 0:
            raise InvalidInput(f"cannot listen on {options.listen}: the address is in use or invalid")
        await self._server.start()
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("control plane listening on %s (db %s)", self.address, db.safe_url)

    def _add_components(self) -> None:
        """Services and background loops of the later areas (agents, monitoring, experiments)."""
        assert self.ctx is not None and self._server is not None and self._executor is not None
        components.install(self)

    def spawn(self, name: str, loop_fn: BackgroundLoop) -> None:
        """Run a background loop for the server's lifetime; a crash is logged, then restarted."""

        async def guarded() -> None:
            while True:
                try:
                    await loop_fn()
                    return
                except asyncio.CancelledError:
                    raise
                except Unavailable as exc:  # the database is down: one line, no traceback
                    log.warning("background loop %s: %s; restarting in 1 s", name, exc)
                    await asyncio.sleep(1.0)
                except Exception:
                    log.exception("background loop %s failed; restarting in 1 s", name)
                    await asyncio.sleep(1.0)

        self._tasks.append(asyncio.create_task(guarded(), name=name))

    def on_stop(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._stoppers.append(fn)

    @property
    def address(self) -> str:
        host = self.options.listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    @property
    def grpc_server(self) -> DecodingRegistrar:
        """Where components register their gRPC services (`add_*Servicer_to_server`)."""
        assert self._registrar is not None
        return self._registrar

    @property
    def executor(self) -> ThreadPoolExecutor:
        assert self._executor is not None
        return self._executor

    async def stop(self, grace: float = 5.0) -> None:
        """Drain: report NOT_SERVING, stop taking calls, let running calls finish."""
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        for fn in self._stoppers:
            try:
                await fn()
            except Exception:
                log.exception("error while stopping a component")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.stop(grace)
        if self._lanes is not None:
            self._lanes.shutdown()
        sandbox = sys.modules.get("runtime.sandbox")  # loaded once a model was checked
        if sandbox is not None:
            sandbox.stop_running()  # a model check or evaluation still running ends now
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        if self.ctx is not None:
            self.ctx.db.dispose()


async def serve(options: ServerOptions, ready: Callable[[ControlPlaneServer], None] | None = None) -> None:
    server = ControlPlaneServer(options)
    await server.start()
    if ready is not None:
        ready(server)
    await wait_for_stop_signal()
    log.info("shutting down: draining calls")
    await server.stop()


_ = controlplane_pb2  # the generated module registers descriptors used by reflection
