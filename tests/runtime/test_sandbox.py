"""The sandbox: a job's answer or its typed error comes back; a job over a limit is stopped there."""

from __future__ import annotations

import threading
import time

import pytest

from core.errors import InvalidInput
from runtime import sandbox
from tests.harness import rss_mb
from tests.runtime import sandbox_jobs as jobs

LIMITS = sandbox.Limits(timeout_seconds=5.0, memory_mb=256)


def test_the_answer_and_typed_errors_come_back() -> None:
    assert sandbox.run(jobs.add, 2, 3, limits=LIMITS) == 5
    with pytest.raises(InvalidInput, match=r"^the model says no$"):
        sandbox.run(jobs.refuse, "the model says no", limits=LIMITS)
    with pytest.raises(sandbox.SandboxCrashed, match="RuntimeError: kaput"):
        sandbox.run(jobs.crash_with, "kaput", limits=LIMITS)


def test_memory_beyond_the_limit_fails_in_the_child_only() -> None:
    before = rss_mb()
    assert sandbox.run(jobs.allocate, 64, limits=LIMITS) == 64 << 17  # within the limit
    with pytest.raises(sandbox.SandboxMemory, match="more than the 256 MB memory limit"):
        sandbox.run(jobs.allocate, 1024, limits=LIMITS)
    assert rss_mb() - before < 128  # the gigabyte was never this process's


def test_a_job_that_never_finishes_is_killed_at_the_deadline() -> None:
    """The deadline counts from when the child has its job (imports included), then kills it."""
    with pytest.raises(sandbox.SandboxTimeout, match=r"did not finish within 0\.5 s"):
        sandbox.run(jobs.spin, limits=sandbox.Limits(timeout_seconds=0.5, memory_mb=256))
    assert sandbox.run(jobs.add, 1, 1, limits=LIMITS) == 2  # the next job runs as usual


def test_a_child_that_dies_is_reported_with_how() -> None:
    with pytest.raises(sandbox.SandboxCrashed, match=r"crashed \(SIGSEGV\)"):
        sandbox.run(jobs.die, jobs.SIGSEGV, limits=LIMITS)
    with pytest.raises(sandbox.SandboxCrashed, match="exited with code 3 without an answer"):
        sandbox.run(jobs.exit_quietly, limits=LIMITS)


def test_the_child_runs_under_its_limits() -> None:
    limits = sandbox.Limits(timeout_seconds=2.5, memory_mb=100)
    address_space, cpu = sandbox.run(jobs.limits_seen, limits=limits)
    # The timeout rounded up plus one second, beyond what the child had used starting (a backstop
    # that ends it if its parent is gone).
    assert limits.cpu_seconds == 4 and 4 <= cpu <= 6
    assert address_space >= 100 << 20


@pytest.mark.parametrize(
    ("timeout", "memory"), [(0.0, 10), (-1.0, 10), (float("nan"), 10), (float("inf"), 10), (1.0, 0)]
)
def test_limits_must_be_positive_and_finite(timeout: float, memory: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        sandbox.Limits(timeout_seconds=timeout, memory_mb=memory)


def test_stop_running_ends_a_job_in_progress_without_waiting_for_its_timeout() -> None:
    """What a stopping control plane or agent does, so its shutdown never waits out a timeout."""
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            sandbox.run(jobs.spin, limits=sandbox.Limits(timeout_seconds=120.0, memory_mb=256))
        except sandbox.SandboxError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not sandbox.stop_running() and time.monotonic() < deadline:  # until the job has started
        thread.join(0.02)
    thread.join(30)
    assert not thread.is_alive() and len(outcome) == 1, outcome
    assert "killed (SIGKILL)" in outcome[0].message
