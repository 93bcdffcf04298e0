"""The one mapping of typed errors to gRPC statuses (core.grpc_errors), on a real grpc.aio server.

The control plane and the agent both decorate their servicers with it; here a small servicer of
each kind of RPC (unary and server-streaming) raises every typed error, an unexpected exception
and its own abort, and a real client reads the statuses and messages.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

import controlplane.api.errors as controlplane_errors
from core import errors
from core.grpc_errors import STATUS_OF, map_errors, status_of
from protos import controlplane_pb2, controlplane_pb2_grpc, inference_pb2, inference_pb2_grpc

TYPED = {
    "invalid": (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    "missing": (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    "exists": (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    "state": (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    "stale": (errors.Conflict, grpc.StatusCode.ABORTED),
    "who": (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    "role": (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    "big": (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    "down": (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
}


class Gone(errors.NotFound):
    """A domain's own refinement of a typed error: answered as its nearest mapped base."""


def fail(kind: str) -> None:
    if kind in TYPED:
        cls, _ = TYPED[kind]
        raise cls(f"{kind}: what to change")
    if kind == "gone":
        raise Gone("gone: it was deleted")
    if kind == "boom":
        raise KeyError("a secret detail of the server")


refusals: list[tuple[str, grpc.StatusCode]] = []


def count(service: Any, request: Any, status: grpc.StatusCode, error: errors.SluiceError) -> None:
    assert isinstance(service, Inference)
    refusals.append((request.deployment, status))
    if request.deployment == "counter-breaks":
        raise RuntimeError("the counter itself failed")


@map_errors(server="agent", on_refusal=count)
class Inference(inference_pb2_grpc.InferenceServicer):
    async def Predict(
        self, request: inference_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.PredictResponse:
        if request.deployment == "counter-breaks":
            raise errors.InvalidInput("still answered with its own status")
        if request.deployment == "own-abort":
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, "the servicer's own abort passes through")
        fail(request.deployment)
        return inference_pb2.PredictResponse(agent=self.helper())

    def helper(self) -> str:
        return "ok"


@map_errors
class Events(controlplane_pb2_grpc.ControlPlaneServicer):
    async def WatchEvents(
        self, request: controlplane_pb2.WatchEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[controlplane_pb2.Event]:
        yield controlplane_pb2.Event(id=1)
        fail(request.deployment)
        yield controlplane_pb2.Event(id=2)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    started = threading.Event()
    address: list[str] = []
    stopping: list[Any] = []

    async def run() -> None:
        srv = grpc.aio.server()
        inference_pb2_grpc.add_InferenceServicer_to_server(Inference(), srv)
        controlplane_pb2_grpc.add_ControlPlaneServicer_to_server(Events(), srv)
        port = srv.add_insecure_port("127.0.0.1:0")
        await srv.start()
        address.append(f"127.0.0.1:{port}")
        done = asyncio.Event()
        stopping.append(done)
        started.set()
        await done.wait()
        await srv.stop(None)

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert started.wait(30)
    yield address[0]
    loop.call_soon_threadsafe(stopping[0].set)
    thread.join(30)


def predict(address: str, deployment: str) -> grpc.RpcError:
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as info:
        inference_pb2_grpc.InferenceStub(channel).Predict(inference_pb2.PredictRequest(deployment=deployment))
    return info.value


def test_every_typed_error_has_its_status() -> None:
    typed = [c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, errors.SluiceError)]
    assert set(typed) - {errors.SluiceError} == set(STATUS_OF)
    for cls, status in TYPED.values():
        assert status_of(cls("x")) == status
    assert status_of(Gone("x")) == grpc.StatusCode.NOT_FOUND
    assert status_of(errors.SluiceError("x")) == grpc.StatusCode.UNKNOWN
    # The control plane's servicers import the same mapping under their old name.
    assert controlplane_errors.map_errors is map_errors and controlplane_errors.status_of is status_of


@pytest.mark.parametrize("kind", [*TYPED, "gone"])
def test_a_typed_error_is_answered_with_its_status_and_message_and_counted(server: str, kind: str) -> None:
    refusals.clear()
    error = predict(server, kind)
    status = TYPED[kind][1] if kind in TYPED else grpc.StatusCode.NOT_FOUND
    assert error.code() == status
    assert error.details() == ("gone: it was deleted" if kind == "gone" else f"{kind}: what to change")
    assert refusals == [(kind, status)]


def test_an_unexpected_error_is_internal_logged_and_never_a_traceback(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    refusals.clear()
    with caplog.at_level(logging.ERROR, logger="core.grpc_errors"):
        error = predict(server, "boom")
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error in Predict: KeyError; see the agent log"
    assert "secret" not in (error.details() or "") and refusals == []
    logged = [r for r in caplog.records if r.getMessage() == "unexpected error in Predict"]
    assert logged and logged[0].exc_info is not None  # the traceback goes to the log only


def test_a_failing_refusal_counter_changes_nothing_in_the_answer(server: str) -> None:
    error = predict(server, "counter-breaks")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "still answered with its own status"


def test_an_abort_of_the_servicer_passes_through_and_helpers_are_not_wrapped(server: str) -> None:
    refusals.clear()
    error = predict(server, "own-abort")
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE and refusals == []
    assert inspect.signature(Inference.helper).parameters.keys() == {"self"}
    with grpc.insecure_channel(server) as channel:
        answer = inference_pb2_grpc.InferenceStub(channel).Predict(inference_pb2.PredictRequest(deployment="ok"))
    assert answer.agent == "ok"


@pytest.mark.parametrize(
    ("kind", "status", "message"),
    [
        ("missing", grpc.StatusCode.NOT_FOUND, "missing: what to change"),
        ("boom", grpc.StatusCode.INTERNAL, "internal error in WatchEvents: KeyError; see the server log"),
    ],
)
def test_a_stream_ends_with_the_status_after_what_it_sent(
    server: str, kind: str, status: grpc.StatusCode, message: str
) -> None:
    got = []
    with grpc.insecure_channel(server) as channel, pytest.raises(grpc.RpcError) as info:
        stub = controlplane_pb2_grpc.ControlPlaneStub(channel)
        for event in stub.WatchEvents(controlplane_pb2.WatchEventsRequest(deployment=kind)):
            got.append(event.id)
    assert got == [1]
    assert info.value.code() == status and info.value.details() == message
