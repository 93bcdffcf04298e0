"""The agent's MetricsRecorder: windows, histograms on baseline bins, feedback joins, shadow pairs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from agent.recorder import MetricsRecorder
from controlplane import convert
from controlplane.registry import summarise_baseline
from controlplane.sample_data import breast_cancer_arrays, breast_cancer_feature_names
from controlplane.stats.drift import histogram_counts
from core.vocabulary import ServingRole
from protos import agent_pb2, common_pb2
from tests.controlplane.monitoring.support import predict_labels, session
from tests.models import breast_cancer_rows, make_classifier_onnx, make_regressor_onnx

DEP = "cancer-dep"


def snapshot(*routes: tuple[str, str, int, str], task: str = "classifier") -> agent_pb2.Snapshot:
    X, _ = breast_cancer_arrays()
    baseline = convert.baseline(summarise_baseline(X.astype(np.float64), breast_cancer_feature_names()))
    return agent_pb2.Snapshot(
        snapshot_id=1,
        deployments=[
            agent_pb2.DeploymentSnapshot(
                name=DEP,
                generation=1,
                routes=[
                    agent_pb2.Route(
                        version=common_pb2.VersionRef(model=m, version=v),
                        weight=w,
                        role=ServingRole(role).to_wire(),
                        baseline=baseline,
                        task=task,
                    )
                    for m, v, w, role in routes
                ],
            )
        ],
    )


def window_of(report: agent_pb2.MetricReport, version: str) -> agent_pb2.VersionWindow:
    found = [w for w in report.windows if w.version.version == version]
    assert len(found) == 1, [w.version.version for w in report.windows]
    return found[0]


def test_a_window_counts_what_numpy_counts(models_dir: Path) -> None:
    model = make_classifier_onnx(models_dir)
    recorder = MetricsRecorder(reservoir_size=50)
    recorder.configure(snapshot(("m", "v1", 100, "champion")))
    rows = breast_cancer_rows(300, seed=1) * np.float32(1.3)  # partly outside the baseline's range
    labels = []
    for start in range(0, 300, 3):
        part = rows[start : start + 3]
        out = predict_labels(model, part)
        labels.append(out)
        recorder.record_prediction(DEP, "m", "v1", "champion", part, out, None, 0.001 * (1 + start % 7))
    labels_all = np.concatenate(labels)
    report = recorder.flush()
    assert report is not None and recorder.flush() is None  # the window closed; nothing since
    w = window_of(report, "v1")
    assert (w.requests, w.rows, w.role) == (100, 300, common_pb2.ROLE_CHAMPION)
    assert list(w.prediction_counts) == np.bincount(labels_all, minlength=2).tolist()
    assert sum(w.latency.counts) + w.latency.zero_count == 100
    bins = snapshot(("m", "v1", 100, "champion")).deployments[0].routes[0].baseline.features
    for feature in w.features:
        spec = bins[feature.index]
        column = rows[:, feature.index].astype(np.float64)
        expected = histogram_counts(column, np.asarray(spec.inner_edges))
        assert list(feature.counts) == expected.tolist()
        assert feature.out_of_range == int(np.sum((column < spec.min) | (column > spec.max)))
    assert len(w.features) == 30 and w.features[0].out_of_range > 0
    sample = np.asarray(w.reservoir, dtype=np.float32).reshape(-1, w.reservoir_features)
    assert sample.shape == (50, 30)
    as_set = {r.tobytes() for r in rows.astype(np.float32)}
    assert all(r.tobytes() in as_set for r in sample)


def test_nothing_recorded_flushes_none_and_rejections_go_to_the_champion() -> None:
    recorder = MetricsRecorder()
    recorder.configure(snapshot(("m", "v1", 90, "champion"), ("m", "v2", 10, "challenger")))
    assert recorder.flush() is None
    # refused before routing: rejected inputs of the champion, no request of a version
    recorder.record_rejected(DEP, "INVALID_ARGUMENT")
    recorder.record_rejected(DEP, "INVALID_ARGUMENT")
    recorder.record_rejected("not-served", "NOT_FOUND")
    report = recorder.flush()
    assert report is not None
    assert [(w.version.version, w.rejected_inputs, w.requests) for w in report.windows] == [("v1", 2, 0)]


def test_feedback_joins_labels_once_and_counts_unknown_ids(models_dir: Path) -> None:
    model = make_classifier_onnx(models_dir)
    X, y = breast_cancer_arrays()
    recorder = MetricsRecorder()
    recorder.configure(snapshot(("m", "v1", 100, "champion")))
    ids = [f"req-{i}" for i in range(200)]
    labels = predict_labels(model, X[:200])
    recorder.record_prediction(DEP, "m", "v1", "champion", X[:200], labels, None, 0.01, "OK", ids)
    first = recorder.flush()
    assert first is not None and window_of(first, "v1").feedback.n_labeled == 0
    for i in range(0, 200, 2):  # labels for half of them, one window later
        assert recorder.feedback(DEP, ids[i], label=int(y[i])) is True
    assert recorder.feedback(DEP, ids[0], label=int(y[0])) is False  # counted once
    assert recorder.feedback(DEP, "never-seen", label=1) is False
    assert recorder.feedback("other-deployment", ids[1], label=1) is False
    report = recorder.flush()
    assert report is not None
    fb = window_of(report, "v1").feedback
    assert fb.n_labeled == 100
    assert fb.n_correct == int(np.sum(labels[::2] == y[:200:2]))
    assert report.unmatched_feedback == 3


def test_feedback_forgets_ids_after_their_ttl_and_beyond_capacity(models_dir: Path) -> None:
    model = make_classifier_onnx(models_dir)
    X, _ = breast_cancer_arrays()
    labels = predict_labels(model, X[:20])
    short = MetricsRecorder(feedback_ttl_seconds=0.05)
    short.configure(snapshot(("m", "v1", 100, "champion")))
    short.record_prediction(DEP, "m", "v1", "champion", X[:1], labels[:1], None, 0.01, "OK", ["old"])
    time.sleep(0.2)
    assert short.feedback(DEP, "old", label=1) is False
    small = MetricsRecorder(feedback_capacity=10)
    small.configure(snapshot(("m", "v1", 100, "champion")))
    for i in range(20):
        small.record_prediction(
            DEP, "m", "v1", "champion", X[i : i + 1], labels[i : i + 1], None, 0.01, "OK", [f"r{i}"]
        )
    assert small.feedback(DEP, "r0", label=1) is False  # evicted: capacity 10 rows
    assert small.feedback(DEP, "r19", label=1) is True


def test_regression_feedback_sums_absolute_errors(models_dir: Path) -> None:
    model = make_regressor_onnx(models_dir)
    X, _ = breast_cancer_arrays()
    (values,) = session(model).run(None, {"input": X[:50]})
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    recorder = MetricsRecorder(tolerance=0.25)
    recorder.configure(snapshot(("r", "v1", 100, "champion"), task="regressor"))
    ids = [f"q{i}" for i in range(50)]
    recorder.record_prediction(DEP, "r", "v1", "champion", X[:50], None, values, 0.01, "OK", ids)
    truth = values + np.random.default_rng(3).normal(0, 0.3, 50)
    for i in range(50):
        assert recorder.feedback(DEP, ids[i], value=float(truth[i])) is True
    report = recorder.flush()
    assert report is not None
    w = window_of(report, "v1")
    errors = np.abs(values - truth)
    assert w.feedback.n_labeled == 50
    assert w.feedback.sum_abs_error == pytest.approx(errors.sum(), rel=1e-9)
    assert w.feedback.n_within_tolerance == int(np.sum(errors <= 0.25))
    assert w.feedback.abs_error.n == 50
    assert w.feedback.abs_error.mean == pytest.approx(errors.mean(), rel=1e-9)
    assert w.feedback.abs_error.m2 == pytest.approx(((errors - errors.mean()) ** 2).sum(), rel=1e-9)
    assert w.prediction_values.n == 50
    assert w.prediction_values.mean == pytest.approx(values.mean(), rel=1e-6)


def test_shadow_pairs_join_labels_into_mcnemar_counts(models_dir: Path) -> None:
    champion = make_classifier_onnx(models_dir, "logreg")
    shadow = make_classifier_onnx(models_dir, "gbm")
    X, y = breast_cancer_arrays()
    rows = X[:120]
    ids = [f"s{i}" for i in range(120)]
    recorder = MetricsRecorder()
    recorder.configure(snapshot(("m", "v1", 100, "champion"), ("m", "v2", 0, "shadow")))
    a = predict_labels(champion, rows)
    b = predict_labels(shadow, rows)
    recorder.record_prediction(DEP, "m", "v1", "champion", rows, a, None, 0.01, "OK", ids)
    recorder.record_prediction(DEP, "m", "v2", "shadow", rows, b, None, 0.01, "OK", ids)
    recorder.record_shadow_pair(DEP, ("m", "v1"), ("m", "v2"), a, b, ids)
    for i in range(120):
        assert recorder.feedback(DEP, ids[i], label=int(y[i])) is True
    report = recorder.flush()
    assert report is not None
    shadow_window = window_of(report, "v2")
    assert shadow_window.role == common_pb2.ROLE_SHADOW
    s = shadow_window.shadow
    truth = y[:120]
    assert s.pairs == 120 and s.agreements == int(np.sum(a == b))
    assert s.labeled_pairs == 120
    assert s.champion_only_correct == int(np.sum((a == truth) & (b != truth)))
    assert s.challenger_only_correct == int(np.sum((b == truth) & (a != truth)))
    assert shadow_window.feedback.n_correct == int(np.sum(b == truth))
    assert window_of(report, "v1").feedback.n_correct == int(np.sum(a == truth))


def test_concurrent_recording_loses_nothing(models_dir: Path) -> None:
    model = make_classifier_onnx(models_dir)
    X, _ = breast_cancer_arrays()
    labels = predict_labels(model, X[:1])
    recorder = MetricsRecorder()
    recorder.configure(snapshot(("m", "v1", 100, "champion")))
    reports: list[agent_pb2.MetricReport] = []
    stop = threading.Event()

    def flusher() -> None:
        while not stop.is_set():
            if (r := recorder.flush()) is not None:
                reports.append(r)
            time.sleep(0.005)

    def worker(k: int) -> None:
        for i in range(2000):
            recorder.record_prediction(DEP, "m", "v1", "champion", X[:1], labels, None, 0.001, "OK", [f"{k}-{i}"])

    flushing = threading.Thread(target=flusher)
    flushing.start()
    workers = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    flushing.join()
    if (r := recorder.flush()) is not None:
        reports.append(r)
    assert sum(w.requests for r in reports for w in r.windows) == 8000
    assert sum(w.rows for r in reports for w in r.windows) == 8000
