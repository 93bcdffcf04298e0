"""The demo scenario behind `sluice demo` and `make demo`.

It runs real processes on this machine (a control plane on a SQLite file, two agents), trains
models on scikit-learn's bundled breast-cancer data, and drives traffic through the product's
own client and CLI paths, printing what it does and what to try next.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from controlplane.client import SluiceClient

PYTHON = sys.executable


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int) -> int:
    if port_is_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A child `sluice ...` process with its log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "controlplane", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_for(self, text: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            content = self.log_path.read_text(errors="replace")
            for line in content.splitlines():
                if text in line:
                    return line
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; its log ({self.log_path}):\n{content[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start within {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


class Demo:
    def __init__(self, workdir: Path, *, headless: bool, duration: float | None, port: int) -> None:
        self.workdir = workdir.resolve()
        self.headless = headless
        self.duration = duration if duration is not None else (20.0 if headless else None)
        self.port = pick_port(port)
        self.address = f"127.0.0.1:{self.port}"
        self.processes: list[Process] = []

    def say(self, text: str) -> None:
        print(f"[demo] {text}", flush=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        try:
            yield
        finally:
            for process in reversed(self.processes):
                process.stop()
            if self.processes:
                self.say(f"stopped {len(self.processes)} process(es); logs and data stay in {self.workdir}")

    def start(self, name: str, args: list[str], ready: str) -> tuple[Process, str]:
        process = Process(name, args, self.workdir / "logs")
        self.processes.append(process)
        line = process.wait_for(ready)
        return process, line

    def run(self) -> int:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        (self.workdir / "logs").mkdir(parents=True)
        with self.running():
            self.start_controlplane()
            with SluiceClient(self.address, token="") as client:
                self.client = client
                self.prepare_models()
                self.start_agents()
                self.scenario()
                self.finish()
        return 0

    # ---- steps (each later area extends the scenario) ----

    def start_controlplane(self) -> None:
        if self.port != 7400:
            self.say(f"port 7400 is taken; using {self.port}")
        self.start(
            "controlplane",
            [
                "controlplane",
                "--listen",
                self.address,
                "--db",
                f"sqlite:///{self.workdir / 'sluice.db'}",
                "--artifacts",
                str(self.workdir / "artifacts"),
                "--metrics-port",
                str(pick_port(7401)),
            ],
            "listening on",
        )
        self.say(f"control plane on {self.address} (SQLite {self.workdir / 'sluice.db'})")

    def prepare_models(self) -> None:
        from controlplane.training import train_command, write_breast_cancer_csv

        data = self.workdir / "breast_cancer.csv"
        write_breast_cancer_csv(data)
        self.data = data
        self.say(
            "training v1 (logistic regression) and v2 (gradient boosting) on scikit-learn's breast-cancer data"
        )
        v1 = train_command(data, self.workdir / "cancer-v1.onnx", None, "logreg", None, 0)
        v2 = train_command(data, self.workdir / "cancer-v2.onnx", None, "gbm", None, 0)
        for label, result in (("v1", v1), ("v2", v2)):
            version = self.client.register_version(
                "cancer", label, result.out, result.baseline, description=f"{result.kind} on breast cancer"
            )
            self.say(
                f"registered cancer:{label} sha256 {version.sha256[:12]} ({result.kind}, holdout accuracy "
                f"{result.holdout_accuracy:.3f})"
            )
        deployment = self.client.deploy("cancer-web", "cancer:v1", reason="demo launch")
        self.say(f"deployed cancer:v1 to cancer-web at 100% (generation {deployment.generation})")

    def start_agents(self) -> None:
        """Filled in once agents exist (issue 3)."""

    def scenario(self) -> None:
        """Traffic, drift, experiments (issues 3-5)."""

    def finish(self) -> None:
        self.say("done. Try next, in another terminal while the demo runs:")
        for command in (
            f"sluice --controlplane {self.address} version list",
            f"sluice --controlplane {self.address} history cancer-web",
            f"sluice --controlplane {self.address} audit",
        ):
            self.say(f"  {command}")
