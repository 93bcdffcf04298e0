"""Bad input to ControlPlane: the model registry (versions, offline evaluation)."""

from __future__ import annotations

import math

import pytest

from protos import common_pb2, controlplane_pb2
from tests.security.bad_input.support import (
    BAD_UTF8,
    CP_MAX_MESSAGE,
    EXHAUSTED,
    EXISTS,
    GARBAGE,
    GRPC_CORE_TEXT,
    HUGE,
    INVALID,
    NAN_BASELINE,
    NARROW_BASELINE,
    NOT_FOUND,
    TRAVERSAL,
    Case,
    Env,
    check_case,
    chunk,
    header,
    ref,
    upload,
)

pytestmark = pytest.mark.xdist_group("bad-input")

CASES = [
    # Registry
    Case("register-empty-stream", "cp", "RegisterVersion", [], INVALID, "no header was sent"),
    Case("register-chunk-before-header", "cp", "RegisterVersion", [chunk(b"abc")], INVALID, "must start with a header"),
    Case("register-traversal-model", "cp", "RegisterVersion", upload(TRAVERSAL), INVALID, "may only contain"),
    Case("register-slash-version", "cp", "RegisterVersion", upload("fresh", "a/b"), INVALID, "may only contain"),
    Case("register-nul-in-name", "cp", "RegisterVersion", upload("fre\x00sh"), INVALID, "may only contain"),
    Case("register-rtl-override", "cp", "RegisterVersion", upload("fresh\u202egpj"), INVALID, "may only contain"),
    Case("register-emoji-version", "cp", "RegisterVersion", upload("fresh", "v1🚀"), INVALID, "may only contain"),
    Case("register-100kB-name", "cp", "RegisterVersion", upload(HUGE), INVALID, "the limit is 128"),
    Case("register-trailing-newline", "cp", "RegisterVersion", upload("fresh\n"), INVALID, "may only contain"),
    Case("register-missing-ref", "cp", "RegisterVersion", [header("", "", 10)], INVALID, "is required"),
    Case("register-zero-size", "cp", "RegisterVersion", [header(size=0)], INVALID, "the ONNX file is empty"),
    Case("register-bogus-sha256", "cp", "RegisterVersion", upload(model_sha256="zz" * 32), INVALID, "not a sha256"),
    Case("register-sha256-mismatch", "cp", "RegisterVersion", upload(model_sha256="ab" * 32), INVALID, "sha256 is"),
    Case("register-cut-off", "cp", "RegisterVersion", [header(size=1000), chunk(b"x" * 10)], INVALID, "cut off"),
    Case("register-too-many-bytes", "cp", "RegisterVersion", [header(size=3), chunk(b"x" * 10)], INVALID, "more than"),
    Case("register-two-headers", "cp", "RegisterVersion", [header(), header()], INVALID, "two headers"),
    Case("register-not-onnx", "cp", "RegisterVersion", [header(size=64), chunk(b"\x00" * 64)], INVALID, "onnx"),
    Case(
        "register-baseline-without-size",
        "cp",
        "RegisterVersion",
        [header(size=3), chunk(b"abc"), controlplane_pb2.RegisterVersionChunk(baseline_chunk=b"x")],
        INVALID,
        "baseline_size is 0",
    ),
    Case("register-nan-baseline", "cp", "RegisterVersion", upload(baseline=NAN_BASELINE), INVALID, "NaN"),
    Case(
        "register-baseline-wrong-width", "cp", "RegisterVersion", upload(baseline=NARROW_BASELINE), INVALID, "features"
    ),
    Case(
        "register-empty-feature-name",
        "cp",
        "RegisterVersion",
        upload(feature_names=[""] * 30),
        INVALID,
        "feature names",
    ),
    Case("register-100kB-description", "cp", "RegisterVersion", upload(description=HUGE), INVALID, "description"),
    Case("register-existing-version", "cp", "RegisterVersion", upload("cancer", "v1"), EXISTS, "already exists"),
    Case("register-garbage-chunk", "cp", "RegisterVersion", [GARBAGE], INVALID, "RegisterVersionChunk"),
    Case(
        "register-oversized-chunk",
        "cp",
        "RegisterVersion",
        [header(size=2 << 20), chunk(b"x" * (CP_MAX_MESSAGE + 10))],
        EXHAUSTED,
        GRPC_CORE_TEXT,
    ),
    Case(
        "list-versions-traversal",
        "cp",
        "ListVersions",
        controlplane_pb2.ListVersionsRequest(model=TRAVERSAL),
        INVALID,
        "may only contain",
    ),
    Case(
        "list-versions-bad-utf8",
        "cp",
        "ListVersions",
        BAD_UTF8,
        INVALID,
        "not a valid sluice.v1.ListVersionsRequest message",
    ),
    Case("get-version-missing", "cp", "GetVersion", common_pb2.VersionRef(), INVALID, "is required"),
    Case("get-version-half", "cp", "GetVersion", ref("cancer", ""), INVALID, "version name is empty"),
    Case("get-version-unknown", "cp", "GetVersion", ref("cancer", "v9"), NOT_FOUND, "has no version 'v9'"),
    Case("get-version-unknown-model", "cp", "GetVersion", ref("nobody", "v1"), NOT_FOUND, "no model named"),
    Case("get-version-control-chars", "cp", "GetVersion", ref("can\ncer", "v1"), INVALID, "may only contain"),
    Case(
        "evaluate-no-deployment",
        "cp",
        "Evaluate",
        controlplane_pb2.EvaluateRequest(challenger=ref("cancer", "v2")),
        INVALID,
        "needs the deployment",
    ),
    Case(
        "evaluate-wrong-format",
        "cp",
        "Evaluate",
        controlplane_pb2.EvaluateRequest(
            challenger=ref("cancer", "v2"), deployment="web", data=b"a,b\n1,2\n", data_format="xml"
        ),
        INVALID,
        "not supported",
    ),
    Case(
        "evaluate-nan-alpha",
        "cp",
        "Evaluate",
        controlplane_pb2.EvaluateRequest(
            challenger=ref("cancer", "v2"), deployment="web", data=b"a\n1\n", data_format="csv", alpha=math.nan
        ),
        INVALID,
        "alpha",
    ),
    Case(
        "evaluate-negative-improvement",
        "cp",
        "Evaluate",
        controlplane_pb2.EvaluateRequest(
            challenger=ref("cancer", "v2"), deployment="web", data=b"a\n1\n", data_format="csv", min_improvement=-1
        ),
        INVALID,
        "min improvement",
    ),
    Case(
        "evaluate-unknown-deployment",
        "cp",
        "Evaluate",
        controlplane_pb2.EvaluateRequest(
            challenger=ref("cancer", "v2"), deployment="nowhere", data=b"a\n1\n", data_format="csv"
        ),
        NOT_FOUND,
        "no deployment named",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(env: Env, case: Case) -> None:
    check_case(env, case)
