"""Typed domain errors. Domain code raises these; one place maps them to gRPC status codes.

Every message should tell a person what was wrong and what to do about it.
"""

from __future__ import annotations


class SluiceError(Exception):
    """Base class of every error a user may see."""

    #: set by the code that already counted this error against a model version, so the refusal
    #: hook of the agent's servicers does not count it a second time
    counted: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(SluiceError):
    """The request is malformed or a value is out of range (INVALID_ARGUMENT)."""


class NotFound(SluiceError):
    """A named model, version, deployment, experiment... does not exist (NOT_FOUND)."""


class AlreadyExists(SluiceError):
    """Something with that name already exists (ALREADY_EXISTS)."""


class FailedPrecondition(SluiceError):
    """The system is not in a state where this can be done (FAILED_PRECONDITION)."""


class Conflict(SluiceError):
    """A concurrent change won: e.g. a stale expected generation (ABORTED)."""


class Unauthenticated(SluiceError):
    """Missing or unknown credentials (UNAUTHENTICATED)."""


class PermissionDenied(SluiceError):
    """The caller's role does not allow this (PERMISSION_DENIED)."""


class ResourceExhausted(SluiceError):
    """A size or rate limit was exceeded (RESOURCE_EXHAUSTED)."""


class ModelFailed(SluiceError):
    """A model could not compute an answer: a runtime error, NaN or infinity out (INTERNAL)."""


class DeadlineExceeded(SluiceError):
    """The caller's deadline passed while its request was being answered (DEADLINE_EXCEEDED)."""


class Cancelled(SluiceError):
    """The caller cancelled its request while it was being answered (CANCELLED)."""


class Unavailable(SluiceError):
    """A dependency (database, control plane, model) is not reachable right now (UNAVAILABLE)."""
