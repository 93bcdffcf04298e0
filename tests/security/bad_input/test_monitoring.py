"""Bad input to ControlPlane: monitoring (status, metric series, alerts, agents, retraining runs)."""

from __future__ import annotations

import math

import pytest

from protos import controlplane_pb2
from tests.security.bad_input.support import (
    GARBAGE,
    HUGE,
    INVALID,
    NOT_FOUND,
    PRECONDITION,
    TRAVERSAL,
    Case,
    Env,
    check_case,
)

pytestmark = pytest.mark.xdist_group("bad-input")

CASES = [
    # Monitoring
    Case(
        "status-nan-window",
        "cp",
        "GetStatus",
        controlplane_pb2.GetStatusRequest(window_seconds=math.nan),
        INVALID,
        "window_seconds",
    ),
    Case(
        "status-negative-window",
        "cp",
        "GetStatus",
        controlplane_pb2.GetStatusRequest(window_seconds=-60),
        INVALID,
        "window_seconds",
    ),
    Case(
        "status-bad-name",
        "cp",
        "GetStatus",
        controlplane_pb2.GetStatusRequest(deployment="a b"),
        INVALID,
        "may only contain",
    ),
    Case(
        "series-step-over-window",
        "cp",
        "GetMetricSeries",
        controlplane_pb2.GetMetricSeriesRequest(deployment="web", window_seconds=60, step_seconds=600),
        INVALID,
        "longer than",
    ),
    Case(
        "series-too-many-points",
        "cp",
        "GetMetricSeries",
        controlplane_pb2.GetMetricSeriesRequest(deployment="web", window_seconds=86400 * 300, step_seconds=1),
        INVALID,
        "the limit is",
    ),
    Case(
        "series-infinite-window",
        "cp",
        "GetMetricSeries",
        controlplane_pb2.GetMetricSeriesRequest(deployment="web", window_seconds=math.inf),
        INVALID,
        "window_seconds",
    ),
    Case(
        "series-empty-name",
        "cp",
        "GetMetricSeries",
        controlplane_pb2.GetMetricSeriesRequest(),
        INVALID,
        "deployment name is empty",
    ),
    Case(
        "alerts-bad-name",
        "cp",
        "ListAlerts",
        controlplane_pb2.ListAlertsRequest(deployment="\u202eweb"),
        INVALID,
        "may only contain",
    ),
    Case("ack-negative-id", "cp", "AckAlert", controlplane_pb2.AckAlertRequest(id=-1), INVALID, "positive number"),
    Case("ack-zero-id", "cp", "AckAlert", controlplane_pb2.AckAlertRequest(id=0), INVALID, "positive number"),
    Case("ack-unknown-id", "cp", "AckAlert", controlplane_pb2.AckAlertRequest(id=2**62), NOT_FOUND, "no alert with id"),
    Case(
        "ack-resolved",
        "cp",
        "AckAlert",
        lambda env: controlplane_pb2.AckAlertRequest(id=env.resolved_alert),
        PRECONDITION,
        "already resolved",
    ),
    Case("agents-garbage", "cp", "ListAgents", GARBAGE, INVALID, "ListAgentsRequest"),
    Case(
        "agents-forged-page-token",
        "cp",
        "ListAgents",
        controlplane_pb2.ListAgentsRequest(page_token="WyJMaXN0QWdlbnRzIiwxXQ"),  # ["ListAgents",1]
        INVALID,
        "page_token is not one of ListAgents",
    ),
    Case(
        "alerts-traversal-page-token",
        "cp",
        "ListAlerts",
        controlplane_pb2.ListAlertsRequest(page_token=TRAVERSAL),
        INVALID,
        "page_token is not one of ListAlerts",
    ),
    Case(
        "alerts-100kB-page-token",
        "cp",
        "ListAlerts",
        controlplane_pb2.ListAlertsRequest(page_token=HUGE),
        INVALID,
        "page_token",
    ),
    # Health policy
    Case(
        "policy-get-traversal",
        "cp",
        "GetPolicy",
        controlplane_pb2.PolicyRequest(deployment=TRAVERSAL),
        INVALID,
        "may only contain",
    ),
    Case(
        "policy-get-unknown",
        "cp",
        "GetPolicy",
        controlplane_pb2.PolicyRequest(deployment="nowhere"),
        NOT_FOUND,
        "nowhere",
    ),
    Case(
        "policy-set-critical-below-warning",
        "cp",
        "SetPolicy",
        controlplane_pb2.SetPolicyRequest(
            deployment="web", thresholds=controlplane_pb2.PolicyThresholds(error_rate_critical=0.001)
        ),
        INVALID,
        "error_rate_critical (0.001) must be >= error_rate_warning",
    ),
    Case(
        "policy-set-nan-threshold",
        "cp",
        "SetPolicy",
        controlplane_pb2.SetPolicyRequest(
            deployment="web", thresholds=controlplane_pb2.PolicyThresholds(psi_warning=math.nan)
        ),
        INVALID,
        "finite",
    ),
    Case(
        "policy-set-unknown-action",
        "cp",
        "SetPolicy",
        controlplane_pb2.SetPolicyRequest(deployment="web", action=99),  # type: ignore[arg-type]
        INVALID,
        "unknown policy action 99",
    ),
    Case(
        "policy-set-zero-delay",
        "cp",
        "SetPolicy",
        controlplane_pb2.SetPolicyRequest(deployment="web", action_after_seconds=0),
        INVALID,
        "more than 0",
    ),
    Case(
        "policy-set-unknown-reset",
        "cp",
        "SetPolicy",
        controlplane_pb2.SetPolicyRequest(deployment="web", reset=["everything"]),
        INVALID,
        "cannot reset everything",
    ),
    Case(
        "policy-set-unknown-deployment",
        "cp",
        "SetPolicy",
        controlplane_pb2.SetPolicyRequest(deployment="nowhere", action_after_seconds=60),
        NOT_FOUND,
        "nowhere",
    ),
    Case(
        "retraining-traversal",
        "cp",
        "ListRetrainingRuns",
        controlplane_pb2.ListRetrainingRunsRequest(deployment=TRAVERSAL),
        INVALID,
        "may only contain",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(env: Env, case: Case) -> None:
    check_case(env, case)
