"""One deployment: traffic bars, the experiment panel, sparklines of recent metrics, open alerts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from core.client import SluiceClient
from protos import controlplane_pb2
from tui.format import health_badge, rate
from tui.screens.actions import DeploymentActionsScreen
from tui.screens.base import optional
from tui.widgets.experiment import ExperimentPanel
from tui.widgets.metrics import MetricsPanel
from tui.widgets.traffic import TrafficBars

SERIES_WINDOW = 300.0  # seconds of history in the sparklines
SERIES_STEP = 10.0
MAX_ALERTS = 8


@dataclass
class DetailData:
    deployment: controlplane_pb2.Deployment
    status: controlplane_pb2.DeploymentStatus | None = None
    experiment: controlplane_pb2.Experiment | None = None
    series: list[controlplane_pb2.MetricPoint] = field(default_factory=list)
    alerts: list[controlplane_pb2.Alert] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def alert_lines(alerts: list[controlplane_pb2.Alert], note: str) -> Text:
    if note:
        return Text(note, style="yellow")
    if not alerts:
        return Text("no open alerts", style="dim")
    text = Text()
    for i, alert in enumerate(alerts[:MAX_ALERTS]):
        if i:
            text.append("\n")
        text.append_text(health_badge(alert.severity, size="glyph"))
        text.append(f" #{alert.id} {alert.kind}: {alert.message}")
        if alert.occurrences > 1:
            text.append(f" ×{alert.occurrences}", style="dim")
    if len(alerts) > MAX_ALERTS:
        text.append(f"\n… {len(alerts) - MAX_ALERTS} more on the Alerts screen (4)", style="dim")
    text.no_wrap = True  # one line per alert; the Alerts screen shows the whole message
    text.overflow = "ellipsis"
    return text


class DeploymentDetailScreen(DeploymentActionsScreen[DetailData]):
    MODE = "deployments"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.deployment_name = name

    def compose_body(self) -> Iterable[Widget]:
        with VerticalScroll(id="detail"):
            yield Static(Text(self.deployment_name, style="bold"), id="detail-title")
            yield Static("Traffic", classes="section")
            yield TrafficBars(id="traffic")
            yield Static("Experiment", classes="section")
            yield ExperimentPanel(id="experiment")
            yield Static(f"Last {SERIES_WINDOW / 60:.0f} minutes", classes="section", id="metrics-title")
            yield MetricsPanel(id="metrics")
            yield Static("Open alerts", classes="section")
            yield Static("", id="alerts-list")

    def wants(self, event: controlplane_pb2.Event) -> bool:
        return event.deployment in ("", self.deployment_name)

    def fetch(self, client: SluiceClient) -> DetailData:
        name = self.deployment_name
        data = DetailData(client.get_deployment(name))
        statuses: list[controlplane_pb2.DeploymentStatus] = optional(
            data.errors, "health", lambda: client.status(name), []
        )
        data.status = statuses[0] if statuses else None
        experiment_name = data.deployment.experiment
        if experiment_name:
            data.experiment = optional(data.errors, "experiment", lambda: client.get_experiment(experiment_name), None)
        elif data.status is not None and data.status.HasField("experiment"):
            data.experiment = data.status.experiment
        data.series = optional(
            data.errors, "metrics", lambda: client.metric_series(name, SERIES_WINDOW, SERIES_STEP), []
        )
        data.alerts = optional(data.errors, "alerts", lambda: client.alerts(deployment=name), [])
        return data

    def show(self, data: DetailData) -> None:
        d = data.deployment
        title = Text(d.name, style="bold")
        title.append(f"  generation {d.generation}  ")
        status = data.status
        if status is not None:
            title.append_text(health_badge(status.health))
            if status.agents_total:
                title.append(f"  agents {status.agents_in_sync}/{status.agents_total} in sync")
            if status.agents_lost:
                title.append(f"  {status.agents_lost} lost", style="bold yellow")
            title.append(f"  {rate(status.requests_per_second)} req/s")
        elif "health" in data.errors:
            title.append("health n/a", style="dim")
        self.query_one("#detail-title", Static).update(title)
        self.query_one("#traffic", TrafficBars).splits = tuple(d.splits)
        note = data.errors.get("experiment", "")
        self.query_one("#experiment", ExperimentPanel).show(data.experiment, note)
        metrics = self.query_one("#metrics", MetricsPanel)
        metrics.show(data.series)
        heading = f"Last {SERIES_WINDOW / 60:.0f} minutes"
        if "metrics" in data.errors:
            heading += f" ({data.errors['metrics']})"
        self.query_one("#metrics-title", Static).update(Text(heading))
        self.query_one("#alerts-list", Static).update(alert_lines(data.alerts, data.errors.get("alerts", "")))

    def target(self) -> controlplane_pb2.Deployment | None:
        return self.data.deployment if self.data is not None else None

    def action_back(self) -> None:
        self.app.pop_screen()
