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
    ("5", "history", "History"),
    ("6", "experiments", "Experiments"),
)


class NavBar(Static):
    """`Sluice  1 Deployments  2 Versions ...`; click an entry or press its number. The Alerts
    entry carries the number of active alerts, in red while there are any."""

    def __init__(self, current: str) -> None:
        super().__init__(self._content(current))
        self.current = current

    def on_mount(self) -> None:
        self.watch(self.app, "open_alerts", self._alerts_changed)

    def _alerts_changed(self, count: int) -> None:
        self.update(self._content(self.current, count))

    @staticmethod
    def _content(current: str, open_alerts: int = -1) -> Content:
        parts = [Content.styled(" Sluice ", "bold reverse")]
        for key, mode, label in SCREENS:
            style = "bold reverse $accent" if mode == current else ""
            entry = Content.from_markup(f"[@click=app.switch_mode('{mode}')][b]{key}[/b] {label}[/]").stylize(style)
            parts.extend([Content(" "), entry])
            if mode == "alerts" and open_alerts > 0:
                parts.append(Content.styled(f" {open_alerts}", "bold $error"))
        return Content("").join(parts)
