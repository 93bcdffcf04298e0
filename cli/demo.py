"""The demo scenario behind `sluice demo` and `make demo`.

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

Everything started is stopped on exit, on Ctrl-C / SIGTERM and on errors: children run in their
own sessions and get SIGTERM, then SIGKILL. A failure prints one line and where the logs are.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
import numpy as np

from core.client import ClientError, SluiceClient
from protos import common_pb2, controlplane_pb2, inference_pb2, inference_pb2_grpc

PYTHON = sys.executable
MODEL = "cancer"
DEPLOYMENT = "cancer-web"
# The weak first release looks at two columns only; every version takes all 30 (same schema).
WEAK_FEATURES = ("mean_radius", "mean_texture")
DRIFT_FEATURE = "mean_texture"
DRIFT_SCALE = 1.5  # clinic B's new scanner: PSI about 0.6 with half of the traffic drifted
REQUESTS_PER_SECOND = 50.0  # per traffic stream; two streams
PATIENTS = 10_000  # routing keys per stream: sticky assignment per patient
HOLD_SECONDS = 3.0
MIN_SAMPLES = 40  # labels per arm; v1 ~0.87 vs v2 ~0.98 accuracy is decided at this size
PLAN = [10, 50, 100]
LONG_HOLD_SECONDS = 600.0
HEADLESS_DURATION = 10.0
STOP_TIMEOUT = 10.0
MARKER = ".sluice-demo"
# Environment the demo's own loopback cluster must not inherit (it runs plaintext, no tokens).
FOREIGN_ENV = (
    "SLUICE_TOKEN",
    "SLUICE_TOKENS",
    "SLUICE_TLS_CA",
    "SLUICE_TLS_CERT",
    "SLUICE_TLS_KEY",
    "SLUICE_TLS_CLIENT_CA",
    "SLUICE_DB",
    "SLUICE_LISTEN",
    "SLUICE_ARTIFACTS",
    "SLUICE_AGENT_LISTEN",
    "SLUICE_CONTROLPLANE",
)

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

STATE_NAMES = {
    controlplane_pb2.EXPERIMENT_RUNNING: "running",
    controlplane_pb2.EXPERIMENT_PAUSED: "paused",
    controlplane_pb2.EXPERIMENT_STOPPED: "stopped",
    controlplane_pb2.EXPERIMENT_ABORTED: "aborted",
    controlplane_pb2.EXPERIMENT_ROLLED_BACK: "rolled back",
    controlplane_pb2.EXPERIMENT_PROMOTED: "promoted",
    controlplane_pb2.EXPERIMENT_COMPLETED: "completed",
}
HEALTH_NAMES = {
    common_pb2.HEALTH_UNKNOWN: "unknown",
    common_pb2.HEALTH_HEALTHY: "healthy",
    common_pb2.HEALTH_WARNING: "WARNING",
    common_pb2.HEALTH_CRITICAL: "CRITICAL",
}
ROLE_NAMES = {
    common_pb2.ROLE_CHAMPION: "champion",
    common_pb2.ROLE_CHALLENGER: "challenger",
    common_pb2.ROLE_SHADOW: "shadow",
}


class DemoError(Exception):
    """A step of the demo failed; the message says which and why (no traceback for users)."""


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int, taken: set[int] | None = None) -> int:
    """`preferred` when free (and not already handed out), else any free port."""
    taken = taken if taken is not None else set()
    if 0 < preferred < 65536 and preferred not in taken and port_is_free(preferred):
        port = preferred
    else:
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in taken:
                break
    taken.add(port)
    return port


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Process:
    """A child `sluice ...` process with its log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("w")
        try:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "cli", *args],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: Ctrl-C reaches the demo only
                env=child_env(),
            )
        except BaseException:
            self._log.close()
            raise

    def wait_for(self, pattern: str, timeout: float = 120.0) -> re.Match[str]:
        """The first log line matching `pattern`; fails when the process exits or times out."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            content = self.log_path.read_text(errors="replace")
            for line in content.splitlines():
                if match := regex.search(line):
                    return match
            if self.proc.poll() is not None:
                last = next((ln for ln in reversed(content.splitlines()) if ln.strip()), "no output")
                raise DemoError(
                    f"{self.name} exited with code {self.proc.returncode} ({last.strip()[:200]}); "
                    f"see {self.log_path}"
                )
            time.sleep(0.1)
        raise DemoError(f"{self.name} did not start within {timeout:.0f} s; see {self.log_path}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """To its whole process group (its own session), while it runs."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def close(self) -> None:
        self._log.close()


def stop_all(processes: list[Process]) -> None:
    """SIGTERM to every process at once, SIGKILL to those still there after STOP_TIMEOUT."""
    for process in processes:
        process.signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.proc.wait(STOP_TIMEOUT)
        process.close()


@dataclass
class Agent:
    """A running agent as the demo's traffic sees it."""

    name: str
    address: str
    metrics_port: int
    process: Process
    channel: grpc.Channel
    stub: inference_pb2_grpc.InferenceStub


class Traffic(threading.Thread):
    """One stream of keyed requests: Predict on the agents in turn, then Feedback with the truth.

    Counts answers per (agent, version) so the demo can print the observed split; `scale`
    multiplies one feature of every row (the drift step sets it).
    """

    def __init__(
        self, stream: str, agents: list[Agent], X: np.ndarray, y: np.ndarray, feature: int, seed: int
    ) -> None:
        super().__init__(name=f"traffic-{stream}", daemon=True)
        self.stream = stream
        self.agents = agents
        self.X, self.y = X, y
        self.feature = feature
        self.scale = 1.0
        self.seed = seed
        self.rate = REQUESTS_PER_SECOND
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
                        deployment=DEPLOYMENT,
                        input=inference_pb2.Tensor(shape=[1, n_features], values=row.tolist()),
                        routing_key=key,
                    ),
                    timeout=10,
                )
                agent.stub.Feedback(
                    inference_pb2.FeedbackRequest(
                        deployment=DEPLOYMENT, request_id=answer.request_id, label=int(self.y[i])
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


def split_text(counts: Counter[tuple[str, str]]) -> str:
    """'cancer:v1 90.2%, cancer:v2 9.8% of 1234' from (agent, version) counts."""
    by_version: Counter[str] = Counter()
    for (_, version), n in counts.items():
        by_version[version] += n
    total = sum(by_version.values())
    if not total:
        return "no answers"
    parts = [f"{MODEL}:{v} {100 * n / total:.1f}%" for v, n in sorted(by_version.items())]
    return ", ".join(parts) + f" of {total}"


def agents_text(counts: Counter[tuple[str, str]]) -> str:
    """'demo-agent-1: v1 600 v2 60 | demo-agent-2: ...' from (agent, version) counts."""
    agents: dict[str, Counter[str]] = {}
    for (agent, version), n in counts.items():
        agents.setdefault(agent, Counter())[version] += n
    return " | ".join(
        f"{agent}: " + " ".join(f"{v} {n}" for v, n in sorted(versions.items()))
        for agent, versions in sorted(agents.items())
    )


def _fmt_metric(value: float, digits: int = 3) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


class Demo:
    client: SluiceClient  # set by run() once the control plane is being started

    def __init__(
        self, workdir: Path, *, headless: bool, duration: float | None, port: int, token: str = ""
    ) -> None:
        self.workdir = workdir.resolve()
        self.logs = self.workdir / "logs"
        self.headless = headless
        self.duration = duration if duration is not None else (HEADLESS_DURATION if headless else None)
        self.ports: set[int] = set()
        self.port = pick_port(port, self.ports)
        self.requested_port = port
        self.address = f"127.0.0.1:{self.port}"
        self.token = token
        self.processes: list[Process] = []
        self.agents: list[Agent] = []
        self.streams: list[Traffic] = []
        self.controlplane: Process | None = None
        self.sluice = _sluice_command()
        self._mark: Counter[tuple[str, str]] = Counter()
        self._launched: list[tuple[str, int, Process]] = []

    # ---- output ----

    def say(self, text: str) -> None:
        print(f"[demo] {text}", flush=True)

    def cli(self, *args: str) -> str:
        return " ".join([self.sluice, "--controlplane", self.address, *args])

    # ---- lifecycle ----

    def run(self) -> int:
        """The whole demo; returns the exit code. Never leaves a child process behind."""
        for name in FOREIGN_ENV:
            os.environ.pop(name, None)  # the demo's client and TUI talk to its own cluster
        previous = _install_signal_handlers()
        code = 0
        try:
            self.prepare_workdir()
            with self.running():
                self.start_controlplane()
                with SluiceClient(self.address, token=self.token) as client:
                    self.client = client
                    self.prepare_models()
                    self.start_agents()
                    self.scenario()
                    self.finish()
        except KeyboardInterrupt:
            print("[demo] interrupted; everything it started is stopped", file=sys.stderr, flush=True)
            code = 130
        except Exception as exc:  # noqa: BLE001 - one clear line for people; the traceback goes to the log
            self._log_traceback()
            message = str(exc) if isinstance(exc, DemoError) else _describe(exc)
            print(f"[demo] failed: {message} (logs: {self.logs})", file=sys.stderr, flush=True)
            code = 1
        finally:
            _restore_signal_handlers(previous)
        return code

    def prepare_workdir(self) -> None:
        """A fresh workdir, but never wipe a directory the demo did not create."""
        if self.workdir.exists():
            if not self.workdir.is_dir():
                raise DemoError(f"{self.workdir} is not a directory; pass another --workdir")
            # Earlier demos left no marker, only their database and logs.
            made_by_demo = (self.workdir / MARKER).exists() or (
                (self.workdir / "sluice.db").is_file() and (self.workdir / "logs").is_dir()
            )
            if any(self.workdir.iterdir()) and not made_by_demo:
                raise DemoError(
                    f"{self.workdir} is not empty and was not made by `sluice demo`; "
                    "pass another --workdir (the demo wipes its workdir at start)"
                )
            shutil.rmtree(self.workdir)
        self.logs.mkdir(parents=True)
        (self.workdir / MARKER).write_text("made by `sluice demo`; wiped at its next start\n")

    def _log_traceback(self) -> None:
        with contextlib.suppress(OSError):
            self.logs.mkdir(parents=True, exist_ok=True)
            with (self.logs / "demo.log").open("a") as handle:
                handle.write(traceback.format_exc())

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        try:
            yield
        finally:
            self.stop_everything()

    def stop_everything(self) -> None:
        # Interrupts while cleaning up are ignored: a half-stopped demo is the worst outcome.
        with _signals_deferred():
            for stream in self.streams:
                stream.halt.set()
            for stream in self.streams:
                stream.join(STOP_TIMEOUT)
            for agent in self.agents:
                agent.channel.close()
            stop_all(self.processes)
            if self.processes:
                self.say(f"stopped {len(self.processes)} process(es); logs and data stay in {self.workdir}")
            self.processes.clear()

    def start(self, name: str, args: list[str]) -> Process:
        process = Process(name, args, self.logs)
        self.processes.append(process)
        return process

    # ---- steps ----

    def start_controlplane(self) -> None:
        if self.requested_port and self.port != self.requested_port:
            self.say(f"port {self.requested_port} is taken; using {self.port}")
        self.say(f"starting a control plane on {self.address}; the demo's files go to {self.workdir}")
        config = self.workdir / "controlplane.toml"
        config.write_text(CONFIG)
        self.controlplane = self.start(
            "controlplane",
            [
                "controlplane",
                "--listen",
                self.address,
                "--db",
                f"sqlite:///{self.workdir / 'sluice.db'}",
                "--artifacts",
                str(self.workdir / "artifacts"),
                "--config",
                str(config),
                "--metrics-port",
                str(pick_port(self.port + 1, self.ports)),
            ],
        )
        # Not waited for here: it starts while the models train.

    def prepare_models(self) -> None:
        from controlplane.training import (
            breast_cancer_feature_names,
            train_command,
            write_breast_cancer_csv,
        )

        data = self.workdir / "breast_cancer.csv"
        write_breast_cancer_csv(data)
        names = breast_cancer_feature_names()
        self.feature_names = names
        self.say("training 4 versions on scikit-learn's breast-cancer data (569 rows, 30 features)")
        weak = [names.index(n) for n in WEAK_FEATURES]
        plans = [
            ("v1", "logreg", weak, f"logistic regression on {' and '.join(WEAK_FEATURES)} only: the first release"),
            ("v2", "logreg", None, "logistic regression on all 30 features: the better challenger"),
            ("v3", "constant", None, "always answers the most frequent class: a broken build"),
            ("v4", "gbm", None, "gradient boosting: the next candidate"),
        ]
        trained = []
        for version, kind, only, story in plans:
            result = train_command(
                data, self.workdir / f"cancer-{version}.onnx", None, kind, None, 0, only_features=only
            )
            trained.append((version, story, result))
        assert self.controlplane is not None
        self.controlplane.wait_for(r"listening on")
        self.say(
            f"control plane on {self.address} (SQLite {self.workdir / 'sluice.db'}, "
            f"config {self.workdir / 'controlplane.toml'})"
        )
        self.launch_agents()  # they start up while the versions are registered
        for version, story, result in trained:
            registered = self.client.register_version(
                MODEL,
                version,
                result.out,
                result.baseline,
                description=story,
                feature_names=names,
            )
            self.say(
                f"registered {MODEL}:{version} ({story}; holdout accuracy {result.holdout_accuracy:.3f}, "
                f"sha256 {registered.sha256[:12]})"
            )
        deployment = self.client.deploy(DEPLOYMENT, f"{MODEL}:v1", reason="demo: first release")
        self.say(f"deployed {MODEL}:v1 to {DEPLOYMENT} at 100% (generation {deployment.generation})")

    def launch_agents(self) -> None:
        for i in (1, 2):
            name = f"demo-agent-{i}"
            listen = pick_port(self.port + 100 + 10 * (i - 1), self.ports)
            metrics = pick_port(listen + 1, self.ports)
            process = self.start(
                name,
                [
                    "agent",
                    "--controlplane",
                    self.address,
                    "--listen",
                    f"127.0.0.1:{listen}",
                    "--name",
                    name,
                    "--cache",
                    str(self.workdir / name),
                    "--metrics-port",
                    str(metrics),
                ],
            )
            self._launched.append((name, metrics, process))

    def start_agents(self) -> None:
        """Wait until both agents listen, are connected and have applied the deployment."""
        for name, metrics, process in self._launched:
            match = process.wait_for(r"sluice agent (\S+) listening on (\S+)")
            address = match.group(2)
            channel = grpc.insecure_channel(address)
            self.agents.append(
                Agent(name, address, metrics, process, channel, inference_pb2_grpc.InferenceStub(channel))
            )
        names = {agent.name for agent in self.agents}

        def synced() -> controlplane_pb2.WaitForSyncResponse | None:
            sync = self.client.wait_for_sync(DEPLOYMENT, timeout=5)
            return sync if sync.in_sync and names <= set(sync.synced_agents) else None

        sync = self.wait_until("both agents to connect and apply the deployment", 60, synced)
        for agent in self.agents:
            self.say(
                f"agent {agent.name} serving on {agent.address} (metrics :{agent.metrics_port}), "
                f"in sync at generation {sync.generation}"
            )

    def scenario(self) -> None:
        self.start_traffic()
        self.drift()
        self.better_challenger()
        self.broken_challenger()
        self.history()
        self.experiment_in_progress()

    # -- traffic --

    def start_traffic(self) -> None:
        from controlplane.training import breast_cancer_arrays

        X, y = breast_cancer_arrays()
        feature = self.feature_names.index(DRIFT_FEATURE)
        for seed, stream in enumerate(("clinic-a", "clinic-b")):
            self.streams.append(Traffic(stream, self.agents, X, y, feature, seed))
        for stream in self.streams:
            stream.start()
        self.say(
            f"traffic: 2 streams (clinic-a, clinic-b) x {REQUESTS_PER_SECOND:.0f} req/s, keyed by patient, "
            "through both agents' sluice.v1.Inference/Predict, true labels sent back with Feedback"
        )
        self.mark()
        self.sleep(3.0)
        self.report_split("observed")

    def counts(self) -> tuple[Counter[tuple[str, str]], int]:
        total: Counter[tuple[str, str]] = Counter()
        errors = 0
        for stream in self.streams:
            counts, errs = stream.snapshot()
            total.update(counts)
            errors += errs
        return total, errors

    def mark(self) -> None:
        self._mark = self.counts()[0]

    def since_mark(self) -> Counter[tuple[str, str]]:
        now = self.counts()[0]
        now.subtract(self._mark)
        return +now  # drop zero / negative entries

    def report_split(self, what: str) -> None:
        counts = self.since_mark()
        self.say(f"{what}: {split_text(counts)} answers")
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
        for process in self.processes:
            if not process.alive():
                raise DemoError(
                    f"{process.name} exited unexpectedly with code {process.proc.returncode}; see {process.log_path}"
                )

    def wait_until(self, what: str, timeout: float, probe: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_children()
            result = probe()
            if result:
                return result
            time.sleep(0.25)
        _, errors = self.counts()
        hint = f"; {errors} traffic errors, last: {self.last_error()}" if errors else ""
        raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}{hint}")

    def last_error(self) -> str:
        return next((s.last_error for s in self.streams if s.last_error), "")

    # -- health and drift --

    def drift(self) -> None:
        self.say(
            f"drift: clinic-b gets a new scanner; its {DRIFT_FEATURE.replace('_', ' ')} reads "
            f"{100 * (DRIFT_SCALE - 1):.0f}% higher from now on"
        )
        self.streams[1].scale = DRIFT_SCALE

        def drift_alert(severity: int) -> controlplane_pb2.Alert | None:
            return next(
                (
                    a
                    for a in self.client.alerts(deployment=DEPLOYMENT)
                    if a.kind == "drift" and DRIFT_FEATURE in a.message and a.severity >= severity
                ),
                None,
            )

        alert = self.wait_until(
            f"a drift alert on {DRIFT_FEATURE}", 60, lambda: drift_alert(common_pb2.HEALTH_WARNING)
        )
        # It opens as a warning while the window fills with drifted rows, then escalates.
        with contextlib.suppress(DemoError):
            alert = self.wait_until("critical drift", 20, lambda: drift_alert(common_pb2.HEALTH_CRITICAL))
        self.print_status()
        self.say(
            f"alert #{alert.id} {HEALTH_NAMES[alert.severity].lower()} {alert.kind}: {alert.message}"
        )
        self.report_split("traffic meanwhile")

    def print_status(self) -> None:
        (status,) = self.client.status(DEPLOYMENT)
        self.say(
            f"status {DEPLOYMENT}: {HEALTH_NAMES[status.health]}, generation {status.deployment.generation}, "
            f"agents in sync {status.agents_in_sync}/{status.agents_total}, "
            f"{status.requests_per_second:.0f} req/s, open alerts {status.open_alerts}"
        )
        for v in status.versions:
            top = max(v.drift, key=lambda d: d.psi, default=None)
            drift = f", top drift psi {top.psi:.2f} {top.feature}" if top is not None else ""
            self.say(
                f"  {v.version.model}:{v.version.version} {ROLE_NAMES.get(v.role, '-')} {v.weight}% "
                f"{HEALTH_NAMES[v.health]}: accuracy {_fmt_metric(v.accuracy)} (n={v.n_labeled}), "
                f"p95 {_fmt_metric(v.latency_p95_ms, 1)} ms{drift}"
            )
            for reason in v.reasons:
                self.say(f"    {reason}")

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
                self.say(f"  paused for a person: {_clip(e.status_reason, 160)}")
                self.client.experiment_action("ResumeExperiment", name, reason="demo: resumed after a look")
                self.say("  resumed by the demo, as an operator would after checking routing")
                seen = (controlplane_pb2.EXPERIMENT_RUNNING, e.step_index)
                continue
            if (e.state, e.step_index) != seen:
                self.report_split(f"  observed at {_previous_percent(e, seen[1])}%")
                seen = (e.state, e.step_index)
                if e.state == controlplane_pb2.EXPERIMENT_RUNNING:
                    self.say(f"  gate passed ({_arms_text(e)}): now at {e.current_percent}%")
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
                f"experiment {name} ended {STATE_NAMES.get(done.state, done.state)} instead of promoted: "
                f"{done.status_reason}"
            )
        self.say(f"  promoted automatically: {_arms_text(done)}")
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
                f"experiment {name} ended {STATE_NAMES.get(done.state, done.state)} instead of rolled back: "
                f"{done.status_reason}"
            )
        first_gate = done.status_reason.split(" | ")[0]
        self.say(f"  rolled back automatically at its first gate ({done.current_percent}%): {first_gate}")
        alert = next(
            (a for a in self.client.alerts(deployment=DEPLOYMENT) if a.kind == "rollout_gate_failed"), None
        )
        if alert is not None:
            self.say(
                f"  alert #{alert.id} {HEALTH_NAMES[alert.severity].lower()} {alert.kind}: "
                f"{_clip(alert.message, 160)}"
            )
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
            self.say(f"  {_clip(line, 200)}")  # the full reasons: `sluice history` itself

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

    # -- the end --

    def try_next(self) -> None:
        row = json.dumps([round(float(v), 4) for v in self._example_row()])
        agent = self.agents[0].address
        self.say("try next, in another terminal while the demo runs:")
        for command in (
            self.cli("status", DEPLOYMENT),
            self.cli("alerts"),
            self.cli("experiment", "status", "v4-canary"),
            self.cli("history", DEPLOYMENT),
            self.cli("agents"),
            self.cli("audit"),
            f"{self.sluice} predict {DEPLOYMENT} --agent {agent} --key patient-42 --input '{row}'",
            self.cli("promote", "v4-canary") + "   # or: experiment abort v4-canary",
            self.cli("tui"),
        ):
            self.say(f"  {command}")

    def _example_row(self) -> np.ndarray:
        from controlplane.training import breast_cancer_arrays

        return breast_cancer_arrays()[0][0]

    def finish(self) -> None:
        self.try_next()
        if self.headless:
            assert self.duration is not None
            self.say(f"traffic keeps flowing for {self.duration:g} s (Ctrl-C stops the demo)")
            self.mark()
            self.sleep(max(0.0, self.duration))
            self.report_split("traffic after the scenario")
        elif not (sys.stdin.isatty() and sys.stdout.isatty()):
            # e.g. `make demo` from a script: the system stays up for other commands to use.
            self.say(
                "no terminal here for the TUI: the demo keeps running, traffic flowing, "
                + (f"for {self.duration:g} s" if self.duration is not None else "until Ctrl-C or SIGTERM")
                + " (`sluice demo --headless` stops by itself)"
            )
            self.sleep(self.duration if self.duration is not None else math.inf)
        else:
            self.open_tui()
        _, errors = self.counts()
        if errors:
            self.say(f"traffic errors: {errors} (last: {self.last_error()})")
        self.say("done")

    def open_tui(self) -> None:
        from tui.app import run as run_tui

        if self.duration is not None:
            timer = threading.Timer(self.duration, self._stop_traffic)
            timer.daemon = True
            timer.start()
        self.say("opening the TUI on the running demo (quit it to stop the demo)")
        run_tui(self.address, self.token)

    def _stop_traffic(self) -> None:
        for stream in self.streams:
            stream.halt.set()


def _previous_percent(e: controlplane_pb2.Experiment, step_index: int) -> int:
    plan = list(e.config.plan) or [e.config.traffic_percent]
    return plan[min(step_index, len(plan) - 1)]


def _arms_text(e: controlplane_pb2.Experiment) -> str:
    parts = [
        f"{a.version.version} {_fmt_metric(a.metric)} (n={a.n})" for a in e.analysis.arms
    ]
    text = f"{e.analysis.metric or 'accuracy'} " + " vs ".join(parts)
    if not math.isnan(e.analysis.p_value) and e.analysis.arms:
        text += f", p={e.analysis.p_value:.2g}"
    return text


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _sluice_command() -> str:
    """How to call the CLI from another terminal: `sluice` when on PATH, else the venv's script."""
    if shutil.which("sluice"):
        return "sluice"
    beside = Path(sys.executable).with_name("sluice")
    return str(beside) if beside.exists() else f"{sys.executable} -m cli"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return f"control plane call failed: {exc.message} ({exc.code.name})"
    if isinstance(exc, grpc.RpcError):
        return f"gRPC call failed: {exc}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


# ---- signals: SIGTERM / SIGHUP end the demo like Ctrl-C, cleanup is not interrupted ----

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _install_signal_handlers() -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in _STOP_SIGNALS:
        previous[sig] = signal.signal(sig, _interrupt)
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ignore Ctrl-C / SIGTERM while children are being stopped (a second Ctrl-C is common)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, *_STOP_SIGNALS)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
