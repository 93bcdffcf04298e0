"""Bad input to ControlPlane: deployments and traffic."""

from __future__ import annotations

import math

import pytest

from protos import controlplane_pb2
from tests.security.bad_input.support import (
    ABORTED,
    HUGE,
    INVALID,
    NOT_FOUND,
    PRECONDITION,
    TRAVERSAL,
    Case,
    Env,
    check_case,
    ref,
)

pytestmark = pytest.mark.xdist_group("bad-input")

CASES = [
    # Deployments and traffic
    Case(
        "deploy-missing-version",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment="new-dep"),
        INVALID,
        "is required",
    ),
    Case(
        "deploy-empty-name",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(version=ref("cancer", "v1")),
        INVALID,
        "deployment name is empty",
    ),
    Case(
        "deploy-traversal-name",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment=TRAVERSAL, version=ref("cancer", "v1")),
        INVALID,
        "may only contain",
    ),
    Case(
        "deploy-trailing-newline",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment="fresh\n", version=ref("cancer", "v1")),
        INVALID,
        "may only contain",
    ),
    Case(
        "deploy-unknown-version",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment="new-dep", version=ref("cancer", "v9")),
        NOT_FOUND,
        "has no version",
    ),
    Case(
        "deploy-negative-generation",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment="web", version=ref("cancer", "v2"), expected_generation=-1),
        INVALID,
        "must not be negative",
    ),
    Case(
        "deploy-stale-generation",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment="web", version=ref("cancer", "v2"), expected_generation=1),
        ABORTED,
        "generation",
    ),
    Case(
        "deploy-100kB-reason",
        "cp",
        "Deploy",
        controlplane_pb2.DeployRequest(deployment="web", version=ref("cancer", "v2"), reason=HUGE),
        INVALID,
        "the limit is 2000",
    ),
    Case("deploy-wrong-wire-type", "cp", "Deploy", b"\x12\x03\x08\x01\x02", INVALID, "DeployRequest"),
    Case(
        "traffic-negative-weight",
        "cp",
        "SetTraffic",
        controlplane_pb2.SetTrafficRequest(
            deployment="web",
            weights=[
                controlplane_pb2.TrafficWeight(version=ref("cancer", "v1"), weight=110),
                controlplane_pb2.TrafficWeight(version=ref("cancer", "v2"), weight=-10),
            ],
        ),
        INVALID,
        "weights are 0 to 100",
    ),
    Case(
        "traffic-sum-99",
        "cp",
        "SetTraffic",
        controlplane_pb2.SetTrafficRequest(
            deployment="web",
            weights=[
                controlplane_pb2.TrafficWeight(version=ref("cancer", "v1"), weight=90),
                controlplane_pb2.TrafficWeight(version=ref("cancer", "v2"), weight=9),
            ],
        ),
        INVALID,
        "must sum to 100",
    ),
    Case(
        "traffic-no-weights",
        "cp",
        "SetTraffic",
        controlplane_pb2.SetTrafficRequest(deployment="web"),
        INVALID,
        "no weights given",
    ),
    Case(
        "traffic-named-twice",
        "cp",
        "SetTraffic",
        controlplane_pb2.SetTrafficRequest(
            deployment="web",
            weights=[controlplane_pb2.TrafficWeight(version=ref("cancer", "v1"), weight=50)] * 2,
        ),
        INVALID,
        "named twice",
    ),
    Case(
        "traffic-unknown-deployment",
        "cp",
        "SetTraffic",
        controlplane_pb2.SetTrafficRequest(
            deployment="nowhere", weights=[controlplane_pb2.TrafficWeight(version=ref("cancer", "v1"), weight=100)]
        ),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "traffic-missing-ref",
        "cp",
        "SetTraffic",
        controlplane_pb2.SetTrafficRequest(deployment="web", weights=[controlplane_pb2.TrafficWeight(weight=100)]),
        INVALID,
        "is required",
    ),
    Case(
        "rollback-unknown",
        "cp",
        "Rollback",
        controlplane_pb2.RollbackRequest(deployment="nowhere"),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "rollback-no-previous",
        "cp",
        "Rollback",
        controlplane_pb2.RollbackRequest(deployment="solo"),
        PRECONDITION,
        "no earlier champion",
    ),
    Case(
        "rollback-emoji-name",
        "cp",
        "Rollback",
        controlplane_pb2.RollbackRequest(deployment="web🔥"),
        INVALID,
        "may only contain",
    ),
    Case(
        "rollback-to-unknown",
        "cp",
        "Rollback",
        controlplane_pb2.RollbackRequest(deployment="web", to=ref("cancer", "v7")),
        NOT_FOUND,
        "no version",
    ),
    Case(
        "list-deployments-slash",
        "cp",
        "ListDeployments",
        controlplane_pb2.ListDeploymentsRequest(deployment="a/b"),
        INVALID,
        "may only contain",
    ),
    Case(
        "wait-nan-timeout",
        "cp",
        "WaitForSync",
        controlplane_pb2.WaitForSyncRequest(deployment="web", timeout_seconds=math.nan),
        INVALID,
        "timeout_seconds",
    ),
    Case(
        "wait-negative-timeout",
        "cp",
        "WaitForSync",
        controlplane_pb2.WaitForSyncRequest(deployment="web", timeout_seconds=-5),
        INVALID,
        "timeout_seconds",
    ),
    Case(
        "wait-infinite-timeout",
        "cp",
        "WaitForSync",
        controlplane_pb2.WaitForSyncRequest(deployment="web", timeout_seconds=math.inf),
        INVALID,
        "timeout_seconds",
    ),
    Case(
        "wait-negative-generation",
        "cp",
        "WaitForSync",
        controlplane_pb2.WaitForSyncRequest(deployment="web", generation=-3, timeout_seconds=1),
        INVALID,
        "must not be negative",
    ),
    Case(
        "wait-unknown",
        "cp",
        "WaitForSync",
        controlplane_pb2.WaitForSyncRequest(deployment="nowhere", timeout_seconds=1),
        NOT_FOUND,
        "no deployment named",
    ),
    # The prediction log's sample rate
    Case(
        "log-rate-above-one",
        "cp",
        "SetLogSampleRate",
        controlplane_pb2.SetLogSampleRateRequest(deployment="web", sample_rate=1.5),
        INVALID,
        "between 0 (off) and 1",
    ),
    Case(
        "log-rate-nan",
        "cp",
        "SetLogSampleRate",
        controlplane_pb2.SetLogSampleRateRequest(deployment="web", sample_rate=math.nan),
        INVALID,
        "between 0 (off) and 1",
    ),
    Case(
        "log-rate-unknown-deployment",
        "cp",
        "SetLogSampleRate",
        controlplane_pb2.SetLogSampleRateRequest(deployment="nope", sample_rate=0.5),
        NOT_FOUND,
        "nope",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(env: Env, case: Case) -> None:
    check_case(env, case)
