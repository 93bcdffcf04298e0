"""Ask before doing something that cannot be taken back casually: y confirms, n or Escape cancels."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Static


class ConfirmScreen(ModalScreen[bool]):
    """The question, then one-line buttons that name their keys; the dialog's own footer covers the
    screen's behind it, so the keys on screen are the ones that work (y, n, Escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel", show=False),
    ]

    def __init__(
        self, title: str, question: str, yes: str = "Yes", variant: str = "error", ask_reason: bool = False
    ) -> None:
        """`ask_reason`: an optional reason field for the audit log (read `.reason` after a yes);
        enter in it confirms, like y."""
        super().__init__()
        self.title_text = title
        self.question = question
        self.yes = yes
        self.variant = variant
        self.ask_reason = ask_reason
        self.reason = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            yield Static(self.question, classes="dialog-text", markup=False)
            if self.ask_reason:
                yield Input(placeholder="reason (optional, for the audit log; tab here to type)", id="reason")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant=self.variant, id="yes")  # type: ignore[arg-type]
                yield Button("No (n)", id="no")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, value: bool) -> None:
        self._answer(value)

    def _answer(self, value: bool) -> None:
        if value and self.ask_reason:
            self.reason = self.query_one("#reason", Input).value.strip()
        self.dismiss(value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self._answer(event.button.id == "yes")

    @on(Input.Submitted, "#reason")
    def _submitted(self) -> None:
        self._answer(True)
