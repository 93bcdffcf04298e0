"""Sparklines of a deployment's recent requests/s, p95 latency, error rate and accuracy."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from protos import controlplane_pb2
from tui.format import number, percent, rate

SERIES: tuple[tuple[str, str, Callable[[controlplane_pb2.MetricPoint], float], Callable[[float], str]], ...] = (
    ("rps", "req/s", lambda p: p.requests_per_second, rate),
    ("p95", "p95 ms", lambda p: p.latency_p95_ms, lambda v: number(v, 1)),
    ("errors", "errors", lambda p: p.error_rate, percent),
    ("accuracy", "accuracy", lambda p: p.accuracy, percent),
)


def _finite(values: Sequence[float]) -> list[float]:
    return [v if math.isfinite(v) else 0.0 for v in values]


class MetricsPanel(Vertical):
    DEFAULT_CSS = """
    MetricsPanel {
        height: auto;
    }
    MetricsPanel > Horizontal {
        height: 1;
    }
    MetricsPanel .metric-name {
        width: 10;
    }
    MetricsPanel Sparkline {
        width: 1fr;
    }
    MetricsPanel .metric-last {
        width: 10;
        text-align: right;
    }
    """

    def compose(self) -> ComposeResult:
        for key, label, _, _ in SERIES:
            with Horizontal(id=f"series-{key}"):
                yield Label(label, classes="metric-name")
                yield Sparkline([], id=f"spark-{key}")
                yield Label("-", id=f"last-{key}", classes="metric-last")

    def show(self, points: Sequence[controlplane_pb2.MetricPoint]) -> None:
        """The newest point is left out: its bucket is still filling (agents report a window after
        it closes), so it would be drawn low, like a traffic drop that is not happening."""
        complete = points[:-1]
        for key, _, get, fmt in SERIES:
            values = [get(p) for p in complete]
            self.query_one(f"#spark-{key}", Sparkline).data = _finite(values)
            last = next((v for v in reversed(values) if math.isfinite(v)), math.nan)
            self.query_one(f"#last-{key}", Label).update(fmt(last) if values else "-")
