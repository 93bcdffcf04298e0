"""Agents: name, host, state, last seen, and whether each has applied its deployments' generations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on
from textual.widget import Widget
from textual.widgets import DataTable, Static

from core.client import SluiceClient
from core.text import printable
from core.vocabulary import AgentState
from protos import controlplane_pb2
from tui.format import ago, cell
from tui.screens.base import SluiceScreen, fill_table, selected_key

STATE_STYLES: dict[str, str] = {
    AgentState.CONNECTED: "bold green",
    AgentState.LOST: "bold yellow",
    AgentState.DISCONNECTED: "dim",
    AgentState.STOPPED: "dim",
}


def in_sync_cell(agent: controlplane_pb2.AgentInfo) -> Text:
    total = len(agent.deployments)
    if not total:
        return Text("-", style="dim")
    synced = sum(1 for d in agent.deployments if d.in_sync)
    if synced == total:
        return Text(f"✓ {synced}/{total}", style="green")
    return Text(f"✗ {synced}/{total}", style="bold yellow")


class AgentsScreen(SluiceScreen[list[controlplane_pb2.AgentInfo]]):
    MODE = "agents"
    EVENT_KINDS = frozenset({"agent", "deployment", "traffic", "experiment", "heartbeat"})

    def compose_body(self) -> Iterable[Widget]:
        table: DataTable[Any] = DataTable(id="agents", cursor_type="row", zebra_stripes=True)
        table.add_column("Agent", key="name")
        table.add_column("Host", key="host")
        table.add_column("Address", key="address")
        table.add_column("State", key="state")
        table.add_column("Last seen", key="seen")
        table.add_column("In sync", key="sync")
        yield table
        yield Static("", id="summary", classes="summary")

    def fetch(self, client: SluiceClient) -> list[controlplane_pb2.AgentInfo]:
        return client.agents()

    def show(self, data: list[controlplane_pb2.AgentInfo]) -> None:
        now = self.sluice.clock()
        rows = [
            (
                a.id or a.name,
                [
                    cell(a.name, "bold"),
                    cell(a.host),
                    cell(a.address),
                    cell(a.state, STATE_STYLES.get(a.state, "")),
                    cell(ago(a.last_seen, now)),
                    in_sync_cell(a),
                ],
            )
            for a in data
        ]
        fill_table(self.query_one("#agents", DataTable), rows)
        self._show_summary()

    @on(DataTable.RowHighlighted, "#agents")
    def _show_summary(self) -> None:
        key = selected_key(self.query_one("#agents", DataTable))
        agent = next((a for a in self.data or [] if (a.id or a.name) == key), None)
        text = Text()
        if agent is None:
            text.append("No agents have connected: `sluice agent --controlplane ADDR`", style="dim")
        else:
            text.append(agent.name, style="bold")
            for d in agent.deployments:
                mark = ("✓", "green") if d.in_sync else ("✗", "bold yellow")
                text.append(f"  {d.deployment} ")
                text.append(mark[0], style=mark[1])
                text.append(f" {d.applied_generation}/{d.desired_generation}")
            if agent.labels:
                labels = " ".join(f"{k}={v}" for k, v in sorted(agent.labels.items()))
                text.append("\n" + printable(labels), style="dim")
            if agent.last_nack:
                text.append(f"\nlast NACK: {printable(agent.last_nack)}", style="bold red")
        self.query_one("#summary", Static).update(text)
