"""The one place where typed errors (core.errors) become gRPC statuses, on every Sluice server.

`@map_errors` on a servicer class (the control plane's and the agent's alike) wraps every RPC
method: a `SluiceError` becomes its status with the error's message, which tells a person what to
change; anything unexpected is logged with its traceback and answered INTERNAL with a short message
naming the method, so no traceback reaches a caller and no request takes a server down.

    @map_errors                                   # the control plane
    class ControlPlaneService(...): ...

    @map_errors(server="agent", on_refusal=count) # the agent counts each refusal per deployment
    class InferenceService(...): ...
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, overload

import grpc

from core import errors
from core.decoding import UndecodableRequest

STATUS_OF: dict[type[errors.SluiceError], grpc.StatusCode] = {
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Conflict: grpc.StatusCode.ABORTED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.ModelFailed: grpc.StatusCode.INTERNAL,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Cancelled: grpc.StatusCode.CANCELLED,
}

#: on_refusal(servicer, request, status, error): called before a typed error is answered (e.g. to
#: count it)
OnRefusal = Callable[[Any, Any, grpc.StatusCode, errors.SluiceError], None]

C = TypeVar("C", bound=type)


def status_of(exc: errors.SluiceError) -> grpc.StatusCode:
    """The status a typed error is answered with (its own class or its nearest mapped base)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return grpc.StatusCode.UNKNOWN


class _Policy:
    """What one decorated class does besides the mapping: its server's name, log and refusal hook."""

    def __init__(self, server: str, on_refusal: OnRefusal | None, log: logging.Logger) -> None:
        self.server = server
        self.on_refusal = on_refusal
        self.log = log

    async def abort(
        self, servicer: Any, request: Any, context: grpc.aio.ServicerContext, exc: BaseException, method: str
    ) -> None:
        if isinstance(exc, errors.SluiceError):
            status = status_of(exc)
            if self.on_refusal is not None:
                try:
                    self.on_refusal(servicer, request, status, exc)
                except Exception:  # counting must never change the answer
                    self.log.exception("counting a refused %s failed", method)
            await context.abort(status, exc.message)
        if isinstance(exc, UndecodableRequest):  # a streamed message that is not valid protobuf
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        self.log.error("unexpected error in %s", method, exc_info=exc)
        await context.abort(
            grpc.StatusCode.INTERNAL,
            f"internal error in {method}: {type(exc).__name__}; see the {self.server} log",
        )

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        name = method.__name__
        abort = self.abort
        if inspect.isasyncgenfunction(method):

            @functools.wraps(method)
            async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    async for item in method(self, request, context):
                        yield item
                except (grpc.aio.AbortError, GeneratorExit):
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped to a status, never escapes
                    await abort(self, request, context, exc, name)

            return stream

        @functools.wraps(method)
        async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await method(self, request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to a status, never escapes
                await abort(self, request, context, exc, name)

        return unary

    def apply(self, cls: C) -> C:
        for attr in dir(cls):
            value = getattr(cls, attr)
            is_rpc = inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value)
            # RPC names are CapWords; helpers such as `run` are not RPCs and keep their signature.
            if not attr[:1].isupper() or not is_rpc or getattr(value, "_errors_mapped", False):
                continue
            wrapped = self.wrap(value)
            wrapped._errors_mapped = True  # type: ignore[attr-defined]
            setattr(cls, attr, wrapped)
        return cls


@overload
def map_errors(cls: C, /) -> C: ...


@overload
def map_errors(
    *, server: str = "server", on_refusal: OnRefusal | None = None, log: logging.Logger | None = None
) -> Callable[[C], C]: ...


def map_errors(
    cls: C | None = None,
    /,
    *,
    server: str = "server",
    on_refusal: OnRefusal | None = None,
    log: logging.Logger | None = None,
) -> C | Callable[[C], C]:
    """Wrap every public async method (the RPCs) defined on the class or its mixins.

    `server` names the process in the INTERNAL message ("see the agent log"); `on_refusal` is
    called with (servicer, request, status, error) for each typed error before it is answered; `log`
    receives the unexpected errors (default: this module's logger).
    """
    policy = _Policy(server, on_refusal, log or logging.getLogger(__name__))
    if cls is not None:
        return policy.apply(cls)
    return policy.apply
