"""Capture the TUI tour for the README: `python -m tests.tui.tour OUT_DIR`.

Runs a real control plane, two agents and a trickle of traffic on this machine, drives the app
with Pilot at 80x24 and writes a text capture and an SVG of each screen into OUT_DIR.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc

from controlplane.client import ClientError, SluiceClient
from protos import common_pb2, controlplane_pb2
from tests.agent.cluster import AgentProcess
from tests.harness import start_server
from tests.models import breast_cancer_rows, make_baseline, make_classifier_onnx
from tests.tui.helpers import cursor_to, loaded, make_app, until
from tui.app import SluiceApp
from tui.screens.agents import AgentsScreen
from tui.screens.alerts import AlertsScreen
from tui.screens.deployments import DeploymentsScreen
from tui.screens.detail import DeploymentDetailScreen
from tui.screens.trail import TrailScreen
from tui.screens.versions import VersionsScreen


def capture(app: SluiceApp, out: Path, name: str) -> None:
    strips = app.screen._compositor.render_strips()
    (out / f"{name}.txt").write_text("\n".join(s.text.rstrip() for s in strips) + "\n")
    (out / f"{name}.svg").write_text(app.export_screenshot(title="sluice tui"))


def traffic(agents: list[AgentProcess], stop: threading.Event) -> None:
    rows = breast_cancer_rows(1000, seed=7)
    i = 0
    while not stop.is_set():
        for agent in agents:
            with contextlib.suppress(grpc.RpcError):
                batch = rows[i % 990 : i % 990 + 10]
                agent.predict_batch("cancer-web", batch, [f"user-{i + j}" for j in range(10)])
        i += 10
        time.sleep(0.05)


async def drive(address: str, out: Path) -> None:
    app = make_app(address, label="127.0.0.1:7400")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot, DeploymentsScreen)
        await pilot.pause(20)  # let a few metric windows arrive
        await cursor_to(pilot, screen.query_one("#deployments"), "cancer-web")  # type: ignore[arg-type]
        app.clear_notifications()
        capture(app, out, "deployments")
        await pilot.press("enter")
        await loaded(pilot, DeploymentDetailScreen)
        await pilot.pause(2)
        capture(app, out, "detail")
        await pilot.press("escape")
        for key, screen_type, name in (
            ("2", VersionsScreen, "versions"),
            ("3", AgentsScreen, "agents"),
            ("4", AlertsScreen, "alerts"),
            ("5", TrailScreen, "history"),
        ):
            await pilot.press(key)
            await loaded(pilot, screen_type)
            await pilot.pause(1)
            capture(app, out, name)
        await pilot.press("1", "t")
        await until(pilot, lambda: app.screen.__class__.__name__ == "TrafficForm", "the traffic form")
        capture(app, out, "traffic-form")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="sluice-tour-"))
    server = start_server(tmp)
    agents: list[AgentProcess] = []
    stop = threading.Event()
    try:
        with SluiceClient(server.address, token="") as client:
            baseline = make_baseline(tmp)
            client.register_version(
                "cancer", "v1", make_classifier_onnx(tmp, "logreg", 0), baseline, description="logistic regression"
            )
            client.register_version(
                "cancer", "v2", make_classifier_onnx(tmp, "gbm", 0), baseline, description="gradient boosting"
            )
            client.deploy("cancer-web", "cancer:v1", reason="launch")
            client.deploy("cancer-batch", "cancer:v1", reason="nightly scoring")
            agents = [AgentProcess(server.address, f"agent-{i}", tmp / f"c{i}", tmp / f"a{i}.log") for i in (1, 2)]
            started = start_experiment(client)
            if not started:
                client.set_traffic("cancer-web", {"cancer:v1": 90, "cancer:v2": 10}, reason="canary")
        threading.Thread(target=traffic, args=(agents, stop), daemon=True).start()
        asyncio.run(drive(server.address, out))
    finally:
        stop.set()
        for agent in agents:
            agent.stop()
        server.stop()


def start_experiment(client: SluiceClient) -> Any:
    config = controlplane_pb2.ExperimentConfig(
        deployment="cancer-web",
        challenger=common_pb2.VersionRef(model="cancer", version="v2"),
        traffic_percent=10,
        metric="accuracy",
        plan=[10, 25, 50, 100],
        hold_seconds=600,
        sequential=True,
    )
    try:
        return client.start_experiment("cancer-web-v2", config, reason="try gradient boosting")
    except ClientError as exc:
        if exc.code == grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/tui"))
