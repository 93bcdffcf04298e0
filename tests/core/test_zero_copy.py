"""core.zero_copy: a PredictBatchRequest parsed with `inputs.raw` left in the received bytes means
exactly what protobuf's own parse of the same bytes means, for any request and any bytes."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from core.client import batch_request
from core.errors import InvalidInput
from core.tensors import decode_tensor
from core.zero_copy import BatchRequest, parse_batch_request
from protos import inference_pb2

DT = inference_pb2.DataType


def restored(parsed: BatchRequest) -> inference_pb2.PredictBatchRequest:
    """The parsed message with its raw bytes put back where protobuf would have them."""
    message = inference_pb2.PredictBatchRequest()
    message.CopyFrom(parsed.message)
    if parsed.raw is not None:
        assert not message.inputs.raw
        message.inputs.raw = bytes(parsed.raw)
    return message


def same_as_protobuf(data: bytes) -> BatchRequest | None:
    """Parse `data` both ways; the same message, or the same refusal (None)."""
    try:
        expected = inference_pb2.PredictBatchRequest.FromString(data)
    except DecodeError:
        with pytest.raises(DecodeError):
            parse_batch_request(data)
        return None
    parsed = parse_batch_request(data)
    assert restored(parsed) == expected
    assert restored(parsed).SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    return parsed


tensors = st.builds(
    inference_pb2.Tensor,
    shape=st.lists(st.integers(0, 2**40), max_size=3),
    raw=st.binary(max_size=64),
    values=st.lists(st.floats(width=32), max_size=3),
    dtype=st.sampled_from([0, 1, 2, 5, 6, 99]),
    string_values=st.lists(st.binary(max_size=4), max_size=2),
)
requests = st.builds(
    inference_pb2.PredictBatchRequest,
    deployment=st.text(max_size=12),
    inputs=st.none() | tensors,
    routing_keys=st.lists(st.text(max_size=4), max_size=3),
    request_ids=st.lists(st.text(max_size=4), max_size=3),
    columnar_only=st.booleans(),
    named_inputs=st.dictionaries(st.text(max_size=3), tensors, max_size=2),
)


def test_the_rows_are_a_view_of_the_received_bytes_not_a_copy() -> None:
    rows = np.arange(24, dtype=np.float32).reshape(4, 6)
    data = batch_request("d" * 6, rows, keys=["k"] * 4).SerializeToString()  # rows at offset 16
    parsed = parse_batch_request(data)
    assert parsed.raw is not None and parsed.raw.obj is data
    assert not parsed.message.inputs.raw and list(parsed.message.inputs.shape) == [4, 6]
    assert list(parsed.message.routing_keys) == ["k"] * 4 and parsed.deployment == "dddddd"
    decoded = decode_tensor(parsed.message.inputs, "inputs", parsed.raw)
    np.testing.assert_array_equal(decoded, rows)
    assert not decoded.flags.writeable and np.shares_memory(decoded, np.frombuffer(data, np.uint8))


def test_rows_not_aligned_in_the_message_are_copied_once_aligned() -> None:
    rows = np.arange(12, dtype=np.float64).reshape(3, 4)
    offsets = set()
    for name in ("a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh"):
        request = inference_pb2.PredictBatchRequest(deployment=name)
        request.inputs.CopyFrom(inference_pb2.Tensor(shape=[3, 4], dtype=DT.DATA_TYPE_FLOAT64, raw=rows.tobytes()))
        parsed = parse_batch_request(request.SerializeToString())
        assert parsed.raw is not None
        decoded = decode_tensor(parsed.message.inputs, "inputs", parsed.raw)
        np.testing.assert_array_equal(decoded, rows)
        assert decoded.flags.aligned
        offsets.add(np.shares_memory(decoded, np.frombuffer(parsed.raw.obj, np.uint8)))
    assert offsets == {True, False}  # some names put the rows at an aligned offset, some do not


@settings(max_examples=300, deadline=None)
@given(requests)
def test_any_request_means_what_protobuf_parses(request: inference_pb2.PredictBatchRequest) -> None:
    parsed = same_as_protobuf(request.SerializeToString())
    assert parsed is not None
    assert (parsed.raw is not None) == bool(request.HasField("inputs") and request.inputs.raw)


@settings(max_examples=200, deadline=None)
@given(requests, requests)
def test_repeated_fields_merge_as_protobuf_merges_them(
    first: inference_pb2.PredictBatchRequest, second: inference_pb2.PredictBatchRequest
) -> None:
    # Two messages back to back are one message: a later `inputs` merges into the first, the
    # last `raw` wins.
    same_as_protobuf(first.SerializeToString() + second.SerializeToString())


@settings(max_examples=300, deadline=None)
@given(requests, st.data())
def test_corrupt_bytes_are_refused_or_read_as_protobuf_reads_them(
    request: inference_pb2.PredictBatchRequest, data: st.DataObject
) -> None:
    wire = bytearray(request.SerializeToString())
    for _ in range(data.draw(st.integers(1, 3))):
        if wire and data.draw(st.booleans()):
            wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
        else:
            del wire[data.draw(st.integers(0, len(wire))) :]
    same_as_protobuf(bytes(wire))


@pytest.mark.parametrize(
    "raw",
    [
        b"\x12\x05\x0a\x01\x02\x1a\x00",
        b"\x12\x03\x1a\x07ab",
        b"\x13\x14",
        b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    ],
    ids=["empty raw", "raw past the end", "a group", "an over-long varint"],
)
def test_framing_it_does_not_follow_goes_to_protobuf(raw: bytes) -> None:
    same_as_protobuf(raw)


def test_the_refusals_of_the_rows_are_those_of_a_plain_parse() -> None:
    request = inference_pb2.PredictBatchRequest(deployment="d")
    request.inputs.CopyFrom(inference_pb2.Tensor(shape=[2, 2], values=[1, 2, 3, 4], raw=b"\x00" * 16))
    parsed = parse_batch_request(request.SerializeToString())
    with pytest.raises(InvalidInput, match="sets both 'values' and 'raw'"):
        decode_tensor(parsed.message.inputs, "inputs", parsed.raw)
    request.inputs.CopyFrom(inference_pb2.Tensor(shape=[2, 2], dtype=DT.DATA_TYPE_INT64, raw=b"\x00" * 12))
    parsed = parse_batch_request(request.SerializeToString())
    with pytest.raises(InvalidInput, match="not a whole number of INT64 elements"):
        decode_tensor(parsed.message.inputs, "inputs", parsed.raw)
