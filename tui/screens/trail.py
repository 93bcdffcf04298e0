"""History of one deployment (every generation) above the audit trail (who changed what)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable, Static

from core.client import SluiceClient
from protos import controlplane_pb2
from tui.format import SHORT_TIME, cell, clip, vref, when
from tui.screens.base import SluiceScreen, fill_table, optional

LIMIT = 200


@dataclass
class TrailData:
    deployments: list[str]
    deployment: str
    history: list[controlplane_pb2.HistoryEntry] = field(default_factory=list)
    audit: list[controlplane_pb2.AuditEvent] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


class TrailScreen(SluiceScreen[TrailData]):
    MODE = "history"
    EVENT_KINDS = frozenset({"deployment", "traffic", "experiment", "alert", "version", "agent"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "next_deployment", "Next deployment"),
        Binding("g", "toggle_global", "All audit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.deployment = ""
        self.global_audit = False  # the whole audit trail instead of the deployment's

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="history-title", classes="section")
        history: DataTable[Any] = DataTable(id="history", cursor_type="row", zebra_stripes=True)
        for label in ("Gen", "When", "Action", "By", "Traffic", "Reason"):
            history.add_column(label, key=label.lower())
        yield history
        yield Static("Audit trail", id="audit-title", classes="section")
        audit: DataTable[Any] = DataTable(id="audit", cursor_type="row", zebra_stripes=True)
        for label in ("When", "Principal", "Action", "Target", "Details"):
            audit.add_column(label, key=label.lower())
        yield audit
        yield Static("", id="summary", classes="summary")

    def on_screen_resume(self) -> None:
        # Show the deployment the operator last looked at on the other screens.
        self.deployment = self.sluice.selected_deployment or self.deployment
        super().on_screen_resume()

    def fetch(self, client: SluiceClient) -> TrailData:
        names = [d.name for d in client.list_deployments()]
        chosen = self.deployment if self.deployment in names else (names[0] if names else "")
        data = TrailData(names, chosen)
        if chosen:
            data.history = optional(data.errors, "history", lambda: client.history(chosen, LIMIT), [])
        about = "" if self.global_audit else chosen
        data.audit = optional(data.errors, "audit", lambda: client.audit("", LIMIT, about), [])
        return data

    def show(self, data: TrailData) -> None:
        self.deployment = data.deployment
        title = Text("History of ")
        title.append(data.deployment or "(no deployments)", style="bold")
        if len(data.deployments) > 1:
            title.append("  [c] next deployment", style="dim")
        if "history" in data.errors:
            title.append(f"  {data.errors['history']}", style="yellow")
        self.query_one("#history-title", Static).update(title)
        audit_title = Text("Audit trail")
        if self.global_audit or not data.deployment:
            audit_title.append(" of every deployment", style="bold")
            audit_title.append("  [g] this deployment only", style="dim")
        else:
            audit_title.append(" of ")
            audit_title.append(data.deployment, style="bold")
            audit_title.append(" (its changes, experiments and alerts)  [g] every deployment", style="dim")
        self.query_one("#audit-title", Static).update(audit_title)
        fill_table(
            self.query_one("#history", DataTable),
            [
                (
                    str(e.id),
                    [
                        Text(str(e.generation), justify="right"),
                        cell(when(e.at, SHORT_TIME)),
                        cell(e.action, "bold"),
                        cell(e.principal),
                        cell(", ".join(f"{vref(s.version)}={s.weight}" for s in e.splits)),
                        cell(e.reason or "-", "dim"),
                    ],
                )
                for e in data.history
            ],
        )
        fill_table(
            self.query_one("#audit", DataTable),
            [
                (
                    str(e.id),
                    [
                        cell(when(e.at, SHORT_TIME)),
                        cell(e.principal),
                        cell(e.action, "bold"),
                        cell(e.target),
                        cell(clip(e.details_json, 24), "dim"),
                    ],
                )
                for e in data.audit
            ],
        )

    @on(DataTable.RowHighlighted, "#audit")
    def _show_details(self, event: DataTable.RowHighlighted) -> None:
        found = next((e for e in (self.data.audit if self.data else []) if str(e.id) == event.row_key.value), None)
        text = Text()
        if found is not None:
            text.append(f"{found.action} {found.target} by {found.principal}: ", style="bold")
            text.append(clip(found.details_json, 200))
        self.query_one("#summary", Static).update(text)

    def action_toggle_global(self) -> None:
        self.global_audit = not self.global_audit
        self.reload()

    def action_next_deployment(self) -> None:
        if self.data is None or not self.data.deployments:
            return
        names = self.data.deployments
        index = names.index(self.deployment) if self.deployment in names else -1
        self.deployment = names[(index + 1) % len(names)]
        self.sluice.selected_deployment = self.deployment
        self.reload()
