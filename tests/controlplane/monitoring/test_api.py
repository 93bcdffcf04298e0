"""Monitoring RPCs and CLI against a real control plane: values, bad input, exit codes.

Windows come from a real MetricsRecorder (real onnxruntime predictions) and are committed through
ingest_report into the running control plane's own store.
"""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from pathlib import Path

import grpc
import numpy as np
import pytest
import scipy.stats
from sqlalchemy import select

from controlplane.api.auth import PERMISSIONS
from controlplane.monitoring import alert_views, alerts
from controlplane.monitoring.reservoir import since as reservoir_since
from controlplane.stats.drift import histogram_counts
from controlplane.store.models import ReservoirRow, utcnow
from core.client import ClientError, SluiceClient
from protos import common_pb2, controlplane_pb2
from tests.controlplane.monitoring.support import AgentStamp, Deployed, deploy_classifier, flush_and_ingest, serve
from tests.harness import ServerThread, run_cli, unique
from tests.models import breast_cancer_rows, make_baseline


def code_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(ClientError) as info:
        call()  # type: ignore[operator]
    return info.value.code, info.value.message


@pytest.fixture(scope="module")
def served(shared_server: ServerThread, models_dir: Path) -> tuple[Deployed, np.ndarray]:
    """A deployment with 300 real predictions (the texture feature shifted) and 100 labels."""
    ctx = shared_server.ctx
    d = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    stamp = AgentStamp(unique("agent"))
    rows = breast_cancer_rows(300, seed=21)
    rows[:, 1] *= np.float32(1.4)
    ids = [f"q{i}" for i in range(300)]
    labels = serve(recorder, d, rows, ids=ids, batch=3, latency=0.003)
    for i in range(100):
        recorder.feedback(d.name, ids[i], label=int(labels[i]) if i % 10 else 1 - int(labels[i]))
    for _ in range(3):
        recorder.record_rejected(d.name, "INVALID_ARGUMENT")
    flush_and_ingest(ctx, recorder, stamp)
    return d, rows


def psi_direct(expected: np.ndarray, actual: np.ndarray) -> float:
    p = expected / expected.sum()
    q = actual / actual.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def test_status_values_equal_direct_numpy_and_scipy(
    client: SluiceClient, shared_server: ServerThread, served: tuple[Deployed, np.ndarray], models_dir: Path
) -> None:
    d, rows = served
    [status] = client.status(d.name, window_seconds=600)
    assert status.deployment.name == d.name and status.agents_total == 0
    [v] = status.versions
    assert (v.version.model, v.version.version, v.role) == (d.version.model, "v1", common_pb2.ROLE_CHAMPION)
    assert v.requests == 100 and v.errors == 0 and v.n_labeled == 100
    assert v.accuracy == pytest.approx(0.9, abs=1e-12)
    assert v.latency_p50_ms == pytest.approx(3.0, rel=0.011)
    assert v.requests_per_second == pytest.approx(100 / 600)
    assert v.health == common_pb2.HEALTH_UNKNOWN or v.requests >= shared_server.ctx.config.health.min_samples
    assert {m.name for m in v.metrics} >= {"accuracy", "drift"}
    assert len(v.drift) == 30
    baseline = np.load(make_baseline(models_dir)).astype(np.float64)
    with shared_server.ctx.db.session() as s:
        stored = s.execute(
            select(ReservoirRow.n_features, ReservoirRow.sample).where(
                ReservoirRow.deployment == d.name, ReservoirRow.version_id == d.version.id
            )
        ).one()
    live = reservoir_since(stored.sample, stored.n_features, utcnow() - timedelta(seconds=600))
    assert live.shape == (200, 30)
    assert d.version.baseline is not None
    bins = d.version.baseline["features"]
    checked = 0
    for f, drift in zip(bins, v.drift, strict=True):
        assert drift.feature == f["name"]
        expected = np.asarray(f["counts"], dtype=np.float64)
        actual = histogram_counts(rows[:, f["index"]].astype(np.float64), np.asarray(f["inner_edges"]))
        if expected.all() and actual.all():  # no empty bin: no epsilon involved
            assert drift.psi == pytest.approx(psi_direct(expected, actual.astype(np.float64)), abs=1e-9)
            checked += 1
        ks = scipy.stats.ks_2samp(baseline[:, f["index"]], live[:, f["index"]])
        assert drift.ks_p_value == pytest.approx(float(ks.pvalue), abs=1e-9)
    assert checked >= 20
    low = np.array([f["min"] for f in bins])
    high = np.array([f["max"] for f in bins])
    outside = ((rows < low) | (rows > high)).sum()
    assert v.out_of_range_share == pytest.approx(outside / rows.size, abs=1e-12) and outside > 0
    assert v.rejected_inputs == 3
    worst = max(v.drift, key=lambda x: x.psi)
    assert worst.feature == "mean_texture" and worst.drifted


def test_metric_series_points_add_up(client: SluiceClient, served: tuple[Deployed, np.ndarray]) -> None:
    d, _ = served
    points = client.metric_series(d.name, window_seconds=600, step_seconds=10)
    assert len(points) == 60
    assert sum(p.requests_per_second * 10 for p in points) == pytest.approx(100)
    busy = [p for p in points if p.requests_per_second]
    assert len(busy) == 1 and busy[0].accuracy == pytest.approx(0.9)
    assert busy[0].latency_p95_ms == pytest.approx(3.0, rel=0.011)
    assert all(math.isnan(p.accuracy) for p in points if not p.requests_per_second)


def test_monitoring_rpcs_refuse_bad_input(client: SluiceClient, served: tuple[Deployed, np.ndarray]) -> None:
    d, _ = served
    stub = client.stub
    bad = {
        "unknown deployment": (lambda: client.status(unique("nope")), grpc.StatusCode.NOT_FOUND, "no deployment"),
        "bad name": (lambda: client.status("bad name!"), grpc.StatusCode.INVALID_ARGUMENT, "may only contain"),
        "negative window": (lambda: client.status(d.name, -5), grpc.StatusCode.INVALID_ARGUMENT, "window_seconds"),
        "nan window": (lambda: client.status(d.name, math.nan), grpc.StatusCode.INVALID_ARGUMENT, "window_seconds"),
        "step > window": (
            lambda: client.metric_series(d.name, 10, 60),
            grpc.StatusCode.INVALID_ARGUMENT,
            "longer than window_seconds",
        ),
        "too many points": (
            lambda: client.metric_series(d.name, 86400, 1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "the limit is 1000",
        ),
        "series of unknown version": (
            lambda: stub.GetMetricSeries(
                controlplane_pb2.GetMetricSeriesRequest(
                    deployment=d.name, version=common_pb2.VersionRef(model=d.version.model, version="v404")
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            "no version",
        ),
        "ack id 0": (lambda: client.ack_alert(0), grpc.StatusCode.INVALID_ARGUMENT, "positive"),
        "ack unknown": (lambda: client.ack_alert(10**9), grpc.StatusCode.NOT_FOUND, "no alert"),
        "alerts of bad name": (
            lambda: client.alerts(deployment="x/y"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "may only contain",
        ),
        "runs of bad name": (
            lambda: client.retraining_runs("x y"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "may only contain",
        ),
    }
    for what, (call, code, text) in bad.items():
        try:
            call()
        except grpc.RpcError as exc:  # the raw stub raises grpc errors
            assert exc.code() == code, what
            assert text in (exc.details() or ""), (what, exc.details())
            continue
        except ClientError as exc:
            assert exc.code == code, (what, exc.message)
            assert text in exc.message, (what, exc.message)
            continue
        raise AssertionError(f"{what}: no error")
    for method in ("GetStatus", "GetMetricSeries", "ListAlerts", "ListRetrainingRuns"):
        assert PERMISSIONS[f"/sluice.v1.ControlPlane/{method}"] == "read"
    assert PERMISSIONS["/sluice.v1.ControlPlane/AckAlert"] == "mutate"


def test_cli_status_alerts_ack(shared_server: ServerThread, served: tuple[Deployed, np.ndarray]) -> None:
    d, _ = served
    address = shared_server.address
    ctx = shared_server.ctx
    alerts.open_alert(
        ctx,
        deployment=d.name,
        kind="cli_test",
        severity="warning",
        message="look at me",
        version_id=d.version.id,
        subject="mean_texture",
    )
    [alert] = [a for a in alert_views.list_alerts(ctx, deployment=d.name) if a.kind == "cli_test"]

    table = run_cli("status", d.name, "--window", "600", address=address)
    assert table.returncode == 0, table.stderr
    assert d.name in table.stdout and f"{d.version.model}:v1" in table.stdout and "acc 0.900" in table.stdout
    as_json = run_cli("status", d.name, "--window", "600", "--json", address=address)
    assert as_json.returncode == 0, as_json.stderr
    [parsed] = json.loads(as_json.stdout)
    assert parsed["deployment"]["name"] == d.name and parsed["versions"][0]["requests"] == 100

    listed = run_cli("alerts", "--json", "--deployment", d.name, address=address)
    assert listed.returncode == 0, listed.stderr
    assert any(a["id"] == alert.id and a["kind"] == "cli_test" for a in json.loads(listed.stdout))
    acked = run_cli("alerts", "ack", str(alert.id), address=address)
    assert acked.returncode == 0, acked.stderr
    assert f"alert {alert.id} acknowledged" in acked.stdout
    listed = alert_views.list_alerts(ctx, deployment=d.name)
    assert [a.state for a in listed if a.kind == "cli_test"] == ["acknowledged"]
    table = run_cli("alerts", address=address)
    assert table.returncode == 0 and "look at me" in table.stdout
    header, *rows = (re.split(r"\s{2,}", line.strip()) for line in table.stdout.splitlines())
    (row,) = [r for r in rows if r[0] == str(alert.id)]
    assert (header[3], header[4]) == ("KIND", "SUBJECT") and (row[3], row[4]) == ("cli_test", "mean_texture")

    missing = run_cli("alerts", "ack", "999999999", address=address)
    assert missing.returncode == 4  # NOT_FOUND (README "Exit codes")
    assert missing.stderr.strip().startswith("error: no alert with id 999999999")
    assert len(missing.stderr.strip().splitlines()) == 1
    unknown = run_cli("status", unique("nope"), address=address)
    assert unknown.returncode == 4 and "no deployment named" in unknown.stderr
    runs = run_cli("retraining", "--json", address=address)
    assert runs.returncode == 0 and isinstance(json.loads(runs.stdout), list)
    alerts.resolve_alert(ctx, deployment=d.name, kind="cli_test", version_id=d.version.id)
