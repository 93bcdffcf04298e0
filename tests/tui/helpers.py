"""Driving the real TUI with Pilot: wait for loads, type into forms, poll the control plane."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from textual.pilot import Pilot
from textual.widgets import DataTable

from core.client import SluiceClient
from tui.app import SluiceApp, build_app
from tui.screens.base import SluiceScreen, selected_key
from tui.screens.confirm import ConfirmScreen
from tui.screens.deployments import DeploymentsScreen
from tui.screens.detail import DeploymentDetailScreen

T = TypeVar("T")

DEADLINE = 30.0  # generous: a slow CI machine must not fail a correct UI


def make_app(address: str, **options: Any) -> SluiceApp:
    """The app exactly as `sluice tui` builds it, with quick reconnects for tests."""
    options.setdefault("reconnect_min", 0.2)
    options.setdefault("reconnect_max", 1.0)
    return build_app(lambda: SluiceClient(address, token=""), **options)


async def until(pilot: Pilot[Any], check: Callable[[], T], what: str, timeout: float = DEADLINE) -> T:
    """Let the app run until `check()` (on the UI thread) returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; notices: {pilot.app.notices}")  # type: ignore[attr-defined]
        await pilot.pause(0.05)


async def eventually(pilot: Pilot[Any], check: Callable[[], T], what: str, timeout: float = DEADLINE) -> T:
    """Poll the control plane (blocking calls, in a thread) while the app keeps running."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = await asyncio.to_thread(check)
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - retried until the deadline, then reported
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last error: {last}); notices: {pilot.app.notices}")  # type: ignore[attr-defined]
        await pilot.pause(0.1)


async def loaded(pilot: Pilot[Any], screen_type: type[SluiceScreen[Any]], after: int = 0) -> SluiceScreen[Any]:
    """Wait until the current screen is a `screen_type` that has loaded more than `after` times."""
    app = pilot.app

    def ready() -> SluiceScreen[Any] | None:
        screen = app.screen
        return screen if isinstance(screen, screen_type) and screen.loads > after else None

    return await until(pilot, ready, f"{screen_type.__name__} to load")


async def type_text(pilot: Pilot[Any], text: str, clear: bool = False) -> None:
    if clear:
        await pilot.press("ctrl+a", "ctrl+k")
    await pilot.press(*text)


async def cursor_to(pilot: Pilot[Any], table: DataTable[Any], key: str) -> None:
    """Move a table's cursor onto the row `key` with the arrow keys, as a person would.

    Each step looks where the row is now: a live reload may insert rows above it meanwhile.
    (`home` only scrolls a row cursor sideways; `ctrl+home` is the key that goes to the top.)
    """
    await until(pilot, lambda: key in table.rows, f"row {key} in the table")
    table.focus()
    await pilot.press("ctrl+home")
    for _ in range(2 * table.row_count + 10):
        if selected_key(table) == key:
            return
        await pilot.press("down" if table.get_row_index(key) > table.cursor_row else "up")
    assert selected_key(table) == key, f"could not reach row {key}"


def notices_with(app: SluiceApp, severity: str, text: str) -> list[str]:
    return [m for s, m in app.notices if s == severity and text in m]


def frozen_clock(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment.astimezone(UTC)


async def open_form(pilot: Pilot[Any], key: str, form_type: type[Any]) -> Any:
    await pilot.press(key)
    return await until(pilot, lambda: isinstance(pilot.app.screen, form_type) and pilot.app.screen, form_type.__name__)


async def focus_field(pilot: Pilot[Any], widget_id: str) -> None:
    """Tab through the form until the field has focus, as a person would."""
    for _ in range(20):
        focused = pilot.app.focused
        if focused is not None and focused.id == widget_id:
            return
        await pilot.press("tab")
    raise AssertionError(f"field {widget_id} never got focus")


async def open_detail(pilot: Pilot[Any], name: str) -> DeploymentDetailScreen:
    screen = await loaded(pilot, DeploymentsScreen)
    table = screen.query_one("#deployments", DataTable)
    await cursor_to(pilot, table, name)
    await pilot.press("enter")
    detail = await loaded(pilot, DeploymentDetailScreen)
    assert isinstance(detail, DeploymentDetailScreen) and detail.deployment_name == name
    return detail


async def settled(pilot: Pilot[Any], timeout: float = DEADLINE) -> None:
    """Until the current screen has nothing pending and two pictures in a row are the same.

    A DataTable sizes its columns on its next idle, and a reload (an event, a reconnect) may come
    late on a busy machine; a picture taken before then shows columns cut to their headers.
    """
    app = pilot.app
    previous = ""
    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause(0.2)
        screen = app.screen
        pending = (isinstance(screen, SluiceScreen) and screen.fetching) or any(
            t._require_update_dimensions for t in screen.query(DataTable)
        )
        picture = "" if pending else app.export_screenshot()
        if picture and picture == previous:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the screen never settled")
        previous = picture


async def confirm(pilot: Pilot[Any], key: str) -> None:
    await pilot.press(key)
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the confirmation")
    await pilot.press("y")
