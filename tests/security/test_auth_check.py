"""The permission check and the interceptor without a server, from docs/SECURITY.md: roles on every
RPC, fail closed for a method missing from the table, health open to all, no tokens configured
means authentication is off (loopback-only servers), `authorization: Bearer TOKEN`. Fast enough to
run for every mutant of `make mutate` (the role table over a real server is tests/security/test_roles.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import grpc
import pytest

from controlplane.api import auth
from controlplane.config import TokenConfig, token_digest
from controlplane.domain import Role
from tests.security.test_roles import EXPECTED, TOKENS

BOOK = auth.TokenBook(
    [TokenConfig(name=f"{role}-1", role=role, sha256=token_digest(secret)) for role, secret in TOKENS.items()]
)
ROLE_OF_TOKEN = {secret: Role(role) for role, secret in TOKENS.items()}


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


@pytest.mark.parametrize("role", sorted(TOKENS))
def test_the_role_table_as_the_check_answers_it(role: str) -> None:
    wrong = []
    for method, allowed in EXPECTED.items():
        principal, status, message = auth.check(BOOK, method, bearer(TOKENS[role]))
        if role in allowed:
            ok = status is None and principal is not None and principal.name == f"{role}-1" and message == ""
        else:
            action = method.rsplit("/", 1)[-1]
            ok = (
                principal is None
                and status == grpc.StatusCode.PERMISSION_DENIED
                and message == f"{role}-1 has role {role}, which may not call {action}"
            )
        if not ok:
            wrong.append(f"{method} as {role}: {status} {message!r}")
    assert not wrong, "\n".join(wrong)


def test_a_method_missing_from_the_table_is_refused_for_everyone() -> None:
    for book in (BOOK, auth.TokenBook([])):  # fail closed, with or without tokens
        for metadata in (bearer(TOKENS["admin"]), []):
            principal, status, message = auth.check(book, "/sluice.v1.ControlPlane/DropEverything", metadata)
            assert principal is None and status == grpc.StatusCode.PERMISSION_DENIED
            assert "DropEverything is not allowed for any role" in message


def test_health_and_reflection_need_no_token() -> None:
    for method in ("/grpc.health.v1.Health/Check", "/grpc.reflection.v1alpha.ServerReflection/Info"):
        principal, status, _ = auth.check(BOOK, method, [])
        assert status is None and principal is not None


def test_without_tokens_every_listed_method_is_open() -> None:
    book = auth.TokenBook([])
    assert not book.enabled and BOOK.enabled
    for method in EXPECTED:
        principal, status, _ = auth.check(book, method, None)
        assert status is None and principal is not None


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        (None, "no token"),
        ([], "no token"),
        ([("x-other", "Bearer v-secret")], "no token"),
        ([("authorization", "Bearer wrong-secret")], "the token is not valid"),
        ([("authorization", "Basic v-secret")], "the token is not valid"),  # only the bearer scheme
        ([("authorization", "Bearer ")], "the token is not valid"),
        ([("authorization", "v-secret")], "the token is not valid"),
    ],
)
def test_a_missing_or_wrong_token_is_unauthenticated(metadata: Any, says: str) -> None:
    principal, status, message = auth.check(BOOK, "/sluice.v1.ControlPlane/ListVersions", metadata)
    assert principal is None and status == grpc.StatusCode.UNAUTHENTICATED and says in message


def test_the_bearer_scheme_is_case_insensitive_and_bytes_are_read() -> None:
    # RFC 7235: the scheme is case-insensitive; grpc may hand metadata values as bytes.
    for metadata in (
        [("authorization", "bearer v-secret")],
        [("authorization", b"Bearer v-secret")],
        [("other", "x"), ("authorization", "BEARER  v-secret ")],
    ):
        principal, status, _ = auth.check(BOOK, "/sluice.v1.ControlPlane/ListVersions", metadata)
        assert status is None and principal is not None and principal.role == Role.VIEWER


def test_a_plain_token_entry_authenticates_like_a_digest() -> None:
    book = auth.TokenBook([TokenConfig(name="ops", role="operator", token="plain-secret")])
    principal, status, _ = auth.check(book, "/sluice.v1.ControlPlane/Promote", bearer("plain-secret"))
    assert status is None and principal is not None and (principal.name, principal.role) == ("ops", Role.OPERATOR)
    assert book.names() == [("ops", Role.OPERATOR)]


class Details(NamedTuple):
    """grpc.HandlerCallDetails as the server hands it over."""

    method: str
    invocation_metadata: tuple[()] = ()


class Context:
    def __init__(self, metadata: Any, remaining: float | None = None) -> None:
        self.metadata = metadata
        self.remaining = remaining
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def invocation_metadata(self) -> Any:
        return self.metadata

    def time_remaining(self) -> float | None:
        return self.remaining

    async def abort(self, code: grpc.StatusCode, message: str) -> None:
        self.aborted = (code, message)
        raise asyncio.CancelledError  # what grpc.aio does: the handler stops here


async def _items() -> AsyncIterator[str]:
    yield "a"
    yield "b"


def _handlers() -> dict[str, grpc.RpcMethodHandler]:
    async def unary(request: Any, context: Any) -> str:
        return f"answer to {request}"

    async def stream(request: Any, context: Any) -> AsyncIterator[str]:
        async for item in _items():
            yield item

    return {
        "unary_unary": grpc.unary_unary_rpc_method_handler(unary),
        "unary_stream": grpc.unary_stream_rpc_method_handler(stream),
        "stream_unary": grpc.stream_unary_rpc_method_handler(unary),
        "stream_stream": grpc.stream_stream_rpc_method_handler(stream),
    }


async def _call(handler: grpc.RpcMethodHandler, kind: str, context: Context) -> Any:
    behaviour = getattr(handler, kind)
    if kind.endswith("_stream"):
        return [item async for item in behaviour("q", context)]
    return await behaviour("q", context)


@pytest.mark.parametrize("kind", ["unary_unary", "unary_stream", "stream_unary", "stream_stream"])
async def test_the_interceptor_checks_every_kind_of_call_and_passes_the_answers_through(kind: str) -> None:
    interceptor = auth.AuthInterceptor(BOOK, default_deadline=30.0)
    method = "/sluice.v1.ControlPlane/ListVersions"

    async def continuation(details: Any) -> grpc.RpcMethodHandler:
        return _handlers()[kind]

    details = Details(method)
    handler = await interceptor.intercept_service(continuation, details)
    assert handler is not None and getattr(handler, kind) is not None
    allowed = Context(bearer(TOKENS["viewer"]))
    expected = ["a", "b"] if kind.endswith("_stream") else "answer to q"
    assert await _call(handler, kind, allowed) == expected and allowed.aborted is None

    refused = Context(bearer(TOKENS["agent"]))
    with pytest.raises(asyncio.CancelledError):
        await _call(handler, kind, refused)
    assert refused.aborted is not None and refused.aborted[0] == grpc.StatusCode.PERMISSION_DENIED


async def test_an_unknown_method_gets_no_handler_to_guard() -> None:
    async def continuation(details: Any) -> None:
        return None

    details = Details("/sluice.v1.ControlPlane/Nothing")
    assert await auth.AuthInterceptor(BOOK).intercept_service(continuation, details) is None


async def test_a_callers_own_deadline_is_left_to_grpc() -> None:
    async def slow(request: Any, context: Any) -> str:
        await asyncio.sleep(0.01)  # a handler that takes a while, far past the default below
        return "done"

    assert auth.AuthInterceptor(BOOK).default_deadline == 0.0  # off unless configured
    guarded = auth._guard(BOOK, "/sluice.v1.ControlPlane/ListDeployments", slow, False, default_deadline=1e-9)
    assert await guarded(None, Context(bearer(TOKENS["admin"]), remaining=60.0)) == "done"
    cut = Context(bearer(TOKENS["admin"]), remaining=None)
    with pytest.raises(asyncio.CancelledError):
        await guarded(None, cut)
    assert cut.aborted is not None and cut.aborted[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert cut.aborted[1].startswith("ListDeployments took longer than 1e-09 s, the server's limit")
