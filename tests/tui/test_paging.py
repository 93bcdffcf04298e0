"""The agents and alerts screens show every row, however many pages ListAgents and ListAlerts take
(issue 13): the screen's load worker pages through them off the UI thread."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from textual.widgets import DataTable

from controlplane.store.models import AgentRow, AlertRow, utcnow
from tests.harness import start_server
from tests.tui.helpers import loaded, make_app
from tui.screens.agents import AgentsScreen
from tui.screens.alerts import AlertsScreen

AGENTS = 230  # ListAgents answers 200 at a time
ALERTS = 540  # ListAlerts 500


async def test_agents_and_alerts_screens_page_through_everything(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        now = utcnow()
        agent = {"host": "h", "address": "a", "labels": {}, "state": "connected", "last_nack": ""}
        alert = {"deployment": "web", "kind": "probe", "severity": "warning", "state": "open", "updated_at": now}
        with server.ctx.db.session() as session:
            session.add_all(
                AgentRow(id=f"id-{i:04d}", name=f"agent-{i:04d}", last_seen=now, connected_at=now, **agent)
                for i in range(AGENTS)
            )
            session.add_all(
                AlertRow(message=f"probe {i}", opened_at=now - timedelta(seconds=i), **alert) for i in range(ALERTS)
            )
        app = make_app(server.address)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("3")
            agents = await loaded(pilot, AgentsScreen)
            table = agents.query_one("#agents", DataTable)
            assert table.row_count == AGENTS
            assert "id-0000" in table.rows and f"id-{AGENTS - 1:04d}" in table.rows
            await pilot.press("4")
            alerts = await loaded(pilot, AlertsScreen)
            assert alerts.query_one("#alerts", DataTable).row_count == ALERTS
    finally:
        server.stop()
