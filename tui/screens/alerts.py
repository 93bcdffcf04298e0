"""Alerts: open (and with `h`, resolved) alerts; enter opens one in full, `a` acknowledges it
(asking first); `j`/`k` move like the arrows. Times and counts stay live: the list is redrawn every
few seconds and reloaded every `RELOAD_SECONDS` (plain updates of an alert send no event)."""

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
from tui.screens.alert_detail import AlertDetailScreen
from tui.screens.base import SluiceScreen, fill_table, selected_key
from tui.screens.confirm import ConfirmScreen

REDRAW_SECONDS = 5.0  # relative times ("3m ago") move on
RELOAD_SECONDS = 15.0  # counts ("seen 4×") and last-seen times change without an event


class AlertsScreen(SluiceScreen[list[controlplane_pb2.Alert]]):
    MODE = "alerts"
    EVENT_KINDS = frozenset({"alert"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open"),
        Binding("a", "ack", "Acknowledge"),
        Binding("h", "toggle_all", "Show resolved"),
        Binding("j", "cursor('down')", "Down", show=False),
        Binding("k", "cursor('up')", "Up", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.include_resolved = False

    def on_mount(self) -> None:
        self.set_interval(REDRAW_SECONDS, self._redraw)
        self.set_interval(RELOAD_SECONDS, self._reload_if_shown)

    def _redraw(self) -> None:
        if self.data is not None and self.is_current:
            self.show(self.data)

    def _reload_if_shown(self) -> None:
        if self.is_current and not self.fetching:
            self.reload()

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
                    cell(clip(a.message, 200)),
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
            text.append("  (enter: the whole alert)", style="dim")
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
        self.app.notify("showing resolved alerts too" if self.include_resolved else "showing open alerts")
        self.reload()

    def action_cursor(self, direction: str) -> None:
        table = self.query_one("#alerts", DataTable)
        table.action_cursor_down() if direction == "down" else table.action_cursor_up()

    @on(DataTable.RowSelected, "#alerts")
    def _selected(self) -> None:
        self.action_open()  # enter on the table (it takes the key before the screen does)

    def action_open(self) -> None:
        alert = self.selected()
        if alert is None:
            self.app.notify("no alert selected", severity="warning")
            return
        self.app.push_screen(AlertDetailScreen(alert, self.sluice.clock()))

    def action_ack(self) -> None:
        alert = self.selected()
        if alert is None:
            self.app.notify("no alert selected", severity="warning")
            return
        if alert.state != controlplane_pb2.ALERT_OPEN:
            self.app.notify(f"alert #{alert.id} is not open", severity="warning")
            return
        alert_id = alert.id
        question = (
            f"Acknowledge alert #{alert_id} ({alert.kind} on {alert.deployment or 'the control plane'}): "
            f"{clip(alert.message, 160)}\nIt stays active (and may still escalate) until its condition "
            "clears; the acknowledgement records that you are on it."
        )

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.sluice.perform(
                    f"acknowledge alert #{alert_id}",
                    lambda client: client.ack_alert(alert_id),
                    lambda a: f"alert #{a.id} acknowledged by {a.acknowledged_by or 'you'}",
                )

        self.app.push_screen(ConfirmScreen("Acknowledge?", question, yes="Acknowledge", variant="primary"), answered)
