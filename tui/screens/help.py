"""`?`: every key binding, by screen."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Everywhere",
        (
            ("1 … 6", "Deployments, Versions, Agents, Alerts, History/Audit, Experiments (or click the top bar)"),
            ("r", "refresh now (the screen also follows live events)"),
            ("?", "this help"),
            ("q", "quit"),
        ),
    ),
    (
        "Deployments and a deployment's detail",
        (
            ("enter", "open the deployment's detail (Escape goes back)"),
            ("d", "deploy a version: champion at 100%"),
            ("t", "set traffic: weights per version"),
            ("e", "start an experiment (challenger, metric, plan, hold)"),
            ("p", "promote the experiment's challenger (asks first)"),
            ("b", "roll back to the previous champion or a named version (asks first)"),
            ("s", "stop the experiment: challenger to 0%, final, cannot be resumed (asks first)"),
            ("z", "pause the experiment: traffic stays, the rollout clock stops (asks first)"),
            ("g", "resume a paused experiment: its rollout continues (asks first)"),
            ("x", "abort the experiment: challenger to 0%, ends as cancelled, final (asks first)"),
            ("o", "health policy: thresholds and the action on sustained critical health"),
        ),
    ),
    ("Versions", (("d", "deploy the version under the cursor"), ("e", "start it as a challenger"))),
    (
        "Alerts",
        (
            ("enter", "open the alert: whole message, value, timeline, who acknowledged it"),
            ("a", "acknowledge the alert under the cursor (asks first)"),
            ("h", "show resolved alerts too (history)"),
            ("j / k", "down / up, as the arrows"),
        ),
    ),
    ("History/Audit", (("c", "history of the next deployment"), ("g", "audit of every deployment / this one"))),
    (
        "Experiments",
        (
            ("z / g", "pause / resume the experiment under the cursor (asks first)"),
            ("x / s", "abort / stop it: challenger to 0%, final (asks first)"),
        ),
    ),
    (
        "Forms",
        (
            ("tab / shift+tab", "next / previous field"),
            ("→", "accept the suggested version"),
            ("enter or ctrl+s", "submit"),
            ("escape", "cancel"),
        ),
    ),
)


def help_text() -> Group:
    parts: list[RenderableType] = []
    for section, keys in KEYS:
        parts.append(Text(section, style="bold underline"))
        table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
        table.add_column(style="bold cyan", no_wrap=True, width=16)
        table.add_column(ratio=1)
        for key, what in keys:
            table.add_row(key, what)
        parts.append(table)
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static("Sluice keys (Escape closes)", classes="dialog-title")
            yield Static(help_text())

    def action_close(self) -> None:
        self.dismiss(None)
