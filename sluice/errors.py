"""The errors a script sees: one class per gRPC status, each also the matching typed error of
`core.errors`, so `except sluice.NotFound` and `except core.errors.NotFound` both catch it.

`str(error)` is the line the CLI prints after `error: ` - the server's message and the status name.
"""

from __future__ import annotations

import grpc

from core import errors as core_errors
from core.client import ClientError


class Error(core_errors.SluiceError):
    """Any failed call. `code` is the gRPC status name (e.g. "NOT_FOUND"), `message` the server's
    words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


class InvalidArgument(Error, core_errors.InvalidInput):
    """The request was refused as malformed or out of range; nothing changed."""


class NotFound(Error, core_errors.NotFound):
    pass


class AlreadyExists(Error, core_errors.AlreadyExists):
    pass


class FailedPrecondition(Error, core_errors.FailedPrecondition):
    """Not possible in the current state (e.g. promoting an experiment that is not running)."""


class Aborted(Error, core_errors.Conflict):
    """A concurrent change won (e.g. a stale expected generation): read again and retry."""


class Unauthenticated(Error, core_errors.Unauthenticated):
    pass


class PermissionDenied(Error, core_errors.PermissionDenied):
    pass


class ResourceExhausted(Error, core_errors.ResourceExhausted):
    pass


class Unavailable(Error, core_errors.Unavailable):
    """The server (or its database, or the model) cannot be reached right now; retrying may help."""


class DeadlineExceeded(Error):
    pass


_BY_CODE: dict[grpc.StatusCode, type[Error]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}

#: the typed errors raised before a call leaves this process (a bad name, token or file)
_LOCAL: list[tuple[type[core_errors.SluiceError], type[Error], grpc.StatusCode]] = [
    (core_errors.InvalidInput, InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (core_errors.NotFound, NotFound, grpc.StatusCode.NOT_FOUND),
    (core_errors.FailedPrecondition, FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
]


def from_client_error(exc: ClientError) -> Error:
    return _BY_CODE.get(exc.code, Error)(exc.code.name, exc.message)


def translate(exc: BaseException) -> Error | None:
    """The facade's error for `exc`, or None when it is not one of ours (a bug: let it rise)."""
    if isinstance(exc, Error):
        return exc
    if isinstance(exc, ClientError):
        return from_client_error(exc)
    if isinstance(exc, core_errors.SluiceError):
        for local, cls, code in _LOCAL:
            if isinstance(exc, local):
                return cls(code.name, exc.message)
        return Error(grpc.StatusCode.UNKNOWN.name, exc.message)
    return None
