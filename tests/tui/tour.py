"""Capture the TUI tour for the README: `python -m tests.tui.tour OUT_DIR`.

Runs a real control plane and two agents on this machine, sends them traffic with feedback (the
true label of every answer, so accuracy, the health badge and the experiment have real numbers),
starts a progressive experiment on cancer-web, drives the app with Pilot at 80x24 and writes a
text capture and an SVG of each screen into OUT_DIR. Every process it starts is stopped at the end,
also when a step fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from textual.widgets import DataTable

from controlplane.sample_data import breast_cancer_arrays
from core.client import SluiceClient, batch_request, batch_results
from protos import common_pb2, controlplane_pb2, inference_pb2
from tests.agent.cluster import AgentProcess, wait_for_agents
from tests.harness import start_server
from tests.models import make_baseline, make_classifier_onnx
from tests.tui.helpers import cursor_to, loaded, make_app, settled, until
from tui.screens.agents import AgentsScreen
from tui.screens.alerts import AlertsScreen
from tui.screens.deployments import DeploymentsScreen
from tui.screens.detail import DeploymentDetailScreen, DetailData
from tui.screens.trail import TrailScreen
from tui.screens.versions import VersionsScreen

EXPERIMENT = "cancer-web-v2"
MIN_SAMPLES = 100  # per arm: the challenger's 10% reaches it in well under a minute
WARMUP = 60.0  # seconds of traffic before the first capture, so the sparklines have a history
READY_TIMEOUT = 180.0
ALERT_WAIT = 60.0  # after the warm-up, for a drift alert (they come and go with the traffic)


async def capture(pilot: Any, out: Path, name: str) -> None:
    """Once the screen has settled (columns sized, no load in flight): a text capture and an SVG."""
    await settled(pilot)
    app = pilot.app
    strips = app.screen._compositor.render_strips()
    (out / f"{name}.txt").write_text("\n".join(s.text.rstrip() for s in strips) + "\n")
    (out / f"{name}.svg").write_text(app.export_screenshot(title="sluice tui"))


class Traffic:
    """Batches to both agents, then the true label of every answered row (Feedback), until stopped.

    cancer-web gets most of it, cancer-batch a trickle. Counts what was answered, what feedback the
    agents matched to a prediction, and every failure.
    """

    def __init__(self, agents: list[AgentProcess]) -> None:
        self.agents = agents
        X, y = breast_cancer_arrays()
        rows = np.random.default_rng(7).choice(X.shape[0], size=1000, replace=True)
        self.X, self.y = X[rows], y[rows]  # walked in order, ten rows at a time
        self.stop_event = threading.Event()
        self.answered = 0
        self.matched = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, name="tour-traffic", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(30)

    def _send(self, agent: AgentProcess, deployment: str, rows: int, first_key: int) -> None:
        start = first_key % (self.X.shape[0] - rows)
        index = np.arange(start, start + rows)
        keys = range(first_key, first_key + rows)
        assert agent.stub is not None
        request = batch_request(
            deployment,
            self.X[index],
            [f"user-{k}" for k in keys],
            # Without request ids a batch answers rows without ids, and feedback needs one.
            [f"{agent.name}-{deployment}-{k}" for k in keys],
        )
        try:
            results = batch_results(agent.stub.PredictBatch(request, timeout=60))
            self.answered += len(results)
            for request_id, i in zip(results.request_ids, index, strict=True):
                feedback = inference_pb2.FeedbackRequest(
                    deployment=deployment, request_id=request_id, label=int(self.y[i])
                )
                self.matched += agent.stub.Feedback(feedback, timeout=10).matched
        except grpc.RpcError as exc:
            if len(self.errors) < 100:
                self.errors.append(f"{deployment} on {agent.name}: {exc.code().name}: {exc.details()}")

    def _run(self) -> None:
        key = 0
        rounds = 0
        while not self.stop_event.is_set():
            for agent in self.agents:  # the same rows and keys to both agents
                self._send(agent, "cancer-web", 10, key)
                if rounds % 4 == 0:
                    self._send(agent, "cancer-batch", 5, key)
            key += 10
            rounds += 1
            time.sleep(0.05)


def experiment_config() -> controlplane_pb2.ExperimentConfig:
    """gbm against the logistic-regression champion: 10 -> 50 -> 100, holding long at each step."""
    return controlplane_pb2.ExperimentConfig(
        deployment="cancer-web",
        challenger=common_pb2.VersionRef(model="cancer", version="v2"),
        traffic_percent=10,
        metric="accuracy",
        min_samples=MIN_SAMPLES,
        plan=[10, 50, 100],
        hold_seconds=1800,  # the tour is over long before the first step ends
        sequential=True,
    )


def not_ready(data: DetailData | None) -> str:
    """What the detail screen still lacks (empty once it shows n per arm, a p-value, a decision and accuracy)."""
    if data is None or data.experiment is None or data.status is None:
        return "no data, experiment or status yet"
    analysis = data.experiment.analysis
    if len(analysis.arms) < 2 or any(arm.n < MIN_SAMPLES for arm in analysis.arms):
        return f"n per arm {[arm.n for arm in analysis.arms]} (want {MIN_SAMPLES} each)"
    if analysis.decision in ("", "not_enough_data") or not math.isfinite(analysis.p_value):
        return f"decision {analysis.decision!r}, p {analysis.p_value}"
    if not any(math.isfinite(p.accuracy) and p.accuracy > 0 for p in data.series):
        return "no accuracy in the series"
    if data.status.health == common_pb2.HEALTH_UNKNOWN:
        return "health unknown"
    return ""


async def until_ready(pilot: Any, screen: DeploymentDetailScreen) -> None:
    try:
        await until(pilot, lambda: not not_ready(screen.data), "numbers in the experiment panel", READY_TIMEOUT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; still missing: {not_ready(screen.data)}") from None


async def drive(address: str, out: Path, started: float) -> None:
    app = make_app(address, label="127.0.0.1:7400")
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, DeploymentsScreen)
        # The detail screen first: wait there until the experiment panel has its numbers.
        await cursor_to(pilot, app.screen.query_one("#deployments"), "cancer-web")  # type: ignore[arg-type]
        await pilot.press("enter")
        detail = await loaded(pilot, DeploymentDetailScreen)
        await until_ready(pilot, detail)

        def full() -> bool:  # numbers, a minute of history and, while it is open, a drift alert
            data = detail.data
            return time.monotonic() - started > WARMUP and not not_ready(data) and bool(data and data.alerts)

        try:
            await until(pilot, full, "an open alert", WARMUP + ALERT_WAIT)
        except AssertionError:  # drift alerts come and go with the traffic: capture without one
            await until(pilot, lambda: time.monotonic() - started > WARMUP, "a minute of traffic", READY_TIMEOUT)
            await until_ready(pilot, detail)
        app.clear_notifications()
        await pilot.pause(0.3)
        await capture(pilot, out, "detail")
        await pilot.press("end")  # the rest of the screen: sparklines and open alerts
        await pilot.pause(0.3)
        await capture(pilot, out, "detail-end")
        await pilot.press("escape", "4")
        alerts = await loaded(pilot, AlertsScreen)
        await settled(pilot)
        if not alerts.query_one("#alerts", DataTable).row_count:  # drift alerts come and go: show the resolved ones
            before = alerts.loads
            await pilot.press("h")
            await loaded(pilot, AlertsScreen, after=before)
            app.clear_notifications()
        await capture(pilot, out, "alerts")
        await pilot.press("1")
        screen = await loaded(pilot, DeploymentsScreen)
        await cursor_to(pilot, screen.query_one("#deployments"), "cancer-web")  # type: ignore[arg-type]
        app.clear_notifications()
        await capture(pilot, out, "deployments")
        for key, screen_type, name in (
            ("2", VersionsScreen, "versions"),
            ("3", AgentsScreen, "agents"),
            ("5", TrailScreen, "history"),
        ):
            await pilot.press(key)
            await loaded(pilot, screen_type)
            await capture(pilot, out, name)
        await pilot.press("1", "t")
        await until(pilot, lambda: app.screen.__class__.__name__ == "TrafficForm", "the traffic form")
        await capture(pilot, out, "traffic-form")


def setup(client: SluiceClient, tmp: Path, agents: list[AgentProcess]) -> None:
    baseline = make_baseline(tmp)
    client.register_version(
        "cancer", "v1", make_classifier_onnx(tmp, "logreg", 0), baseline, description="logistic regression"
    )
    client.register_version(
        "cancer", "v2", make_classifier_onnx(tmp, "gbm", 0), baseline, description="gradient boosting"
    )
    client.deploy("cancer-web", "cancer:v1", reason="launch")
    client.deploy("cancer-batch", "cancer:v1", reason="nightly scoring")
    for i in (1, 2):  # appended one by one: a failed second start still stops the first
        agents.append(AgentProcess(client.address, f"agent-{i}", tmp / f"c{i}", tmp / f"a{i}.log"))
    names = [a.name for a in agents]
    wait_for_agents(client, "cancer-web", names)
    wait_for_agents(client, "cancer-batch", names)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="sluice-tour-"))
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # SIGTERM runs the cleanup too
    server: Any = None
    agents: list[AgentProcess] = []
    traffic: Traffic | None = None
    try:
        server = start_server(tmp)
        with SluiceClient(server.address, token="") as client:
            setup(client, tmp, agents)
            traffic = Traffic(agents)
            traffic.start()
            started = time.monotonic()
            client.start_experiment(EXPERIMENT, experiment_config(), reason="try gradient boosting")
        asyncio.run(drive(server.address, out, started))
        print(
            f"tour: {traffic.answered} predictions answered, {traffic.matched} labels matched, "
            f"{len(traffic.errors)} errors",
            file=sys.stderr,
        )
        for error in traffic.errors[:5]:
            print(f"  {error}", file=sys.stderr)
    finally:
        if traffic is not None:
            traffic.stop()
        for agent in agents:
            with contextlib.suppress(Exception):
                agent.stop()
        if server is not None:
            server.stop()
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/tui"))
