"""The TUI on a control plane with a real serving agent: sync marks, the Agents screen, live rates."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import DataTable

from core.client import SluiceClient
from tests.agent.cluster import AgentProcess
from tests.harness import ServerThread, start_server
from tests.models import breast_cancer_rows, make_baseline, make_classifier_onnx
from tests.tui.helpers import (
    eventually,
    focus_field,
    loaded,
    make_app,
    open_form,
    type_text,
    until,
)
from tui.screens.agents import AgentsScreen
from tui.screens.deploy_form import DeployForm
from tui.screens.deployments import DeploymentsScreen
from tui.screens.traffic_form import TrafficForm

AGENT = "tui-agent"


@dataclass
class Cluster:
    server: ServerThread
    agent: AgentProcess


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Cluster]:
    """A control plane of its own (so the agent loads only these models) and one agent process."""
    tmp = tmp_path_factory.mktemp("tui-live")
    server = start_server(tmp)
    agent: AgentProcess | None = None
    try:
        with SluiceClient(server.address, token="") as client:
            baseline = make_baseline(models_dir)
            client.register_version("iris", "v1", make_classifier_onnx(models_dir, "logreg", 0), baseline)
            client.register_version("iris", "v2", make_classifier_onnx(models_dir, "gbm", 0), baseline)
        agent = AgentProcess(server.address, AGENT, tmp / "agent-cache", tmp / "agent.log")
        yield Cluster(server, agent)
    finally:
        if agent is not None:
            agent.stop()
        server.stop()


def cell_text(table: DataTable[object], row: str, column: str) -> str:
    if row not in table.rows:
        return ""
    value = table.get_cell(row, column)
    return value.plain if isinstance(value, Text) else str(value)


async def test_agents_sync_and_live_rates(cluster: Cluster) -> None:
    app = make_app(cluster.server.address)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot, DeploymentsScreen)
        table = screen.query_one("#deployments", DataTable)

        # d: deploy by keys; the agent applies the generation and the row says 1/1 in sync.
        await open_form(pilot, "d", DeployForm)
        await focus_field(pilot, "deployment")
        await type_text(pilot, "iris-web", clear=True)
        await focus_field(pilot, "version")
        await type_text(pilot, "iris:v1", clear=True)
        await pilot.press("enter")
        await until(pilot, lambda: cell_text(table, "iris-web", "sync") == "1/1", "1/1 agents in sync")

        # t: a new generation; the mark goes back to 1/1 once the agent has ACKed it.
        await open_form(pilot, "t", TrafficForm)
        await focus_field(pilot, "weight-0")
        await type_text(pilot, "80", clear=True)
        await focus_field(pilot, "new-version")
        await type_text(pilot, "iris:v2")
        await focus_field(pilot, "new-weight")
        await type_text(pilot, "20")
        await pilot.press("enter")
        with SluiceClient(cluster.server.address, token="") as client:
            generation = (
                await eventually(
                    pilot,
                    lambda: len(client.get_deployment("iris-web").splits) == 2 and client.get_deployment("iris-web"),
                    "the traffic change",
                )
            ).generation
            synced = await eventually(
                pilot, lambda: client.wait_for_sync("iris-web", generation, timeout=5).in_sync, "the agent's ACK"
            )
            assert synced
        await until(pilot, lambda: cell_text(table, "iris-web", "sync") == "1/1", "in sync after the change")
        assert "80" in cell_text(table, "iris-web", "champion")
        assert "20" in cell_text(table, "iris-web", "challenger")

        # Predictions through the agent show up as a request rate, pushed by the event stream.
        rows = breast_cancer_rows(50, seed=1)
        for i in range(0, 50, 10):
            cluster.agent.predict_batch("iris-web", rows[i : i + 10], [f"k{j}" for j in range(i, i + 10)])
        await until(
            pilot,
            lambda: cell_text(table, "iris-web", "rps") not in ("", "-", "0.0"),
            "a live request rate",
            timeout=60,
        )

        # 3: the Agents screen lists the agent, connected and in sync.
        await pilot.press("3")
        agents = await loaded(pilot, AgentsScreen)
        agent_table = agents.query_one("#agents", DataTable)
        await until(pilot, lambda: agent_table.row_count == 1, "the agent's row")
        key = agents.data[0].id or agents.data[0].name if agents.data else ""
        assert cell_text(agent_table, key, "name") == AGENT
        assert cell_text(agent_table, key, "state") == "connected"
        await until(pilot, lambda: cell_text(agent_table, key, "sync").startswith("✓"), "the in-sync mark")
