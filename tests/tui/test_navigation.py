"""Getting around: number keys, mouse clicks on the top bar and on rows, help, going back."""

from __future__ import annotations

from textual.widgets import DataTable

from core.client import SluiceClient
from tests.harness import ServerThread, unique
from tests.tui.conftest import Registered
from tests.tui.helpers import cursor_to, loaded, make_app, until
from tui.screens.agents import AgentsScreen
from tui.screens.alerts import AlertsScreen
from tui.screens.deployments import DeploymentsScreen
from tui.screens.detail import DeploymentDetailScreen
from tui.screens.experiments import ExperimentsScreen
from tui.screens.help import HelpScreen
from tui.screens.trail import TrailScreen
from tui.screens.versions import VersionsScreen
from tui.widgets.navbar import NavBar


def navbar_offset(label: str) -> int:
    """Column of an entry in the top bar, from the text it draws."""
    plain = NavBar("deployments").render().plain  # type: ignore[union-attr]
    return plain.index(label) + 1


async def test_keys_and_mouse_reach_every_screen(
    shared_server: ServerThread, client: SluiceClient, registered: Registered
) -> None:
    name = unique("tui-nav")
    client.deploy(name, registered.v1)
    app = make_app(shared_server.address)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot, DeploymentsScreen)
        for key, screen_type in (
            ("2", VersionsScreen),
            ("3", AgentsScreen),
            ("4", AlertsScreen),
            ("5", TrailScreen),
            ("6", ExperimentsScreen),
            ("1", DeploymentsScreen),
        ):
            await pilot.press(key)
            await loaded(pilot, screen_type)

        # The mouse: click "Versions" in the top bar, then "Deployments" again.
        assert await pilot.click(NavBar, offset=(navbar_offset("Versions"), 0))
        versions = await loaded(pilot, VersionsScreen)
        await until(pilot, lambda: registered.v1 in versions.query_one("#versions", DataTable).rows, "the version")
        assert await pilot.click(NavBar, offset=(navbar_offset("Deployments"), 0))
        await loaded(pilot, DeploymentsScreen)

        # A click on a row opens its detail; Escape goes back.
        table = screen.query_one("#deployments", DataTable)
        await cursor_to(pilot, table, name)
        row = table.get_row_index(name)
        assert await pilot.click(DataTable, offset=(3, row + 1 - int(table.scroll_y)))
        detail = await loaded(pilot, DeploymentDetailScreen)
        assert isinstance(detail, DeploymentDetailScreen) and detail.deployment_name == name
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "the list again")

        # ? shows the keys; Escape closes it.
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "the help screen to close")

        # History/Audit follows the deployment last looked at.
        await pilot.press("5")
        trail = await loaded(pilot, TrailScreen)
        await until(pilot, lambda: trail.data is not None and trail.data.deployment == name, "its history")
        assert [e.action for e in trail.data.history] == ["deploy"]  # type: ignore[union-attr]
