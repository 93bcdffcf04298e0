"""The operator's terminal UI: live deployments, experiments and alerts; act on them by key.

All data comes through `SluiceClient` (blocking gRPC) called in thread workers. One long-lived
worker follows the control plane's `WatchEvents` stream; every event (including the heartbeat the
server sends while nothing happens) marks the connection alive and refreshes the visible screen,
debounced. When the stream breaks the app shows that it is disconnected and reconnects by itself
with exponential backoff and jitter.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.timer import Timer
from textual.worker import Worker

from core.client import ClientError, SluiceClient
from protos import controlplane_pb2
from tui.host import Clock, ConnectionState, SluiceHost
from tui.screens.agents import AgentsScreen
from tui.screens.alerts import AlertsScreen
from tui.screens.base import SluiceScreen
from tui.screens.deployments import DeploymentsScreen
from tui.screens.experiments import ExperimentsScreen
from tui.screens.help import HelpScreen
from tui.screens.trail import TrailScreen
from tui.screens.versions import VersionsScreen

ClientFactory = Callable[[], SluiceClient]


class StreamEvent(Message):
    """One event from the WatchEvents stream (posted from the watcher thread)."""

    def __init__(self, event: controlplane_pb2.Event) -> None:
        super().__init__()
        self.event = event


class StreamDown(Message):
    """The stream broke; the watcher retries after `retry_in` seconds."""

    def __init__(self, reason: str, retry_in: float) -> None:
        super().__init__()
        self.reason = reason
        self.retry_in = retry_in


class Identity(Message):
    def __init__(self, principal: str, role: str) -> None:
        super().__init__()
        self.principal = principal
        self.role = role


class SluiceApp(App[None]):
    CSS_PATH = Path(__file__).parent / "app.tcss"  # absolute: subclasses elsewhere keep it
    TITLE = "Sluice"
    ENABLE_COMMAND_PALETTE = False
    MODES: ClassVar[dict[str, Any]] = {
        "deployments": DeploymentsScreen,
        "versions": VersionsScreen,
        "agents": AgentsScreen,
        "alerts": AlertsScreen,
        "history": TrailScreen,
        "experiments": ExperimentsScreen,
    }
    DEFAULT_MODE = "deployments"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "switch_mode('deployments')", "Deployments", show=False),
        Binding("2", "switch_mode('versions')", "Versions", show=False),
        Binding("3", "switch_mode('agents')", "Agents", show=False),
        Binding("4", "switch_mode('alerts')", "Alerts", show=False),
        Binding("5", "switch_mode('history')", "History", show=False),
        Binding("6", "switch_mode('experiments')", "Experiments", show=False),
        Binding("r", "reload", "Refresh", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    connection: reactive[str] = reactive(ConnectionState.CONNECTING)
    connection_detail: reactive[str] = reactive("")
    identity: reactive[str] = reactive("")
    last_event: reactive[str] = reactive("")
    # Active alerts in the whole control plane (-1: not known yet): on the nav bar and the status line.
    open_alerts: reactive[int] = reactive(-1)

    def __init__(
        self,
        client_factory: ClientFactory,
        *,
        clock: Clock | None = None,
        reconnect_min: float = 0.5,
        reconnect_max: float = 8.0,
        stale_after: float = 15.0,
        debounce: float = 0.3,
        label: str | None = None,
    ) -> None:
        """`label` names the control plane in the status line (default: its address)."""
        super().__init__()
        self.client_factory = client_factory
        self.client = client_factory()
        self.address = label or self.client.address
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.stale_after = stale_after
        self.debounce = debounce
        # Every notification shown, as (severity, message): the tests read it, people see toasts.
        self.notices: list[tuple[str, str]] = []
        self.events_received = 0
        self.connections = 0  # how many times the stream was (re)established
        self.selected_deployment = ""  # last deployment the operator looked at
        self._last_event_at = time.monotonic()
        self._stopping = threading.Event()
        self._watch_lock = threading.Lock()
        self._watch_client: SluiceClient | None = None
        self._refresh_timer: Timer | None = None
        self._retired: list[SluiceClient] = []

    # ---- lifecycle ----

    def on_mount(self) -> None:
        self._watch()
        self.set_interval(1.0, self._check_stale)

    def on_unmount(self) -> None:
        self._stopping.set()
        self._close_watch_client()
        for client in (*self._retired, self.client):
            client.close()

    # ---- notifications and actions ----

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification is also kept in `notices` (thread-safe: list.append)."""
        self.notices.append((severity, message))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def perform(
        self, label: str, call: Callable[[SluiceClient], object], done: Callable[[Any], str] | None = None
    ) -> Worker[None]:
        """Run a mutation in a worker; its outcome becomes a notification, then the screen reloads."""
        return self._perform(label, call, done)

    @work(thread=True, group="action", exit_on_error=False)
    def _perform(self, label: str, call: Callable[[SluiceClient], object], done: Callable[[Any], str] | None) -> None:
        try:
            result = call(self.client)
        except ClientError as exc:
            self.notify(f"{label} failed: {exc.message}", title=exc.code.name, severity="error", timeout=10)
            return
        except Exception as exc:  # noqa: BLE001 - the UI must survive anything a call raises
            self.notify(f"{label} failed: {exc}", severity="error", timeout=10)
            return
        self.notify(done(result) if done else f"{label}: done", title="done")
        with contextlib.suppress(RuntimeError):  # the app may be closing meanwhile
            self.call_from_thread(self.refresh_screen)

    def action_reload(self) -> None:
        self.refresh_screen()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # ---- refreshing the visible screen ----

    def data_screen(self) -> SluiceScreen[Any] | None:
        """The top-most data screen of the current mode (under any modal)."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, SluiceScreen):
                return screen
        return None

    def refresh_screen(self) -> None:
        screen = self.data_screen()
        if screen is not None:
            screen.reload()

    def _schedule_refresh(self, event: controlplane_pb2.Event) -> None:
        screen = self.data_screen()
        if screen is None or not screen.wants(event):
            return
        if self._refresh_timer is None:
            self._refresh_timer = self.set_timer(self.debounce, self._flush_refresh)

    def _flush_refresh(self) -> None:
        self._refresh_timer = None
        self.refresh_screen()

    # ---- the event stream ----

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def _watch(self) -> None:
        delay = self.reconnect_min
        while not self._stopping.is_set():
            client = self.client_factory()
            with self._watch_lock:
                self._watch_client = client
            reason = "the control plane closed the event stream"
            try:
                for event in client.watch_events():
                    if self._stopping.is_set():
                        return
                    if event.kind == "hello":
                        delay = self.reconnect_min
                    self.post_message(StreamEvent(event))
            except ClientError as exc:
                reason = exc.message
            except Exception as exc:  # noqa: BLE001 - a closed channel must not end the watcher
                reason = str(exc) or type(exc).__name__
            finally:
                with self._watch_lock:
                    self._watch_client = None
                client.close()
            if self._stopping.is_set():
                return
            wait = delay * random.uniform(0.8, 1.2)
            self.post_message(StreamDown(reason, wait))
            self._stopping.wait(wait)
            delay = min(delay * 2, self.reconnect_max)

    def _close_watch_client(self) -> None:
        with self._watch_lock:
            client = self._watch_client
        if client is not None:
            client.close()  # cancels the blocked stream; the watcher then reconnects

    def _check_stale(self) -> None:
        """No event, not even a heartbeat, for a while: the connection is dead without saying so."""
        if self.connection == ConnectionState.CONNECTED and time.monotonic() - self._last_event_at > self.stale_after:
            self.connection = ConnectionState.DISCONNECTED
            self.connection_detail = f"no heartbeat for {self.stale_after:.0f}s; reconnecting"
            self._close_watch_client()

    def on_stream_event(self, message: StreamEvent) -> None:
        event = message.event
        self._last_event_at = time.monotonic()
        self.events_received += 1
        if event.kind == "hello":
            self._connected()
            return
        if event.kind not in ("heartbeat", "metrics"):
            target = f" {event.deployment}" if event.deployment else ""
            self.last_event = f"{event.kind}{target}: {event.summary}" if event.summary else event.kind
        if event.kind == "alert":
            self._count_alerts()
            if " opened: " in event.summary or " escalated: " in event.summary:
                # A toast that stays a while: the status line's note is replaced by the next event.
                where = f"{event.deployment}: " if event.deployment else ""
                self.notify(f"{where}{event.summary}", title="new alert (4: Alerts)", severity="error", timeout=30)
        self._schedule_refresh(event)

    @work(thread=True, exclusive=True, group="alert-count", exit_on_error=False)
    def _count_alerts(self) -> None:
        try:
            count = len(self.client.alerts())
        except ClientError:
            return
        with contextlib.suppress(RuntimeError):  # the app may be closing meanwhile
            self.call_from_thread(setattr, self, "open_alerts", count)

    def _connected(self) -> None:
        was = self.connection
        self.connections += 1
        self.connection = ConnectionState.CONNECTED
        self.connection_detail = ""
        if was == ConnectionState.DISCONNECTED:
            # A fresh channel: the old one may sit in gRPC's reconnect backoff for a while.
            old, self.client = self.client, self.client_factory()
            self._retired.append(old)
            self.set_timer(30, lambda: self._retire(old))
            self.notify("reconnected to the control plane", title="connection")
        self._who_am_i()
        self._count_alerts()
        self.refresh_screen()

    def _retire(self, client: SluiceClient) -> None:
        if client in self._retired:
            self._retired.remove(client)
            client.close()

    def on_stream_down(self, message: StreamDown) -> None:
        if self.connection == ConnectionState.CONNECTED:
            self.notify(
                f"lost the control plane: {message.reason}; reconnecting by itself",
                title="connection",
                severity="warning",
            )
        self.connection = ConnectionState.DISCONNECTED
        self.connection_detail = f"{message.reason}; retrying in {message.retry_in:.1f}s"

    @work(thread=True, exclusive=True, group="whoami", exit_on_error=False)
    def _who_am_i(self) -> None:
        try:
            me = self.client.whoami()
        except ClientError:
            return
        self.post_message(Identity(me.principal, me.role))

    def on_identity(self, message: Identity) -> None:
        self.identity = f"{message.principal} ({message.role})"


def build_app(client_factory: ClientFactory, **options: Any) -> SluiceApp:
    """The one factory the CLI, the demo and the tests use."""
    return SluiceApp(client_factory, **options)


def run(address: str | None = None, token: str | None = None) -> None:
    """Open the TUI on the control plane at `address` (default: SLUICE_CONTROLPLANE)."""
    build_app(lambda: SluiceClient(address, token)).run()


if TYPE_CHECKING:

    def _is_host(app: SluiceApp) -> SluiceHost:
        return app  # mypy: the app gives its screens and widgets all that tui.host says they use
