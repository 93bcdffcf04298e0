"""Roll back: the previous champion (or a named version) at 100% at once. Asks first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from textual.widget import Widget
from textual.widgets import Input, Static

from tui.screens.form import FormScreen, entry, field, version_ref


@dataclass(frozen=True)
class RollbackRequest:
    to: str | None  # None: the previous champion
    reason: str


class RollbackForm(FormScreen[RollbackRequest]):
    SUBMIT_LABEL = "Roll back"
    SUBMIT_VARIANT = "error"

    def __init__(self, deployment: str, current: str, previous: str) -> None:
        super().__init__()
        self.deployment = deployment
        self.current = current
        self.previous = previous

    def title_text(self) -> str:
        return f"Roll back {self.deployment}?"

    def fields(self) -> Iterable[Widget]:
        target = self.previous or "none left (each earlier one was rolled back): name a version"
        yield Static(
            f"Now: {self.current or '-'}. Rolling back puts the target at 100% at once and ends any "
            f"running experiment. Blank restores the last champion before this one that was not itself "
            f"rolled back: {target}.",
            classes="dialog-text",
            markup=False,
        )
        yield field("to", entry(placeholder=f"blank: {self.previous or 'MODEL:VERSION'}", id="to"))
        yield field("reason", entry(placeholder="optional, for the audit log", id="reason"))

    def on_mount(self) -> None:
        self.suggest_versions("to")
        self.query_one("#to", Input).focus()

    def result(self) -> RollbackRequest:
        text = self.query_one("#to", Input).value.strip()
        to = version_ref(text, "target") if text else None
        return RollbackRequest(to, self.query_one("#reason", Input).value.strip())
