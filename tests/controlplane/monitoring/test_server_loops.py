"""The control plane's monitoring surfaces that need a running server: /metrics and webhooks."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from controlplane.config import AlertsConfig, Config
from controlplane.monitoring import alerts
from controlplane.monitoring.state import state_of
from controlplane.server import ServerOptions
from core.client import SluiceClient
from tests.controlplane.monitoring.support import (
    AgentStamp,
    deploy_classifier,
    flush_and_ingest,
    prometheus_samples,
    sample,
    serve,
)
from tests.harness import ServerThread, free_port, start_server
from tests.models import breast_cancer_rows
from tests.timing import scaled


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def wait_for(check: Any, timeout: float = 30.0) -> Any:
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def metrics_servers(tmp_path: Path) -> Iterator[tuple[ServerThread, int, ServerThread, int]]:
    started: list[ServerThread] = []
    try:
        ports = []
        for name in ("a", "b"):
            options = ServerOptions(
                listen="127.0.0.1:0",
                db_url=f"sqlite:///{tmp_path / name / 'sluice.db'}",
                artifacts=tmp_path / name / "artifacts",
                config=Config(),
                metrics_port=None,  # with --listen port 0: any free port, the bound one read back below
            )
            started.append(ServerThread(options))
            assert started[-1].server is not None and started[-1].server.metrics_port
            ports.append(started[-1].server.metrics_port)
        yield started[0], ports[0], started[1], ports[1]
    finally:
        for server in started:
            server.stop()


def test_prometheus_endpoint_counts_what_agents_reported(
    metrics_servers: tuple[ServerThread, int, ServerThread, int], models_dir: Path
) -> None:
    server, port, _other, other_port = metrics_servers
    ctx = server.ctx
    d = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    stamp = AgentStamp("agent-p")
    serve(recorder, d, breast_cancer_rows(30, seed=6), batch=3)
    v = d.version
    recorder.record_prediction(d.name, v.model, v.version, "champion", None, None, None, 0.0, "INTERNAL")
    report = flush_and_ingest(ctx, recorder, stamp)
    from controlplane.monitoring.ingest import ingest_report

    assert not ingest_report(ctx, stamp.agent_id, report).new  # a replay
    alerts.open_alert(ctx, deployment=d.name, kind="drift", severity="critical", message="m", version_id=v.id)
    got = prometheus_samples(scrape(port))
    labels = {"deployment": d.name, "version": f"{v.model}:v1"}
    assert got[sample("sluice_metric_reports_total", outcome="stored")] == 1
    assert got[sample("sluice_metric_reports_total", outcome="replay")] == 1
    assert got[sample("sluice_predictions_total", code="OK", **labels)] == 30
    assert got[sample("sluice_predictions_total", code="INTERNAL", **labels)] == 1
    assert got[sample("sluice_alerts_open", severity="critical")] == 1
    assert got[sample("sluice_alerts_open", severity="warning")] == 0
    assert got[sample("sluice_agents_connected")] == 0
    # A second control plane in the same process has its own registry.
    other = prometheus_samples(scrape(other_port))
    assert sample("sluice_metric_reports_total", outcome="stored") not in other
    assert other[sample("sluice_alerts_open", severity="critical")] == 0


class Receiver:
    """A webhook endpoint on loopback: records JSON bodies, fails the first `fail_first` posts."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}/hook"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def test_webhooks_deliver_transitions_and_a_down_webhook_changes_nothing(tmp_path: Path, models_dir: Path) -> None:
    receiver = Receiver(fail_first=1)
    down = f"http://127.0.0.1:{free_port()}/nobody-listens"
    config = Config(alerts=AlertsConfig(webhooks=[down, receiver.url], webhook_retries=2, webhook_timeout_seconds=2))
    server = start_server(tmp_path, config=config)
    try:
        ctx = server.ctx
        d = deploy_classifier(ctx, models_dir)
        key = {"deployment": d.name, "kind": "accuracy", "version_id": d.version.id}
        alerts.open_alert(ctx, severity="warning", message="accuracy 0.78", **key)
        alerts.open_alert(ctx, severity="warning", message="accuracy 0.77", **key)  # an update: no post
        alerts.open_alert(ctx, severity="critical", message="accuracy 0.70", **key)
        # Everything else carries on while the down webhook is being retried.
        with SluiceClient(server.address, token="") as client:
            [alert] = client.alerts()
            acked = client.ack_alert(alert.id)
            assert acked.acknowledged_by == "anonymous"
            recorder = d.recorder(ctx)
            serve(recorder, d, breast_cancer_rows(10, seed=7))
            flush_and_ingest(ctx, recorder, AgentStamp("agent-w"))
            assert client.status(d.name)[0].versions[0].requests == 10
        alerts.resolve_alert(ctx, **key)
        wait_for(lambda: len(receiver.bodies) == 4, timeout=60)
        assert [b["transition"] for b in receiver.bodies] == ["opened", "escalated", "acknowledged", "resolved"]
        assert receiver.attempts == 5  # the first post got HTTP 500 and was retried
        first = receiver.bodies[0]
        assert first["deployment"] == d.name and first["kind"] == "accuracy"
        assert first["version"] == f"{d.version.model}:v1" and first["message"] == "accuracy 0.78"
        sender = state_of(ctx).webhooks
        assert sender is not None
        wait_for(lambda: sender.failed == 4, timeout=60)  # the down URL: given up after its retries
    finally:
        server.stop()
        receiver.close()
