"""The demo's own cluster: a control plane and two agents on loopback, as supervised children.

Its workdir (wiped at start, but only when the demo made it), the command lines and ports of the
processes, waiting until each is ready, noticing when one dies, and stopping them all. The
children run `python -m cli ...` without the caller's tokens and TLS settings: the demo's cluster
is plaintext and has no tokens.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc

from cli.demo.supervisor import Child, pick_port, stop_all
from protos import inference_pb2_grpc

PYTHON = sys.executable
MARKER = ".sluice-demo"
READY_TIMEOUT = 120.0
AGENT_READY = r"sluice agent (\S+) listening on (\S+)"
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


class DemoError(Exception):
    """A step of the demo failed; the message says which and why (no traceback for users)."""


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Agent:
    """A running agent as the demo's traffic sees it."""

    name: str
    address: str
    metrics_port: int
    process: Child
    channel: grpc.Channel
    stub: inference_pb2_grpc.InferenceStub


class Cluster:
    """The processes the demo started, in `workdir`; the control plane prefers `port`."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.ports: set[int] = set()
        self.requested_port = port
        self.port = pick_port(port, self.ports)
        self.address = f"127.0.0.1:{self.port}"
        self.processes: list[Child] = []
        self.agents: list[Agent] = []
        self.controlplane: Child | None = None
        self._launched: list[tuple[str, int, Child]] = []

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

    def start(self, name: str, args: list[str]) -> Child:
        """`sluice ARGS` as a child named `name`, logging to logs/NAME.log; it dies with the demo
        (Linux), even a SIGKILLed one, so no control plane or agent outlives it holding its ports.
        Called from the main thread only (the death signal follows the thread that started it)."""
        process = Child(
            name, [PYTHON, "-m", "cli", *args], self.logs / f"{name}.log", env=child_env(), die_with_parent=True
        )
        self.processes.append(process)
        return process

    def start_controlplane(self, config: str) -> None:
        """Started, not waited for (it starts while the models train): `wait_controlplane`."""
        config_path = self.workdir / "controlplane.toml"
        config_path.write_text(config)
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
                str(config_path),
                "--metrics-port",
                str(pick_port(self.port + 1, self.ports)),
            ],
        )

    def wait_controlplane(self) -> None:
        assert self.controlplane is not None
        self.controlplane.wait_for(r"listening on", READY_TIMEOUT, what="start")

    def launch_agents(self, count: int = 2) -> None:
        """Started, not waited for (they start while versions are registered): `connect_agents`."""
        for i in range(1, count + 1):
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

    def connect_agents(self) -> list[Agent]:
        """Wait until every launched agent listens; a channel and a stub for each."""
        for name, metrics, process in self._launched:
            match = process.wait_for(AGENT_READY, READY_TIMEOUT, what="start")
            address = match.group(2)
            channel = grpc.insecure_channel(address)
            self.agents.append(
                Agent(name, address, metrics, process, channel, inference_pb2_grpc.InferenceStub(channel))
            )
        return self.agents

    def check_children(self) -> None:
        """Fail as soon as a child process has died."""
        for process in self.processes:
            if not process.alive():
                raise DemoError(
                    f"{process.name} exited unexpectedly with code {process.proc.returncode}; see {process.log_path}"
                )

    def stop(self) -> int:
        """Close the agents' channels, stop every child; how many there were."""
        for agent in self.agents:
            agent.channel.close()
        stopped = len(self.processes)
        stop_all(self.processes)
        self.processes.clear()
        return stopped
