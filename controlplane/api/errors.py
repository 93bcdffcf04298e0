"""The one place where domain errors become gRPC status codes.

`@map_errors` on a servicer class wraps every RPC method: a `SluiceError` becomes its status with
the error's message; anything unexpected is logged with its traceback and answered INTERNAL with
a short message, so no traceback reaches a user and no request kills the process.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc

from core import errors
from core.decoding import UndecodableRequest

log = logging.getLogger(__name__)

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
}


def status_of(exc: errors.SluiceError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return grpc.StatusCode.UNKNOWN


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException, method: str) -> None:
    if isinstance(exc, errors.SluiceError):
        await context.abort(status_of(exc), exc.message)
    if isinstance(exc, UndecodableRequest):  # a streamed message that is not valid protobuf
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
    log.exception("unexpected error in %s", method, exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL, f"internal error in {method}: {type(exc).__name__}; see the server log"
    )


def _wrap(method: Callable[..., Any]) -> Callable[..., Any]:
    name = method.__name__
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for item in method(self, request, context):
                    yield item
            except (grpc.aio.AbortError, GeneratorExit):
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to a status, never escapes
                await _abort(context, exc, name)

        return stream

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to a status, never escapes
            await _abort(context, exc, name)

    return unary


C = TypeVar("C", bound=type)


def map_errors(cls: C) -> C:
    """Wrap every public async method (the RPCs) defined on the class or its mixins."""
    for attr in dir(cls):
        value = getattr(cls, attr)
        is_rpc = inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value)
        # RPC names are CapWords; helpers such as `run` are not RPCs and keep their signature.
        if not attr[:1].isupper() or not is_rpc or getattr(value, "_errors_mapped", False):
            continue
        wrapped = _wrap(value)
        wrapped._errors_mapped = True  # type: ignore[attr-defined]
        setattr(cls, attr, wrapped)
    return cls
