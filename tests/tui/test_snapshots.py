"""Snapshots of each main screen at 80x24 on deterministic data.

A dedicated control plane holds fixed names and models trained with fixed seeds; every timestamp
in its store is set to one moment and the app's clock is frozen just after it, so what varies
from run to run (times, the port) never reaches the screen. Regenerate after a deliberate change
with `pytest tests/tui/test_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from pytest_textual_snapshot import SVGImageExtension
from sqlalchemy import select, update
from textual._doc import take_svg_screenshot  # what pytest-textual-snapshot itself uses
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from agent.recorder import MetricsRecorder
from controlplane.agenthub.snapshot import build_snapshot
from controlplane.config import AlertsConfig, Config, HealthConfig
from controlplane.monitoring import alerts as monitoring_alerts
from controlplane.monitoring.ingest import ingest_report
from controlplane.registry import find_version
from controlplane.store.models import AgentRow, AlertRow, Base, UtcDateTime
from core.client import SluiceClient
from tests.agent.cluster import AgentProcess, wait_for_agents
from tests.harness import ServerThread, start_server
from tests.models import fixture_classifier, make_baseline
from tests.tui.helpers import cursor_to, loaded, make_app, settled, until
from tui.app import SluiceApp
from tui.screens.actions import experiment_dialog
from tui.screens.agents import AgentsScreen
from tui.screens.alerts import AlertsScreen
from tui.screens.base import SluiceScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.deployments import DeploymentsScreen
from tui.screens.detail import DeploymentDetailScreen
from tui.screens.experiment_form import ExperimentForm
from tui.screens.help import HelpScreen
from tui.screens.trail import TrailScreen
from tui.screens.versions import VersionsScreen

# One worker builds the data once; the snapshots share it.
pytestmark = [pytest.mark.timeout(180), pytest.mark.xdist_group("tui-snapshots")]

MOMENT = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
WINDOW_SECONDS = 100 * 365 * 86400.0
SIZE = (80, 24)


def populate(client: SluiceClient, models_dir: Path) -> None:
    baseline = make_baseline(models_dir)
    # Committed models: the versions screen shows their sha256 and size, which a model trained
    # here would owe to the installed scikit-learn/skl2onnx/onnx.
    client.register_version(
        "cancer", "v1", fixture_classifier("logreg"), baseline, description="logistic regression"
    )
    client.register_version("cancer", "v2", fixture_classifier("constant"), baseline, description="majority class")
    client.deploy("cancer-web", "cancer:v1", reason="launch")
    client.set_traffic("cancer-web", {"cancer:v1": 90, "cancer:v2": 10}, reason="canary")
    client.deploy("cancer-batch", "cancer:v2", reason="batch scoring")


def add_agents(server: ServerThread, tmp: Path) -> None:
    """Two real agents: one crashes early and misses a change, then the other crashes too."""
    first = AgentProcess(server.address, "agent-a", tmp / "cache-a", tmp / "agent-a.log")
    second = AgentProcess(server.address, "agent-b", tmp / "cache-b", tmp / "agent-b.log")
    try:
        with SluiceClient(server.address, token="") as client:
            # Both connected and serving both deployments (WaitForSync alone counts the agents
            # connected so far: agent-b, slower to start, could crash before its first ACK).
            for deployment in ("cancer-web", "cancer-batch"):
                wait_for_agents(client, deployment, ["agent-a", "agent-b"], timeout=60)
            second.stop(crash=True)
            changed = client.set_traffic("cancer-web", {"cancer:v1": 80, "cancer:v2": 20}, reason="ramp")
            assert client.wait_for_sync("cancer-web", changed.generation, timeout=60).in_sync
    finally:
        first.stop(crash=True)
        second.stop(crash=True)
    with SluiceClient(server.address, token="") as client:
        # Crashed agents turn "lost" (with an agent_lost alert) after a few missed heartbeats;
        # wait for it so nothing changes while the snapshots are taken.
        deadline = time.monotonic() + 60
        while {a.state for a in client.agents()} != {"lost"}:
            assert time.monotonic() < deadline, [(a.name, a.state) for a in client.agents()]
            time.sleep(0.2)
    with server.ctx.db.session() as session:
        for i, name in enumerate(("agent-a", "agent-b")):
            session.execute(
                update(AgentRow)
                .where(AgentRow.name == name)
                .values(host=f"node-{i + 1}", address=f"10.0.0.{i + 1}:7500")
            )


def add_alerts(server: ServerThread) -> None:
    """Alerts opened through the monitoring area's own function, one of them acknowledged."""
    with server.ctx.db.session() as session:
        v2 = find_version(session, "cancer", "v2").id
    monitoring_alerts.open_alert(
        server.ctx,
        deployment="cancer-web",
        kind="latency_p95",
        severity="critical",
        message="cancer-web cancer:v2 (challenger): p95 latency 312.0 ms > 250 ms",
        version_id=v2,
        value=312.0,
    )
    monitoring_alerts.open_alert(
        server.ctx,
        deployment="cancer-batch",
        kind="drift",
        severity="warning",
        message="cancer-batch cancer:v2 (champion): feature f4 drifted: PSI 0.140 >= 0.1",
        version_id=v2,
        value=0.14,
    )
    with SluiceClient(server.address, token="") as client:
        drift = next(a for a in client.alerts() if a.kind == "drift")
        client.ack_alert(drift.id)


def add_traffic(server: ServerThread) -> None:
    """Windows of served traffic through the agent's own recorder and the control plane's own
    ingest: the challenger's p95 latency is far over the critical threshold, so cancer-web is
    critical and the screens say why. No feature rows (no drift figures: a reservoir sample is
    random) and one fixed latency per version, so every figure is the same in every run."""
    recorder = MetricsRecorder()
    recorder.configure(build_snapshot(server.ctx, 1))
    for version, role, latency in (("v1", "champion", 0.012), ("v2", "challenger", 0.400)):
        for i in range(150):
            recorder.record_prediction(
                "cancer-web", "cancer", version, role, np.zeros((1, 0), np.float32), np.array([i % 2]), None, latency
            )
    report = recorder.flush()
    assert report is not None
    report.agent_id, report.seq = "snapshot-agent", 1
    assert ingest_report(server.ctx, report.agent_id, report).new


def fix_measured_text(server: ServerThread) -> None:
    """An agent_lost alert says how long the agent was silent as measured (6 s, or 7 s on a busy
    machine): the text is pinned like the times are."""
    with server.ctx.db.session() as session:
        for alert in session.scalars(select(AlertRow).where(AlertRow.kind == "agent_lost")):
            alert.message = re.sub(r"silent for \d+ s", "silent for 6 s", alert.message)


def freeze_times(server: ServerThread, moment: datetime) -> None:
    """Every stored timestamp becomes `moment` (NULLs stay NULL: 'not yet' keeps its meaning)."""
    with server.ctx.db.session() as session:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, UtcDateTime):
                    session.execute(update(table).where(column.is_not(None)).values({column.name: moment}))


@pytest.fixture(scope="module")
def snapshot_server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("snapshots")
    # Windows stored at MOMENT stay in the health window whatever today's date; the evaluator
    # never runs after its first round (at start, on an empty store), so nothing it would open,
    # escalate or resolve moves under the snapshots.
    config = Config(health=HealthConfig(window_seconds=WINDOW_SECONDS), alerts=AlertsConfig(evaluate_seconds=1e9))
    server = start_server(tmp, config=config)
    try:
        with SluiceClient(server.address, token="") as client:
            populate(client, models_dir)
        add_agents(server, tmp)
        add_alerts(server)
        add_traffic(server)
        fix_measured_text(server)
        freeze_times(server, MOMENT)
        yield server
    finally:
        server.stop()


class StableSVG(SVGImageExtension):
    """SVG snapshots without Rich's style-name prefix, a hash of Rich's and Textual's internal
    segment reprs (`terminal-352625879-r1`): it changes with their versions while the picture
    stays the same. Stored as `terminal-r1`; everything else in the SVG is compared as it is."""

    file_extension = "svg"

    def serialize(self, data: Any, **kwargs: Any) -> Any:
        return super().serialize(re.sub(r"\bterminal-\d+", "terminal", str(data)), **kwargs)


@pytest.fixture
def snap_compare(snapshot: Any, tmp_path: Path) -> Callable[..., bool]:
    """pytest-textual-snapshot's fixture of the same name, comparing through `StableSVG`."""
    stable = snapshot.use_extension(StableSVG)

    def compare(app: SluiceApp, terminal_size: tuple[int, int], run_before: RunBefore) -> bool:
        settled_pictures: list[str] = []

        async def then_settle(pilot: Pilot[Any]) -> None:
            await run_before(pilot)
            await settled(pilot)
            # The picture that settled (two identical in a row). The one take_svg_screenshot
            # exports a few frames later can catch a late reload (an event) before its DataTable
            # has measured its columns again: cut to their headers, on a busy machine only.
            settled_pictures.append(pilot.app.export_screenshot(simplify=True))

        svg = take_svg_screenshot(app=app, terminal_size=terminal_size, run_before=then_settle)
        svg = settled_pictures[-1] if settled_pictures else svg
        matched = bool(stable == svg)
        if not matched:
            (tmp_path / "actual.svg").write_text(svg)
            print(f"the picture taken: {tmp_path / 'actual.svg'}")
        return matched

    return compare


def snapshot_app(server: ServerThread) -> SluiceApp:
    return make_app(server.address, clock=lambda: MOMENT + timedelta(seconds=90), label="controlplane")


S = TypeVar("S", bound=SluiceScreen[Any])
RunBefore = Callable[[Pilot[Any]], Awaitable[None]]


def compare(snap_compare: Any, server: ServerThread, run_before: RunBefore, size: tuple[int, int] = SIZE) -> None:
    """Take the snapshot; a failure while preparing it ends the app instead of hanging it."""
    errors: list[BaseException] = []

    async def guarded(pilot: Pilot[Any]) -> None:
        try:
            await run_before(pilot)
        except BaseException as exc:  # noqa: BLE001 - re-raised after the app has ended
            errors.append(exc)
            pilot.app.exit()

    matched = snap_compare(snapshot_app(server), terminal_size=size, run_before=guarded)
    if errors:
        raise errors[0]
    assert matched, f"the picture differs; the server's state then: {server_state(server)}"


def server_state(server: ServerThread) -> str:
    """What the screens are drawn from, for a failure message (a picture differs once in a while in
    a full run under load, never alone: this says which state moved)."""
    with SluiceClient(server.address, token="") as client:
        alerts = [(a.id, a.kind, a.deployment, a.state) for a in client.alerts(include_resolved=True)]
        agents = [(a.name, a.state) for a in client.agents()]
        deployments = [(d.name, d.generation) for d in client.list_deployments()]
    return f"alerts {alerts}; agents {agents}; deployments {deployments}"


async def settle(pilot: Pilot[Any], screen_type: type[S]) -> S:
    """Connected, loaded, no toasts, no blinking cursor: the same picture every run."""
    app = pilot.app
    assert isinstance(app, SluiceApp)
    await until(pilot, lambda: app.connection == "connected" and app.identity, "the connection")
    await until(pilot, lambda: app.open_alerts >= 0, "the count of active alerts")
    screen = await loaded(pilot, screen_type)
    assert isinstance(screen, screen_type)
    await until(pilot, lambda: screen.data is not None and not screen.fetching, "a successful load")
    app.clear_notifications()
    for widget in app.screen.query(Input):
        widget.cursor_blink = False
    await settled(pilot)
    return screen


def on_screen(screen_type: type[SluiceScreen[Any]], *keys: str) -> RunBefore:
    async def run_before(pilot: Pilot[Any]) -> None:
        await loaded(pilot, DeploymentsScreen)
        if keys:
            await pilot.press(*keys)
        await settle(pilot, screen_type)

    return run_before


def test_deployments_screen(snap_compare: Any, snapshot_server: ServerThread) -> None:
    compare(snap_compare, snapshot_server, on_screen(DeploymentsScreen))


@pytest.mark.parametrize("size", [(80, 24), (120, 35)], ids=["80x24", "120x35"])
def test_deployment_detail_screen(snap_compare: Any, snapshot_server: ServerThread, size: tuple[int, int]) -> None:
    """A critical deployment says why (the challenger's p95 over its threshold) at both sizes."""

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await loaded(pilot, DeploymentsScreen)
        await cursor_to(pilot, screen.query_one("#deployments", DataTable), "cancer-web")
        await pilot.press("enter")
        await settle(pilot, DeploymentDetailScreen)

    compare(snap_compare, snapshot_server, run_before, size)


def test_versions_screen(snap_compare: Any, snapshot_server: ServerThread) -> None:
    compare(snap_compare, snapshot_server, on_screen(VersionsScreen, "2"))


def test_agents_screen(snap_compare: Any, snapshot_server: ServerThread) -> None:
    compare(snap_compare, snapshot_server, on_screen(AgentsScreen, "3"))


def test_alerts_screen(snap_compare: Any, snapshot_server: ServerThread) -> None:
    compare(snap_compare, snapshot_server, on_screen(AlertsScreen, "4"))


def test_history_and_audit_screen(snap_compare: Any, snapshot_server: ServerThread) -> None:
    compare(snap_compare, snapshot_server, on_screen(TrailScreen, "5"))


def test_help_screen(snap_compare: Any, snapshot_server: ServerThread) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot, DeploymentsScreen)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help screen")

    compare(snap_compare, snapshot_server, run_before)


def test_experiment_form(snap_compare: Any, snapshot_server: ServerThread) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await loaded(pilot, DeploymentsScreen)
        await cursor_to(pilot, screen.query_one("#deployments", DataTable), "cancer-web")
        await settle(pilot, DeploymentsScreen)
        await pilot.press("e")
        form = await until(pilot, lambda: isinstance(pilot.app.screen, ExperimentForm) and pilot.app.screen, "the form")
        for widget in form.query(Input):
            widget.cursor_blink = False
        await pilot.press(*"cancer:v2", "tab", "tab", *"20", "tab", "tab", "tab", "tab", "tab", *"20,50,100")
        await pilot.pause()

    compare(snap_compare, snapshot_server, run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 35)], ids=["80x24", "120x35"])
def test_confirmation_dialog(snap_compare: Any, snapshot_server: ServerThread, size: tuple[int, int]) -> None:
    """The buttons are drawn and name their keys; the footer lists the dialog's keys, not the screen's."""

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await settle(pilot, DeploymentsScreen)
        deployment = next(d for d in screen.data.deployments if d.name == "cancer-web")  # type: ignore[union-attr]
        title, question, yes, variant = experiment_dialog("stop", deployment, "cancer-web-v2-canary")
        await pilot.app.push_screen(ConfirmScreen(title, question, yes=yes, variant=variant))
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the dialog")
        await settled(pilot)

    compare(snap_compare, snapshot_server, run_before, size)
