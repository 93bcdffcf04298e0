"""Child processes on this machine: start, wait for readiness, stop, and never leave one behind.

One supervisor for `sluice demo` and for the tests (`tests/harness.py`): a `Child` runs a command
in its own session (so a Ctrl-C in the terminal reaches the parent only, and a signal to the
child reaches everything it started) with its output in a log file; `wait_for` reads that log
for a ready line and fails early when the child exits; `stop_all` sends SIGTERM to every child at
once and SIGKILL to those still there after a timeout; with `die_with_parent` (Linux) the kernel
kills a child whose parent died without stopping it (a test worker killed by SIGKILL). Free ports,
and the signal handling that makes SIGTERM/SIGHUP end the parent like Ctrl-C without interrupting
cleanup, live here too.

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

STOP_TIMEOUT = 10.0
KILL_TIMEOUT = 30.0
POLL_SECONDS = 0.05


class ChildFailed(Exception):
    """A child exited or did not get ready; the message is one line naming its log."""


class ChildExited(ChildFailed, RuntimeError):
    pass


class ChildNotReady(ChildFailed, TimeoutError):
    pass


#: Run as `python -I -S -c LAUNCHER PARENT_PID COMMAND...`: asks the kernel for SIGKILL when the
#: thread that started it ends, then becomes COMMAND (the death signal survives the exec).
_LAUNCHER = """
import ctypes, ctypes.util, os, signal, sys
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0 and os.getppid() != int(sys.argv[1]):
    os._exit(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def _dying_with_parent(argv: list[str]) -> list[str]:
    """`argv` started through a launcher that sets PR_SET_PDEATHSIG (prctl(2)) before it execs the
    command, on Linux; `argv` itself elsewhere.

    Not a `preexec_fn`: that runs Python in the forked child, after the parent's at-fork handlers
    (gRPC's among them), and a child forked while other threads of the parent were inside gRPC
    could abort before its exec (a control plane restarted by a test under load exited with
    SIGABRT and no output). The launcher costs one interpreter start without site (about 20 ms).
    """
    if os.uname().sysname != "Linux":
        return argv
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid()), *argv]


class Child:
    """A command in its own session with stdout and stderr appended to `log_path`.

    `die_with_parent` (Linux): SIGKILL from the kernel when the *thread* that started it ends, so
    start such a child from a thread that outlives it (the main thread); elsewhere it is ignored.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str],
        cwd: Path | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._log = log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                _dying_with_parent(self.argv) if die_with_parent else self.argv,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: Ctrl-C reaches the parent only
                env=dict(env),
                cwd=cwd,
            )
        except BaseException:
            self._log.close()
            raise

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 60.0, what: str | None = None) -> re.Match[str]:
        """The first match of `pattern` in the log; fails when the child exits or on timeout.

        `what` names the wait in the timeout message ("start"); by default the pattern itself.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            content = self.output()
            if match := regex.search(content):
                return match
            if self.proc.poll() is not None:
                last = next((ln for ln in reversed(content.splitlines()) if ln.strip()), "no output")
                raise ChildExited(
                    f"{self.name} exited with code {self.proc.returncode} ({last.strip()[:200]}); see {self.log_path}"
                )
            time.sleep(POLL_SECONDS)
        doing = what or f"print {pattern!r}"
        raise ChildNotReady(f"{self.name} did not {doing} within {timeout:.0f} s; see {self.log_path}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """To its whole process group (its own session), while it runs."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL to the process group, then reap it."""
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.wait(KILL_TIMEOUT)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM to the process itself (it shuts down its own way), SIGKILL after `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def close(self) -> None:
        """Kill it if it still runs, and close its log."""
        try:
            self.kill()
        finally:
            self._log.close()


def stop_all(children: Sequence[Child], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM to every child's group at once, SIGKILL to those still there after `timeout`."""
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.close()


# ---- ports ----


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        while (port := free_port()) in taken:
            pass
    taken.add(port)
    return port


# ---- signals: SIGTERM / SIGHUP end the parent like Ctrl-C, cleanup is not interrupted ----

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP raise KeyboardInterrupt (main thread only); restored after."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ignore Ctrl-C / SIGTERM while children are being stopped (a second Ctrl-C is common)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, *STOP_SIGNALS)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
