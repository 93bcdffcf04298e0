"""A demo session: set up the cluster and the models, tell the story, keep it up, stop it all.

`Demo.run()` is `sluice demo`: a fresh workdir, a control plane on the story's short clocks
(`scenario.CONFIG`), four trained versions registered and the first deployed (and the e-mail
model's two, `mixed.EmailStory`), two agents in sync, then the story (`scenario.Scenario`; with
`--no-story` only its traffic), then traffic that keeps flowing headless for `--duration`
seconds, or until the TUI is closed, or until Ctrl-C / SIGTERM without a terminal. Whatever
happens, everything started is stopped and a failure is one line naming the logs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cli.demo.cluster import FOREIGN_ENV, Cluster, DemoError
from cli.demo.mixed import EMAIL_DEPLOYMENT, EMAIL_EXAMPLE, EMAIL_EXPERIMENT, EmailStory
from cli.demo.scenario import (
    CONFIG,
    DEPLOYMENT,
    HEADLESS_DURATION,
    MODEL,
    WEAK_FEATURES,
    Scenario,
)
from cli.demo.supervisor import STOP_TIMEOUT, ChildFailed, signals_deferred, stop_signals_interrupt
from cli.demo.text import describe
from cli.demo.traffic import Streams
from core.client import SluiceClient
from protos import controlplane_pb2


class Demo(Scenario):
    """The story on a cluster of its own; `run()` tells it and always stops what it started."""

    def __init__(
        self,
        workdir: Path,
        *,
        headless: bool,
        duration: float | None,
        port: int,
        token: str = "",
        story: bool = True,
    ) -> None:
        self.workdir = workdir.resolve()
        self.logs = self.workdir / "logs"
        self.headless = headless
        self.story = story
        self.duration = duration if duration is not None else (HEADLESS_DURATION if headless else None)
        self.cluster = Cluster(self.workdir, port)
        self.address = self.cluster.address
        self.token = token
        self.streams = Streams()
        self.email = EmailStory(self.workdir)
        self.sluice = _sluice_command()

    # ---- lifecycle ----

    def run(self) -> int:
        """The whole demo; returns the exit code. Never leaves a child process behind."""
        for name in FOREIGN_ENV:
            os.environ.pop(name, None)  # the demo's client and TUI talk to its own cluster
        code = 0
        with stop_signals_interrupt():
            try:
                self.cluster.prepare_workdir()
                with self.running():
                    self.start_controlplane()
                    with SluiceClient(self.address, token=self.token) as client:
                        self.client = client
                        self.prepare_models()
                        self.start_agents()
                        if self.story:
                            self.scenario()
                        else:
                            self.start_traffic()
                        self.finish()
            except KeyboardInterrupt:
                print("[demo] interrupted; everything it started is stopped", file=sys.stderr, flush=True)
                code = 130
            except Exception as exc:  # noqa: BLE001 - one clear line for people; the traceback goes to the log
                self._log_traceback()
                message = str(exc) if isinstance(exc, DemoError | ChildFailed) else describe(exc)
                print(f"[demo] failed: {message} (logs: {self.logs})", file=sys.stderr, flush=True)
                code = 1
        return code

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
        with signals_deferred():
            self.streams.stop(STOP_TIMEOUT)
            self.email.stop(STOP_TIMEOUT)
            stopped = self.cluster.stop()
            if stopped:
                self.say(f"stopped {stopped} process(es); logs and data stay in {self.workdir}")

    # ---- steps ----

    def start_controlplane(self) -> None:
        cluster = self.cluster
        if cluster.requested_port and cluster.port != cluster.requested_port:
            self.say(f"port {cluster.requested_port} is taken; using {cluster.port}")
        self.say(f"starting a control plane on {self.address}; the demo's files go to {self.workdir}")
        cluster.start_controlplane(CONFIG)
        # Not waited for here: it starts while the models train.

    def prepare_models(self) -> None:
        from controlplane.sample_data import breast_cancer_feature_names, write_breast_cancer_csv
        from controlplane.training import train_command

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
        self.email.train(self.say)
        self.cluster.wait_controlplane()
        self.say(
            f"control plane on {self.address} (SQLite {self.workdir / 'sluice.db'}, "
            f"config {self.workdir / 'controlplane.toml'})"
        )
        self.cluster.launch_agents()  # they start up while the versions are registered
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
        self.email.register(self.client, self.say)

    def start_agents(self) -> None:
        """Wait until both agents listen, are connected and have applied the deployment."""
        agents = self.cluster.connect_agents()
        names = {agent.name for agent in agents}

        def synced() -> controlplane_pb2.WaitForSyncResponse | None:
            sync = self.client.wait_for_sync(DEPLOYMENT, timeout=5)
            return sync if sync.in_sync and names <= set(sync.synced_agents) else None

        sync = self.wait_until("both agents to connect and apply the deployment", 60, synced)
        self.wait_until("both agents to apply the e-mail deployment", 60, lambda: self._synced(EMAIL_DEPLOYMENT, names))
        for agent in agents:
            self.say(
                f"agent {agent.name} serving on {agent.address} (metrics :{agent.metrics_port}), "
                f"in sync at generation {sync.generation}"
            )

    def _synced(self, deployment: str, names: set[str]) -> bool:
        sync = self.client.wait_for_sync(deployment, timeout=5)
        return sync.in_sync and names <= set(sync.synced_agents)

    # -- the end --

    def try_next(self) -> None:
        row = json.dumps([round(float(v), 4) for v in self._example_row()])
        agent = self.cluster.agents[0].address
        self.say("try next, in another terminal while the demo runs:")
        for command in (
            self.cli("status", DEPLOYMENT),
            self.cli("alerts"),
            *(
                [
                    self.cli("experiment", "status", "v4-canary"),
                    self.cli("status", EMAIL_DEPLOYMENT),
                    self.cli("experiment", "status", EMAIL_EXPERIMENT),
                    f"{self.sluice} predict {EMAIL_DEPLOYMENT} --agent {agent} --key subscriber-7 "
                    f"--features '{EMAIL_EXAMPLE}'",
                ]
                if self.story
                else []
            ),
            self.cli("history", DEPLOYMENT),
            self.cli("agents"),
            self.cli("audit"),
            f"{self.sluice} predict {DEPLOYMENT} --agent {agent} --key patient-42 --input '{row}'",
            *([self.cli("promote", "v4-canary") + "   # or: experiment abort v4-canary"] if self.story else []),
            self.cli("tui"),
        ):
            self.say(f"  {command}")

    def _example_row(self) -> np.ndarray:
        from controlplane.sample_data import breast_cancer_arrays

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
        _, errors = self.streams.counts()
        if errors:
            self.say(f"traffic errors: {errors} (last: {self.streams.last_error()})")
        email_errors, last = self.email.errors()
        if email_errors:
            self.say(f"e-mail traffic errors: {email_errors} (last: {last})")
        self.say("done")

    def open_tui(self) -> None:
        from tui.app import run as run_tui

        if self.duration is not None:
            timer = threading.Timer(self.duration, self.streams.halt)
            timer.daemon = True
            timer.start()
        self.say("opening the TUI on the running demo (quit it to stop the demo)")
        run_tui(self.address, self.token)


def _sluice_command() -> str:
    """How to call the CLI from another terminal: `sluice` when on PATH, else the venv's script."""
    if shutil.which("sluice"):
        return "sluice"
    beside = Path(sys.executable).with_name("sluice")
    return str(beside) if beside.exists() else f"{sys.executable} -m cli"
