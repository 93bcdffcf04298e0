"""Prediction on the agent, shared by the sluice API and the Open Inference Protocol.

The hot path (`predict`) reads the current table once, routes, runs onnxruntime inline (small
calls are cheaper than a thread hop), builds the answer and defers its bookkeeping
(bookkeeping.py); shadow versions then score a copy on a separate thread (shadows.py). The
caller's deadline and cancellation are watch.py's. Every refusal is a typed error of
core.errors with a message naming what was expected; core.grpc_errors answers it with its status,
the agent counts it, and carries on.

Every outcome of a routed request counts against the version it was routed to: answered (OK), a
refused input (its status, e.g. INVALID_ARGUMENT, also counted as a rejected input) or a model
failure (`ModelFailed`, INTERNAL: onnxruntime raised, or NaN/infinity came out), or a caller
that gave up while the version worked (`DeadlineExceeded`, `Cancelled`: see `Watch`). Only what is
refused before routing (unknown deployment or version, an undecodable tensor, an over-long key
or id) is a refusal of the deployment, counted on its champion's rejected inputs.

With the deployment's `fallback` on, a request whose challenger fails (a model failure, not a
refused input) is answered by the champion: the failure still counts against the challenger, the
champion's answer counts as the champion's request, and the answer says served_by champion.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from agent.bookkeeping import Bookkeeping
from agent.label_spool import LabelSpool
from agent.outcome import Outcome
from agent.predlog import PredictionLog
from agent.prometheus import AgentPrometheus
from agent.recorder import MetricsRecorder
from agent.rows import Rows, prepare, rows_of
from agent.segments import feed_features, request_features
from agent.serving import LoadedDeployment, LoadedRoute, ServingTable
from agent.shadows import ShadowScorer
from agent.watch import Watch, abandoned_error
from core.errors import InvalidInput, ModelFailed, NotFound, SluiceError, Unavailable
from core.vocabulary import ServingRole
from protos import common_pb2
from runtime.inputs import all_finite
from runtime.model import Feeds, feed_rows, take_rows

log = logging.getLogger("sluice.agent")

MAX_ID_LENGTH = 256
#: a routing key is hashed, never stored; the bound only keeps a request from carrying megabytes of it
MAX_KEY_LENGTH = 1024


def _call_now(fn: Callable[..., Any], *args: Any) -> None:
    fn(*args)


class AgentCore:
    def __init__(self, name: str, agent_id: str, recorder: MetricsRecorder, prometheus: AgentPrometheus) -> None:
        self.name = name
        self.agent_id = agent_id
        self.recorder = recorder
        self.prometheus = prometheus
        self.table: ServingTable | None = None
        self.waiting_for = "the control plane"
        #: where Feedback's labels wait for the control plane's label store (None: not kept)
        self.labels: LabelSpool | None = None
        self.books = Bookkeeping(recorder, prometheus)
        self.shadows = ShadowScorer(self.books)
        #: runs the bookkeeping of an answer; the server sets `loop.call_soon`
        self.defer: Callable[..., Any] = _call_now

    @property
    def predlog(self) -> PredictionLog | None:
        """The prediction log (None: off), appended to with each answer's bookkeeping."""
        return self.books.predlog

    @predlog.setter
    def predlog(self, predlog: PredictionLog | None) -> None:
        self.books.predlog = predlog

    def close(self, wait: bool = False) -> None:
        """Stop shadow scoring; `wait` lets the queued copies finish first."""
        self.shadows.close(wait)

    # ---- lookups ----

    def deployment(self, name: str) -> LoadedDeployment:
        table = self.table
        if table is None:
            raise Unavailable(
                f"agent {self.name} has no snapshot yet: it is waiting for {self.waiting_for}; try again shortly"
            )
        found = table.deployments.get(name)
        if found is not None:
            return found
        if name in table.failed:
            raise Unavailable(f"deployment {name!r} is not loaded on agent {self.name}: {table.failed[name]}")
        if not name:
            raise InvalidInput("the deployment name is empty")
        names = sorted(table.deployments)
        served = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "") or "none"
        raise NotFound(f"no deployment named {name[:128]!r} on agent {self.name} (it serves: {served})")

    def new_request_id(self) -> str:
        """128 random bits: an id nobody can guess, so nobody can label another caller's prediction."""
        return secrets.token_hex(16)

    # ---- recording ----

    def refused(self, deployment: str, code: str, error: SluiceError | None = None) -> None:
        """Count a request refused before it was routed, by its status name (e.g. "NOT_FOUND").

        An error already counted against the version it was routed to (`error.counted`) is skipped.
        """
        if error is not None and error.counted:
            return
        table = self.table
        if table is None or (deployment not in table.deployments and deployment not in table.failed):
            deployment = ""  # a name a caller made up must not become a metric series
        self.books.refused(deployment, code)

    def _after(
        self,
        outcome: Outcome,
        feeds: Feeds,
        seconds: float,
        request_ids: Sequence[str],
        keys: Sequence[str] | str = "",
        logged: bool = False,
    ) -> None:
        """Bookkeeping of one answer (bookkeeping.py), then shadow scoring."""
        if self.books.after(outcome, feeds, seconds, request_ids, keys, logged) and outcome.deployment.shadows:
            self.shadows.submit(outcome.deployment, outcome, feeds, request_ids, keys)

    # ---- prediction ----

    def run(
        self,
        dep: LoadedDeployment,
        route: LoadedRoute,
        x: Rows,
        request_ids: Sequence[str],
        validate: bool = True,
        defer: Callable[..., Any] | None = None,
        keys: Sequence[str] | str = "",
        watch: Watch | None = None,
    ) -> Outcome:
        """Validate (unless done) and run `route` on `x`; a refusal or a failure counts against it.
        `keys`: the routing key of every row (one string) or of each row, for the prediction log."""
        defer = defer or self.defer
        try:
            return self._run(dep, route, x, request_ids, validate, defer, keys, watch)
        except SluiceError as exc:
            self.books.failed(dep, route, exc, defer)
            raise

    def run_or_fall_back(
        self,
        dep: LoadedDeployment,
        route: LoadedRoute,
        x: Rows,
        request_ids: Sequence[str],
        validate: bool = True,
        defer: Callable[..., Any] | None = None,
        keys: Sequence[str] | str = "",
        watch: Watch | None = None,
    ) -> Outcome:
        """`run`; with the deployment's fallback on, a challenger's model failure (counted
        against it) is answered by the champion instead."""
        try:
            return self.run(dep, route, x, request_ids, validate, defer, keys, watch)
        except ModelFailed:
            if not dep.fallback or route.role != ServingRole.CHALLENGER or route is dep.champion:
                raise
        # `x` passed the challenger's checks: every version of a deployment takes the same inputs.
        return self.run(dep, dep.champion, x, request_ids, validate, defer, keys, watch)

    def _run(
        self,
        dep: LoadedDeployment,
        route: LoadedRoute,
        x: Rows,
        request_ids: Sequence[str],
        validate: bool,
        defer: Callable[..., Any],
        keys: Sequence[str] | str = "",
        watch: Watch | None = None,
    ) -> Outcome:
        runtime = route.runtime
        # a batch split over versions arrives checked (as feeds); anything else is checked here
        if isinstance(x, np.ndarray):  # the common case: one tensor
            try:
                feeds = runtime.prepare(x)
            except ValueError as exc:
                raise InvalidInput(f"deployment {dep.name}: {exc}") from None
        else:
            feeds = x if not validate and isinstance(x, dict) else prepare(runtime, x, dep.name)
        start = time.perf_counter()
        try:
            result = runtime.predict(feeds)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors share no useful base
            log.warning("deployment %s: %s failed on %d rows: %s", dep.name, route.label, feed_rows(feeds), exc)
            raise ModelFailed(
                f"deployment {dep.name}: {route.label} failed on this input ({type(exc).__name__}); see the agent log"
            ) from None
        seconds = time.perf_counter() - start
        if watch is not None and (gone := watch.abandoned()):
            raise abandoned_error(gone, dep.name, route.label)
        for output in (result.probabilities, result.values):
            if output is not None and not all_finite(output):
                # A model fault, or finite inputs too large for its arithmetic (e.g. 3e38).
                row = int(np.argwhere(~np.isfinite(output))[0][0])
                raise ModelFailed(
                    f"deployment {dep.name}: {route.label} computed NaN or infinity for row {row}: "
                    "a fault of the model or inputs beyond the range it can compute with"
                )
        outcome = Outcome(dep, route, result.labels, result.probabilities, result.values, result.class_labels, watch)
        logged = defer is not self.defer and self.books.predlog is not None
        if logged:
            # On a worker thread (a big batch): the log's record is written here, off the event
            # loop that every call shares (its encode and write are 100-150 µs per 1,024 rows).
            self.books.log_outcome(outcome, feeds, seconds, request_ids, keys)
        # Off the critical path: the server defers this until the answer is on its way.
        defer(self._after, outcome, feeds, seconds, request_ids, keys, logged)
        return outcome

    def predict(
        self,
        dep: LoadedDeployment,
        x: Rows,
        key: str = "",
        attributes: Mapping[str, str] | None = None,
        request_id: str = "",
        version: str = "",
        defer: Callable[..., Any] | None = None,
        watch: Watch | None = None,
    ) -> tuple[Outcome, str]:
        """Route one request and run it; from the route on, every outcome counts against that version.
        `defer`: how to hand the bookkeeping to the event loop (thread-safe when called off it)."""
        if len(request_id) > MAX_ID_LENGTH:
            raise InvalidInput(f"the request id is {len(request_id)} characters; the limit is {MAX_ID_LENGTH}")
        if version:
            route = next((r for r in dep.routes if r.version == version and r.role != ServingRole.SHADOW), None)
            if route is None:
                versions = ", ".join(r.version for r in dep.routes if r.role != ServingRole.SHADOW)
                raise NotFound(f"deployment {dep.name!r} has no version {version!r} (it serves {versions})")
        else:
            if len(key) > MAX_KEY_LENGTH:
                raise InvalidInput(f"the routing key is {len(key)} characters; the limit is {MAX_KEY_LENGTH}")
            router = dep.router
            if router.segments:  # rules may test attributes and the features of the rows
                features = (
                    request_features(x, router.features, dep.champion.runtime.inputs) if router.features else None
                )
                route = dep.routes[router.route(key, attributes, features)]
            else:
                route = dep.routes[router.route(key)]
        request_id = request_id or self.new_request_id()
        n = x.shape[0] if isinstance(x, np.ndarray) else rows_of(x)
        ids = (request_id,) if n == 1 else [f"{request_id}/{i}" for i in range(n)]
        if version:  # the caller asked for this version: its failure is the answer
            return self.run(dep, route, x, ids, defer=defer, keys=key, watch=watch), request_id
        return self.run_or_fall_back(dep, route, x, ids, defer=defer, keys=key, watch=watch), request_id

    def predict_batch(
        self,
        dep: LoadedDeployment,
        x: Rows,
        keys: Sequence[str],
        request_ids: Sequence[str],
        defer: Callable[..., Any] | None = None,
        watch: Watch | None = None,
    ) -> tuple[list[Outcome], list[np.ndarray], list[str]]:
        """Route each row; run each version once on its rows.

        Returns one outcome per version used, the row positions of each outcome and the request
        ids. Rows are joinable with later Feedback only when the caller sent request ids: a batch
        without them gets none (generating and indexing 1,024 ids per call would cost more than
        the model).
        """
        n = rows_of(x)
        if keys and len(keys) != n:
            raise InvalidInput(f"routing_keys has {len(keys)} entries for {n} rows: send none or one per row")
        if request_ids and len(request_ids) != n:
            raise InvalidInput(f"request_ids has {len(request_ids)} entries for {n} rows: send none or one per row")
        ids = list(request_ids)
        longest = max(map(len, ids), default=0)
        if longest > MAX_ID_LENGTH:
            raise InvalidInput(f"a request id is {longest} characters; the limit is {MAX_ID_LENGTH}")
        longest_key = max(map(len, keys), default=0)
        if longest_key > MAX_KEY_LENGTH:
            raise InvalidInput(f"a routing key is {longest_key} characters; the limit is {MAX_KEY_LENGTH}")
        router = dep.router
        fixed = router.fixed
        feeds: Feeds | None = None
        if fixed >= 0:  # one route takes every row: nothing to route or group
            chosen = None
            used = [fixed]
        elif router.features:
            # Rules on features: check the rows once (every version takes the same inputs; a
            # refusal counts against the champion, as no row could be placed), then route each
            # row on its own feature values and key.
            try:
                feeds = prepare(dep.champion.runtime, x, dep.name)
            except InvalidInput as refusal:
                self.books.failed(dep, dep.champion, refusal, defer or self.defer)
                raise
            chosen = router.route_many(keys, n, feed_features(feeds, router.features))
            used = np.unique(chosen).tolist()
        else:
            chosen = router.route_many(keys, n)
            used = np.unique(chosen).tolist()
        # Validate once for every version first, so a bad batch is refused before anything runs;
        # the refusal counts once against each version the batch was routed to, as a call would.
        if feeds is None:
            try:
                feeds = prepare(dep.routes[int(used[0])].runtime, x, dep.name)
            except InvalidInput as refusal:
                for index in used:
                    self.books.failed(dep, dep.routes[int(index)], refusal, defer or self.defer)
                raise
        n = feed_rows(feeds)
        outcomes: list[Outcome] = []
        positions: list[np.ndarray] = []
        failure: SluiceError | None = None
        for index in used:
            route = dep.routes[int(index)]
            part_keys: Sequence[str]
            if len(used) == 1:
                rows = np.arange(n)
                part, part_ids, part_keys = feeds, ids, keys
            else:
                assert chosen is not None
                rows = np.flatnonzero(chosen == index)
                part = take_rows(feeds, rows)
                part_ids = [ids[i] for i in rows] if ids else []
                part_keys = [keys[i] for i in rows.tolist()] if keys else []
            try:
                outcomes.append(self.run_or_fall_back(dep, route, part, part_ids, False, defer, part_keys, watch))
            except SluiceError as exc:
                # Counted against this version; the others still run, so each version's count of
                # calls and failures stays fair, then the call fails with the first failure.
                failure = failure or exc
                continue
            positions.append(rows)
        if failure is not None:
            raise failure
        return outcomes, positions, ids

    def feedback(
        self,
        deployment: str,
        request_id: str,
        label: int | None,
        value: float | None,
        class_label: str | None = None,
    ) -> bool:
        """Join a true label (a class index, or `class_label` by name for string classes) or value."""
        self.deployment(deployment)
        if not request_id:
            raise InvalidInput("request_id is empty: send the id the prediction answered with")
        if len(request_id) > MAX_ID_LENGTH:
            raise InvalidInput(f"the request id is {len(request_id)} characters; the limit is {MAX_ID_LENGTH}")
        if label is None and value is None and class_label is None:
            raise InvalidInput("send the true 'label' or 'class_label' (classifiers) or 'value' (regressors)")
        if value is not None and not np.isfinite(value):
            raise InvalidInput("the true value must be a finite number")
        if class_label is not None and len(class_label) > MAX_KEY_LENGTH:
            raise InvalidInput(f"the class label is {len(class_label)} characters; the limit is {MAX_KEY_LENGTH}")
        return bool(self.recorder.feedback(deployment, request_id, label=label, value=value, class_label=class_label))

    def label_row(
        self, deployment: str, request_id: str, label: int | None, value: float | None, class_label: str | None
    ) -> common_pb2.LabelRow:
        """A Feedback call's truth as the label store keeps it: a classifier's class by name (an
        index of string classes is named by the champion's classes; integer classes as text), a
        regressor's number."""
        row = common_pb2.LabelRow(request_id=request_id)
        if value is not None:
            row.value = value
        elif class_label is not None:
            row.label = class_label
        elif label is not None:
            classes = self.deployment(deployment).champion.runtime.label_classes
            row.label = classes[label] if classes and 0 <= label < len(classes) else str(label)
        return row
