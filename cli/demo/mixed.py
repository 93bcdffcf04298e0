"""The demo's second story: an e-mail engagement model on mixed-type features (issue 14).

The data is generated here, deterministically (seeded numpy): one row per e-mail sent, with the
subscriber's `segment` and `device` (text), the `send_hour` and the subscriber's `opens_30d`
(numbers; about 8% of `opens_30d` missing), and whether the e-mail was "opened" or "ignored".
Lapsed subscribers open evening e-mails far more often than the rest, an interaction that
gradient boosting (v2) learns and logistic regression (v1) cannot. `sluice train` builds both
pipelines (imputer + scaler for numbers, one-hot for text), the control plane registers them
with their mixed-type baseline, v1 is deployed, and v2 runs as an experiment segmented on the
*feature* `segment=lapsed`: only lapsed subscribers' e-mails may reach it. The traffic goes
through the agents' record form (named feature values, `null` for a missing count), with the
true outcome sent back by class name.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from cli.demo.text import status_lines
from cli.demo.traffic import Target
from core.client import SluiceClient, batch_request, batch_results, predict_request
from protos import common_pb2, controlplane_pb2, inference_pb2

EMAIL_MODEL = "email"
EMAIL_DEPLOYMENT = "email-engagement"
EMAIL_EXPERIMENT = "email-lapsed"
SEGMENTS = ("new", "active", "lapsed")
DEVICES = ("mobile", "desktop", "tablet")
EMAIL_FEATURES = ("segment", "device", "send_hour", "opens_30d")
TRAINING_ROWS = 1200
EMAIL_REQUESTS_PER_SECOND = 10.0
SUBSCRIBERS = 5_000  # routing keys: sticky assignment per subscriber
EMAIL_SHARE = 50  # percent of lapsed subscribers' e-mails the challenger answers
BATCH_ROWS = 12
ACCURACY_WARNING = 0.65
ACCURACY_CRITICAL = 0.55
#: `sluice predict --features` for the e-mail model: one lapsed subscriber's evening e-mail
EMAIL_EXAMPLE = '{"segment": "lapsed", "device": "mobile", "send_hour": 20, "opens_30d": null}'


def email_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """n e-mails: segment, device, send_hour, opens_30d (None: unknown) and the outcome `label`."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(SEGMENTS, n, p=[0.25, 0.45, 0.30])
    device = rng.choice(DEVICES, n, p=[0.55, 0.35, 0.10])
    hour = rng.integers(0, 24, n)
    rate = np.select([segment == "new", segment == "active"], [3.0, 8.0], 0.7)
    opens = rng.poisson(rate).astype(np.float64)
    lapsed, evening = segment == "lapsed", hour >= 18
    score = 0.25 * opens + 0.5 * (device == "mobile") - 0.1 * np.abs(hour - 11) + 3.5 * (lapsed & evening)
    score += rng.normal(0, 0.6, n)
    label = np.where(score > 1.2, "opened", "ignored")
    missing = rng.random(n) < 0.08
    return [
        {
            "segment": str(segment[i]),
            "device": str(device[i]),
            "send_hour": float(hour[i]),
            "opens_30d": None if missing[i] else float(opens[i]),
            "label": str(label[i]),
        }
        for i in range(n)
    ]


def write_email_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """The rows as CSV, the outcome last (what `sluice train` takes as the label); empty = missing."""
    names = list(rows[0])
    lines = [",".join(names)]
    lines += [",".join("" if row[name] is None else str(row[name]) for name in names) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def experiment_config() -> controlplane_pb2.ExperimentConfig:
    """v2 beside v1 for lapsed subscribers only (a rule on the feature), held for a person."""
    return controlplane_pb2.ExperimentConfig(
        deployment=EMAIL_DEPLOYMENT,
        challenger=common_pb2.VersionRef(model=EMAIL_MODEL, version="v2"),
        traffic_percent=EMAIL_SHARE,
        metric="accuracy",
        min_samples=100,
        alpha=0.05,
        plan=[EMAIL_SHARE],
        hold_seconds=3600.0,
        segment_rules=[common_pb2.SegmentRule(attribute="feature.segment", values=["lapsed"])],
    )


class RecordTraffic(threading.Thread):
    """E-mails as records through the agents' Predict, then Feedback with the outcome by name.

    Counts answers per (segment, version) so the story can show that only lapsed subscribers'
    e-mails reach the challenger.
    """

    def __init__(self, agents: Sequence[Target], seed: int = 7) -> None:
        super().__init__(name="traffic-email", daemon=True)
        self.agents = agents
        self.rows = email_rows(4000, seed)
        self.seed = seed
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.errors = 0
        self.last_error = ""

    def snapshot(self) -> tuple[Counter[tuple[str, str]], int]:
        with self.lock:
            return Counter(self.counts), self.errors

    def run(self) -> None:
        rng = np.random.default_rng(self.seed)
        next_at = time.monotonic()
        sent = 0
        while not self.halt.is_set():
            agent = self.agents[sent % len(self.agents)]
            sent += 1
            row = self.rows[int(rng.integers(len(self.rows)))]
            record = {name: row[name] for name in EMAIL_FEATURES}
            key = f"subscriber-{int(rng.integers(SUBSCRIBERS))}"
            try:
                answer = agent.stub.Predict(
                    predict_request(EMAIL_DEPLOYMENT, records=[record], routing_key=key), timeout=10
                )
                agent.stub.Feedback(
                    inference_pb2.FeedbackRequest(
                        deployment=EMAIL_DEPLOYMENT, request_id=answer.request_id, class_label=row["label"]
                    ),
                    timeout=10,
                )
                with self.lock:
                    self.counts[(row["segment"], answer.served_by.version)] += 1
            except grpc.RpcError as exc:
                with self.lock:
                    self.errors += 1
                    self.last_error = f"{agent.name}: {exc.code().name} {exc.details()}"
                if self.halt.wait(0.2):
                    break
            next_at += 1.0 / EMAIL_REQUESTS_PER_SECOND
            delay = next_at - time.monotonic()
            if delay > 0:
                if self.halt.wait(delay):
                    break
            else:
                next_at = time.monotonic()

    def stop(self, timeout: float) -> None:
        self.halt.set()
        if self.is_alive():
            self.join(timeout)


def segment_split_text(counts: Counter[tuple[str, str]]) -> list[str]:
    """'lapsed: email:v1 51.0%, email:v2 49.0% of 200' per group: lapsed, then everyone else."""
    groups: dict[str, Counter[str]] = {"lapsed": Counter(), "new and active": Counter()}
    for (segment, version), n in counts.items():
        groups["lapsed" if segment == "lapsed" else "new and active"][version] += n
    lines = []
    for group, versions in groups.items():
        total = sum(versions.values())
        if not total:
            lines.append(f"{group}: no answers")
            continue
        parts = ", ".join(f"{EMAIL_MODEL}:{v} {100 * n / total:.1f}%" for v, n in sorted(versions.items()))
        lines.append(f"{group} subscribers: {parts} of {total}")
    return lines


def batch_split(agent: Target, seed: int = 11) -> tuple[list[str], list[str]]:
    """One PredictBatch of BATCH_ROWS records: each row's segment and the version that answered it."""
    rows = email_rows(BATCH_ROWS, seed)
    rows[0]["segment"], rows[1]["segment"] = "lapsed", "active"  # both sides, whatever the draw
    records = [{name: row[name] for name in EMAIL_FEATURES} for row in rows]
    keys = [f"subscriber-{i}" for i in range(BATCH_ROWS)]
    answer = agent.stub.PredictBatch(batch_request(EMAIL_DEPLOYMENT, keys=keys, records=records), timeout=30)
    versions = [ref.split(":")[1] for ref in batch_results(answer).row_versions()]
    return [str(row["segment"]) for row in rows], versions


class EmailStory:
    """The second story's steps; `session.Demo` calls them between the first story's steps."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.trained: list[tuple[str, str, Any]] = []
        self.traffic: RecordTraffic | None = None

    def train(self, say: Callable[[str], None]) -> None:
        from controlplane.training import train_command

        data = write_email_csv(self.workdir / "email.csv", email_rows(TRAINING_ROWS, 2026))
        say(
            f"training 2 versions of an e-mail engagement model on {TRAINING_ROWS} generated e-mails "
            "(segment and device as text, send hour and opens in 30 days as numbers, some opens unknown)"
        )
        for version, kind, story in (
            ("v1", "logreg", "logistic regression: the first release"),
            ("v2", "gbm", "gradient boosting: sees that lapsed subscribers open evening e-mails"),
        ):
            result = train_command(data, self.workdir / f"email-{version}.onnx", None, kind)
            self.trained.append((version, story, result))

    def register(self, client: SluiceClient, say: Callable[[str], None]) -> None:
        for version, story, result in self.trained:
            registered = client.register_version(EMAIL_MODEL, version, result.out, result.baseline, description=story)
            inputs = ", ".join(f"{i.name} {i.dtype}" for i in registered.inputs)
            say(
                f"registered {EMAIL_MODEL}:{version} ({story}; holdout accuracy {result.holdout_accuracy:.3f}; "
                f"inputs {inputs})"
            )
        deployment = client.deploy(EMAIL_DEPLOYMENT, f"{EMAIL_MODEL}:v1", reason="demo: the e-mail model")
        say(f"deployed {EMAIL_MODEL}:v1 to {EMAIL_DEPLOYMENT} at 100% (generation {deployment.generation})")
        # Whether an e-mail gets opened is hard to predict: the e-mail team judges accuracy on its
        # own scale (`sluice policy set`), not on the defaults made for the clinics' model.
        client.set_policy(
            controlplane_pb2.SetPolicyRequest(
                deployment=EMAIL_DEPLOYMENT,
                thresholds=controlplane_pb2.PolicyThresholds(
                    accuracy_warning=ACCURACY_WARNING, accuracy_critical=ACCURACY_CRITICAL
                ),
                reason="demo: opens are hard to predict",
            )
        )
        say(
            f"policy of {EMAIL_DEPLOYMENT}: accuracy warning below {ACCURACY_WARNING:g}, "
            f"critical below {ACCURACY_CRITICAL:g} (opens are hard to predict)"
        )

    def start(self, client: SluiceClient, agents: Sequence[Target], say: Callable[[str], None]) -> None:
        client.start_experiment(EMAIL_EXPERIMENT, experiment_config(), reason="demo: v2 for lapsed subscribers first")
        say(
            f"experiment {EMAIL_EXPERIMENT}: {EMAIL_MODEL}:v2 answers {EMAIL_SHARE}% of the e-mails to lapsed "
            f"subscribers only (--segment feature.segment=lapsed, a rule on the model's own input), "
            "held for a person"
        )
        self.traffic = RecordTraffic(agents)
        self.traffic.start()
        say(
            f"traffic: e-mails at {EMAIL_REQUESTS_PER_SECOND:.0f} req/s through the record form "
            '(features by name, e.g. {"segment": "lapsed", "device": "mobile", "send_hour": 20, '
            '"opens_30d": null}), keyed by subscriber, the outcome sent back by name'
        )

    def report(self, client: SluiceClient, agents: Sequence[Target], say: Callable[[str], None]) -> None:
        assert self.traffic is not None
        counts, _ = self.traffic.snapshot()
        say(f"{EMAIL_DEPLOYMENT}, the e-mails answered so far (the weights apply inside the segment):")
        for line in segment_split_text(counts):
            say(f"  {line}")
        segments, versions = batch_split(agents[0])
        rows = " ".join(f"{s}->{v}" for s, v in zip(segments, versions, strict=True))
        say(f"  one PredictBatch of {BATCH_ROWS} records, routed row by row: {rows}")
        (status,) = client.status(EMAIL_DEPLOYMENT)
        for line in status_lines(EMAIL_DEPLOYMENT, status):
            say(f"  {line}")

    def errors(self) -> tuple[int, str]:
        if self.traffic is None:
            return 0, ""
        _, errors = self.traffic.snapshot()
        return errors, self.traffic.last_error

    def stop(self, timeout: float) -> None:
        if self.traffic is not None:
            self.traffic.stop(timeout)
