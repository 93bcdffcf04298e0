"""What the TUI's screens and widgets use of the app, and the app's connection states.

Screens and widgets reach the app through Textual's `self.app`. For what is Sluice's own (the
client, `perform`, the connection) they see it as a `SluiceHost`, not as `tui.app.SluiceApp`, so
the imports go one way: the app imports its screens, never the reverse. What every Textual app
has, such as `notify`, they call on `self.app` as it is. mypy checks that `SluiceApp` is a
`SluiceHost` (the end of `tui/app.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from textual.worker import Worker

from core.client import SluiceClient

#: the time screens show ages against (a fixed one in tests)
Clock = Callable[[], datetime]


class ConnectionState(StrEnum):
    """The app's event stream to the control plane, as the status line shows it."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    #: the stream broke or went silent; the app reconnects with backoff
    DISCONNECTED = "disconnected"


class SluiceHost(Protocol):
    #: the control plane's client (replaced on a reconnection)
    client: SluiceClient
    #: the control plane as the status line names it
    address: str
    clock: Clock
    #: the deployment the operator looked at last (forms start from it)
    selected_deployment: str

    @property
    def connection(self) -> str:
        """A ConnectionState (a reactive attribute of the app: widgets watch it)."""
        ...

    @property
    def connection_detail(self) -> str: ...

    @property
    def identity(self) -> str:
        """Who the control plane says we are ("" until it answers)."""
        ...

    @property
    def last_event(self) -> str: ...

    def perform(
        self, label: str, call: Callable[[SluiceClient], object], done: Callable[[Any], str] | None = None
    ) -> Worker[None]:
        """Run a change in a worker; its outcome becomes a notification, then the screen reloads."""
        ...
