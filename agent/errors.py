"""The agent's request errors: each carries the gRPC status it is answered with."""

from __future__ import annotations

import grpc


class Rejected(Exception):
    """A request the agent refuses; the message tells the caller what to change."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> Rejected:
    return Rejected(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> Rejected:
    return Rejected(grpc.StatusCode.NOT_FOUND, message)


def unavailable(message: str) -> Rejected:
    return Rejected(grpc.StatusCode.UNAVAILABLE, message)
