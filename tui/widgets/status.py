"""The status line: connection to the control plane, who we are, the last change seen."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:
    from tui.app import SluiceApp


class StatusLine(Static):
    def on_mount(self) -> None:
        app = cast("SluiceApp", self.app)
        for attribute in ("connection", "connection_detail", "identity", "last_event"):
            self.watch(app, attribute, self._changed, init=False)
        self._changed()

    def _changed(self, _value: object = None) -> None:
        app = cast("SluiceApp", self.app)
        state = app.connection
        self.set_class(state == "disconnected", "-disconnected")
        self.set_class(state == "connecting", "-connecting")
        if state == "connected":
            text = Text("● connected ", style="bold green")
            text.append(app.address)
            if app.identity:
                text.append(f" as {app.identity}")
            if app.last_event:
                text.append("  │ " + app.last_event, style="dim")
        elif state == "disconnected":
            text = Text(f"✖ DISCONNECTED from {app.address}", style="bold")
            if app.connection_detail:
                text.append(": " + app.connection_detail)
        else:
            text = Text(f"… connecting to {app.address}", style="bold")
        text.no_wrap = True
        text.overflow = "ellipsis"
        self.update(text)
