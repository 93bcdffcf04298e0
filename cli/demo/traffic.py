"""The demo's traffic: keyed requests from two "clinics" through the agents, with true labels.

Each `Traffic` thread sends Predict to the agents in turn and Feedback with the true label of the
row, and counts answers per (agent, version); `Streams` holds the threads and tells what was
served since the last mark, which the story prints with `split_text` and `agents_text`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import grpc
import numpy as np

from protos import inference_pb2, inference_pb2_grpc

REQUESTS_PER_SECOND = 50.0  # per traffic stream; two streams
PATIENTS = 10_000  # routing keys per stream: sticky assignment per patient

Counts = Counter[tuple[str, str]]  # (agent, version) -> answers


class Target(Protocol):
    """An agent as traffic sees it: a name and a stub on its Inference service."""

    name: str
    stub: inference_pb2_grpc.InferenceStub


class Traffic(threading.Thread):
    """One stream of keyed requests: Predict on the agents in turn, then Feedback with the truth.

    Counts answers per (agent, version) so the demo can print the observed split; `scale`
    multiplies one feature of every row (the drift step sets it).
    """

    def __init__(
        self,
        stream: str,
        deployment: str,
        agents: Sequence[Target],
        X: np.ndarray,
        y: np.ndarray,
        feature: int,
        seed: int,
    ) -> None:
        super().__init__(name=f"traffic-{stream}", daemon=True)
        self.stream = stream
        self.deployment = deployment
        self.agents = agents
        self.X, self.y = X, y
        self.feature = feature
        self.scale = 1.0
        self.seed = seed
        self.rate = REQUESTS_PER_SECOND
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.counts: Counts = Counter()
        self.errors = 0
        self.last_error = ""

    def snapshot(self) -> tuple[Counts, int]:
        with self.lock:
            return Counter(self.counts), self.errors

    def run(self) -> None:
        rng = np.random.default_rng(self.seed)
        n_features = self.X.shape[1]
        next_at = time.monotonic()
        sent = 0
        while not self.halt.is_set():
            agent = self.agents[sent % len(self.agents)]
            sent += 1
            i = int(rng.integers(self.X.shape[0]))
            row = self.X[i].copy()
            row[self.feature] *= self.scale
            key = f"{self.stream}-patient-{int(rng.integers(PATIENTS))}"
            try:
                answer = agent.stub.Predict(
                    inference_pb2.PredictRequest(
                        deployment=self.deployment,
                        input=inference_pb2.Tensor(shape=[1, n_features], values=row.tolist()),
                        routing_key=key,
                    ),
                    timeout=10,
                )
                agent.stub.Feedback(
                    inference_pb2.FeedbackRequest(
                        deployment=self.deployment, request_id=answer.request_id, label=int(self.y[i])
                    ),
                    timeout=10,
                )
                with self.lock:
                    self.counts[(answer.agent or agent.name, answer.served_by.version)] += 1
            except grpc.RpcError as exc:
                with self.lock:
                    self.errors += 1
                    self.last_error = f"{agent.name}: {exc.code().name} {exc.details()}"
                if self.halt.wait(0.2):  # an agent going away: back off instead of spinning
                    break
            next_at += 1.0 / self.rate
            delay = next_at - time.monotonic()
            if delay > 0:
                if self.halt.wait(delay):
                    break
            else:
                next_at = time.monotonic()  # behind schedule: do not burst to catch up


class Streams:
    """The running traffic threads, their summed counts, and a mark to count from."""

    def __init__(self) -> None:
        self.threads: list[Traffic] = []
        self._mark: Counts = Counter()

    def start(self, threads: Sequence[Traffic]) -> None:
        self.threads.extend(threads)
        for thread in threads:
            thread.start()

    def counts(self) -> tuple[Counts, int]:
        total: Counts = Counter()
        errors = 0
        for thread in self.threads:
            counts, errs = thread.snapshot()
            total.update(counts)
            errors += errs
        return total, errors

    def mark(self) -> None:
        self._mark = self.counts()[0]

    def since_mark(self) -> Counts:
        now = self.counts()[0]
        now.subtract(self._mark)
        return +now  # drop zero / negative entries

    def last_error(self) -> str:
        return next((t.last_error for t in self.threads if t.last_error), "")

    def halt(self) -> None:
        for thread in self.threads:
            thread.halt.set()

    def stop(self, timeout: float) -> None:
        self.halt()
        for thread in self.threads:
            thread.join(timeout)


def split_text(counts: Counts, model: str) -> str:
    """'cancer:v1 90.2%, cancer:v2 9.8% of 1234' from (agent, version) counts."""
    by_version: Counter[str] = Counter()
    for (_, version), n in counts.items():
        by_version[version] += n
    total = sum(by_version.values())
    if not total:
        return "no answers"
    parts = [f"{model}:{v} {100 * n / total:.1f}%" for v, n in sorted(by_version.items())]
    return ", ".join(parts) + f" of {total}"


def agents_text(counts: Counts) -> str:
    """'demo-agent-1: v1 600 v2 60 | demo-agent-2: ...' from (agent, version) counts."""
    agents: dict[str, Counter[str]] = {}
    for (agent, version), n in counts.items():
        agents.setdefault(agent, Counter())[version] += n
    return " | ".join(
        f"{agent}: " + " ".join(f"{v} {n}" for v, n in sorted(versions.items()))
        for agent, versions in sorted(agents.items())
    )
