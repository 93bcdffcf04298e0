"""A modal form: labelled fields, an error line, OK/Cancel. Enter submits, Escape cancels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Generic, TypeVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static

from core.client import ClientError, SluiceClient
from core.errors import InvalidInput
from core.names import parse_version_ref
from tui.host import SluiceHost

R = TypeVar("R")


class FormError(Exception):
    """A value the operator typed is not acceptable; shown in the form's error line."""


def field(label: str, widget: Widget) -> Horizontal:
    return Horizontal(Label(label, classes="field-label"), widget, classes="field")


def entry(value: str = "", **kwargs: Any) -> Input:
    """A one-line input without a border, so forms fit in 24 rows."""
    kwargs.setdefault("valid_empty", True)  # blank means "the default", not an error
    return Input(value, compact=True, **kwargs)


def version_ref(text: str, what: str = "version") -> str:
    text = text.strip()
    if not text:
        raise FormError(f"the {what} is empty: type MODEL:VERSION")
    try:
        model, version = parse_version_ref(text)
    except InvalidInput as exc:
        raise FormError(f"{what}: {exc}") from None
    return f"{model}:{version}"


def whole(text: str, what: str, low: int, high: int, default: int | None = None) -> int:
    text = text.strip()
    if not text and default is not None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise FormError(f"{what} must be a whole number, not {text!r}") from None
    if not low <= value <= high:
        raise FormError(f"{what} must be between {low} and {high}, not {value}")
    return value


def decimal(text: str, what: str, low: float, high: float, default: float = 0.0) -> float:
    text = text.strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise FormError(f"{what} must be a number, not {text!r}") from None
    if not low <= value <= high:
        raise FormError(f"{what} must be between {low:g} and {high:g}, not {value:g}")
    return value


class FormScreen(ModalScreen[R | None], Generic[R]):
    TITLE_TEXT: ClassVar[str] = ""
    SUBMIT_LABEL: ClassVar[str] = "OK"
    SUBMIT_VARIANT: ClassVar[str] = "primary"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Submit"),
    ]

    @property
    def sluice(self) -> SluiceHost:
        return cast(SluiceHost, self.app)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text(), classes="dialog-title")
            yield from self.fields()
            yield Static("", id="form-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.SUBMIT_LABEL, variant=self.SUBMIT_VARIANT, id="submit", compact=True)  # type: ignore[arg-type]
                yield Button("Cancel", id="cancel", compact=True)

    def title_text(self) -> str:
        return self.TITLE_TEXT

    def fields(self) -> Iterable[Widget]:
        raise NotImplementedError

    def result(self) -> R:
        """Read and check the fields; raise FormError with a message for the operator."""
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        try:
            value = self.result()
        except FormError as exc:
            error = self.query_one("#form-error", Static)
            error.update(Text(str(exc)))
            error.add_class("-shown")
            return
        self.dismiss(value)

    @on(Input.Submitted)
    def _enter(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    @on(Button.Pressed, "#submit")
    def _submit_pressed(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    # ---- suggestions of registered versions for MODEL:VERSION inputs ----

    def suggest_versions(self, *input_ids: str, model: str = "") -> None:
        self._fetch_versions(self.sluice.client, input_ids, model)

    @work(thread=True, group="suggest", exit_on_error=False)
    def _fetch_versions(self, client: SluiceClient, input_ids: tuple[str, ...], model: str) -> None:
        try:
            versions = client.list_versions(model)
        except ClientError:
            return  # suggestions are a convenience
        names = [f"{v.ref.model}:{v.ref.version}" for v in versions]
        self.app.call_from_thread(self._set_suggestions, input_ids, names)

    def _set_suggestions(self, input_ids: tuple[str, ...], names: list[str]) -> None:
        for input_id in input_ids:
            for widget in self.query(f"#{input_id}").results(Input):
                widget.suggester = SuggestFromList(names, case_sensitive=True)
