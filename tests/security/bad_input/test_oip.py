"""Bad input to the agent's Open Inference Protocol service."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from protos import oip_pb2
from tests.models import mixed_columns, mixed_rows
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
SERVES_TYPED_MODEL = True  # the env's agent also serves "mixed" (conftest.py)

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


# ---- a model of typed inputs (issue 14): FP64 and BYTES inputs [rows, 1] ----

MIXED_ROW = mixed_rows(1, seed=9)


def mixed_infer(rows: int = 1, **changes: Any) -> oip_pb2.ModelInferRequest:
    """What tritonclient sends for the mixed model (contents), with inputs replaced or dropped (None)."""
    columns = mixed_columns(np.repeat(MIXED_ROW, rows, axis=0))
    inputs = []
    for name, column in columns.items():
        if name in changes:
            if changes[name] is not None:
                inputs.append(changes[name])
            continue
        if column.dtype == object:
            contents = oip_pb2.InferTensorContents(bytes_contents=[s.encode() for s in column.ravel()])
            inputs.append(FP32(name=name, datatype="BYTES", shape=list(column.shape), contents=contents))
        else:
            contents = oip_pb2.InferTensorContents(fp64_contents=column.ravel().tolist())
            inputs.append(FP32(name=name, datatype="FP64", shape=list(column.shape), contents=contents))
    inputs += [tensor for name, tensor in changes.items() if name not in columns]
    return infer(*inputs, model="mixed")


def bytes_input(name: str, *items: bytes) -> Any:
    contents = oip_pb2.InferTensorContents(bytes_contents=list(items))
    return FP32(name=name, datatype="BYTES", shape=[len(items), 1], contents=contents)


def fp64_input(name: str, *values: float) -> Any:
    contents = oip_pb2.InferTensorContents(fp64_contents=list(values))
    return FP32(name=name, datatype="FP64", shape=[len(values), 1], contents=contents)


CASES += [
    Case("oip-mixed-missing-input", "oip", "ModelInfer", mixed_infer(income=None), INVALID, "takes 5 inputs"),
    Case(
        "oip-mixed-unknown-input",
        "oip",
        "ModelInfer",
        mixed_infer(income=None, colour=bytes_input("colour", b"red")),
        INVALID,
        "has no input 'colour'",
    ),
    Case(
        "oip-mixed-number-for-string",
        "oip",
        "ModelInfer",
        mixed_infer(plan=fp64_input("plan", 3.0)),
        INVALID,
        "input 'plan' has datatype 'FP64'; the model takes BYTES",
    ),
    Case(
        "oip-mixed-string-for-number",
        "oip",
        "ModelInfer",
        mixed_infer(age=bytes_input("age", b"forty")),
        INVALID,
        "input 'age' has datatype 'BYTES'; the model takes FP64",
    ),
    Case(
        "oip-mixed-rows-differ",
        "oip",
        "ModelInfer",
        mixed_infer(plan=bytes_input("plan", b"pro", b"free")),
        INVALID,
        "input 'plan' has 2 rows but input 'age' has 1",
    ),
    Case(
        "oip-mixed-bytes-not-utf8",
        "oip",
        "ModelInfer",
        mixed_infer(country=bytes_input("country", b"\xff\xfe")),
        INVALID,
        "input 'country' element 0 is not UTF-8 text",
    ),
    Case(
        "oip-mixed-huge-string",
        "oip",
        "ModelInfer",
        mixed_infer(country=bytes_input("country", b"x" * 100_000)),
        INVALID,
        "a string may have at most 65536",
    ),
    Case(
        "oip-mixed-raw-length-beyond-the-data",
        "oip",
        "ModelInfer",
        infer(
            *[FP32(name=t.name, datatype=t.datatype, shape=list(t.shape)) for t in mixed_infer().inputs],
            model="mixed",
            raw_input_contents=[b"\x00" * 8] * 3 + [b"\xff\xff\x00\x00pro", b"\x02\x00\x00\x00de"],
        ),
        INVALID,
        "claims 65535 bytes but only 3 follow",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(env: Env, case: Case) -> None:
    check_case(env, case)
