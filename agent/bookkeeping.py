"""The bookkeeping of each answer and each failure: the metric windows, Prometheus and the
prediction log.

`AgentCore` defers `after` until the answer is on its way (the server sets `loop.call_soon`);
a failure counts against the version it was routed to (`failed`, `count_failure`). Shadow
scoring (shadows.py) records through the same methods.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agent.outcome import Outcome
from agent.predlog import PredictionLog
from agent.prometheus import AgentPrometheus
from agent.recorder import MetricsRecorder
from agent.serving import LoadedDeployment, LoadedRoute
from core.errors import Cancelled, DeadlineExceeded, ModelFailed, SluiceError
from core.grpc_errors import status_of
from runtime.model import Feeds

log = logging.getLogger("sluice.agent")

#: failures of a version that are not refused inputs (they count in no rejected_inputs)
NOT_REFUSALS = (ModelFailed, DeadlineExceeded, Cancelled)


class Bookkeeping:
    def __init__(self, recorder: MetricsRecorder, prometheus: AgentPrometheus) -> None:
        self.recorder = recorder
        self.prometheus = prometheus
        #: the prediction log (None: off), appended to with each answer's bookkeeping
        self.predlog: PredictionLog | None = None

    def refused(self, deployment: str, code: str) -> None:
        """Count a request refused before it was routed (`deployment` "" when it names none served)."""
        try:
            self.recorder.record_rejected(deployment, code)
        except Exception:
            log.exception("metrics recorder failed")
        self.prometheus.refused(deployment, code)

    def failed(self, dep: LoadedDeployment, route: LoadedRoute, error: SluiceError, defer: Callable[..., Any]) -> None:
        """Count a request that `route` did not answer against that version, then mark it counted."""
        error.counted = True
        defer(self.count_failure, dep.name, route, status_of(error).name, not isinstance(error, NOT_REFUSALS))

    def count_failure(self, deployment: str, route: LoadedRoute, code: str, refused: bool) -> None:
        try:
            self.recorder.record_error(deployment, route.model, route.version, route.role, code, refused)
        except Exception:
            log.exception("metrics recorder failed")
        self.prometheus.refused(deployment, code, route.label)

    def log(
        self,
        dep: LoadedDeployment,
        route: LoadedRoute,
        feeds: Feeds,
        labels: np.ndarray | None,
        class_labels: np.ndarray | None,
        values: np.ndarray | None,
        probabilities: np.ndarray | None,
        seconds: float,
        request_ids: Sequence[str],
        keys: Sequence[str] | str,
    ) -> None:
        predlog = self.predlog
        if predlog is None:
            return
        try:
            predlog.append(
                dep.name,
                route.model,
                route.version,
                route.role,
                dep.snapshot.experiment,
                feeds,
                class_labels if class_labels is not None else labels,
                route.runtime.classes,
                values,
                probabilities,
                seconds,
                request_ids,
                keys,
            )
        except Exception:
            log.exception("the prediction log failed")

    def log_outcome(
        self, outcome: Outcome, feeds: Feeds, seconds: float, request_ids: Sequence[str], keys: Sequence[str] | str
    ) -> None:
        self.log(
            outcome.deployment,
            outcome.route,
            feeds,
            outcome.labels,
            outcome.class_labels,
            outcome.values,
            outcome.probabilities,
            seconds,
            request_ids,
            keys,
        )

    def after(
        self,
        outcome: Outcome,
        feeds: Feeds,
        seconds: float,
        request_ids: Sequence[str],
        keys: Sequence[str] | str = "",
        logged: bool = False,
    ) -> bool:
        """Record one answer: metrics, Prometheus, the prediction log (unless `logged` already,
        on the worker thread that ran a big batch). False when its caller gave up before the
        answer reached it (then counted as that failure, and nothing else done; a row logged on
        the worker thread in that last instant stays in the log: the model did answer it)."""
        route = outcome.route
        watch = outcome.watch
        if watch is not None and watch.gone:  # the caller gave up before the answer reached it
            self.count_failure(outcome.deployment.name, route, watch.gone, False)
            return False
        runtime = route.runtime
        if self.predlog is not None and not logged:
            self.log_outcome(outcome, feeds, seconds, request_ids, keys)
        rows = runtime.metric_rows(feeds)
        try:
            self.recorder.record_prediction(
                outcome.deployment.name,
                route.model,
                route.version,
                route.role,
                rows,
                outcome.labels,
                outcome.values,
                seconds,
                "OK",
                request_ids,
                runtime.label_classes,
                runtime.text_columns(feeds),
            )
        except Exception:
            log.exception("metrics recorder failed")
        self.prometheus.observe(outcome.deployment.name, route.label, rows.shape[0], seconds)
        return True
