"""`sluice ARGS` for tests: in this process by default, as a real child process on request.

A `sluice` child costs ~0.6 CPU-seconds of imports (grpc, numpy, protobuf) before it does anything,
and the suite ran ~180 of them. Most CLI tests check what a command prints, its exit code and what
it changed on a control plane, not the process boundary, so `run_cli` calls `cli.main(argv)` here:
the same parser, handlers and error mapping, with stdout, stderr, stdin and the environment of the
call swapped in for its duration, and its log lines (this thread's only) on its stderr, as the
child's `logging.basicConfig` would put them.

A real child is kept where the process is the point: `process=True`, every command in
`PROCESS_COMMANDS` (they start servers, take signals or a terminal), and every call when
`SLUICE_TEST_CLI=process` is set (the whole suite through the installed entry point, e.g. before a
release). tests/cli/test_exit_codes.py keeps real-process checks of the exit codes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SLUICE = [sys.executable, "-m", "cli"]

# Commands that serve, supervise processes or need a terminal: always a real child.
PROCESS_COMMANDS = frozenset({"controlplane", "agent", "serve", "demo", "tui"})

_one_at_a_time = threading.Lock()  # stdout/stderr/environ are the process's: one in-process call at once


def real_process_wanted() -> bool:
    return os.environ.get("SLUICE_TEST_CLI", "").strip().lower() == "process"


def run_cli(
    *args: str,
    address: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    input: str | None = None,
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`sluice [--controlplane ADDRESS] ARGS` with `env` added to the environment; its exit code,
    stdout and stderr. `process=True` (or a command in PROCESS_COMMANDS, or SLUICE_TEST_CLI=process)
    runs it as a child (`timeout` applies there; in-process the suite's pytest-timeout does)."""
    argv = [*(["--controlplane", address] if address else []), *args]
    command = next((a for a in args if not a.startswith("-")), "")
    if process or command in PROCESS_COMMANDS or real_process_wanted():
        return subprocess.run(
            [*SLUICE, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            input=input,
        )
    return _in_process(argv, env or {}, input)


class _ThisThread(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.ident = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.ident


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _logs_to(stream: io.StringIO, verbose: bool) -> Iterator[None]:
    """What `cli.main`'s basicConfig does in a child: this call's log lines on its stderr. The
    handler is on the root logger before `main` runs, so basicConfig leaves the logging alone."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_ThisThread())
    level = logging.DEBUG if verbose else logging.INFO
    handler.setLevel(level)
    saved_level = root.level
    root.addHandler(handler)
    if saved_level > level:  # NOTSET (0) on the root lets everything through already
        root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)


def _in_process(argv: list[str], env: dict[str, str], input: str | None) -> subprocess.CompletedProcess[str]:
    import cli  # after the environment of the first call is known; cheap once imported

    out, err = io.StringIO(), io.StringIO()
    verbose = "-v" in argv or "--verbose" in argv
    with _one_at_a_time, _environment(env), _logs_to(err, verbose):
        saved_stdin = sys.stdin
        sys.stdin = io.StringIO(input or "")
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = cli.main(argv)
                except SystemExit as exc:  # argparse: --help, usage errors
                    code = _exit_code(exc, err)
        finally:
            sys.stdin = saved_stdin
    return subprocess.CompletedProcess(["sluice", *argv], code, out.getvalue(), err.getvalue())


def _exit_code(exc: SystemExit, err: io.StringIO) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=err)  # as the interpreter does for sys.exit("message")
    return 1
