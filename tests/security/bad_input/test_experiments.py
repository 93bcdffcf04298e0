"""Bad input to ControlPlane: experiments."""

from __future__ import annotations

import math

import pytest

from protos import common_pb2, controlplane_pb2
from tests.security.bad_input.support import (
    HUGE,
    INVALID,
    NOT_FOUND,
    TRAVERSAL,
    Case,
    Env,
    check_case,
    ref,
)

pytestmark = pytest.mark.xdist_group("bad-input")

CASES = [
    # Experiments
    Case(
        "start-no-config",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(name="exp"),
        INVALID,
        "needs a config",
    ),
    Case(
        "start-traversal-name",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name=TRAVERSAL, config=controlplane_pb2.ExperimentConfig(deployment="web", challenger=ref("cancer", "v2"))
        ),
        INVALID,
        "may only contain",
    ),
    Case(
        "start-no-challenger",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(name="exp", config=controlplane_pb2.ExperimentConfig(deployment="web")),
        INVALID,
        "challenger is required",
    ),
    Case(
        "start-nan-alpha",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(deployment="solo", challenger=ref("cancer", "v2"), alpha=math.nan),
        ),
        INVALID,
        "alpha",
    ),
    Case(
        "start-negative-traffic",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(
                deployment="solo", challenger=ref("cancer", "v2"), traffic_percent=-5
            ),
        ),
        INVALID,
        "traffic",
    ),
    Case(
        "start-negative-plan-step",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(
                deployment="solo", challenger=ref("cancer", "v2"), plan=[5, -25, 50]
            ),
        ),
        INVALID,
        "plan step",
    ),
    Case(
        "start-negative-hold",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(
                deployment="solo", challenger=ref("cancer", "v2"), hold_seconds=-1
            ),
        ),
        INVALID,
        "hold",
    ),
    Case(
        "start-huge-min-samples",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(
                deployment="solo", challenger=ref("cancer", "v2"), min_samples=2**64 - 1
            ),
        ),
        INVALID,
        "min samples",
    ),
    Case(
        "start-unknown-metric",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(deployment="solo", challenger=ref("cancer", "v2"), metric="vibes"),
        ),
        INVALID,
        "unknown metric",
    ),
    Case(
        "start-nan-guardrail",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(
                deployment="solo",
                challenger=ref("cancer", "v2"),
                guardrails=[controlplane_pb2.Guardrail(metric="error_rate", max_degradation=math.nan)],
            ),
        ),
        INVALID,
        "finite number",
    ),
    Case(
        "start-inverted-segment",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp",
            config=controlplane_pb2.ExperimentConfig(
                deployment="solo",
                challenger=ref("cancer", "v2"),
                segment_rules=[common_pb2.SegmentRule(attribute="age", has_range=True, min=10, max=-10)],
            ),
        ),
        INVALID,
        "min above max",
    ),
    Case(
        "start-unknown-challenger",
        "cp",
        "StartExperiment",
        controlplane_pb2.StartExperimentRequest(
            name="exp", config=controlplane_pb2.ExperimentConfig(deployment="solo", challenger=ref("cancer", "v9"))
        ),
        NOT_FOUND,
        "no version",
    ),
    Case(
        "get-experiment-unknown",
        "cp",
        "GetExperiment",
        controlplane_pb2.ExperimentRequest(name="ghost"),
        NOT_FOUND,
        "ghost",
    ),
    Case(
        "get-experiment-empty",
        "cp",
        "GetExperiment",
        controlplane_pb2.ExperimentRequest(),
        INVALID,
        "experiment name is empty",
    ),
    Case(
        "list-experiments-nul",
        "cp",
        "ListExperiments",
        controlplane_pb2.ListExperimentsRequest(deployment="w\x00b"),
        INVALID,
        "may only contain",
    ),
    Case("stop-unknown", "cp", "StopExperiment", controlplane_pb2.ExperimentRequest(name="ghost"), NOT_FOUND, "ghost"),
    Case(
        "pause-unknown", "cp", "PauseExperiment", controlplane_pb2.ExperimentRequest(name="ghost"), NOT_FOUND, "ghost"
    ),
    Case(
        "pause-nul-name",
        "cp",
        "PauseExperiment",
        controlplane_pb2.ExperimentRequest(name="e\x00x"),
        INVALID,
        "may only contain",
    ),
    Case(
        "pause-100kB-reason",
        "cp",
        "PauseExperiment",
        controlplane_pb2.ExperimentRequest(name="ghost", reason=HUGE),
        INVALID,
        "the limit is 2000",
    ),
    Case(
        "resume-100kB-name",
        "cp",
        "ResumeExperiment",
        controlplane_pb2.ExperimentRequest(name=HUGE),
        INVALID,
        "the limit is 128",
    ),
    Case(
        "abort-100kB-reason",
        "cp",
        "AbortExperiment",
        controlplane_pb2.ExperimentRequest(name="ghost", reason=HUGE),
        INVALID,
        "the limit is 2000",
    ),
    Case(
        "promote-traversal",
        "cp",
        "Promote",
        controlplane_pb2.ExperimentRequest(name=TRAVERSAL),
        INVALID,
        "may only contain",
    ),
    Case("promote-unknown", "cp", "Promote", controlplane_pb2.ExperimentRequest(name="ghost"), NOT_FOUND, "ghost"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(env: Env, case: Case) -> None:
    check_case(env, case)
