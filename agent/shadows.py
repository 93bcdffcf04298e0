"""Shadow scoring: after an answer, every shadow version of the deployment scores a copy of the
same rows on one worker thread; its predictions are recorded (metrics, the prediction log, the
agreement with the answer) and never answered. A shadow's failure counts against it.

At most SHADOW_QUEUE_LIMIT copies wait; beyond that a request is not shadowed (`skipped`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from agent.bookkeeping import Bookkeeping
from agent.outcome import Outcome
from agent.serving import LoadedDeployment
from runtime.inputs import all_finite
from runtime.model import Feeds

log = logging.getLogger("sluice.agent")

SHADOW_QUEUE_LIMIT = 256


class ShadowScorer:
    def __init__(self, books: Bookkeeping) -> None:
        self.books = books
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sluice-shadow")
        self._pending = 0
        self._lock = threading.Lock()
        #: requests not shadowed because SHADOW_QUEUE_LIMIT copies were waiting
        self.skipped = 0

    def close(self, wait: bool = False) -> None:
        """Stop scoring; `wait` lets the queued copies finish first."""
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    def submit(
        self, dep: LoadedDeployment, outcome: Outcome, feeds: Feeds, ids: Sequence[str], keys: Sequence[str] | str = ""
    ) -> None:
        """Queue a copy of `feeds` for the deployment's shadows (the answer's rows may be reused)."""
        with self._lock:
            if self._pending >= SHADOW_QUEUE_LIMIT:
                self.skipped += 1
                return
            self._pending += 1
        try:
            copy = {name: x.copy() for name, x in feeds.items()}
            self._pool.submit(self._score, dep, outcome, copy, list(ids), keys)
        except RuntimeError:  # shutting down
            with self._lock:
                self._pending -= 1

    def _score(
        self, dep: LoadedDeployment, outcome: Outcome, feeds: Feeds, ids: list[str], keys: Sequence[str] | str = ""
    ) -> None:
        books = self.books
        try:
            for shadow in dep.shadows:
                start = time.perf_counter()
                try:
                    result = shadow.runtime.predict(feeds)
                    failed = any(o is not None and not all_finite(o) for o in (result.probabilities, result.values))
                except Exception as exc:  # noqa: BLE001 - a failing shadow is counted, never answered
                    log.warning("deployment %s: shadow %s failed: %s", dep.name, shadow.label, exc)
                    failed = True
                if failed:
                    books.count_failure(dep.name, shadow, "INTERNAL", False)
                    continue
                seconds = time.perf_counter() - start
                books.recorder.record_prediction(
                    dep.name,
                    shadow.model,
                    shadow.version,
                    shadow.role,
                    shadow.runtime.metric_rows(feeds),
                    result.labels,
                    result.values,
                    seconds,
                    "OK",
                    ids,
                    shadow.runtime.label_classes,
                    shadow.runtime.text_columns(feeds),
                )
                if books.predlog is not None:
                    books.log(
                        dep,
                        shadow,
                        feeds,
                        result.labels,
                        result.class_labels,
                        result.values,
                        result.probabilities,
                        seconds,
                        ids,
                        keys,
                    )
                if outcome.labels is not None and result.labels is not None:
                    books.recorder.record_shadow_pair(
                        dep.name,
                        (outcome.route.model, outcome.route.version),
                        (shadow.model, shadow.version),
                        outcome.labels,
                        result.labels,
                        ids,
                        shadow.runtime.label_classes,
                    )
        except Exception:
            log.exception("shadow scoring failed on deployment %s", dep.name)
        finally:
            with self._lock:
                self._pending -= 1
