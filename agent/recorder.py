"""The agent's metric recorder: per (deployment, version) summaries, flushed every window.

It ties the pieces together under one lock: windows (`agent.window`), the feedback joins
(`agent.feedback`) and the report they become (`agent.window_report`). The hot path
(`record_prediction`, called once per request) only appends to lists under the lock; histograms,
sketches, moments and the reservoir sample are computed with numpy, outside the lock, when the
window closes (`flush`) — or early when a window holds many rows, so memory stays bounded. Those
early folds (every FOLD_ROWS rows of a version: every 8th 1,024-row PredictBatch) run on the
recorder's own worker thread, not on the caller's (the agent's event loop); at most
`MAX_PENDING_FOLDS` wait there, beyond which the caller folds itself, and closing a window first
waits for the folds already handed over, so every counted row is in the window it was recorded in
or the next, exactly as when the caller folded.

With a journal (`agent.journal`), every count of the open window is also appended to the
window's journal file in the same critical section, so the journal holds exactly what the window
holds: a crashed agent's next start turns it into a report instead of losing up to a window of
predictions. `close_window` hands the closed journal back to be deleted once the report is spooled.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for

import numpy as np

from agent.feedback import Batch, FeedbackCache, join
from agent.journal import ClosedJournal, WindowJournal
from agent.window import Counted, RouteInfo, Texts, VersionKey, Window, count_chunks, count_texts, route_info
from agent.window_report import build_report
from core.vocabulary import ServingRole
from protos import agent_pb2

log = logging.getLogger("sluice.agent")

#: early folds waiting for the recorder's worker thread; beyond it the caller folds (back-pressure)
MAX_PENDING_FOLDS = 4


def _as_1d(array: np.ndarray | None) -> np.ndarray | None:
    if array is None:
        return None
    out = np.asarray(array)
    if out.ndim > 1:
        out = out.reshape(out.shape[0], -1)[:, 0]
    return out


class MetricsRecorder:
    """Thread-safe per-window summaries of every prediction this agent makes."""

    def __init__(
        self,
        window_seconds: float = 1.0,
        reservoir_size: int = 200,
        feedback_ttl_seconds: float = 3600.0,
        feedback_capacity: int = 100_000,
        tolerance: float = 0.1,
        journal: WindowJournal | None = None,
        background_folds: bool = True,
    ) -> None:
        """`background_folds`: count the early folds on a worker thread (False: on the caller's)."""
        self.window_seconds = window_seconds
        self.reservoir_size = reservoir_size
        #: regression: |error| <= tolerance counts as within; per deployment from its snapshot
        self.tolerance = tolerance
        self._tolerances: dict[str, float] = {}
        self._lock = threading.Lock()
        self._routes: dict[VersionKey, RouteInfo] = {}
        self._champions: dict[str, VersionKey] = {}
        self._windows: dict[VersionKey, Window] = {}
        self._cache = FeedbackCache(feedback_ttl_seconds, feedback_capacity)
        self._unmatched = 0
        self._window_start = time.time()
        self._rng = np.random.default_rng()
        self._journal = journal
        if journal is not None:
            journal.open(self._window_start)
        #: one worker thread for the early folds (started with the first one); None: fold inline
        self._folds = ThreadPoolExecutor(1, thread_name_prefix="sluice-fold") if background_folds else None
        self._pending_folds: set[Future[None]] = set()
        self._folds_lock = threading.Lock()

    # ---- configuration ----

    def configure(self, snapshot: agent_pb2.Snapshot) -> None:
        routes: dict[VersionKey, RouteInfo] = {}
        champions: dict[str, VersionKey] = {}
        tolerances = {d.name: d.tolerance for d in snapshot.deployments if d.HasField("tolerance")}
        for dep in snapshot.deployments:
            for route in dep.routes:
                info = route_info(dep.name, dep.experiment, route)
                key = (dep.name, info.model, info.version)
                routes[key] = info
                if info.role == ServingRole.CHAMPION:
                    champions[dep.name] = key
        with self._lock:
            self._routes = routes
            self._champions = champions
            self._tolerances = tolerances

    # ---- hot path ----

    def _window(self, key: VersionKey, role: str) -> Window:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = Window(role=role)
        return window

    def record_prediction(
        self,
        deployment: str,
        model: str,
        version: str,
        role: str,
        rows: np.ndarray | None,
        labels: np.ndarray | None,
        values: np.ndarray | None,
        latency_seconds: float,
        code: str = "OK",
        request_ids: Sequence[str] = (),
        classes: Sequence[str] | None = None,
        texts: Texts | None = None,
    ) -> None:
        """`role` is a ServingRole word (the route's role as the serving table has it).

        `rows` are the numeric features ([rows, 0] when the model takes strings only); `labels`
        are class indices for a classifier with string `classes`, whose names feedback may give;
        `texts` the string inputs' values by input name (counted on the route's category bins).
        """
        key = (deployment, model, version)
        n = 0 if rows is None else int(rows.shape[0]) if rows.ndim else 1
        if labels is not None and labels.ndim != 1:
            labels = _as_1d(labels)
        if values is not None and values.ndim != 1:
            values = _as_1d(values)
        detached: list[np.ndarray] | None = None
        detached_texts: list[Texts] | None = None
        with self._lock:
            window = self._window(key, role)
            window.requests += 1
            journal = self._journal
            if code != "OK":
                window.errors[code] += 1
                if journal is not None:
                    journal.error(key, role, self._experiment(key), code, False)
                return
            if journal is not None:
                journal.prediction(key, role, self._experiment(key), n, latency_seconds)
            window.rows += n  # rows answered
            if latency_seconds >= 0 and math.isfinite(latency_seconds):
                window.latencies.append(latency_seconds)
            if rows is not None and n and rows.ndim == 2 and rows.shape[1]:
                detached = window.add_rows(rows, n)
            if texts and n:
                detached_texts = window.add_texts(texts, n)
            if labels is not None:
                window.label_chunks.append(labels)
            elif values is not None:
                window.value_chunks.append(values)
            answers = labels if labels is not None else values
            if request_ids and answers is not None and len(request_ids) == answers.shape[0]:
                now = time.monotonic()
                shadow = role == ServingRole.SHADOW
                expires = now + self._cache.ttl
                batch = Batch(deployment, key, request_ids, labels, values, expires, shadow, classes=classes)
                self._cache.add(batch, now)
        if detached is not None:
            # Many rows waiting: count them now (outside the lock) so memory stays bounded.
            self._fold_soon(key, role, detached)
        if detached_texts is not None:
            counted_texts = count_texts(self._routes.get(key), detached_texts)
            with self._lock:
                self._window(key, role).merge_texts(counted_texts)

    def _experiment(self, key: VersionKey) -> str:
        info = self._routes.get(key)
        return info.experiment if info is not None else ""

    def _fold_soon(self, key: VersionKey, role: str, chunks: list[np.ndarray]) -> None:
        """Fold on the worker thread, or here when there is none or MAX_PENDING_FOLDS wait."""
        pool = self._folds
        future: Future[None] | None = None
        if pool is not None:
            with self._folds_lock:
                if len(self._pending_folds) < MAX_PENDING_FOLDS:
                    try:
                        future = pool.submit(self._fold_logged, key, role, chunks)
                    except RuntimeError:  # shut down: fold here
                        future = None
                    else:
                        self._pending_folds.add(future)
        if future is None:
            self._fold_into(key, role, chunks)
            return
        # Outside the lock: a fold already done runs the callback here, and it takes the lock.
        future.add_done_callback(self._fold_done)

    def _fold_done(self, future: Future[None]) -> None:
        with self._folds_lock:
            self._pending_folds.discard(future)

    def _fold_logged(self, key: VersionKey, role: str, chunks: list[np.ndarray]) -> None:
        try:
            self._fold_into(key, role, chunks)
        except Exception:
            log.exception("metrics recorder: counting %d waiting chunk(s) of %s failed", len(chunks), key)

    def _fold_into(self, key: VersionKey, role: str, chunks: list[np.ndarray]) -> None:
        counted = self._count(key, chunks)
        with self._lock:
            self._window(key, role).merge(counted, self.reservoir_size, self._rng)

    def wait_for_folds(self, timeout: float | None = None) -> None:
        """Wait until the folds handed to the worker thread so far are merged."""
        with self._folds_lock:
            pending = list(self._pending_folds)
        if pending:
            wait_for(pending, timeout)

    def close(self) -> None:
        """Finish the waiting folds and stop the worker thread (the recorder still records, folding inline)."""
        pool, self._folds = self._folds, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _count(self, key: VersionKey, chunks: list[np.ndarray]) -> Counted:
        """No lock: the heavy numpy part."""
        return count_chunks(self._routes.get(key), chunks, self.reservoir_size, self._rng)

    def record_error(
        self, deployment: str, model: str, version: str, role: str, code: str, refused: bool = False
    ) -> None:
        """One request a routed version did not answer, by its status name (e.g. "INTERNAL").

        It counts as a request and an error of that version (its error rate); `refused` marks a
        refused input (a typed refusal such as INVALID_ARGUMENT), also counted in rejected_inputs.
        """
        key = (deployment, model, version)
        with self._lock:
            window = self._window(key, role)
            window.requests += 1
            window.errors[code] += 1
            if refused:
                window.rejected += 1
            if self._journal is not None:
                self._journal.error(key, role, self._experiment(key), code, refused)

    def record_rejected(self, deployment: str, code: str) -> None:
        """A request refused before it was routed (e.g. a routing key over the limit): no version
        handled it, so it counts only in the champion's rejected_inputs, outside any error rate."""
        with self._lock:
            key = self._champions.get(deployment)
            if key is None:
                return  # a deployment this agent does not serve: nothing to attribute it to
            info = self._routes[key]
            self._window(key, info.role).rejected += 1
            if self._journal is not None:
                self._journal.rejected(key, info.role, info.experiment)

    def record_shadow_pair(
        self,
        deployment: str,
        champion: tuple[str, str],
        challenger: tuple[str, str],
        champion_labels: np.ndarray,
        challenger_labels: np.ndarray,
        request_ids: Sequence[str],
        classes: Sequence[str] | None = None,
    ) -> None:
        a = _as_1d(champion_labels)
        b = _as_1d(challenger_labels)
        if a is None or b is None or a.shape != b.shape:
            return
        key = (deployment, challenger[0], challenger[1])
        now = time.monotonic()
        agreements = int(np.count_nonzero(a == b))
        with self._lock:
            window = self._window(key, ServingRole.SHADOW)
            window.pairs += int(a.shape[0])
            window.agreements += agreements
            ids = tuple(request_ids)
            if ids and len(ids) == a.shape[0]:
                batch = Batch(
                    deployment,
                    key,
                    ids,
                    b,
                    None,
                    now + self._cache.ttl,
                    shadow=True,
                    champion=(deployment, champion[0], champion[1]),
                    champion_labels=a,
                    classes=classes,
                )
                self._cache.add(batch, now)

    def feedback(
        self,
        deployment: str,
        request_id: str,
        label: int | None = None,
        value: float | None = None,
        class_label: str | None = None,
    ) -> bool:
        """Join a true label/value to the prediction(s) of `request_id`; False when unknown.

        `class_label` names the class of a classifier with string classes; it counts as the
        index of that class in the answering version's classes (a name it lacks is never right).
        """
        if label is None and value is None and class_label is None:
            return False
        now = time.monotonic()
        with self._lock:
            found = self._cache.take(deployment, request_id, now)
            if not found:
                self._unmatched += 1
                return False
            matched = False
            for batch, position in found:
                truth = label if class_label is None else batch.class_index(class_label)
                tolerance = self._tolerances.get(deployment, self.tolerance)
                matched |= join(self._feedback_window(batch), batch, position, truth, value, tolerance)
            if not matched:
                self._unmatched += 1
            return matched

    def _feedback_window(self, batch: Batch) -> Window:
        info = self._routes.get(batch.key)
        if info is not None:
            role = info.role
        else:
            role = ServingRole.SHADOW if batch.champion is not None else ServingRole.CHAMPION
        return self._window(batch.key, role)

    # ---- closing a window ----

    def flush(self) -> agent_pb2.MetricReport | None:
        """Close the window; None when nothing happened. The caller fills agent_id and seq.

        The closed window's journal is deleted at once: callers that spool the report use
        `close_window` and delete it after the spool write.
        """
        report, closed = self.close_window()
        if closed is not None:
            closed.remove()
        return report

    def close_window(self) -> tuple[agent_pb2.MetricReport | None, ClosedJournal | None]:
        """Close the window: its report (None when nothing happened) and its journal (None without
        one), to be deleted once the report is safe elsewhere."""
        self.wait_for_folds()  # rows handed to the worker thread count in the window they were recorded in
        now = time.time()
        with self._lock:
            windows = self._windows
            self._windows = {}
            unmatched = self._unmatched
            self._unmatched = 0
            start = self._window_start
            self._window_start = now
            routes = dict(self._routes)
            closed = self._journal.rotate(now) if self._journal is not None else None
        if not unmatched and all(w.empty() for w in windows.values()):
            return None, closed
        # The closed windows belong to this call alone now: the heavy part runs without the lock.
        for key, window in windows.items():
            if window.row_chunks:
                window.merge(self._count(key, window.row_chunks), self.reservoir_size, self._rng)
                window.row_chunks = []
            if window.text_chunks:
                window.merge_texts(count_texts(routes.get(key), window.text_chunks))
                window.text_chunks = []
        return build_report(windows, routes, start, now, unmatched), closed

    def close_journal(self) -> ClosedJournal | None:
        """Stop journaling (the agent stops): the open window's journal, to delete once its
        counts are reported, or to leave for the next start."""
        with self._lock:
            journal, self._journal = self._journal, None
            return journal.close() if journal is not None else None
