"""The numpy encoder of PredictBatchResponse rows decodes to exactly what protobuf would build."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.wire import encode_rows, varint_lengths
from protos import inference_pb2


def reference(
    served: list[int], labels: list[int] | None, values: list[float] | None
) -> inference_pb2.PredictBatchResponse:
    response = inference_pb2.PredictBatchResponse()
    for i, s in enumerate(served):
        response.rows.add(served_by=s, label=labels[i] if labels else 0, value=values[i] if values else 0.0)
    return response


def both_encodings(
    data: list[tuple[int, int, float]], with_labels: bool, with_values: bool
) -> tuple[bytes, inference_pb2.PredictBatchResponse]:
    """The fast encoder's bytes and the message protobuf builds for the same rows (served_by, label, value)."""
    served = [d[0] for d in data]
    labels = [d[1] for d in data] if with_labels else None
    values = [d[2] for d in data] if with_values else None
    encoded = encode_rows(
        np.asarray(served, dtype=np.int64),
        np.asarray(labels, dtype=np.int64) if labels is not None else None,
        np.asarray(values, dtype=np.float64) if values is not None else None,
    )
    return encoded, reference(served, labels, values)


def assert_parses_to(encoded: bytes, expected: inference_pb2.PredictBatchResponse) -> None:
    """protobuf parses the bytes to the expected message; values compared bit for bit (-0.0 is not 0.0).

    Not compared with protobuf's own serialization: its bytes are not promised across versions.
    """
    parsed = inference_pb2.PredictBatchResponse.FromString(encoded)
    assert parsed == expected

    def rows(message: inference_pb2.PredictBatchResponse) -> list[tuple[int, int, bytes]]:
        return [(r.served_by, r.label, struct.pack("<d", r.value)) for r in message.rows]

    assert rows(parsed) == rows(expected)


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2**31 - 1),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.floats(allow_nan=False, allow_infinity=True),
        ),
        min_size=1,
        max_size=60,
    ),
    with_labels=st.booleans(),
    with_values=st.booleans(),
)
def test_encoded_rows_parse_back_identically(
    data: list[tuple[int, int, float]], with_labels: bool, with_values: bool
) -> None:
    assert_parses_to(*both_encodings(data, with_labels, with_values))


def test_varint_lengths() -> None:
    values = np.array([0, 1, 127, 128, 16383, 16384, 2**63, 2**64 - 1], dtype=np.uint64)
    assert varint_lengths(values).tolist() == [1, 1, 1, 2, 2, 3, 10, 10]


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=127),
            st.integers(min_value=0, max_value=127),
            st.floats(allow_nan=False, allow_infinity=True) | st.just(0.0) | st.just(-0.0),
        ),
        min_size=1,
        max_size=60,
    ),
    with_labels=st.booleans(),
    with_values=st.booleans(),
)
def test_small_served_by_and_labels_take_the_one_byte_path_and_match(
    data: list[tuple[int, int, float]], with_labels: bool, with_values: bool
) -> None:
    assert_parses_to(*both_encodings(data, with_labels, with_values))
