"""The story `sluice demo` and `make demo` tell, one `[demo] ...` line per step.

It runs real processes on this machine (a control plane on a SQLite file, two serving agents),
trains models on scikit-learn's bundled breast-cancer data and drives the product through its
own surfaces only: the typed client for the control plane, the agents' `sluice.v1.Inference`
service for predictions and label feedback, the CLI for `sluice history`, and the TUI.

The story, one `[demo] ...` line per step:

1. a control plane with short clocks (config written here) and two agents, in sync;
2. keyed traffic from two "clinics" through both agents, with the true label of every answer;
3. one clinic's inputs drift (mean texture 40% higher): health turns critical, a drift alert opens;
4. a better challenger ramps 10 -> 50 -> 100% and is promoted automatically; a broken challenger
   (always answers one class) is rolled back at its first gate, with an alert;
5. the deployment's history, then one more experiment left in progress, and traffic that keeps
   flowing for `--duration` seconds (headless) or until the TUI is closed.

Beside it, from step 4 on, a second story (`mixed.EmailStory`): an e-mail engagement model on
mixed-type features, trained on generated data, its traffic in the record form, and an experiment
segmented on a feature (only lapsed subscribers reach the challenger), reported before step 5.

Everything started is stopped on exit, on Ctrl-C / SIGTERM and on errors (`cluster`, on the
shared `supervisor`); the traffic is `traffic`, the wording of what it sees `text`. A failure
prints one line and where the logs are.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from typing import Any

from cli.demo.cluster import PYTHON, Cluster, DemoError, child_env
from cli.demo.mixed import EmailStory
from cli.demo.text import arms_text, clip, experiment_word, previous_percent, status_lines
from cli.demo.traffic import REQUESTS_PER_SECOND, Streams, Traffic, agents_text, split_text
from core.client import SluiceClient
from core.vocabulary import Health
from protos import common_pb2, controlplane_pb2

MODEL = "cancer"
DEPLOYMENT = "cancer-web"
# The weak first release looks at two columns only; every version takes all 30 (same schema).
WEAK_FEATURES = ("mean_radius", "mean_texture")
DRIFT_FEATURE = "mean_texture"
DRIFT_SCALE = 1.5  # clinic B's new scanner: PSI about 0.6 with half of the traffic drifted
HOLD_SECONDS = 3.0
MIN_SAMPLES = 40  # labels per arm; v1 ~0.87 vs v2 ~0.98 accuracy is decided at this size
PLAN = [10, 50, 100]
LONG_HOLD_SECONDS = 600.0
HEADLESS_DURATION = 10.0

# Short clocks so that the whole story takes well under a minute.
CONFIG = f"""\
# Written by `sluice demo`: short clocks so that the story takes well under a minute.
[agents]
heartbeat_seconds = 0.5
lost_after_missed = 4

[rollout]
tick_seconds = 0.5
default_hold_seconds = {HOLD_SECONDS}

[health]
window_seconds = 8.0
min_samples = {MIN_SAMPLES}
# Enough rows that sampling noise stays far below PSI 0.1 on every one of the 30 features.
min_drift_samples = 500

[alerts]
evaluate_seconds = 1.0
resolve_after = 3
"""


class Scenario:
    """The story's steps, told on a running cluster (`session.Demo` starts and stops it)."""

    client: SluiceClient
    cluster: Cluster
    streams: Streams
    address: str
    sluice: str  # how to call the CLI from another terminal
    feature_names: list[str]
    email: EmailStory  # the second story, on a mixed-type model (cli/demo/mixed.py)

    def say(self, text: str) -> None:
        print(f"[demo] {text}", flush=True)

    def cli(self, *args: str) -> str:
        return " ".join([self.sluice, "--controlplane", self.address, *args])

    def scenario(self) -> None:
        self.start_traffic()
        self.drift()
        # After the drift step, which needs the clinics' full rate on a busy machine.
        self.email.start(self.client, self.cluster.agents, self.say)
        self.better_challenger()
        self.broken_challenger()
        self.email.report(self.client, self.cluster.agents, self.say)
        self.history()
        self.experiment_in_progress()

    # -- traffic --

    def start_traffic(self) -> None:
        from controlplane.sample_data import breast_cancer_arrays

        X, y = breast_cancer_arrays()
        feature = self.feature_names.index(DRIFT_FEATURE)
        agents = self.cluster.agents
        self.streams.start(
            [
                Traffic(stream, DEPLOYMENT, agents, X, y, feature, seed)
                for seed, stream in enumerate(("clinic-a", "clinic-b"))
            ]
        )
        self.say(
            f"traffic: 2 streams (clinic-a, clinic-b) x {REQUESTS_PER_SECOND:.0f} req/s, keyed by patient, "
            "through both agents' sluice.v1.Inference/Predict, true labels sent back with Feedback"
        )
        self.mark()
        self.sleep(3.0)
        self.report_split("observed")

    def mark(self) -> None:
        self.streams.mark()

    def report_split(self, what: str) -> None:
        counts = self.streams.since_mark()
        self.say(f"{what}: {split_text(counts, MODEL)} answers")
        self.say(f"  served by {agents_text(counts)}")
        self.mark()

    def sleep(self, seconds: float) -> None:
        """Wait while the traffic flows, failing early when a child process dies."""
        deadline = time.monotonic() + seconds
        while True:
            self.check_children()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(0.25, remaining))

    def check_children(self) -> None:
        self.cluster.check_children()

    def wait_until(self, what: str, timeout: float, probe: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_children()
            result = probe()
            if result:
                return result
            time.sleep(0.25)
        _, errors = self.streams.counts()
        hint = f"; {errors} traffic errors, last: {self.streams.last_error()}" if errors else ""
        raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}{hint}")

    # -- health and drift --

    def drift(self) -> None:
        self.say(
            f"drift: clinic-b gets a new scanner; its {DRIFT_FEATURE.replace('_', ' ')} reads "
            f"{100 * (DRIFT_SCALE - 1):.0f}% higher from now on"
        )
        self.streams.threads[1].scale = DRIFT_SCALE

        def drift_alert(severity: int) -> controlplane_pb2.Alert | None:
            return next(
                (
                    a
                    for a in self.client.alerts(deployment=DEPLOYMENT)
                    if a.kind == "drift" and DRIFT_FEATURE in a.message and a.severity >= severity
                ),
                None,
            )

        alert = self.wait_until(f"a drift alert on {DRIFT_FEATURE}", 60, lambda: drift_alert(common_pb2.HEALTH_WARNING))
        # It opens as a warning while the window fills with drifted rows, then escalates.
        with contextlib.suppress(DemoError):
            alert = self.wait_until("critical drift", 20, lambda: drift_alert(common_pb2.HEALTH_CRITICAL))
        self.print_status()
        self.say(f"alert #{alert.id} {Health.from_wire(alert.severity)} {alert.kind}: {alert.message}")
        self.report_split("traffic meanwhile")

    def print_status(self) -> None:
        (status,) = self.client.status(DEPLOYMENT)
        for line in status_lines(DEPLOYMENT, status):
            self.say(line)

    # -- experiments --

    def experiment(
        self, name: str, challenger: str, reason: str, *, hold: float, guardrails: list[tuple[str, float]]
    ) -> controlplane_pb2.Experiment:
        config = controlplane_pb2.ExperimentConfig(
            deployment=DEPLOYMENT,
            challenger=common_pb2.VersionRef(model=MODEL, version=challenger),
            traffic_percent=PLAN[0],
            metric="accuracy",
            guardrails=[controlplane_pb2.Guardrail(metric=m, max_degradation=d) for m, d in guardrails],
            min_samples=MIN_SAMPLES,
            alpha=0.05,
            plan=PLAN,
            hold_seconds=hold,
            auto_promote=True,
        )
        started = self.client.start_experiment(name, config, reason=reason)
        self.say(
            f"experiment {name}: {MODEL}:{challenger} vs champion {started.champion.model}:"
            f"{started.champion.version}, plan {','.join(map(str, PLAN))}% with {hold:g} s holds, "
            f"gates on accuracy (min {MIN_SAMPLES} labels per arm), auto-promote; now at {started.current_percent}%"
        )
        self.mark()
        return started

    def follow(self, name: str, timeout: float) -> controlplane_pb2.Experiment:
        """Print every step of the rollout as it happens; returns the ended experiment."""
        seen = (controlplane_pb2.EXPERIMENT_RUNNING, 0)
        resumes = 2
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_children()
            e = self.client.get_experiment(name)
            if e.state == controlplane_pb2.EXPERIMENT_PAUSED and resumes:
                # A pause waits for a person (e.g. a sample ratio mismatch while a very busy
                # machine lags behind the new weights): the demo plays that person once or twice.
                resumes -= 1
                self.say(f"  paused for a person: {clip(e.status_reason, 160)}")
                self.client.experiment_action("ResumeExperiment", name, reason="demo: resumed after a look")
                self.say("  resumed by the demo, as an operator would after checking routing")
                seen = (controlplane_pb2.EXPERIMENT_RUNNING, e.step_index)
                continue
            if (e.state, e.step_index) != seen:
                self.report_split(f"  observed at {previous_percent(e, seen[1])}%")
                seen = (e.state, e.step_index)
                if e.state == controlplane_pb2.EXPERIMENT_RUNNING:
                    self.say(f"  gate passed ({arms_text(e)}): now at {e.current_percent}%")
                else:
                    return e
            time.sleep(0.25)
        status = self.cli("experiment", "status", name)
        raise DemoError(f"experiment {name} did not finish within {timeout:.0f} s; see `{status}`")

    def better_challenger(self) -> None:
        name = "v2-rollout"
        self.experiment(
            name,
            "v2",
            "v2 sees all 30 features; v1 only two",
            hold=HOLD_SECONDS,
            guardrails=[("error_rate", 0.05)],
        )
        done = self.follow(name, 120)
        if done.state != controlplane_pb2.EXPERIMENT_PROMOTED:
            raise DemoError(
                f"experiment {name} ended {experiment_word(done.state)} instead of promoted: {done.status_reason}"
            )
        self.say(f"  promoted automatically: {arms_text(done)}")
        self.say(f"  {MODEL}:v2 is the champion of {DEPLOYMENT} at 100% ({done.analysis.decision})")
        self.wait_synced()

    def broken_challenger(self) -> None:
        name = "v3-rollout"
        self.experiment(
            name,
            "v3",
            "a new build (which, unknown to us, always answers one class)",
            hold=HOLD_SECONDS,
            guardrails=[("accuracy", 0.05), ("error_rate", 0.05)],
        )
        done = self.follow(name, 120)
        if done.state != controlplane_pb2.EXPERIMENT_ROLLED_BACK:
            raise DemoError(
                f"experiment {name} ended {experiment_word(done.state)} instead of rolled back: {done.status_reason}"
            )
        first_gate = done.status_reason.split(" | ")[0]
        self.say(f"  rolled back automatically at its first gate ({done.current_percent}%): {first_gate}")
        alert = next((a for a in self.client.alerts(deployment=DEPLOYMENT) if a.kind == "rollout_gate_failed"), None)
        if alert is not None:
            self.say(f"  alert #{alert.id} {Health.from_wire(alert.severity)} {alert.kind}: {clip(alert.message, 160)}")
        self.wait_synced()

    def wait_synced(self) -> None:
        sync = self.client.wait_for_sync(DEPLOYMENT, timeout=30)
        if not sync.in_sync:
            lagging = ", ".join(sync.lagging_agents)
            raise DemoError(f"agents did not apply generation {sync.generation} (lagging: {lagging})")
        self.say(f"  agents in sync at generation {sync.generation}: {', '.join(sorted(sync.synced_agents))}")

    def history(self) -> None:
        self.say(f"the story so far, as `sluice history {DEPLOYMENT}` tells it:")
        result = subprocess.run(
            [PYTHON, "-m", "cli", "--controlplane", self.address, "history", DEPLOYMENT],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            raise DemoError(f"`sluice history {DEPLOYMENT}` failed: {result.stderr.strip()[:300]}")
        for line in result.stdout.splitlines():
            self.say(f"  {clip(line, 200)}")  # the full reasons: `sluice history` itself

    def experiment_in_progress(self) -> None:
        name = "v4-canary"
        config = controlplane_pb2.ExperimentConfig(
            deployment=DEPLOYMENT,
            challenger=common_pb2.VersionRef(model=MODEL, version="v4"),
            traffic_percent=PLAN[0],
            metric="accuracy",
            guardrails=[controlplane_pb2.Guardrail(metric="error_rate", max_degradation=0.05)],
            min_samples=MIN_SAMPLES,
            alpha=0.05,
            plan=PLAN,
            hold_seconds=LONG_HOLD_SECONDS,
        )
        self.client.start_experiment(name, config, reason="demo: an experiment to watch and act on")
        self.say(
            f"experiment {name}: {MODEL}:v4 (gradient boosting) at {PLAN[0]}%, holding "
            f"{LONG_HOLD_SECONDS / 60:.0f} min per step, left running for you"
        )
