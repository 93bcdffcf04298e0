"""With the control plane gone the TUI says so, keeps running, and recovers by itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import DataTable

from controlplane.config import Config
from controlplane.server import ServerOptions
from core.client import SluiceClient
from tests.harness import ServerThread, start_server
from tests.models import make_classifier_onnx
from tests.tui.helpers import loaded, make_app, until
from tui.screens.deployments import DeploymentsScreen
from tui.widgets.status import StatusLine


class Restartable:
    """A control plane on a SQLite file that can be stopped and started again on the same port."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.server: ServerThread | None = start_server(tmp)
        self.address = self.server.address

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def start_again(self) -> None:
        assert self.server is None
        self.server = ServerThread(
            ServerOptions(
                listen=self.address,
                db_url=f"sqlite:///{self.tmp / 'sluice.db'}",
                artifacts=self.tmp / "artifacts",
                config=Config(),
                metrics_port=0,
            )
        )


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Restartable]:
    control_plane = Restartable(tmp_path)
    try:
        yield control_plane
    finally:
        control_plane.stop()


def status_text(app: object) -> str:
    return str(app.screen.query_one(StatusLine).render())  # type: ignore[attr-defined]


def rps(table: DataTable[object]) -> str:
    value = table.get_cell("before", "rps") if "before" in table.rows else ""
    return value.plain if isinstance(value, Text) else str(value)


async def test_disconnected_state_and_recovery(restartable: Restartable, models_dir: Path) -> None:
    with SluiceClient(restartable.address, token="") as client:
        client.register_version("churn", "v1", make_classifier_onnx(models_dir, "logreg", 0))
        client.deploy("before", "churn:v1")
    app = make_app(restartable.address)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot, DeploymentsScreen)
        table = screen.query_one("#deployments", DataTable)
        await until(pilot, lambda: app.connection == "connected", "the first connection")
        assert "before" in table.rows
        await until(pilot, lambda: rps(table) == "0.0", "the request rate")

        restartable.stop()
        await until(pilot, lambda: app.connection == "disconnected", "the disconnected state")
        assert "DISCONNECTED" in status_text(app)
        await until(pilot, lambda: rps(table) == "-", "the rate to stop looking live")
        # The UI stays usable meanwhile: screens switch, keys answer, nothing crashes.
        await pilot.press("2")
        await pilot.press("1")
        assert isinstance(app.screen, DeploymentsScreen)

        restartable.start_again()
        await until(pilot, lambda: app.connection == "connected", "the reconnection")
        assert "connected" in status_text(app) and "DISCONNECTED" not in status_text(app)
        assert app.connections >= 2
        await until(pilot, lambda: rps(table) == "0.0", "the request rate again")

        # Live updates flow again: a change made elsewhere shows up without a key press.
        with SluiceClient(restartable.address, token="") as client:
            client.deploy("after", "churn:v1")
        await until(pilot, lambda: "after" in table.rows, "the change made after the restart")
        assert "before" in table.rows
