"""`sluice tui` as a real process on a pseudo-terminal: it draws, follows the control plane, quits on q."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time

from core.client import SluiceClient
from tests.harness import REPO, SLUICE, ServerThread, run_cli, unique
from tests.tui.conftest import Registered

ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[\]P^_].*?(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>]")


class Terminal:
    """A child process on a pty; `screen_text` is everything it drew, escape codes removed."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, False)
        self.proc = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env, start_new_session=True
        )
        os.close(slave)
        self.raw = b""

    def read(self) -> None:
        while select.select([self.master], [], [], 0.05)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.raw += chunk

    def screen_text(self) -> str:
        return ANSI.sub(b"", self.raw).decode("utf-8", "replace")

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read()
            if text in self.screen_text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not drawn; exit {self.proc.poll()}; output:\n{self.screen_text()[-2000:]}")

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


def test_sluice_tui_draws_live_state_and_quits(
    shared_server: ServerThread, client: SluiceClient, registered: Registered
) -> None:
    name = unique("tui-cmd")
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "COLUMNS": "100",
        "LINES": "30",
        "SLUICE_CONTROLPLANE": shared_server.address,
        "SLUICE_TOKEN": "",
    }
    terminal = Terminal([*SLUICE, "tui"], env)
    try:
        terminal.wait_for("connected")
        terminal.wait_for("Deployments")
        client.deploy(name, registered.v1)  # made elsewhere: drawn without a key press
        terminal.wait_for(name)
        terminal.send(b"q")
        assert terminal.proc.wait(30) == 0
    finally:
        terminal.close()


def test_sluice_tui_without_a_terminal_says_so(shared_server: ServerThread) -> None:
    result = run_cli("tui", address=shared_server.address, input="")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: sluice tui needs an interactive terminal")
    assert "Traceback" not in result.stderr
