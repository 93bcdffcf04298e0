"""One alert in full (enter on the Alerts screen): what it says, what it measured, its timeline."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from core.text import printable
from protos import controlplane_pb2
from tui.format import ago, alert_state, health_badge, to_datetime, vref, when


def alert_details(alert: controlplane_pb2.Alert, now: datetime) -> Group:
    """The whole alert: message, subject and value, where, and its timeline (opened, last seen,
    acknowledged, resolved), each with how long ago."""
    head = Text()
    head.append_text(health_badge(alert.severity))
    head.append(f"  #{alert.id} {printable(alert.kind)}  ", style="bold")
    head.append_text(alert_state(alert.state))
    facts = Table(box=None, show_header=False, padding=(0, 1), expand=True)
    facts.add_column(style="bold", no_wrap=True, width=16)
    facts.add_column(ratio=1)
    facts.add_row("deployment", printable(alert.deployment) or "-")
    if alert.version.model:
        facts.add_row("version", vref(alert.version) + ("  (last seen on)" if alert.subject else ""))
    if alert.subject:
        facts.add_row("follows", f"{printable(alert.subject)}: the alert keeps its id across champion changes")
    if alert.agent:
        facts.add_row("agent", printable(alert.agent))
    facts.add_row("value", f"{alert.value:g}")
    facts.add_row("seen", f"{alert.occurrences}×")

    def moment(ts: object) -> str:
        return f"{when(ts)}  ({ago(ts, now)})" if to_datetime(ts) else "-"  # type: ignore[arg-type]

    timeline = Table(box=None, show_header=False, padding=(0, 1), expand=True)
    timeline.add_column(style="bold", no_wrap=True, width=16)
    timeline.add_column(ratio=1)
    timeline.add_row("opened", moment(alert.opened_at))
    timeline.add_row("last seen", moment(alert.updated_at))
    if alert.acknowledged_by:
        timeline.add_row("acknowledged", f"by {printable(alert.acknowledged_by)}, {moment(alert.acknowledged_at)}")
    else:
        timeline.add_row("acknowledged", "not yet (a on the Alerts screen)")
    if to_datetime(alert.resolved_at):
        timeline.add_row("resolved", moment(alert.resolved_at))
    return Group(
        head,
        Text(""),
        Text(printable(alert.message)),
        Text(""),
        facts,
        Text("Timeline", style="bold underline"),
        timeline,
    )


class AlertDetailScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, alert: controlplane_pb2.Alert, now: datetime) -> None:
        super().__init__()
        self.alert = alert
        self.now = now

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog alert-detail"):
            yield Static(f"Alert #{self.alert.id}", classes="dialog-title")
            yield Static(alert_details(self.alert, self.now), id="alert-detail")
        yield Footer(compact=True, show_command_palette=False)

    def action_close(self) -> None:
        self.dismiss(None)
