"""What `--json` prints: 64-bit integers as JSON numbers, and no traceback even from a bug."""

from __future__ import annotations

import json
import math

import pytest
from google.protobuf.json_format import MessageToDict

import cli
from cli.commands import tokens
from cli.output import to_jsonable
from protos import agent_pb2, common_pb2, controlplane_pb2, inference_pb2, oip_pb2


def test_int64_fields_become_numbers_at_every_depth() -> None:
    version = common_pb2.ModelVersion(
        sha256="ab" * 32,
        size_bytes=28112,
        inputs=[common_pb2.TensorSpec(name="input", dtype="float32", shape=[-1, 30])],
    )
    # protobuf's own JSON mapping writes these as strings; ours are numbers.
    assert MessageToDict(version)["sizeBytes"] == "28112"
    data = to_jsonable(version)
    assert data["size_bytes"] == 28112 and data["inputs"][0]["shape"] == [-1, 30]
    assert data["sha256"] == "ab" * 32 and data["inputs"][0]["name"] == "input"

    ack = agent_pb2.SnapshotAck(snapshot_id=2**40, generations={"web": 7, "batch": 0})
    data = to_jsonable(ack)
    assert data["snapshot_id"] == 2**40 and data["generations"] == {"web": 7, "batch": 0}

    request = inference_pb2.PredictRequest(named_inputs={"x": inference_pb2.Tensor(shape=[1, 4], values=[1, 2, 3, 4])})
    assert to_jsonable(request)["named_inputs"]["x"]["shape"] == [1, 4]

    oip = oip_pb2.ModelInferRequest(parameters={"n": oip_pb2.InferParameter(int64_param=-5)})
    assert to_jsonable(oip)["parameters"]["n"] == {"int64_param": -5}

    # No value yet (NaN) or an infinity: null, never the strings protobuf writes for them.
    status = controlplane_pb2.VersionStatus(accuracy=math.nan, latency_p95_ms=math.inf, requests=3, error_rate=0.5)
    data = to_jsonable(status)
    assert data["accuracy"] is None and data["latency_p95_ms"] is None
    assert data["error_rate"] == 0.5 and data["requests"] == 3

    # The label-joined figures: numbers as numbers, only the figures that apply.
    figures = controlplane_pb2.LabeledFigures(predictions=2**33, labeled=3, waiting=2**33 - 3, accuracy=0.5)
    status.labeled.CopyFrom(figures)
    assert to_jsonable(status)["labeled"] == {"predictions": 2**33, "labeled": 3, "waiting": 2**33 - 3, "accuracy": 0.5}
    assert "labeled" not in to_jsonable(controlplane_pb2.VersionStatus())

    # Lists of messages, and the whole thing stays valid JSON.
    listed = to_jsonable([version, version])
    assert [v["size_bytes"] for v in listed] == [28112, 28112]
    assert json.loads(json.dumps(listed)) == listed


def test_an_unexpected_error_is_one_line_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("something inside went wrong\nsecond line")

    monkeypatch.setattr(tokens, "cmd_hash", broken)
    assert cli.main(["token", "hash", "x" * 20]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: unexpected RuntimeError: something inside went wrong (a bug in sluice; -v shows it)"
