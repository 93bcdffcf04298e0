"""The bad-input matrix's environment: two real control planes and one real agent per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from controlplane.config import Config, LimitsConfig
from controlplane.monitoring import alert_views, alerts
from core.client import SluiceClient, predict_request
from tests.agent.cluster import AgentProcess, wait_until
from tests.harness import start_server
from tests.models import (
    breast_cancer_rows,
    make_baseline,
    make_classifier_onnx,
    make_mixed_onnx,
    mixed_records,
    mixed_rows,
)
from tests.security.bad_input.support import AGENT_MAX_MESSAGE, CP_MAX_MESSAGE, TELEMETRY, DbSnapshot, Env


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, request: pytest.FixtureRequest) -> Iterator[Env]:
    # The modules of the agent's services also serve a model of typed inputs (issue 14).
    typed = bool(getattr(request.module, "SERVES_TYPED_MODEL", False))
    root = tmp_path_factory.mktemp("bad-input")
    models = root / "models"
    v1 = make_classifier_onnx(models)
    v2 = make_classifier_onnx(models, "constant")
    baseline = make_baseline(models)
    started: list[Any] = []
    try:
        cp = start_server(root / "cp", config=Config(limits=LimitsConfig(max_message_bytes=CP_MAX_MESSAGE)))
        started.append(cp)
        serving = start_server(root / "serving")
        started.append(serving)
        with SluiceClient(cp.address, token="") as client:
            sha = client.register_version("cancer", "v1", v1, baseline).sha256
            client.register_version("cancer", "v2", v2, baseline)
            client.deploy("web", "cancer:v1")
            client.deploy("solo", "cancer:v1")
            client.set_traffic("web", {"cancer:v1": 90, "cancer:v2": 10})
        ctx = cp.ctx
        alerts.open_alert(ctx, deployment="web", kind="bad_input_probe", severity="warning", message="probe")
        alerts.resolve_alert(ctx, deployment="web", kind="bad_input_probe")
        resolved = next(a.id for a in alert_views.list_alerts(ctx, True, "web") if a.kind == "bad_input_probe")
        with SluiceClient(serving.address, token="") as client:
            client.register_version("cancer", "v1", v1, baseline)
            client.deploy("web", "cancer:v1")
            if typed:  # strings, float64 with missing values, string classes
                client.register_version("mixed", "v1", make_mixed_onnx(models_dir))
                client.deploy("mixed", "mixed:v1")
        agent = AgentProcess(
            serving.address,
            "bad-input-agent",
            root / "agent-cache",
            root / "agent.log",
            extra=["--max-message-bytes", str(AGENT_MAX_MESSAGE)],
        )
        started.append(agent)
        wait_until(lambda: agent.predict("web", breast_cancer_rows(1)), what="the agent serves 'web'")
        if typed:
            one = predict_request("mixed", records=mixed_records(mixed_rows(1)))
            wait_until(lambda: agent.stub.Predict(one, timeout=30), what="the agent serves 'mixed'")
        environment = Env(
            cp=cp,
            serving=serving,
            agent=agent,
            model_bytes=v1.read_bytes(),
            model_sha256=sha,
            resolved_alert=resolved,
            cp_db=DbSnapshot(root / "cp" / "sluice.db", root / "cp" / "artifacts", {}),
            serving_db=DbSnapshot(root / "serving" / "sluice.db", None, TELEMETRY),
        )
        environment.channels = {
            "cp": grpc.insecure_channel(cp.address),
            "agent": grpc.insecure_channel(agent.address),
        }
        yield environment
        for channel in environment.channels.values():
            channel.close()
        environment.cp_db.close()
        environment.serving_db.close()
    finally:
        for thing in reversed(started):
            thing.stop()
