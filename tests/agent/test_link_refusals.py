"""What an agent logs when the control plane refuses it: a hint only where it helps."""

from __future__ import annotations

import grpc
from grpc.aio import AioRpcError, Metadata

from agent.link import refusal_hint


def refused(code: grpc.StatusCode, details: str) -> AioRpcError:
    return AioRpcError(code, Metadata(), Metadata(), details)


def test_a_role_refusal_says_which_token_to_set_an_ownership_refusal_needs_no_hint() -> None:
    role = refused(grpc.StatusCode.PERMISSION_DENIED, "eve has role viewer, which may not call Connect")
    assert "SLUICE_TOKEN" in refusal_hint(role)
    # The id or name belongs to another credential: the message says what to do; a token hint would mislead.
    owned = refused(grpc.StatusCode.PERMISSION_DENIED, "agent id a1 is registered to another credential, ...")
    assert refusal_hint(owned) == ""
    assert "SLUICE_TOKEN" in refusal_hint(refused(grpc.StatusCode.UNAUTHENTICATED, "the token is not valid"))
    assert refusal_hint(refused(grpc.StatusCode.FAILED_PRECONDITION, "already connected")) == ""
