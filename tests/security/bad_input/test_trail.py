"""Bad input to ControlPlane: the trail and identity (history, audit, events, tokens, whoami)."""

from __future__ import annotations

import pytest

from protos import controlplane_pb2
from tests.security.bad_input.support import (
    EXHAUSTED,
    GARBAGE,
    GRPC_CORE_TEXT,
    HUGE,
    INVALID,
    NOT_FOUND,
    Case,
    Env,
    check_case,
)

pytestmark = pytest.mark.xdist_group("bad-input")

CASES = [
    # Trail and identity
    Case(
        "history-empty-name",
        "cp",
        "ListHistory",
        controlplane_pb2.ListHistoryRequest(),
        INVALID,
        "deployment name is empty",
    ),
    Case(
        "history-unknown",
        "cp",
        "ListHistory",
        controlplane_pb2.ListHistoryRequest(deployment="nowhere"),
        NOT_FOUND,
        "no deployment named",
    ),
    Case("audit-100kB-target", "cp", "ListAudit", controlplane_pb2.ListAuditRequest(target=HUGE), INVALID, "target"),
    Case("whoami-garbage", "cp", "WhoAmI", GARBAGE, INVALID, "WhoAmIRequest"),
    Case("tokens-garbage", "cp", "ListTokens", GARBAGE, INVALID, "ListTokensRequest"),
    Case(
        "watch-bad-name",
        "cp",
        "WatchEvents",
        controlplane_pb2.WatchEventsRequest(deployment="a/b"),
        INVALID,
        "may only contain",
    ),
    Case(
        "watch-oversized",
        "cp",
        "WatchEvents",
        controlplane_pb2.WatchEventsRequest(deployment="x" * (2 << 20)),
        EXHAUSTED,
        GRPC_CORE_TEXT,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(env: Env, case: Case) -> None:
    check_case(env, case)
