"""Experiment segments on features (issue 14 item 7), with a real agent process.

A control plane in this process and one `sluice agent` process; v1 (logreg) and v2 (gbm) trained
by `sluice train` on a generated table with a `country` text column and an `age` number (some
missing). The experiment sends the challenger every request of the segment `country=de` and
`age=30..40` (a plan of one step at 100%), so each row's version is decided by its features
alone: record-form Predict calls, and a PredictBatch whose rows are split, answered by each
version on its own rows and put back in order. Each answer is compared with the version's own
ONNX file run by onnxruntime here; the control plane's per-version counts see every row under
the version that answered it. Rules that name a feature the model lacks, or a range on a text
feature, are refused at `experiment start`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnxruntime as ort
import pytest

from controlplane.training import train_command
from core.client import ClientError, SluiceClient, batch_request, batch_results, predict_request
from protos import common_pb2, controlplane_pb2
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import ServerThread, start_server, unique
from tests.models import mixed_table_rows, write_mixed_table

COUNTRIES = {"ios": "de", "android": "fr", "web": "us"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    started = start_server(tmp_path_factory.mktemp("cp"))
    try:
        yield started
    finally:
        started.stop()


def _table(n: int, seed: int) -> list[dict[str, Any]]:
    """The generated mixed table with its `device` column turned into a `country`."""
    rows = []
    for row in mixed_table_rows(n, seed=seed):
        country = COUNTRIES[row.pop("device")]
        label = row.pop("label")
        rows.append({**row, "country": country, "label": label})  # the label stays the last column
    return rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trained")
    data = write_mixed_table(root / "table.csv", _table(300, seed=4))
    v1 = train_command(data, root / "v1.onnx", None, "logreg")
    v2 = train_command(data, root / "v2.onnx", None, "gbm")
    return {"v1": v1.out, "v2": v2.out, "baseline": v1.baseline}


def _own_answer(session: ort.InferenceSession, record: dict[str, Any]) -> tuple[str, np.ndarray]:
    """The version's own answer for one record: its ONNX file run here, one [1, 1] column per input."""
    feeds = {}
    for spec in session.get_inputs():
        value = record[spec.name]
        if spec.type == "tensor(string)":
            feeds[spec.name] = np.array([[value]], dtype=object)
        else:
            dtype = np.float64 if spec.type == "tensor(double)" else np.float32
            feeds[spec.name] = np.array([[np.nan if value is None else value]], dtype=dtype)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
    label = outputs["label"]
    probabilities = next(v for k, v in outputs.items() if k != "label")
    return str(label.ravel()[0]), np.asarray(probabilities, dtype=np.float32).reshape(-1)


def _inside(record: dict[str, Any]) -> bool:
    age = record["age"]
    return record["country"] == "de" and age is not None and 30 <= age <= 40


def _counts(client: SluiceClient, dep: str) -> tuple[dict[str, int], dict[str, int]]:
    """Per version: the calls its windows counted and the rows its prediction log holds."""
    versions = client.status(dep)[0].versions
    return (
        {v.version.version: int(v.requests) for v in versions},
        {v.version.version: int(v.labeled.predictions) for v in versions},
    )


def test_feature_segments_route_predicts_and_each_batch_row(
    server: ServerThread, trained: dict[str, Path], tmp_path: Path
) -> None:
    model, dep = unique("seg"), unique("dep")
    agent: AgentProcess | None = None
    with SluiceClient(server.address, token="") as client:
        client.register_version(model, "v1", trained["v1"], trained["baseline"])
        client.register_version(model, "v2", trained["v2"], trained["baseline"])
        client.deploy(dep, f"{model}:v1")

        def config(*rules: common_pb2.SegmentRule) -> controlplane_pb2.ExperimentConfig:
            return controlplane_pb2.ExperimentConfig(
                deployment=dep,
                challenger=common_pb2.VersionRef(model=model, version="v2"),
                traffic_percent=10,
                plan=[100],
                hold_seconds=3600,
                segment_rules=list(rules),
            )

        de = common_pb2.SegmentRule(attribute="country", values=["de"])
        ages = common_pb2.SegmentRule(attribute="age", has_range=True, min=30, max=40)
        # bad rules are refused with the name, and nothing starts
        refusals = [
            (common_pb2.SegmentRule(attribute="feature.cuntry", values=["de"]), "has no input feature 'cuntry'"),
            (common_pb2.SegmentRule(attribute="plan", has_range=True, min=1, max=2), "feature 'plan'"),
            (common_pb2.SegmentRule(attribute="feature.age", values=["old"]), "'old' is not a number"),
        ]
        for rule, text in refusals:
            with pytest.raises(ClientError) as caught:
                client.start_experiment(unique("bad"), config(de, rule))
            assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT, caught.value
            assert text in str(caught.value)
        assert not client.get_deployment(dep).experiment

        client.start_experiment(unique("exp"), config(de, ages))
        try:
            agent = AgentProcess(server.address, "seg-agent", tmp_path / "cache", tmp_path / "agent.log")
            wait_for_agents(client, dep, ["seg-agent"])
            assert agent.stub is not None
            sessions = {v: ort.InferenceSession(str(trained[v])) for v in ("v1", "v2")}

            base = {k: v for k, v in _table(1, seed=9)[0].items() if k != "label"}
            singles = [
                ({**base, "country": "de", "age": 35.0}, "v2"),
                ({**base, "country": "us", "age": 35.0}, "v1"),
                ({**base, "country": "de", "age": 30.0}, "v2"),  # both ends of the range are in it
                ({**base, "country": "de", "age": 40.0}, "v2"),
                ({**base, "country": "de", "age": 29.99}, "v1"),
                ({**base, "country": "de", "age": 40.01}, "v1"),
                ({**base, "country": "de", "age": None}, "v1"),  # a missing age is in no range
            ]
            for record, version in singles:
                answer = agent.stub.Predict(predict_request(dep, records=[record]), timeout=30)
                assert answer.served_by.version == version, record
            # a request attribute of the same name decides before the feature
            answer = agent.stub.Predict(
                predict_request(dep, records=[singles[0][0]], attributes={"country": "us"}), timeout=30
            )
            assert answer.served_by.version == "v1"

            records = [{k: v for k, v in r.items() if k != "label"} for r in _table(60, seed=11)]
            for i, record in enumerate(records[:20]):  # make sure both sides of the split are there
                record["country"], record["age"] = ("de", 30.0 + i % 11) if i % 2 else ("fr", 35.0)
            expected = ["v2" if _inside(r) else "v1" for r in records]
            assert 10 <= expected.count("v2") <= 50
            results = batch_results(agent.stub.PredictBatch(batch_request(dep, records=records), timeout=60))
            assert [name.split(":")[1] for name in results.row_versions()] == expected
            assert results.class_labels is not None and results.probabilities is not None
            for i, (record, version) in enumerate(zip(records, expected, strict=True)):
                label, probabilities = _own_answer(sessions[version], record)
                assert results.class_labels[i] == label, i
                np.testing.assert_allclose(results.probabilities[i], probabilities, rtol=1e-5, atol=1e-6)

            # Each version's windows count the calls it answered (a batch's part is one call to
            # it) and its prediction log the rows it answered.
            single_v2 = sum(v == "v2" for _, v in singles)
            calls = {"v1": len(singles) - single_v2 + 2, "v2": single_v2 + 1}
            rows = {"v1": expected.count("v1") + calls["v1"] - 1, "v2": expected.count("v2") + single_v2}
            wait_until(lambda: _counts(client, dep) == (calls, rows), 60, f"calls {calls} and logged rows {rows}")
        finally:
            if agent is not None:
                agent.stop()
