"""How the TUI shows values: bars, badges, times and numbers as Rich text.

Pure functions over protobuf messages, free of Textual, so every screen renders alike. The words
for roles, states and health are `core.vocabulary`'s; here are only their glyphs, styles and the
short forms narrow columns need.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from rich.text import Text

from core.text import printable
from core.vocabulary import AlertState, ExperimentState, Health, ServingRole, word_of
from protos import common_pb2, controlplane_pb2

FULL = "█"
EMPTY = "░"

HEALTH: dict[Health, tuple[str, str, str]] = {
    # (glyph, short word, style)
    Health.UNKNOWN: ("?", "n/a", "dim"),
    Health.HEALTHY: ("●", "ok", "bold green"),
    Health.WARNING: ("▲", "warn", "bold yellow"),
    Health.CRITICAL: ("✖", "crit", "bold red"),
}

EXPERIMENT_STYLES: dict[ExperimentState, str] = {
    ExperimentState.RUNNING: "bold cyan",
    ExperimentState.PAUSED: "bold yellow",
    ExperimentState.STOPPED: "dim",
    ExperimentState.ABORTED: "red",
    ExperimentState.ROLLED_BACK: "bold red",
    ExperimentState.PROMOTED: "bold green",
    ExperimentState.COMPLETED: "green",
}

ALERT_STYLES: dict[AlertState, str] = {
    AlertState.OPEN: "bold",
    AlertState.ACKNOWLEDGED: "dim",
    AlertState.RESOLVED: "green",
}
ALERT_SHORT = {AlertState.ACKNOWLEDGED: "acked"}

DECISIONS: dict[str, str] = {
    "challenger_wins": "bold green",
    "champion_holds": "bold yellow",
    "no_significant_difference": "",
    "not_enough_data": "dim",
    "srm_detected": "bold red",
}


def vref(ref: common_pb2.VersionRef) -> str:
    return f"{ref.model}:{ref.version}" if ref.model else "-"


def bar(weight: int, width: int, style: str = "cyan") -> Text:
    """A horizontal bar of `width` cells filled in proportion to a 0-100 weight."""
    weight = max(0, min(100, weight))
    filled = round(weight * width / 100)
    if weight > 0 and filled == 0:
        filled = 1  # a live arm never looks empty
    text = Text(FULL * filled, style=style)
    text.append(EMPTY * (width - filled), style="dim")
    return text


def weight_cell(split: common_pb2.TrafficSplit | None, width: int = 5) -> Text:
    """`cancer:v1 ██████ 100` — a version with its weight as a bar."""
    if split is None:
        return Text("-", style="dim")
    style = "cyan" if split.role == common_pb2.ROLE_CHAMPION else "magenta"
    text = Text(vref(split.version) + " ")
    text.append_text(bar(split.weight, width, style))
    text.append(f" {split.weight:>3}")
    return text


def role_name(role: int) -> str:
    """'champion', 'challenger', 'shadow'; '-' for none (or a role this build does not know)."""
    return word_of(ServingRole, role, "-")


def health_badge(state: int, size: str = "long") -> Text:
    """size: long ('● healthy'), short ('● ok') or glyph ('●')."""
    health = Health.from_wire(state)
    glyph, short, style = HEALTH[health]
    word = str(health)
    label = {"long": f"{glyph} {word}", "short": f"{glyph} {short}"}.get(size, glyph)
    return Text(label, style=style)


def experiment_state(state: int) -> Text:
    try:
        known = ExperimentState.from_wire(state)
    except ValueError:
        return Text("-" if state == controlplane_pb2.EXPERIMENT_STATE_UNSPECIFIED else "?", style="dim")
    return Text(known.replace("_", " "), style=EXPERIMENT_STYLES[known])


def alert_state(state: int) -> Text:
    try:
        known = AlertState.from_wire(state)
    except ValueError:
        return Text("-" if state == controlplane_pb2.ALERT_STATE_UNSPECIFIED else "?", style="dim")
    return Text(str(ALERT_SHORT.get(known, known)), style=ALERT_STYLES[known])


def decision(value: str) -> Text:
    return Text(value.replace("_", " ") or "-", style=DECISIONS.get(value, ""))


def champion_first(splits: Iterable[common_pb2.TrafficSplit]) -> list[common_pb2.TrafficSplit]:
    """The order people read a split in: champion, then the others by weight."""
    return sorted(splits, key=lambda s: (s.role != common_pb2.ROLE_CHAMPION, -s.weight))


def split_roles(
    deployment: controlplane_pb2.Deployment,
) -> tuple[common_pb2.TrafficSplit | None, list[common_pb2.TrafficSplit]]:
    """(champion, the other splits: challengers and shadows)."""
    champion = next((s for s in deployment.splits if s.role == common_pb2.ROLE_CHAMPION), None)
    others = [s for s in deployment.splits if s is not champion]
    return champion, others


def to_datetime(ts: Timestamp) -> datetime | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime(tzinfo=UTC)


FULL_TIME = "%Y-%m-%d %H:%M:%S"
SHORT_TIME = "%m-%d %H:%M:%S"  # tables at 80 columns
MINUTES = "%Y-%m-%d %H:%M"


def when(ts: Timestamp, fmt: str = FULL_TIME) -> str:
    moment = to_datetime(ts)
    return moment.strftime(fmt) if moment else "-"


def ago(ts: Timestamp, now: datetime) -> str:
    moment = to_datetime(ts)
    if moment is None:
        return "never"
    return duration((now - moment).total_seconds()) + " ago"


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds // 60:.0f}m {seconds % 60:02.0f}s"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def number(value: float, digits: int = 3) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def percent(value: float, digits: int = 1, signed: bool = False) -> str:
    """A fraction (0.052) as a percentage (5.2%)."""
    if not math.isfinite(value):
        return "-"
    return f"{value * 100:{'+' if signed else ''}.{digits}f}%"


def rate(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.1f}" if value < 1000 else f"{value / 1000:.1f}k"


def p_value(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def metric_value(metric: str, value: float) -> str:
    """Accuracy/error rate as percentages, latency in ms, MAE as a number."""
    if metric in ("accuracy", "error_rate", "within_tolerance"):
        return percent(value)
    if "latency" in metric:
        return f"{number(value, 1)} ms"
    return number(value)


def clip(text: str, limit: int = 80) -> str:
    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cell(value: Any, style: str = "") -> Text:
    """Plain text for a table cell: never parsed as markup, control characters escaped (what an
    agent said cannot drive the terminal)."""
    return Text(printable(str(value)), style=style)
