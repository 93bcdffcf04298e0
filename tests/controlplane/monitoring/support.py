"""Shared pieces of the monitoring tests: a registered and deployed model, real predictions."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
from prometheus_client.parser import text_string_to_metric_families

from agent.recorder import MetricsRecorder
from controlplane import deployments, registry
from controlplane.agenthub.snapshot import build_snapshot
from controlplane.context import Context
from controlplane.domain import Principal, Role, VersionInfo
from controlplane.monitoring.ingest import ingest_report
from controlplane.sample_data import breast_cancer_arrays, breast_cancer_feature_names
from protos import agent_pb2
from tests.harness import unique
from tests.models import make_baseline, make_classifier_onnx

ALICE = Principal("alice", Role.OPERATOR)

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def prometheus_samples(text: str) -> dict[SampleKey, float]:
    """A /metrics page's samples by (name, sorted labels): what it says, not how prometheus-client lays it out."""
    out: dict[SampleKey, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(name: str, **labels: str) -> SampleKey:
    """The key of one sample in `prometheus_samples`."""
    return (name, tuple(sorted(labels.items())))


@functools.cache
def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def predict_labels(model: Path, rows: np.ndarray) -> np.ndarray:
    labels, _probabilities = session(model).run(None, {"input": rows.astype(np.float32)})
    return np.asarray(labels, dtype=np.int64)


@dataclass
class Deployed:
    name: str
    version: VersionInfo
    model: Path

    def recorder(self, ctx: Context, **kw: float) -> MetricsRecorder:
        recorder = MetricsRecorder(**kw)  # type: ignore[arg-type]
        recorder.configure(build_snapshot(ctx, 1))
        return recorder


def deploy_classifier(ctx: Context, models_dir: Path, kind: str = "logreg", name: str | None = None) -> Deployed:
    """Register a breast-cancer classifier with its baseline and make it a deployment's champion."""
    model = make_classifier_onnx(models_dir, kind)
    new = registry.NewVersion(model=unique("cancer"), version="v1", feature_names=breast_cancer_feature_names())
    info = registry.register_file(ctx, ALICE, new, model, make_baseline(models_dir))
    deployment = name or unique("dep")
    deployments.deploy(ctx, ALICE, deployment, info.model, info.version)
    return Deployed(deployment, info, model)


def serve(
    recorder: MetricsRecorder,
    d: Deployed,
    rows: np.ndarray,
    *,
    ids: list[str] | None = None,
    batch: int = 1,
    latency: float = 0.002,
) -> np.ndarray:
    """Score rows with onnxruntime as an agent would and record every call; returns the labels."""
    out = []
    for start in range(0, rows.shape[0], batch):
        part = rows[start : start + batch]
        labels = predict_labels(d.model, part)
        part_ids = ids[start : start + batch] if ids else ()
        recorder.record_prediction(
            d.name, d.version.model, d.version.version, "champion", part, labels, None, latency, "OK", part_ids
        )
        out.append(labels)
    return np.concatenate(out)


class AgentStamp:
    """The agent side of delivery that the tests need: agent id and a monotonic seq."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.seq = 0

    def stamp(self, report: agent_pb2.MetricReport) -> agent_pb2.MetricReport:
        self.seq += 1
        report.agent_id = self.agent_id
        report.seq = self.seq
        return report


def flush_and_ingest(ctx: Context, recorder: MetricsRecorder, sender: AgentStamp) -> agent_pb2.MetricReport:
    report = recorder.flush()
    assert report is not None
    sender.stamp(report)
    assert ingest_report(ctx, sender.agent_id, report).new
    return report


def cancer() -> tuple[np.ndarray, np.ndarray]:
    return breast_cancer_arrays()


def ingest_at(ctx: Context, recorder: MetricsRecorder, stamp: AgentStamp, at: datetime) -> agent_pb2.MetricReport:
    """Flush a window as if it had closed at `at` (an agent replaying its buffer does that)."""
    report = recorder.flush()
    assert report is not None
    report.window_start.FromDatetime(at)
    stamp.stamp(report)
    assert ingest_report(ctx, stamp.agent_id, report).new
    return report


def label_all(recorder: MetricsRecorder, deployment: str, ids: list[str], truth: np.ndarray) -> None:
    for rid, label in zip(ids, truth, strict=True):
        assert recorder.feedback(deployment, rid, label=int(label))
