"""The control plane's Prometheus metrics (/metrics on server.options.metrics_port).

Each control plane has its own CollectorRegistry (several run in one test process). Counters are
incremented where metric reports are committed; gauges that describe stored state (agents
connected, alerts open) are read from SQL when Prometheus scrapes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.metrics_http import MetricsEndpoint
from core.vocabulary import ALERT_SEVERITIES

log = logging.getLogger("sluice.monitoring")


class _StoredState(Collector):
    """Gauges computed at scrape time by a function that reads the store."""

    def __init__(self, read: Callable[[], tuple[int, dict[str, int]]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        agents = GaugeMetricFamily("sluice_agents_connected", "Serving agents with a live stream")
        alerts = GaugeMetricFamily(
            "sluice_alerts_open", "Open (or acknowledged, unresolved) alerts by severity", labels=["severity"]
        )
        try:
            connected, open_alerts = self.read()
        except Exception:  # a scrape must not fail because the database blinked
            log.exception("could not read the store for /metrics")
            return
        agents.add_metric([], connected)
        for severity in ALERT_SEVERITIES:
            alerts.add_metric([severity], open_alerts.get(severity, 0))
        yield agents
        yield alerts

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


class ControlPlaneMetrics(MetricsEndpoint):
    def __init__(self) -> None:
        super().__init__(CollectorRegistry(auto_describe=True))
        self.reports = Counter(
            "sluice_metric_reports",
            "Metric reports received from agents, by outcome (stored | replay | skipped_window)",
            ("outcome",),
            registry=self.registry,
        )
        self.windows_refused = Counter(
            "sluice_metric_windows_refused",
            "Windows of agents' metric reports refused on ingest, by reason (unknown_version | "
            "unknown_route | unknown_role | malformed | implausible)",
            ("reason",),
            registry=self.registry,
        )
        self.predictions = Counter(
            "sluice_predictions",
            "Predictions reported by agents: rows answered (OK) or failed calls by status code",
            ("deployment", "version", "code"),
            registry=self.registry,
        )
        self.unmatched_feedback = Counter(
            "sluice_feedback_unmatched",
            "Label feedback for unknown or expired request ids, as reported by agents",
            registry=self.registry,
        )
        self.dropped_reports = Counter(
            "sluice_agent_dropped_reports",
            "Metric reports agents had to drop (buffer overflow while disconnected)",
            registry=self.registry,
        )
        self.job_failures = Counter(
            "sluice_job_failures",
            "Periodic jobs (health, rollup, retraining, rollout) that failed for one deployment and "
            "skipped it for a round; the others went on",
            ("job", "deployment"),
            registry=self.registry,
        )
        self.log_segments_deleted = Counter(
            "sluice_log_segments_deleted",
            "Prediction-log segments deleted by retention (reason: age | size) or emptied by a purge",
            ("reason",),
            registry=self.registry,
        )
        self.log_segments_received = Counter(
            "sluice_log_segments_received",
            "Prediction-log segments received from agents, by outcome (stored | replay: a resend of "
            "a stored one | refused: acked with the reason, its rows counted as dropped by the agent)",
            ("outcome",),
            registry=self.registry,
        )
        self.log_bytes_deleted = Counter(
            "sluice_log_bytes_deleted",
            "Bytes of prediction-log segments freed, by reason (retention | purge)",
            ("reason",),
            registry=self.registry,
        )
        self.log_segments_deferred = Counter(
            "sluice_log_segments_deferred",
            "S3 log segments announced by agents that the control plane could not read now (its "
            "credentials or endpoint), by bucket: not recorded yet, the agent sends them again after a backoff",
            ("bucket",),
            registry=self.registry,
        )
        self._collector: _StoredState | None = None

    def watch_store(self, read: Callable[[], tuple[int, dict[str, int]]]) -> None:
        if self._collector is None:
            self._collector = _StoredState(read)
            self.registry.register(self._collector)
