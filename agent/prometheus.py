"""The agent's Prometheus metrics (/metrics on --metrics-port), in a registry of its own.

The hot path only bumps plain Python numbers (no locks, no label lookups); a custom collector
turns them into metric families when Prometheus scrapes.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from core.metrics_http import MetricsEndpoint

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0


class AgentPrometheus(MetricsEndpoint):
    def __init__(self) -> None:
        super().__init__(CollectorRegistry(auto_describe=False))
        self.registry.register(self)
        self._predictions: dict[tuple[str, str, str], float] = {}
        self._latency: dict[tuple[str, str], _Histogram] = {}
        self._generations: dict[str, int] = {}
        self._connected = 0
        self._new_series = threading.Lock()
        #: (label batches waiting for the control plane, labels dropped): the label spool's counts
        self.label_counts: Callable[[], tuple[int, int]] | None = None
        #: the prediction log's shipping: (segments waiting on disk, announcements the control plane deferred)
        self.log_counts: Callable[[], tuple[int, int]] | None = None

    # ---- the hot path ----

    def observe(self, deployment: str, version: str, rows: int, seconds: float) -> None:
        key = (deployment, version, "OK")
        predictions = self._predictions
        if key in predictions:
            predictions[key] += rows
        else:
            with self._new_series:
                predictions[key] = predictions.get(key, 0) + rows
        histogram = self._latency.get((deployment, version))
        if histogram is None:
            with self._new_series:
                histogram = self._latency.setdefault((deployment, version), _Histogram())
        histogram.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        histogram.total += seconds

    def refused(self, deployment: str, code: str, version: str = "") -> None:
        """One request answered with `code`: by the version that handled it, or "" before routing."""
        key = (deployment, version, code)
        with self._new_series:
            self._predictions[key] = self._predictions.get(key, 0) + 1

    def set_connected(self, up: bool) -> None:
        self._connected = 1 if up else 0

    def set_generations(self, generations: dict[str, int]) -> None:
        with self._new_series:
            self._generations = dict(generations)

    # ---- scraping ----

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        with self._new_series:
            predictions = list(self._predictions.items())
            latency = [(k, list(h.counts), h.total) for k, h in self._latency.items()]
            generations = list(self._generations.items())
        counter = CounterMetricFamily(
            "sluice_predictions",
            "Rows predicted (code OK) or requests refused (other codes), by deployment and version",
            labels=("deployment", "version", "code"),
        )
        for (deployment, version, code), value in sorted(predictions):
            counter.add_metric((deployment, version, code), value)
        yield counter
        histogram = HistogramMetricFamily(
            "sluice_prediction_latency_seconds",
            "Time onnxruntime took per prediction call",
            labels=("deployment", "version"),
        )
        for (deployment, version), counts, total in sorted(latency):
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            histogram.add_metric((deployment, version), buckets, total)
        yield histogram
        yield GaugeMetricFamily(
            "sluice_agent_connected", "1 while the control-plane stream is up", value=self._connected
        )
        generation = GaugeMetricFamily(
            "sluice_snapshot_generation", "Applied generation of each deployment", labels=("deployment",)
        )
        for deployment, value in sorted(generations):
            generation.add_metric((deployment,), value)
        yield generation
        if self.log_counts is not None:
            segments, deferred = self.log_counts()
            yield GaugeMetricFamily(
                "sluice_agent_log_segments_waiting",
                "Prediction-log segments on disk until the control plane acknowledges them",
                value=segments,
            )
            yield CounterMetricFamily(
                "sluice_agent_log_segments_deferred",
                "Announcements of S3 segments the control plane deferred (it could not read the bucket): "
                "kept, announced again after its backoff",
                value=deferred,
            )
        if self.label_counts is not None:
            waiting, dropped = self.label_counts()
            yield GaugeMetricFamily(
                "sluice_agent_label_batches_waiting",
                "Feedback label batches on disk until the control plane's label store acknowledges them",
                value=waiting,
            )
            yield CounterMetricFamily(
                "sluice_agent_labels_dropped",
                "Feedback labels not kept because the label spool was full (agent.label_batches)",
                value=dropped,
            )
