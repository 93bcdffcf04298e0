"""The AgentHub gRPC service: agents' Connect streams and artifact downloads (thin over
`controlplane.agenthub`), and `install`, which puts it and the hub's loops on the server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from controlplane.agenthub import agents
from controlplane.agenthub.hub import AgentHub, Session
from controlplane.agenthub.identity import MAX_CERTIFICATE_NAME, Binding, Credential
from controlplane.api.auth import current_principal
from controlplane.api.base import ServiceBase
from controlplane.api.errors import map_errors
from controlplane.artifacts import check_sha256
from controlplane.host import AreaHost
from core.errors import InvalidInput
from protos import agent_pb2, agent_pb2_grpc

log = logging.getLogger("sluice.agenthub")

HELLO_TIMEOUT = 30.0
FETCH_CHUNK = 1 << 20


def certificate_name(context: grpc.aio.ServicerContext) -> str:
    """The common name of the client certificate the TLS handshake verified ("" without one)."""
    found = context.auth_context().get("x509_common_name") or ()
    name = next(iter(found), b"").decode("utf-8", "replace")
    if len(name) > MAX_CERTIFICATE_NAME:
        raise InvalidInput(
            f"the client certificate's common name is {len(name)} characters; an agent's is at most "
            f"{MAX_CERTIFICATE_NAME}"
        )
    return name


def credential_of(hub: AgentHub, context: grpc.aio.ServicerContext) -> Credential:
    """What the caller of Connect proved: its token's name, its client certificate's common name."""
    binding = Binding.of(hub.ctx.config)
    certificate = certificate_name(context) if binding.certificates else ""
    return binding.credential(current_principal().name, certificate)


@map_errors
class AgentHubService(ServiceBase, agent_pb2_grpc.AgentHubServicer):
    def __init__(self, hub: AgentHub) -> None:
        super().__init__(hub.ctx, hub.executor)  # type: ignore[arg-type]
        self.hub = hub

    async def Connect(
        self, request_iterator: AsyncIterator[agent_pb2.AgentMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[agent_pb2.ControlMessage]:
        try:
            first = await asyncio.wait_for(anext(request_iterator), HELLO_TIMEOUT)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise InvalidInput(f"no Hello within {HELLO_TIMEOUT:.0f} s of opening the stream") from None
        if first.WhichOneof("body") != "hello":
            raise InvalidInput("the first message on AgentHub.Connect must be a Hello")
        h = first.hello
        hello = agents.validate_hello(
            h.agent_id, h.name, h.host, h.address, dict(h.labels), dict(h.applied_generations), dict(h.applied_digests)
        )
        session = await self.hub.open(hello, context.peer(), credential_of(self.hub, context))
        reader = asyncio.create_task(self._read(session, request_iterator), name=f"agent-{hello.name}")
        try:
            while True:
                message = await session.outbox.get()
                if message is None:
                    break
                yield message
        finally:
            reader.cancel()
            await self.hub.close(session)

    async def _read(self, session: Session, request_iterator: AsyncIterator[agent_pb2.AgentMessage]) -> None:
        try:
            async for message in request_iterator:
                try:
                    await self.hub.handle(session, message)
                except Exception:
                    log.exception("error handling a message from agent %s", session.name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the stream broke: end the session
            log.info("stream of agent %s ended: %s", session.name, exc)
        finally:
            session.close()

    async def FetchArtifact(
        self, request: agent_pb2.FetchArtifactRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[agent_pb2.ArtifactChunk]:
        sha256 = check_sha256(request.sha256)
        total = await self.run(self.ctx.artifacts.size, sha256)
        if request.offset > total:
            raise InvalidInput(f"offset {request.offset} is past the end of the artifact ({total} bytes)")
        chunks = self.ctx.artifacts.read_chunks(sha256, request.offset, FETCH_CHUNK)
        offset = request.offset
        try:
            while True:
                data = await self.run(next, chunks, None)
                if data is None:
                    break
                yield agent_pb2.ArtifactChunk(data=data, offset=offset, total_size=total)
                offset += len(data)
        finally:
            chunks.close()  # type: ignore[attr-defined]  # a generator: closing releases the file


def install(server: AreaHost) -> None:
    """Add the AgentHub service, the push, heartbeat and expiry loops to the server."""
    assert server.ctx is not None
    hub = AgentHub(server.ctx, server.executor)
    hub.startup()  # before the server takes calls (one quick query)
    agent_pb2_grpc.add_AgentHubServicer_to_server(AgentHubService(hub), server.grpc_server)
    server.spawn("agenthub-push", hub.push_loop)
    server.spawn("agenthub-heartbeat", hub.heartbeat_loop)
    server.spawn("agenthub-expiry", hub.expiry_loop)
    server.on_stop(hub.stop)
