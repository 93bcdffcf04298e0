"""Real servers and processes for tests: started on loopback, always stopped.

`ServerThread` runs a control plane in-process on its own event loop (fast, shared by many
tests); `SluiceProcess` runs `sluice ...` as a real child process (for kill/restart tests).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controlplane.config import Config
from controlplane.server import ControlPlaneServer, ServerOptions

REPO = Path(__file__).resolve().parent.parent
SLUICE = [sys.executable, "-m", "controlplane"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class ServerThread:
    """A control plane on a background event loop; `address` is ready once constructed."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.server: ControlPlaneServer | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="controlplane", daemon=True)
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("control plane did not start within 60 s")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self.server = ControlPlaneServer(self.options)
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the constructor
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    @property
    def address(self) -> str:
        assert self.server is not None
        return self.server.address

    @property
    def ctx(self) -> Any:
        assert self.server is not None
        return self.server.ctx

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run a coroutine function on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(60)

    def stop(self) -> None:
        if self.server is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self.server.stop(0.5), self._loop).result(60)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def start_server(
    tmp: Path, db_url: str | None = None, config: Config | None = None, **kw: Any
) -> ServerThread:
    options = ServerOptions(
        listen="127.0.0.1:0",
        db_url=db_url or f"sqlite:///{tmp / 'sluice.db'}",
        artifacts=tmp / "artifacts",
        config=config or Config(),
        metrics_port=None,
        **kw,
    )
    return ServerThread(options)


class SluiceProcess:
    """`sluice ARGS` as a child process with its output in a log file."""

    def __init__(
        self,
        args: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        ready_pattern: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.args = args
        self.log_path = log
        self._log = log.open("ab")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [*SLUICE, *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=REPO,
            start_new_session=True,
        )
        self.match: re.Match[str] | None = None
        if ready_pattern:
            self.match = self.wait_for(ready_pattern, timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output())
            if found:
                return found
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"sluice {' '.join(self.args)} exited {self.proc.returncode}:\n{self.output()[-3000:]}"
                )
            time.sleep(0.05)
        raise TimeoutError(f"{pattern!r} not seen within {timeout}s:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def terminate(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def close(self) -> None:
        self.kill()
        self._log.close()


def run_cli(
    *args: str,
    address: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    prefix = ["--controlplane", address] if address else []
    return subprocess.run(
        [*SLUICE, *prefix, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        input=input,
    )
