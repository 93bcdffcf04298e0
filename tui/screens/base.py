"""What every data screen shares: navigation bar, status line, footer and background loading.

A screen loads in a thread worker (`fetch`, blocking gRPC) and shows the result on the UI thread
(`show`). Loads are exclusive per screen, so a burst of events costs one fetch. A failed load
becomes one notification (not one per refresh); UNAVAILABLE is left to the status line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Generic, TypeVar, cast

import grpc
from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker, WorkerState, get_current_worker

from core.client import ClientError, SluiceClient
from protos import controlplane_pb2
from tui.host import ConnectionState, SluiceHost
from tui.widgets.navbar import NavBar
from tui.widgets.status import StatusLine

T = TypeVar("T")
D = TypeVar("D")

QUIET_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED)


def describe(exc: ClientError) -> str:
    if exc.code == grpc.StatusCode.UNIMPLEMENTED:
        return "not available: this control plane does not implement it yet"
    return f"{exc.message} ({exc.code.name})"


def optional(errors: dict[str, str], part: str, fetch: Callable[[], D], default: D) -> D:
    """Fetch a part of a screen that may fail on its own (e.g. UNIMPLEMENTED) without failing the rest."""
    try:
        return fetch()
    except ClientError as exc:
        if exc.code in QUIET_CODES:
            raise
        errors[part] = describe(exc)
        return default


class SluiceScreen(Screen[None], Generic[T]):
    MODE: ClassVar[str] = ""
    # Which event kinds refresh this screen ("heartbeat" too for screens with live rates).
    EVENT_KINDS: ClassVar[frozenset[str] | None] = None

    class Loaded(Message):
        def __init__(self, data: Any) -> None:
            super().__init__()
            self.data = data

    class LoadFailed(Message):
        def __init__(self, error: ClientError) -> None:
            super().__init__()
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.data: T | None = None
        self.loads = 0  # finished loads, failed or not: tests wait on it
        self.fetching = False
        self._error_shown = ""

    @property
    def sluice(self) -> SluiceHost:
        return cast(SluiceHost, self.app)

    def compose(self) -> ComposeResult:
        yield NavBar(self.MODE)
        yield from self.compose_body()
        yield StatusLine()
        yield Footer(compact=True, show_command_palette=False)

    def compose_body(self) -> Iterable[Widget]:
        raise NotImplementedError

    def on_mount(self) -> None:
        # Rates and other live figures are redrawn as stale when the connection drops.
        self.watch(self.app, "connection", self._connection_changed, init=False)

    def _connection_changed(self, _state: str) -> None:
        if self.data is not None and self.is_attached:
            self.show(self.data)

    @property
    def live(self) -> bool:
        """Connected: what was loaded last is current. Otherwise live figures (req/s) are not shown."""
        return self.sluice.connection == ConnectionState.CONNECTED

    def wants(self, event: controlplane_pb2.Event) -> bool:
        return self.EVENT_KINDS is None or event.kind in self.EVENT_KINDS

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.fetching = True
        self._load(self.sluice.client)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self, client: SluiceClient) -> None:
        worker = get_current_worker()
        try:
            data = self.fetch(client)
        except ClientError as exc:
            if not worker.is_cancelled:
                self.post_message(self.LoadFailed(exc))
            return
        if not worker.is_cancelled:
            self.post_message(self.Loaded(data))

    def fetch(self, client: SluiceClient) -> T:
        """Runs in a worker thread: blocking calls only, no widgets."""
        raise NotImplementedError

    def show(self, data: T) -> None:
        """Runs on the UI thread with what `fetch` returned."""
        raise NotImplementedError

    def on_sluice_screen_loaded(self, message: Loaded) -> None:
        self.fetching = False
        self._error_shown = ""
        self.data = cast(T, message.data)
        self.show(self.data)
        self.loads += 1

    def on_sluice_screen_load_failed(self, message: LoadFailed) -> None:
        self.fetching = False
        self.loads += 1
        exc = message.error
        if exc.code in QUIET_CODES:
            return  # the status line already says the control plane is away
        text = describe(exc)
        self.show_unavailable(text)
        if text != self._error_shown:
            self._error_shown = text
            self.app.notify(text, title=f"cannot load {self.MODE}", severity="error", timeout=8)

    def show_unavailable(self, text: str) -> None:
        """Say in the screen itself why it is empty (the notification fades)."""
        for summary in self.query("#summary").results(Static):
            summary.update(Text(f"cannot load: {text}", style="yellow"))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Safety net: a worker that failed unexpectedly becomes a notification, never a crash."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.app.notify(f"unexpected error: {event.worker.error}", severity="error")


def fill_table(table: DataTable[Any], rows: Iterable[tuple[str, Iterable[Any]]]) -> None:
    """Replace a table's rows, keeping the cursor on the same row key when it still exists."""
    selected: str | None = None
    if table.row_count and table.cursor_row >= 0:
        try:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - an out-of-range cursor simply starts at the top
            selected = None
    table.clear()
    columns = table.ordered_columns
    for key, cells in rows:
        values = list(cells)
        table.add_row(*values, key=key)
        # Widths from the cells themselves: DataTable measures new rows on its next idle, and a
        # reload racing that pass could leave the columns cut to their headers.
        for column, value in zip(columns, values, strict=False):
            width = value.cell_len if isinstance(value, Text) else cell_len(str(value))
            column.content_width = max(column.content_width, width)
    if selected is not None and selected in table.rows:
        table.move_cursor(row=table.get_row_index(selected), animate=False)


def selected_key(table: DataTable[Any]) -> str | None:
    if not table.row_count:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:  # noqa: BLE001 - no row under the cursor
        return None
