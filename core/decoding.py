"""Undecodable requests answered INVALID_ARGUMENT, on every gRPC server of Sluice.

gRPC Python parses a request before any servicer code runs; when the bytes are not a valid message
(corrupt wire format, a field of the wrong wire type, a string that is not UTF-8) it answers
UNKNOWN with "Unexpected <class 'google.protobuf.message.DecodeError'>: ...", an exception name the
caller cannot act on. `DecodingRegistrar` moves the parsing into the call, so a bad request gets
INVALID_ARGUMENT naming the message type it should have been. It is shared by the control plane
and the agent (it imports nothing of either).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import grpc
from google.protobuf.message import DecodeError

Deserializer = Callable[[bytes], Any]


class UndecodableRequest(Exception):
    """Raised inside a client-streaming call when one of its messages cannot be parsed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _type_name(deserializer: Deserializer) -> str:
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", "") or "request")


def describe(type_name: str, exc: Exception) -> str:
    detail = str(exc) or "the wire format is corrupt"
    if detail.startswith("Error parsing message") and "': " in detail:
        detail = detail.split("': ", 1)[1]  # the type is named once, below
    return f"the request is not a valid {type_name} message: {detail[:300]}"


def _parser(deserializer: Deserializer, parse: Deserializer | None = None) -> Deserializer:
    """`parse` (else the generated `deserializer`), raising UndecodableRequest that names the
    message type of `deserializer`."""
    name = _type_name(deserializer)
    run = parse or deserializer

    def parsed(raw: bytes) -> Any:
        try:
            return run(raw)
        except (DecodeError, UnicodeDecodeError, ValueError) as exc:
            raise UndecodableRequest(describe(name, exc)) from None

    return parsed


async def _parse_or_abort(parse: Deserializer, raw: bytes, context: grpc.aio.ServicerContext) -> Any:
    try:
        return parse(raw)
    except UndecodableRequest as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)


async def _decoded(parse: Deserializer, raws: AsyncIterator[bytes]) -> AsyncIterator[Any]:
    async for raw in raws:
        yield parse(raw)


def _unary_request(behavior: Callable[..., Any], parse: Deserializer, streaming: bool) -> Callable[..., Any]:
    if streaming:

        async def stream(raw: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            request = await _parse_or_abort(parse, raw, context)
            async for item in behavior(request, context):
                yield item

        return stream

    async def unary(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        request = await _parse_or_abort(parse, raw, context)
        return await behavior(request, context)

    return unary


def _stream_request(behavior: Callable[..., Any], parse: Deserializer, streaming: bool) -> Callable[..., Any]:
    # A message that cannot be parsed raises UndecodableRequest where the servicer reads it; our
    # servicers map it to INVALID_ARGUMENT (core.grpc_errors), and for one that does not (gRPC's
    # reflection) it is mapped here.
    if streaming:

        async def stream(raws: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for item in behavior(_decoded(parse, raws), context):
                    yield item
            except UndecodableRequest as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)

        return stream

    async def unary(raws: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(_decoded(parse, raws), context)
        except UndecodableRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)

    return unary


def decoding_handler(handler: grpc.RpcMethodHandler, parse: Deserializer | None = None) -> grpc.RpcMethodHandler:
    """The same handler, with request parsing moved inside the call (by `parse` when given, in
    place of the generated deserializer)."""
    if handler.request_deserializer is None:
        return handler
    parsing = _parser(handler.request_deserializer, parse)
    serializer = handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _unary_request(handler.unary_unary, parsing, False), None, serializer
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _unary_request(handler.unary_stream, parsing, True), None, serializer
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            _stream_request(handler.stream_unary, parsing, False), None, serializer
        )
    assert handler.stream_stream is not None  # a handler has exactly one of the four kinds
    return grpc.stream_stream_rpc_method_handler(
        _stream_request(handler.stream_stream, parsing, True), None, serializer
    )


class _DecodingGenericHandler(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, parsers: Mapping[str, Deserializer]) -> None:
        self._inner = inner
        self._parsers = parsers
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = self._inner.service(handler_call_details)
            if handler is None:
                return None
            wrapped = self._wrapped[method] = decoding_handler(handler, self._parsers.get(method))
        return wrapped


class DecodingRegistrar:
    """Stands in for the server in the generated `add_*Servicer_to_server` calls.

    Every handler is wrapped once, when it is registered, rather than by an interceptor on every
    call: on the agent's Predict path an interceptor costs more than the parsing it moves.
    Interceptors (authentication) still run before the handler, so before parsing. `parsers`
    replaces the generated deserializer of a method (full name "/package.Service/Method"), e.g.
    the agent's PredictBatch by core.zero_copy's; its errors name the generated one's message type.
    """

    def __init__(self, server: grpc.aio.Server, parsers: Mapping[str, Deserializer] | None = None) -> None:
        self.server = server
        self.parsers: Mapping[str, Deserializer] = parsers or {}

    def add_generic_rpc_handlers(self, handlers: tuple[grpc.GenericRpcHandler, ...]) -> None:
        self.server.add_generic_rpc_handlers(tuple(_DecodingGenericHandler(h, self.parsers) for h in handlers))

    def add_registered_method_handlers(self, service_name: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        wrapped = {
            name: decoding_handler(handler, self.parsers.get(f"/{service_name}/{name}"))
            for name, handler in handlers.items()
        }
        self.server.add_registered_method_handlers(service_name, wrapped)

    def enable_reflection(self, service_names: Iterable[str]) -> None:
        """gRPC server reflection (grpcurl, Postman) for `service_names` and reflection itself.

        `reflection.enable_server_reflection(names, self)` would pick the *sync* servicer, since
        this registrar is not a `grpc.aio.Server`, and every reflection call on the aio server would
        fail with UNKNOWN ("'async for' requires an object with __aiter__ method, got generator").
        The aio servicer is registered explicitly, through this registrar like every service.
        """
        from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc  # servers only, not clients

        names = (*service_names, reflection.SERVICE_NAME)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflection.aio.ReflectionServicer(names), self)
