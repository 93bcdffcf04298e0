"""The status line: connection to the control plane, who we are, the last change seen."""

from __future__ import annotations

from typing import cast

from rich.text import Text
from textual.widgets import Static

from tui.host import ConnectionState, SluiceHost


class StatusLine(Static):
    def on_mount(self) -> None:
        for attribute in ("connection", "connection_detail", "identity", "last_event"):
            self.watch(self.app, attribute, self._changed, init=False)
        self._changed()

    def _changed(self, _value: object = None) -> None:
        app = cast(SluiceHost, self.app)
        state = app.connection
        self.set_class(state == ConnectionState.DISCONNECTED, "-disconnected")
        self.set_class(state == ConnectionState.CONNECTING, "-connecting")
        if state == ConnectionState.CONNECTED:
            text = Text("● connected ", style="bold green")
            text.append(app.address)
            if app.identity:
                text.append(f" as {app.identity}")
            if app.last_event:
                text.append("  │ " + app.last_event, style="dim")
        elif state == ConnectionState.DISCONNECTED:
            text = Text(f"✖ DISCONNECTED from {app.address}", style="bold")
            if app.connection_detail:
                text.append(": " + app.connection_detail)
        else:
            text = Text(f"… connecting to {app.address}", style="bold")
        text.no_wrap = True
        text.overflow = "ellipsis"
        self.update(text)
