"""Deployments: one row each with champion and challenger weights, health, agents in sync, req/s."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import on
from textual.widget import Widget
from textual.widgets import DataTable, Static

from core.client import SluiceClient
from protos import common_pb2, controlplane_pb2
from tui.format import cell, health_badge, rate, split_roles, vref, weight_cell
from tui.screens.actions import DeploymentActionsScreen
from tui.screens.base import fill_table, optional, selected_key
from tui.screens.detail import DeploymentDetailScreen


@dataclass
class DeploymentsData:
    deployments: list[controlplane_pb2.Deployment]
    status: dict[str, controlplane_pb2.DeploymentStatus] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def sync_cell(status: controlplane_pb2.DeploymentStatus | None) -> Text:
    if status is None or status.agents_total == 0:
        return Text("-", style="dim")
    style = "green" if status.agents_in_sync == status.agents_total else "bold yellow"
    return Text(f"{status.agents_in_sync}/{status.agents_total}", style=style)


class DeploymentsScreen(DeploymentActionsScreen[DeploymentsData]):
    MODE = "deployments"

    def compose_body(self) -> Iterable[Widget]:
        table: DataTable[Any] = DataTable(id="deployments", cursor_type="row", zebra_stripes=True)
        table.add_column("Deployment", key="name")
        table.add_column("Champion", key="champion")
        table.add_column("Challenger", key="challenger")
        table.add_column("Health", key="health")
        table.add_column("Sync", key="sync")
        table.add_column("Req/s", key="rps")
        yield table
        yield Static("", id="summary", classes="summary")

    def fetch(self, client: SluiceClient) -> DeploymentsData:
        data = DeploymentsData(client.list_deployments())
        statuses: list[controlplane_pb2.DeploymentStatus] = optional(data.errors, "health", client.status, [])
        data.status = {s.deployment.name: s for s in statuses}
        return data

    def show(self, data: DeploymentsData) -> None:
        table = self.query_one("#deployments", DataTable)
        rows = []
        for d in data.deployments:
            champion, others = split_roles(d)
            status = data.status.get(d.name)
            health = health_badge(status.health if status is not None else common_pb2.HEALTH_UNKNOWN, "short")
            rows.append(
                (
                    d.name,
                    [
                        cell(d.name, "bold"),
                        weight_cell(champion),
                        weight_cell(others[0] if others else None),
                        health,
                        sync_cell(status),
                        Text(rate(status.requests_per_second) if status and self.live else "-", justify="right"),
                    ],
                )
            )
        fill_table(table, rows)
        self._show_summary()

    def target(self) -> controlplane_pb2.Deployment | None:
        key = selected_key(self.query_one("#deployments", DataTable))
        if self.data is None or key is None:
            return None
        return next((d for d in self.data.deployments if d.name == key), None)

    @on(DataTable.RowHighlighted, "#deployments")
    def _highlighted(self) -> None:
        self._show_summary()

    @on(DataTable.RowSelected, "#deployments")
    def _selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.sluice.selected_deployment = event.row_key.value
            self.app.push_screen(DeploymentDetailScreen(event.row_key.value))

    def _show_summary(self) -> None:
        summary = self.query_one("#summary", Static)
        data = self.data
        if data is None:
            return
        deployment = self.target()
        text = Text()
        if deployment is None:
            text.append("No deployments yet: press d to deploy a registered version.", style="dim")
        else:
            self.sluice.selected_deployment = deployment.name
            _, others = split_roles(deployment)
            text.append(f"{deployment.name}", style="bold")
            text.append(f"  generation {deployment.generation}")
            if deployment.experiment:
                text.append("  experiment ")
                text.append(deployment.experiment, style="bold magenta")
            if len(others) > 1:
                text.append("  also " + ", ".join(f"{vref(s.version)}={s.weight}" for s in others[1:]))
            if deployment.previous_champion.model:
                text.append(f"  previous champion {vref(deployment.previous_champion)}", style="dim")
            status = data.status.get(deployment.name)
            if status is not None and status.open_alerts:
                text.append(f"  {status.open_alerts} open alert(s)", style="bold red")
            text.append("\nenter: details", style="dim")
        for part, error in data.errors.items():
            text.append(f"\n{part}: {error}", style="yellow")
        summary.update(text)
