"""Bad input to the agent's Open Inference Protocol service."""

from __future__ import annotations

import math

import pytest

from protos import oip_pb2
from tests.security.bad_input.support import (
    BIG_ROWS,
    EXHAUSTED,
    FP32,
    GARBAGE,
    GRPC_CORE_TEXT,
    INVALID,
    NOT_FOUND,
    OK,
    OUT,
    ROW,
    TRAVERSAL,
    Case,
    Env,
    check_case,
    fp32,
    infer,
    not_ready,
    with_nan,
)

pytestmark = pytest.mark.xdist_group("bad-input")

CASES = [
    # Open Inference Protocol
    Case(
        "oip-unknown-model",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], ROW.ravel().tolist()), model="nowhere"),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "oip-int64-input",
        "oip",
        "ModelInfer",
        infer(
            FP32(
                name="input",
                datatype="INT64",
                shape=[1, 30],
                contents=oip_pb2.InferTensorContents(int64_contents=[1] * 30),
            )
        ),
        INVALID,
        "datatype 'INT64'",
    ),
    Case(
        "oip-bytes-input",
        "oip",
        "ModelInfer",
        infer(
            FP32(
                name="input",
                datatype="BYTES",
                shape=[1, 1],
                contents=oip_pb2.InferTensorContents(bytes_contents=[b"seven"]),
            )
        ),
        INVALID,
        "datatype 'BYTES'",
    ),
    Case("oip-no-inputs", "oip", "ModelInfer", infer(), INVALID, "exactly one input"),
    Case(
        "oip-two-inputs",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], [0.0] * 30), fp32([1, 30], [0.0] * 30)),
        INVALID,
        "exactly one input",
    ),
    Case("oip-negative-shape", "oip", "ModelInfer", infer(fp32([-1, 30], [0.0] * 30)), INVALID, "negative dimension"),
    Case("oip-huge-rows-no-features", "oip", "ModelInfer", infer(fp32([2**40, 0])), INVALID, "dimension of 0"),
    Case("oip-shape-mismatch", "oip", "ModelInfer", infer(fp32([2, 30], [0.0] * 30)), INVALID, "needs 60 values"),
    Case(
        "oip-raw-odd-bytes",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30]), raw_input_contents=[b"\x00" * 5]),
        INVALID,
        "not a whole number",
    ),
    Case(
        "oip-raw-two-entries",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30]), raw_input_contents=[b"", b""]),
        INVALID,
        "raw_input_contents has 2",
    ),
    Case(
        "oip-raw-and-contents",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], [0.0] * 30), raw_input_contents=[ROW.astype("<f4").tobytes()]),
        INVALID,
        "not both",
    ),
    Case(
        "oip-nan",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], with_nan(ROW, math.nan).ravel().tolist())),
        INVALID,
        "NaN or infinity",
    ),
    Case(
        "oip-unknown-output",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], ROW.ravel().tolist()), outputs=[OUT(name="secrets")]),
        INVALID,
        "has no output 'secrets'",
    ),
    Case(
        "oip-unknown-version",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], ROW.ravel().tolist()), model_version="v9"),
        NOT_FOUND,
        "has no version 'v9'",
    ),
    Case(
        "oip-routing-key-wrong-type",
        "oip",
        "ModelInfer",
        infer(fp32([1, 30], ROW.ravel().tolist()), parameters={"routing_key": oip_pb2.InferParameter(int64_param=7)}),
        INVALID,
        "routing_key",
    ),
    Case(
        "oip-oversized",
        "oip",
        "ModelInfer",
        infer(fp32([9000, 30]), raw_input_contents=[BIG_ROWS.tobytes()]),
        EXHAUSTED,
        GRPC_CORE_TEXT,
    ),
    Case("oip-garbage", "oip", "ModelInfer", GARBAGE, INVALID, "ModelInferRequest"),
    Case(
        "oip-metadata-unknown",
        "oip",
        "ModelMetadata",
        oip_pb2.ModelMetadataRequest(name="nowhere"),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "oip-metadata-empty",
        "oip",
        "ModelMetadata",
        oip_pb2.ModelMetadataRequest(),
        INVALID,
        "deployment name is empty",
    ),
    Case("oip-ready-traversal", "oip", "ModelReady", oip_pb2.ModelReadyRequest(name=TRAVERSAL), OK, "", not_ready),
    Case(
        "oip-ready-unknown-version",
        "oip",
        "ModelReady",
        oip_pb2.ModelReadyRequest(name="web", version="v9"),
        OK,
        "",
        not_ready,
    ),
    Case("oip-ready-garbage", "oip", "ModelReady", GARBAGE, INVALID, "ModelReadyRequest"),
    Case("oip-live-garbage", "oip", "ServerLive", GARBAGE, INVALID, "ServerLiveRequest"),
    Case("oip-server-ready-garbage", "oip", "ServerReady", GARBAGE, INVALID, "ServerReadyRequest"),
    Case("oip-server-metadata-garbage", "oip", "ServerMetadata", GARBAGE, INVALID, "ServerMetadataRequest"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(env: Env, case: Case) -> None:
    check_case(env, case)
