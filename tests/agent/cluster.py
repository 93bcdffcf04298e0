"""Agent processes for the end-to-end tests: start, talk to, always stop."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from core.client import batch_request, batch_results
from protos import common_pb2, inference_pb2, inference_pb2_grpc
from tests.harness import SluiceProcess
from tests.timing import scaled

READY = r"sluice agent (\S+) listening on (\S+)"


class AgentProcess:
    """`sluice agent` as a child process, with a gRPC stub on its Inference service."""

    def __init__(
        self,
        controlplane: str,
        name: str,
        cache: Path,
        log: Path,
        extra: Sequence[str] = (),
        listen: str = "127.0.0.1:0",
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
        credentials: grpc.ChannelCredentials | None = None,
        metrics_port: str | None = "0",
    ) -> None:
        self.name = name
        self.metrics_port = metrics_port  # None: the agent's own default (the --listen port + 1)
        self.cache = cache
        self.controlplane = controlplane
        self.log = log
        self.extra = list(extra)
        self.listen = listen
        self.env = dict(env or {})  # e.g. SLUICE_TOKEN
        self.prefix = list(prefix)  # e.g. `ip netns exec NS`: the agent runs on another "host"
        self.credentials = credentials  # set: the test talks to a TLS agent
        self.process: SluiceProcess | None = None
        self.address = ""
        self.channel: grpc.Channel | None = None
        self.stub: inference_pb2_grpc.InferenceStub | None = None
        self.start()

    def start(self) -> None:
        args = [
            "agent",
            "--controlplane",
            self.controlplane,
            "--listen",
            self.listen,
            "--name",
            self.name,
            "--cache",
            str(self.cache),
            *(["--metrics-port", self.metrics_port] if self.metrics_port is not None else []),
            *self.extra,
        ]
        self.process = SluiceProcess(args, self.log, env=self.env, ready_pattern=READY, prefix=self.prefix)
        assert self.process.match is not None
        assert self.process.match.group(1) == self.name
        self.address = self.process.match.group(2)
        self.listen = self.address  # a restart keeps the address
        self.channel = (
            grpc.secure_channel(self.address, self.credentials)
            if self.credentials is not None
            else grpc.insecure_channel(self.address)
        )
        self.stub = inference_pb2_grpc.InferenceStub(self.channel)

    def stop(self, crash: bool = False) -> None:
        """SIGTERM (the agent says Goodbye: "stopped"), or with `crash` SIGKILL (it goes silent: "lost")."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.process is not None:
            if not crash:
                self.process.terminate()
            self.process.close()
            self.process = None

    def restart(self) -> None:
        self.stop()
        # The log file keeps the first run's ready line: search only what comes after it.
        self.log = self.log.with_name(f"{self.log.stem}-{time.monotonic_ns()}.log")
        self.start()

    def wait_serving(self, timeout: float = 30.0) -> None:
        """Until the agent has applied its first snapshot: its gRPC health turns SERVING then.
        Connected (the control plane's view) is not enough: the snapshot follows the Hello."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        assert self.channel is not None
        check = health_pb2_grpc.HealthStub(self.channel).Check
        serving = health_pb2.HealthCheckResponse.SERVING
        wait_until(
            lambda: check(health_pb2.HealthCheckRequest(), timeout=5).status == serving,
            timeout=timeout,
            what=f"agent {self.name} serving its first snapshot",
        )

    def predict(self, deployment: str, rows: np.ndarray, key: str = "", **kw: Any) -> Any:
        assert self.stub is not None
        request = inference_pb2.PredictRequest(
            deployment=deployment,
            input=inference_pb2.Tensor(shape=list(rows.shape), values=rows.ravel().tolist()),
            routing_key=key,
            **kw,
        )
        return self.stub.Predict(request, timeout=30)

    def predict_batch(self, deployment: str, rows: np.ndarray, keys: Sequence[str] = ()) -> Any:
        assert self.stub is not None
        return self.stub.PredictBatch(batch_request(deployment, rows, keys), timeout=60)

    def versions_of_keys(self, deployment: str, rows: np.ndarray, keys: Sequence[str]) -> list[str]:
        """Which version answered each key (one PredictBatch call)."""
        results = batch_results(self.predict_batch(deployment, rows, keys))
        names = [v.version for v in results.versions]
        return [names[i] for i in results.served_by.tolist()]


def role_name(role: int) -> str:
    return {
        common_pb2.ROLE_CHAMPION: "champion",
        common_pb2.ROLE_CHALLENGER: "challenger",
        common_pb2.ROLE_SHADOW: "shadow",
    }[role]


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something true (returned); the deadline is scaled."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")


def wait_for_agents(client: Any, deployment: str, names: Sequence[str], timeout: float = 30.0) -> None:
    """Until every named agent is connected and has applied the deployment's current generation.

    `WaitForSync` alone is not enough right after an agent starts: it speaks for the agents that
    are connected, and an agent prints its ready line before its first connect.
    """

    def synced() -> bool:
        result = client.wait_for_sync(deployment, timeout=min(5.0, timeout))
        return result.in_sync and set(names) <= set(result.synced_agents)

    wait_until(synced, timeout=timeout, what=f"agents {', '.join(names)} in sync on {deployment}")
