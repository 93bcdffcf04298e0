"""Bad input to the agent's sluice.v1.Inference service."""

from __future__ import annotations

import math

import grpc
import pytest

from core.client import predict_request
from core.tensors import encode_tensor
from protos import inference_pb2
from tests.models import mixed_columns, mixed_records, mixed_rows
from tests.security.bad_input.support import (
    BAD_UTF8,
    BIG_ROWS,
    EXHAUSTED,
    GARBAGE,
    GRPC_CORE_TEXT,
    HUGE,
    INVALID,
    NOT_FOUND,
    ROW,
    ROWS,
    TRAVERSAL,
    Case,
    Env,
    batch,
    check_case,
    predict,
    tensor,
    with_nan,
)

pytestmark = pytest.mark.xdist_group("bad-input")
SERVES_TYPED_MODEL = True  # the env's agent also serves "mixed" (conftest.py)

CASES = [
    # sluice.v1.Inference
    Case("predict-no-input", "inference", "Predict", predict(), INVALID, "no input"),
    Case(
        "predict-empty-deployment",
        "inference",
        "Predict",
        predict("", input=tensor(ROW)),
        INVALID,
        "deployment name is empty",
    ),
    Case(
        "predict-unknown-deployment",
        "inference",
        "Predict",
        predict("nowhere", input=tensor(ROW)),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "predict-traversal-deployment",
        "inference",
        "Predict",
        predict(TRAVERSAL, input=tensor(ROW)),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "predict-100kB-deployment",
        "inference",
        "Predict",
        predict(HUGE, input=tensor(ROW)),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "predict-shape-mismatch",
        "inference",
        "Predict",
        predict(input=tensor(shape=[1, 30], values=[0.0] * 29)),
        INVALID,
        "needs 30 values",
    ),
    Case(
        "predict-wrong-feature-count",
        "inference",
        "Predict",
        predict(input=tensor(shape=[1, 29], values=[0.0] * 29)),
        INVALID,
        "expected",
    ),
    Case(
        "predict-negative-dimension",
        "inference",
        "Predict",
        predict(input=tensor(shape=[-1, 30], values=[0.0] * 30)),
        INVALID,
        "negative dimension",
    ),
    Case("predict-empty-batch", "inference", "Predict", predict(input=tensor(shape=[0, 30])), INVALID, "no rows"),
    Case(
        "predict-huge-rows-no-features",
        "inference",
        "Predict",
        predict(input=tensor(shape=[2**40, 0])),
        INVALID,
        "dimension of 0",
    ),
    Case("predict-no-shape", "inference", "Predict", predict(input=tensor(values=[0.0] * 30)), INVALID, "no shape"),
    Case(
        "predict-rank-3",
        "inference",
        "Predict",
        predict(input=tensor(shape=[1, 5, 6], values=[0.0] * 30)),
        INVALID,
        "rank 3",
    ),
    Case(
        "predict-nan",
        "inference",
        "Predict",
        predict(input=tensor(with_nan(ROW, math.nan))),
        INVALID,
        "NaN or infinity",
    ),
    Case(
        "predict-inf",
        "inference",
        "Predict",
        predict(input=tensor(with_nan(ROW, -math.inf))),
        INVALID,
        "NaN or infinity",
    ),
    Case(
        "predict-overflows-model",
        "inference",
        "Predict",
        predict(input=tensor(shape=[1, 30], values=[3.4e38] * 30)),
        grpc.StatusCode.INTERNAL,  # a model failure, counted against the version that ran it
        "beyond the range",
    ),
    Case(
        "predict-raw-odd-bytes",
        "inference",
        "Predict",
        predict(input=tensor(shape=[1, 30], raw=b"\x00" * 7)),
        INVALID,
        "not a whole number",
    ),
    Case(
        "predict-raw-and-values",
        "inference",
        "Predict",
        predict(input=tensor(shape=[1, 1], values=[1.0], raw=b"\x00" * 4)),
        INVALID,
        "both 'values' and 'raw'",
    ),
    Case(
        "predict-huge-shape",
        "inference",
        "Predict",
        predict(input=tensor(shape=[2**62, 2**62], values=[1.0])),
        INVALID,
        "values but 1 were sent",
    ),
    Case(
        "predict-two-named-inputs",
        "inference",
        "Predict",
        predict(named_inputs={"a": tensor(ROW), "b": tensor(ROW)}),
        INVALID,
        "got no 'input' and unknown 'a', 'b'",
    ),
    Case(
        "predict-input-and-named",
        "inference",
        "Predict",
        predict(input=tensor(ROW), named_inputs={"a": tensor(ROW)}),
        INVALID,
        "not both",
    ),
    Case(
        "predict-300-char-request-id",
        "inference",
        "Predict",
        predict(input=tensor(ROW), request_id="r" * 300),
        INVALID,
        "request id",
    ),
    Case(
        "predict-100k-routing-key",
        "inference",
        "Predict",
        predict(input=tensor(ROW), routing_key="k" * 100_000),
        INVALID,
        "routing key is 100000 characters; the limit is 1024",
    ),
    Case(
        "batch-100k-routing-key",
        "inference",
        "PredictBatch",
        batch(inputs=tensor(ROWS), routing_keys=["a", "b", "c", "k" * 100_000]),
        INVALID,
        "routing key is 100000 characters",
    ),
    Case(
        "predict-oversized",
        "inference",
        "Predict",
        predict(input=inference_pb2.Tensor(shape=[9000, 30], raw=BIG_ROWS.tobytes())),
        EXHAUSTED,
        GRPC_CORE_TEXT,
    ),
    Case("predict-garbage", "inference", "Predict", GARBAGE, INVALID, "PredictRequest"),
    Case(
        "predict-bad-utf8-name",
        "inference",
        "Predict",
        BAD_UTF8,
        INVALID,
        "not a valid sluice.v1.PredictRequest message",
    ),
    Case(
        # The rows' raw bytes are cut out before protobuf parses the rest (core.zero_copy): the
        # refusal is protobuf's, naming the message, as for any other request.
        "batch-bad-utf8-name-raw-rows",
        "inference",
        "PredictBatch",
        BAD_UTF8
        + batch(
            "", inputs=inference_pb2.Tensor(shape=list(ROWS.shape), raw=ROWS.astype("<f4").tobytes())
        ).SerializeToString(),
        INVALID,
        "not a valid sluice.v1.PredictBatchRequest message",
    ),
    Case(
        "batch-key-count",
        "inference",
        "PredictBatch",
        batch(inputs=tensor(ROWS), routing_keys=["a", "b"]),
        INVALID,
        "routing_keys has 2 entries for 4 rows",
    ),
    Case(
        "batch-id-count",
        "inference",
        "PredictBatch",
        batch(inputs=tensor(ROWS), request_ids=["a"]),
        INVALID,
        "request_ids has 1 entries for 4 rows",
    ),
    Case(
        "batch-long-request-id",
        "inference",
        "PredictBatch",
        batch(inputs=tensor(ROWS), request_ids=["a", "b", "c", "d" * 100_000]),
        INVALID,
        "the limit is 256",
    ),
    Case("batch-empty", "inference", "PredictBatch", batch(inputs=tensor(shape=[0, 30])), INVALID, "no rows"),
    Case(
        "batch-huge-rows-no-features",
        "inference",
        "PredictBatch",
        batch(inputs=tensor(shape=[2**40, 0])),
        INVALID,
        "dimension of 0",
    ),
    Case("batch-no-inputs", "inference", "PredictBatch", batch(), INVALID, "no input: send 'inputs'"),
    Case(
        "batch-nan",
        "inference",
        "PredictBatch",
        batch(inputs=tensor(with_nan(ROWS, math.nan))),
        INVALID,
        "NaN or infinity",
    ),
    Case(
        "batch-unknown-deployment",
        "inference",
        "PredictBatch",
        batch("nowhere", inputs=tensor(ROWS)),
        NOT_FOUND,
        "no deployment named",
    ),
    Case(
        "batch-oversized",
        "inference",
        "PredictBatch",
        batch(inputs=inference_pb2.Tensor(shape=[9000, 30], raw=BIG_ROWS.tobytes())),
        EXHAUSTED,
        GRPC_CORE_TEXT,
    ),
    Case(
        "feedback-no-request-id",
        "inference",
        "Feedback",
        inference_pb2.FeedbackRequest(deployment="web", label=1),
        INVALID,
        "request_id is empty",
    ),
    Case(
        "feedback-no-truth",
        "inference",
        "Feedback",
        inference_pb2.FeedbackRequest(deployment="web", request_id="r1"),
        INVALID,
        "send the true",
    ),
    Case(
        "feedback-nan-value",
        "inference",
        "Feedback",
        inference_pb2.FeedbackRequest(deployment="web", request_id="r1", value=math.nan),
        INVALID,
        "finite number",
    ),
    Case(
        "feedback-inf-value",
        "inference",
        "Feedback",
        inference_pb2.FeedbackRequest(deployment="web", request_id="r1", value=math.inf),
        INVALID,
        "finite number",
    ),
    Case(
        "feedback-100kB-request-id",
        "inference",
        "Feedback",
        inference_pb2.FeedbackRequest(deployment="web", request_id=HUGE, label=1),
        INVALID,
        "the limit is 256",
    ),
    Case(
        "feedback-unknown-deployment",
        "inference",
        "Feedback",
        inference_pb2.FeedbackRequest(deployment="nowhere", request_id="r1", label=1),
        NOT_FOUND,
        "no deployment named",
    ),
]


# ---- a model of typed inputs (issue 14): strings, float64 with missing values, string classes ----

MIXED_ROW = mixed_rows(1, seed=9)
DT = inference_pb2.DataType


def mixed_record(**changes: object) -> inference_pb2.PredictRequest:
    """A record of the mixed model with features changed (a value of ... drops the feature)."""
    record = mixed_records(MIXED_ROW)[0] | changes
    return predict_request("mixed", records=[{k: v for k, v in record.items() if v is not ...}])


def mixed_tensors(**changes: inference_pb2.Tensor) -> inference_pb2.PredictRequest:
    request = predict_request("mixed", inputs=mixed_columns(MIXED_ROW))
    for name, changed in changes.items():
        request.named_inputs[name].CopyFrom(changed)
    return request


CASES += [
    Case("record-missing-feature", "inference", "Predict", mixed_record(income=...), INVALID, "lacks 'income'"),
    Case(
        "record-unknown-feature",
        "inference",
        "Predict",
        mixed_record(colour="red"),
        INVALID,
        "unknown feature(s) 'colour'",
    ),
    Case(
        "record-string-for-number",
        "inference",
        "Predict",
        mixed_record(age="forty"),
        INVALID,
        "feature 'age' is a string; input 'age' takes float64: a string where a number is expected",
    ),
    Case(
        "record-number-for-string",
        "inference",
        "Predict",
        mixed_record(plan=3),
        INVALID,
        "feature 'plan' is 3: a number where a string is expected",
    ),
    Case(
        "record-empty",
        "inference",
        "Predict",
        predict("mixed", records=[inference_pb2.Record()]),
        INVALID,
        "record 0 is empty",
    ),
    Case("record-huge-string", "inference", "Predict", mixed_record(plan=HUGE), INVALID, "longer than 65536 bytes"),
    Case(
        "record-nan-without-imputer",
        "inference",
        "Predict",
        predict_request("web", records=[{"input": [None, *ROW[0, 1:].tolist()]}]),
        INVALID,
        "NaN or infinity (row 0, feature 0 is nan)",
    ),
    Case(
        "tensor-nan-without-imputer",
        "inference",
        "Predict",
        predict_request("web", inputs={"input": with_nan(ROW, math.nan).astype("float64")}),
        INVALID,
        "no imputer",
    ),
    Case(
        "tensor-string-for-number",
        "inference",
        "Predict",
        mixed_tensors(age=encode_tensor([["forty"]])),
        INVALID,
        "input 'age': expected a float64 tensor of shape [rows, 1], got object values: a string where a number",
    ),
    Case(
        "tensor-number-for-string",
        "inference",
        "Predict",
        mixed_tensors(plan=encode_tensor([[3.0]])),
        INVALID,
        "input 'plan': expected a string tensor of shape [rows, 1], got float64 values: a number where a string",
    ),
    Case(
        "tensor-rows-differ",
        "inference",
        "Predict",
        mixed_tensors(plan=encode_tensor([["pro"], ["free"]])),
        INVALID,
        "input 'plan' has 2 rows but input 'age' has 1",
    ),
    Case(
        "tensor-bytes-not-utf8",
        "inference",
        "Predict",
        mixed_tensors(plan=inference_pb2.Tensor(shape=[1, 1], dtype=DT.DATA_TYPE_STRING, string_values=[b"\xff"])),
        INVALID,
        "input 'plan' element 0 is not UTF-8 text",
    ),
    Case(
        "tensor-huge-string",
        "inference",
        "Predict",
        mixed_tensors(plan=encode_tensor([[HUGE]])),
        INVALID,
        "is 100000 bytes; a string may have at most 65536",
    ),
    Case(
        "tensor-and-records",
        "inference",
        "Predict",
        predict("mixed", named_inputs=mixed_tensors().named_inputs, records=mixed_record().records),
        INVALID,
        "not both",
    ),
    Case(
        "batch-record-missing-feature",
        "inference",
        "PredictBatch",
        batch("mixed", records=mixed_record(plan=...).records),
        INVALID,
        "lacks 'plan'",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(env: Env, case: Case) -> None:
    check_case(env, case)
