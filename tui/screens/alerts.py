"""Alerts: open (and with `a`, resolved) alerts; `k` acknowledges the one under the cursor."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable, Static

from core.client import SluiceClient
from core.text import printable
from protos import controlplane_pb2
from tui.format import ago, alert_state, cell, clip, health_badge, vref, when
from tui.screens.base import SluiceScreen, fill_table, selected_key


class AlertsScreen(SluiceScreen[list[controlplane_pb2.Alert]]):
    MODE = "alerts"
    EVENT_KINDS = frozenset({"alert"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "ack", "Acknowledge"),
        Binding("a", "toggle_all", "Show resolved"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.include_resolved = False

    def compose_body(self) -> Iterable[Widget]:
        table: DataTable[Any] = DataTable(id="alerts", cursor_type="row", zebra_stripes=True)
        table.add_column("#", key="id")
        table.add_column("Sev", key="severity")
        table.add_column("Deployment", key="deployment")
        table.add_column("Kind", key="kind")
        table.add_column("State", key="state")
        table.add_column("Opened", key="opened")
        table.add_column("Message", key="message")
        yield table
        yield Static("", id="summary", classes="summary")

    def fetch(self, client: SluiceClient) -> list[controlplane_pb2.Alert]:
        return client.alerts(include_resolved=self.include_resolved)

    def show(self, data: list[controlplane_pb2.Alert]) -> None:
        now = self.sluice.clock()
        rows = [
            (
                str(a.id),
                [
                    Text(str(a.id), justify="right"),
                    health_badge(a.severity, size="glyph"),
                    cell(a.deployment or "-", "bold"),
                    cell(a.kind),
                    alert_state(a.state),
                    cell(ago(a.opened_at, now)),
                    cell(clip(a.message, 40)),
                ],
            )
            for a in data
        ]
        fill_table(self.query_one("#alerts", DataTable), rows)
        self._show_summary()

    def selected(self) -> controlplane_pb2.Alert | None:
        key = selected_key(self.query_one("#alerts", DataTable))
        return next((a for a in self.data or [] if str(a.id) == key), None)

    @on(DataTable.RowHighlighted, "#alerts")
    def _show_summary(self) -> None:
        alert = self.selected()
        text = Text()
        if alert is None:
            scope = "alerts" if self.include_resolved else "open alerts"
            text.append(f"No {scope}.", style="dim")
        else:
            text.append_text(health_badge(alert.severity))
            text.append(f"  #{alert.id} {alert.kind} on {alert.deployment}")
            if alert.version.model:
                text.append(f" ({vref(alert.version)})")
            if alert.agent:
                text.append(f" agent {alert.agent}")
            text.append(f"\n{printable(alert.message)}")
            text.append(
                f"\nvalue {alert.value:g}, seen {alert.occurrences}×, opened {when(alert.opened_at)}",
                style="dim",
            )
            if alert.acknowledged_by:
                text.append(f", acknowledged by {alert.acknowledged_by}", style="dim")
        self.query_one("#summary", Static).update(text)

    def action_toggle_all(self) -> None:
        self.include_resolved = not self.include_resolved
        self.sluice.notify("showing resolved alerts too" if self.include_resolved else "showing open alerts")
        self.reload()

    def action_ack(self) -> None:
        alert = self.selected()
        if alert is None:
            self.sluice.notify("no alert selected", severity="warning")
            return
        if alert.state != controlplane_pb2.ALERT_OPEN:
            self.sluice.notify(f"alert #{alert.id} is not open", severity="warning")
            return
        alert_id = alert.id
        self.sluice.perform(
            f"acknowledge alert #{alert_id}",
            lambda client: client.ack_alert(alert_id),
            lambda a: f"alert #{a.id} acknowledged by {a.acknowledged_by or 'you'}",
        )
