"""The harness itself: a child it starts never outlives the test process that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.clirun import REPO
from tests.timing import scaled

# A stand-in for a pytest worker: starts `sluice agent` through the harness, says the child's pid,
# then waits to be killed.
WORKER = """
import sys
from pathlib import Path
from tests.harness import SluiceProcess
cache, log, name = sys.argv[1:4]
args = ["agent", "--controlplane", "127.0.0.1:1", "--listen", "127.0.0.1:0", "--metrics-port", "0",
        "--name", name, "--cache", cache]
child = SluiceProcess(args, Path(log))
print(child.proc.pid, flush=True)
sys.stdin.read()
"""


def _running(pid: int, marker: str) -> bool:
    """Whether `pid` is still our child's process (not gone, not a zombie, not a reused pid)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and marker.encode() in cmdline


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_child_started_through_the_harness_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    marker = f"orphan-check-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path / "cache"), str(tmp_path / "agent.log"), marker],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    child = 0
    try:
        assert worker.stdout is not None
        child = int(worker.stdout.readline())
        assert _running(child, marker), "the harness's child did not start"
        worker.kill()  # SIGKILL: the worker runs no cleanup of its own
        worker.wait(scaled(30))
        deadline = time.monotonic() + scaled(20)
        while _running(child, marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(child, marker), "the child outlived the process that started it"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(scaled(30))
        if child and _running(child, marker):
            os.kill(child, signal.SIGKILL)


def test_pytest_timeouts_limit_is_scaled_by_the_time_factor(request: pytest.FixtureRequest) -> None:
    """Checks the test that runs it: its pytest-timeout limit is pyproject's, times the factor."""
    if request.config.getoption("timeout", None) is not None or os.environ.get("PYTEST_TIMEOUT"):
        pytest.skip("a limit given on purpose is taken as it is")
    marker = request.node.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker is not None else float(request.config.getini("timeout"))
    assert limit == scaled(float(request.config.getini("timeout")))


def test_a_time_factor_scales_pytest_timeouts_limit() -> None:
    """The check above under SLUICE_TEST_TIME_FACTOR=2.5, in a pytest of its own."""
    env = {**os.environ, "SLUICE_TEST_TIME_FACTOR": "2.5", "PYTHONPATH": str(REPO)}
    env.pop("PYTEST_TIMEOUT", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    test = "tests/test_harness.py::test_pytest_timeouts_limit_is_scaled_by_the_time_factor"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist", test],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=scaled(120),
    )
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
