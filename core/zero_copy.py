"""A PredictBatchRequest parsed without copying its input tensor's `raw` bytes.

gRPC hands the agent a request's serialised bytes. Protobuf's parse copies `inputs.raw` (4 bytes a
float32 value: 122 KB for 1,024 rows of 30 features) into its own memory, and reading the field
copies it again into a new bytes object, every call. `parse_batch_request` reads only the framing
of the two messages (field tags and lengths, up to `inputs.raw`) to find where those bytes lie,
lets protobuf parse the request with that one field cut out, and hands the bytes over as a
read-only view of the received message (`BatchRequest.raw`), from which numpy reads the rows
without a copy (`core.tensors.decode_tensor`).

Only the framing is read here, never a value: protobuf still parses and checks everything else.
Whatever is not the plain layout (no `inputs` or no `raw` among the first fields, a group, a length
past the end, a corrupt tag) is parsed by protobuf as it is, with the same result and the same
errors as before, and the copies. Protobuf merges a repeated `inputs` and keeps the last `raw`: a
`raw` found in the parsed rest means a later one wins, and the request is then parsed whole.
"""

from __future__ import annotations

from typing import NamedTuple

from google.protobuf.message import DecodeError

from protos import inference_pb2

#: PredictBatchRequest.inputs (field 2) and Tensor.raw (field 3), both length-delimited (wire type 2)
_INPUTS_TAG = 2 << 3 | 2
_RAW_TAG = 3 << 3 | 2
#: fields read before giving up on a message in an unusual order (protobuf then parses it whole)
_SCAN_LIMIT = 16


class _Unusual(Exception):
    """Framing this reader does not follow: protobuf parses the message whole."""


class BatchRequest(NamedTuple):
    """A parsed PredictBatchRequest and its `inputs.raw` apart from it (None: still in `message`)."""

    message: inference_pb2.PredictBatchRequest
    raw: memoryview | None = None

    @property
    def deployment(self) -> str:
        return self.message.deployment


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it."""
    value = shift = 0
    while shift < 64:
        if pos >= end:
            raise _Unusual
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise _Unusual


def _find(data: bytes, pos: int, end: int, wanted: int) -> tuple[int, int, int, int] | None:
    """(tag, length, payload, payload end) positions of the first length-delimited field tagged
    `wanted` in data[pos:end]; None when there is none."""
    for _ in range(_SCAN_LIMIT):
        if pos == end:
            return None
        tag_at = pos
        tag = data[pos]
        if tag < 0x80:  # a one-byte tag: fields 1-15, every field of these two messages
            pos += 1
        else:
            tag, pos = _varint(data, pos, end)
        kind = tag & 7
        if tag < 8:  # field number 0
            raise _Unusual
        if kind == 2:
            length_at = pos
            length, pos = _varint(data, pos, end)
            if length > end - pos:
                raise _Unusual
            if tag == wanted:
                return tag_at, length_at, pos, pos + length
            pos += length
        elif kind == 0:
            _, pos = _varint(data, pos, end)
        elif kind == 1 or kind == 5:
            pos += 8 if kind == 1 else 4
            if pos > end:
                raise _Unusual
        else:  # groups (3, 4) and the wire types that do not exist
            raise _Unusual
    raise _Unusual


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _cut(data: bytes) -> tuple[bytes, int, int] | None:
    """The request without `inputs.raw`, and where the raw bytes lie; None when there are none."""
    inputs = _find(data, 0, len(data), _INPUTS_TAG)
    if inputs is None:
        return None
    _, length_at, start, end = inputs
    raw = _find(data, start, end, _RAW_TAG)
    if raw is None or raw[2] == raw[3]:
        return None
    raw_tag, _, raw_start, raw_end = raw
    tensor_length = (end - start) - (raw_end - raw_tag)
    view = memoryview(data)
    rest = b"".join((view[:length_at], _varint_bytes(tensor_length), view[start:raw_tag], view[raw_end:]))
    return rest, raw_start, raw_end


def parse_batch_request(data: bytes) -> BatchRequest:
    """The request parsed, with `inputs.raw` a view of `data` when it can be cut out (module doc).

    Raises protobuf's DecodeError for bytes that are not a PredictBatchRequest, as its own parse does.
    """
    try:
        found = _cut(data)
    except _Unusual:
        found = None
    if found is not None:
        rest, raw_start, raw_end = found
        try:
            message = inference_pb2.PredictBatchRequest.FromString(rest)
        except DecodeError:
            pass  # protobuf's own parse of the whole request says what is wrong, below
        else:
            if not message.inputs.raw:  # else a later `inputs.raw` wins, as protobuf decides
                return BatchRequest(message, memoryview(data)[raw_start:raw_end])
    return BatchRequest(inference_pb2.PredictBatchRequest.FromString(data))
