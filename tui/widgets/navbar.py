"""The top line: one clickable entry per screen, the current one highlighted."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

SCREENS: tuple[tuple[str, str, str], ...] = (
    # key, mode, label
    ("1", "deployments", "Deployments"),
    ("2", "versions", "Versions"),
    ("3", "agents", "Agents"),
    ("4", "alerts", "Alerts"),
    ("5", "history", "History/Audit"),
)


class NavBar(Static):
    """`Sluice  1 Deployments  2 Versions ...`; click an entry or press its number."""

    def __init__(self, current: str) -> None:
        super().__init__(self._content(current))
        self.current = current

    @staticmethod
    def _content(current: str) -> Content:
        parts = [Content.styled(" Sluice ", "bold reverse")]
        for key, mode, label in SCREENS:
            style = "bold reverse $accent" if mode == current else ""
            entry = Content.from_markup(f"[@click=app.switch_mode('{mode}')][b]{key}[/b] {label}[/]").stylize(style)
            parts.extend([Content(" "), entry])
        return Content("").join(parts)
