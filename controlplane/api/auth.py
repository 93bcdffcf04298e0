"""Bearer-token authentication and role checks for every RPC, in one interceptor.

The permission of each method is looked up in one table; a method missing from it is refused
(fail closed). Tokens are compared by their sha256 digest in constant time.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from controlplane.config import TokenConfig, token_digest
from controlplane.domain import Principal, Role

OPEN = "open"  # health, reflection, liveness
READ = "read"  # viewer, operator, admin
MUTATE = "mutate"  # operator, admin
ADMIN = "admin"  # admin only
AGENT = "agent"  # agent, admin

_CP = "/sluice.v1.ControlPlane/"
PERMISSIONS: dict[str, str] = {
    **{
        _CP + m: READ
        for m in (
            "ListVersions",
            "GetVersion",
            "ListDeployments",
            "WaitForSync",
            "GetExperiment",
            "ListExperiments",
            "GetStatus",
            "GetMetricSeries",
            "ListAlerts",
            "ListAgents",
            "ListRetrainingRuns",
            "ListHistory",
            "ListAudit",
            "WatchEvents",
            "GetPolicy",
            "ListLabelImports",
            "ExportDataset",
        )
    },
    **{
        _CP + m: MUTATE
        for m in (
            "RegisterVersion",
            "Evaluate",
            "Deploy",
            "SetTraffic",
            "Rollback",
            "StartExperiment",
            "StopExperiment",
            "ResumeExperiment",
            "PauseExperiment",
            "AbortExperiment",
            "Promote",
            "AckAlert",
            "SetPolicy",
            "SubmitLabels",
            "SetLogSampleRate",
            "PurgeLog",
        )
    },
    _CP + "WhoAmI": "any",
    _CP + "ListTokens": ADMIN,
    "/sluice.v1.AgentHub/Connect": AGENT,
    "/sluice.v1.AgentHub/FetchArtifact": AGENT,
}
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# Unary RPCs bounded by something of their own (upload size, data size, timeout_seconds): the
# server-side default deadline (limits.default_deadline_seconds) does not cut them short.
SELF_BOUNDED = frozenset({_CP + "RegisterVersion", _CP + "Evaluate", _CP + "WaitForSync"})

ALLOWED: dict[str, set[Role]] = {
    READ: {Role.VIEWER, Role.OPERATOR, Role.ADMIN},
    MUTATE: {Role.OPERATOR, Role.ADMIN},
    ADMIN: {Role.ADMIN},
    AGENT: {Role.AGENT, Role.ADMIN},
    "any": set(Role),
}

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")
ANONYMOUS = Principal("anonymous", Role.ADMIN)


def current_principal() -> Principal:
    return _principal.get(ANONYMOUS)


@dataclass(frozen=True)
class _Token:
    name: str
    role: Role
    digest: bytes


class TokenBook:
    """The configured tokens. Empty means authentication is off (loopback-only servers)."""

    def __init__(self, tokens: list[TokenConfig]) -> None:
        self._tokens = [
            _Token(t.name, Role(t.role), bytes.fromhex(t.sha256 or token_digest(t.token))) for t in tokens
        ]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def names(self) -> list[tuple[str, Role]]:
        return [(t.name, t.role) for t in self._tokens]

    def resolve(self, token: str) -> Principal | None:
        digest = bytes.fromhex(token_digest(token))
        found: Principal | None = None
        for t in self._tokens:  # no early exit: the time taken does not depend on the match
            if hmac.compare_digest(t.digest, digest):
                found = Principal(t.name, t.role)
        return found


def bearer_token(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else ""
    return None


def check(
    book: TokenBook, method: str, metadata: Any
) -> tuple[Principal | None, grpc.StatusCode | None, str]:
    """(principal, None, "") when allowed, else (None, status, message)."""
    if method.startswith(OPEN_PREFIXES):
        return ANONYMOUS, None, ""
    permission = PERMISSIONS.get(method)
    if permission is None:
        return None, grpc.StatusCode.PERMISSION_DENIED, f"{method} is not allowed for any role"
    if not book.enabled:
        return ANONYMOUS, None, ""
    token = bearer_token(metadata)
    if token is None:
        return (
            None,
            grpc.StatusCode.UNAUTHENTICATED,
            ("no token: set SLUICE_TOKEN (sent as 'authorization: Bearer TOKEN')"),
        )
    principal = book.resolve(token)
    if principal is None:
        return None, grpc.StatusCode.UNAUTHENTICATED, "the token is not valid"
    if principal.role not in ALLOWED[permission]:
        action = method.rsplit("/", 1)[-1]
        return (
            None,
            grpc.StatusCode.PERMISSION_DENIED,
            (f"{principal.name} has role {principal.role.value}, which may not call {action}"),
        )
    return principal, None, ""


def _guard(
    book: TokenBook,
    method: str,
    behavior: Callable[..., Any],
    streaming_response: bool,
    default_deadline: float = 0.0,
) -> Callable[..., Any]:
    if streaming_response:

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            principal, status, message = check(book, method, context.invocation_metadata())
            if status is not None:
                await context.abort(status, message)
            _principal.set(principal)  # type: ignore[arg-type]
            async for item in behavior(request, context):
                yield item

        return stream

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        principal, status, message = check(book, method, context.invocation_metadata())
        if status is not None:
            await context.abort(status, message)
        _principal.set(principal)  # type: ignore[arg-type]
        # A caller without a deadline could hold a handler (and a worker thread) forever.
        if default_deadline <= 0 or method in SELF_BOUNDED or context.time_remaining() is not None:
            return await behavior(request, context)
        try:
            return await asyncio.wait_for(behavior(request, context), default_deadline)
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"{method.rsplit('/', 1)[-1]} took longer than {default_deadline:g} s, the server's limit for "
                "calls without a deadline (limits.default_deadline_seconds); set a deadline to wait longer",
            )

    return unary


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, book: TokenBook, default_deadline: float = 0.0) -> None:
        self.book = book
        self.default_deadline = default_deadline  # limits.default_deadline_seconds; 0 = none

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _guard(self.book, method, handler.unary_unary, False, self.default_deadline),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _guard(self.book, method, handler.unary_stream, True),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _guard(self.book, method, handler.stream_unary, False, self.default_deadline),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            _guard(self.book, method, handler.stream_stream, True),
            handler.request_deserializer,
            handler.response_serializer,
        )
