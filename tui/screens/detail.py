"""One deployment: why it is not healthy, traffic bars, the experiment panel, drifted features,
sparklines of recent metrics, label-joined figures, the log's disk use, open alerts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from core.client import SluiceClient
from core.sizes import byte_size
from core.vocabulary import PolicyAction, word_of
from protos import common_pb2, controlplane_pb2
from tui.format import ago, clip, duration, health_badge, p_value, rate, role_name, to_datetime, vref
from tui.screens.actions import DeploymentActionsScreen
from tui.screens.base import optional
from tui.widgets.experiment import ExperimentPanel
from tui.widgets.metrics import MetricsPanel
from tui.widgets.traffic import TrafficBars

SERIES_WINDOW = 300.0  # seconds of history in the sparklines
SERIES_STEP = 10.0
MAX_ALERTS = 8
MAX_DRIFT_ROWS = 6


@dataclass
class DetailData:
    deployment: controlplane_pb2.Deployment
    status: controlplane_pb2.DeploymentStatus | None = None
    experiment: controlplane_pb2.Experiment | None = None
    series: list[controlplane_pb2.MetricPoint] = field(default_factory=list)
    alerts: list[controlplane_pb2.Alert] = field(default_factory=list)
    policy: controlplane_pb2.Policy | None = None
    errors: dict[str, str] = field(default_factory=dict)


def health_reasons(status: controlplane_pb2.DeploymentStatus | None) -> Text:
    """Why the deployment is not healthy, one line per version, worst first (what `sluice status`
    says); empty when it is healthy or the health could not be read."""
    if status is None or status.health in (common_pb2.HEALTH_HEALTHY, common_pb2.HEALTH_UNKNOWN):
        return Text()
    text = Text()
    worst_first = sorted(status.versions, key=lambda v: -v.health)
    for v in worst_first:
        if v.health in (common_pb2.HEALTH_HEALTHY, common_pb2.HEALTH_UNKNOWN) or not v.reasons:
            continue
        if text:
            text.append("\n")
        text.append_text(health_badge(v.health, size="glyph"))
        text.append(f" {vref(v.version)} ({role_name(v.role)}): ", style="bold")
        text.append(clip("; ".join(v.reasons), 400))
    if not text and status.open_alerts:
        text.append_text(health_badge(status.health, size="glyph"))
        text.append(f" {status.open_alerts} open alert(s): see below")
    return text


def drift_lines(
    status: controlplane_pb2.DeploymentStatus | None, alerts: list[controlplane_pb2.Alert], now: datetime
) -> Text:
    """Drifted features: version, PSI, KS p-value and since when (the open drift alert that
    follows the feature keeps its start across champion changes)."""
    if status is None:
        return Text("drift n/a", style="dim")
    since = {a.subject: a.opened_at for a in alerts if a.kind == "drift" and a.subject}
    rows = [(v, f) for v in status.versions for f in v.drift if f.drifted]
    if not rows:
        checked = sum(len(v.drift) for v in status.versions)
        return Text(f"no feature drifted ({checked} checked)" if checked else "no drift figures yet", style="dim")
    rows.sort(key=lambda row: -row[1].psi)
    text = Text()
    for i, (v, f) in enumerate(rows[:MAX_DRIFT_ROWS]):
        if i:
            text.append("\n")
        text.append(f"{clip(f.feature, 24):<24} ", style="bold")
        text.append(f"{vref(v.version)} ({role_name(v.role)})  PSI {f.psi:.3f}  KS p {p_value(f.ks_p_value)}")
        if f.feature in since:
            text.append(f"  since {ago(since[f.feature], now)}", style="yellow")
    if len(rows) > MAX_DRIFT_ROWS:
        text.append(f"\n… {len(rows) - MAX_DRIFT_ROWS} more: `sluice status {status.deployment.name}`", style="dim")
    return text


def labeled_lines(status: controlplane_pb2.DeploymentStatus | None) -> Text:
    """One line per version with its label-joined figures (the prediction log joined with the
    label store) and the label coverage; empty when no version has logged predictions."""
    text = Text()
    if status is None:
        return text
    for v in status.versions:
        if not v.HasField("labeled"):
            continue
        f = v.labeled
        if text:
            text.append("\n")
        text.append(f"{vref(v.version)} ({role_name(v.role)})  ", style="bold")
        if f.HasField("accuracy"):
            text.append(f"accuracy {f.accuracy:.4f}  ")
        elif f.HasField("mae"):
            text.append(f"MAE {f.mae:.4g}  RMSE {f.rmse:.4g}  ")
        coverage = f.labeled / f.predictions if f.predictions else 0.0
        text.append(f"{f.labeled}/{f.predictions} labeled ({coverage:.0%})")
        if f.waiting:
            text.append(f"  {f.waiting} waiting for a label", style="dim")
    return text


def disk_line(status: controlplane_pb2.DeploymentStatus | None) -> Text:
    """What the deployment's prediction log and label store hold on the control plane's disk (or
    its S3 bucket), as `sluice status` prints it; empty when nothing is recorded."""
    if status is None or not status.HasField("log_usage"):
        return Text()
    u = status.log_usage
    text = Text("prediction log ", style="dim")
    text.append(f"{u.segments} segments, {u.rows} rows, {byte_size(u.bytes)}")
    text.append("  labels ", style="dim")
    text.append(f"{u.label_files} files, {byte_size(u.label_bytes)}")
    return text


def policy_line(policy: controlplane_pb2.Policy | None, now: datetime) -> Text:
    """The health policy's action, the clock of a pending one, and what it did last."""
    if policy is None:
        return Text("policy n/a", style="dim")
    action = word_of(PolicyAction, policy.action)
    text = Text("policy ", style="dim")
    if action == PolicyAction.NONE:
        text.append("no automatic action")
    else:
        text.append(f"{action.replace('_', ' ')} after {duration(policy.action_after_seconds)} critical")
    if policy.fallback:
        text.append(", fallback to the champion")
    if policy.HasField("acts_at"):
        left = ((to_datetime(policy.acts_at) or now) - now).total_seconds()
        pending = f"  ⏱ critical since {ago(policy.critical_since, now)}: acts in {duration(left)}"
        text.append(pending, style="bold yellow")
    if policy.last_action:
        text.append(f"\nlast action {ago(policy.last_action_at, now)}: ", style="dim")
        text.append(clip(policy.last_action, 200))
    return text


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
    return text  # whole messages, wrapped: what an alert says is the point of reading it


class DeploymentDetailScreen(DeploymentActionsScreen[DetailData]):
    MODE = "deployments"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.deployment_name = name

    def compose_body(self) -> Iterable[Widget]:
        with VerticalScroll(id="detail"):
            yield Static(Text(self.deployment_name, style="bold"), id="detail-title")
            yield Static("", id="health-reasons")
            yield Static("", id="policy")
            yield Static("Traffic", classes="section")
            yield TrafficBars(id="traffic")
            yield Static("Experiment", classes="section")
            yield ExperimentPanel(id="experiment")
            yield Static(f"Last {SERIES_WINDOW / 60:.0f} minutes", classes="section", id="metrics-title")
            yield MetricsPanel(id="metrics")
            yield Static("Labeled (prediction log)", classes="section", id="labeled-title")
            yield Static("", id="labeled")
            yield Static("Disk", classes="section", id="disk-title")
            yield Static("", id="disk")
            yield Static("Drift", classes="section")
            yield Static("", id="drift")
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
            # One step more than shown: the panel leaves out the newest bucket, still filling.
            data.errors,
            "metrics",
            lambda: client.metric_series(name, SERIES_WINDOW + SERIES_STEP, SERIES_STEP),
            [],
        )
        data.alerts = optional(data.errors, "alerts", lambda: client.alerts(deployment=name), [])
        data.policy = optional(data.errors, "policy", lambda: client.get_policy(name), None)
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
            if self.live:
                title.append(f"  {rate(status.requests_per_second)} req/s")
            else:
                title.append("  req/s unknown while disconnected", style="yellow")
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
        joined = labeled_lines(status)
        self.query_one("#labeled", Static).update(joined)
        self.query_one("#labeled", Static).display = bool(joined)
        self.query_one("#labeled-title", Static).display = bool(joined)
        disk = disk_line(status)
        self.query_one("#disk", Static).update(disk)
        self.query_one("#disk", Static).display = bool(disk)
        self.query_one("#disk-title", Static).display = bool(disk)
        self.query_one("#alerts-list", Static).update(alert_lines(data.alerts, data.errors.get("alerts", "")))
        reasons = self.query_one("#health-reasons", Static)
        why = health_reasons(status)
        reasons.update(why)
        reasons.display = bool(why)
        self.query_one("#drift", Static).update(drift_lines(status, data.alerts, self.sluice.clock()))
        self.query_one("#policy", Static).update(policy_line(data.policy, self.sluice.clock()))

    def target(self) -> controlplane_pb2.Deployment | None:
        return self.data.deployment if self.data is not None else None

    def action_back(self) -> None:
        self.app.pop_screen()
