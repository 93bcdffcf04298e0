"""Run model work that is not yet proven in a child process with memory, CPU and time limits.

An ONNX file decides what onnxruntime allocates and computes: a Tile of a constant to a huge
shape takes gigabytes, a Loop with a trip count of 10**12 never returns, and neither can be
stopped from inside the process that runs it. So opening, warming up and scoring such a model
happens in a child: `run(job, *args, limits=...)` calls `job(*args)` (a module-level function,
pickled by reference) in a process forked from a multiprocessing *forkserver* that has numpy,
onnxruntime and the job's module already imported, so a job costs a fork (about 10 ms), not an
interpreter start (0.5-1.5 s). The child runs under

- RLIMIT_AS: the address space it had at start plus `limits.memory_mb` (a failed allocation
  becomes an exception in the child, never the parent's memory);
- RLIMIT_CPU: the timeout rounded up plus one second (beyond what unpickling the job used), a
  backstop that ends the child even if its parent is gone (SIGXCPU, then SIGKILL);
- a wall-clock deadline: the parent kills the child (SIGKILL) when `limits.timeout_seconds` pass
  after the child said it has its job (so an import the forkserver did not preload is not counted).

The outcome is the job's return value, a typed `core.errors` error the job raised (re-raised as
is), or a `SandboxError` saying which limit was hit or how the child died. The caller adds what
the job was about and which setting raises the limit. A program that runs jobs needs
multiprocessing's usual `if __name__ == "__main__":` guard (the forkserver imports the main
module once).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import resource
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from core.errors import FailedPrecondition, SluiceError
from runtime.session import ort_reason

T = TypeVar("T")

#: imported once by the forkserver, so no job pays for them ('__main__' is multiprocessing's own
#: default: the main script is imported there once instead of in every child); the warm-up module
#: also runs onnxruntime once there
BASE_PRELOAD = ("__main__", "numpy", "onnxruntime", "runtime.model", "runtime.sandbox_warmup")
# How onnxruntime, numpy and the C++ runtime say that an allocation failed.
_MEMORY_WORDS = re.compile(r"bad_alloc|bad allocation|allocate memory|out of memory|cannot allocate", re.IGNORECASE)

_lock = threading.Lock()
_preload: list[str] = list(BASE_PRELOAD)
_started = False
_running: set[Any] = set()  # children of jobs in progress (multiprocessing Process objects)
#: how long a child may take to unpickle its job (imports included) before the job's own deadline
START_SECONDS = 60.0


@dataclass(frozen=True)
class Limits:
    """What one job may use: wall-clock seconds and megabytes of address space beyond its start."""

    timeout_seconds: float
    memory_mb: int
    #: added to the child's nice value: an agent's probe yields the CPU to its request threads
    niceness: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.timeout_seconds) and self.timeout_seconds > 0):
            raise ValueError(f"the sandbox timeout must be more than 0 seconds, got {self.timeout_seconds!r}")
        if self.memory_mb < 1:
            raise ValueError(f"the sandbox memory limit must be at least 1 MB, got {self.memory_mb!r}")

    @property
    def cpu_seconds(self) -> int:
        return math.ceil(self.timeout_seconds) + 1


class SandboxError(FailedPrecondition):
    """The job did not finish inside the sandbox (the message says why, without the job's name)."""


class SandboxTimeout(SandboxError):
    """The job ran out of wall-clock or CPU time."""


class SandboxMemory(SandboxError):
    """The job needed more memory than the limit allows."""


class SandboxCrashed(SandboxError):
    """The child died (a signal, an exit) or the job raised something unexpected."""


def preload(*modules: str) -> None:
    """Ask the forkserver to import these too; no effect once it is running (a job imports them)."""
    with _lock:
        if not _started:
            _preload.extend(m for m in modules if m not in _preload)


def _context() -> Any:
    global _started
    context = multiprocessing.get_context("forkserver")
    with _lock:
        if not _started:
            context.set_forkserver_preload(list(_preload))
            _started = True
    return context


def start(*modules: str) -> None:
    """Start the forkserver now (it imports `modules` too, in its own process, while the caller
    goes on), so the first job does not wait for it."""
    from multiprocessing import forkserver

    preload(*modules)
    _context()
    forkserver.ensure_running()


def stop_running() -> int:
    """Kill every job in progress (a process that stops must not wait out their timeouts); each
    caller gets a SandboxError. Returns how many were killed."""
    with _lock:
        running = list(_running)
    for process in running:
        process.kill()
    return len(running)


def shutdown() -> None:
    """Stop the forkserver (tests; a process that exits stops it anyway when its pipe closes)."""
    global _started
    from multiprocessing import forkserver

    with _lock:
        stop = getattr(forkserver._forkserver, "_stop", None)  # CPython's own tests stop it this way
        if stop is not None:
            stop()
        _started = False


def _memory_failure(exc: BaseException) -> str | None:
    """When `exc` or anything it was raised from is a failed allocation: the innermost such
    message (the library's own, not a wrapper's that repeats it)."""
    seen: set[int] = set()
    found: str | None = None
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError) or _MEMORY_WORDS.search(str(current)):
            found = ort_reason(current)
        current = current.__cause__ or current.__context__
    return found


def _vm_size() -> int:
    """This process's address space in bytes (VmSize), 0 when /proc is not there."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _apply_limits(limits: Limits) -> None:
    memory = _vm_size() + (limits.memory_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    used = resource.getrusage(resource.RUSAGE_SELF)  # unpickling the job (imports) counts too
    cpu = math.ceil(used.ru_utime + used.ru_stime) + limits.cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.niceness:
        os.nice(limits.niceness)


def _child(send: Connection, limits: Limits, job: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """The child's body: limits first, then the job; the outcome goes back over `send`.

    The job's module and arguments are already unpickled here: "started" tells the parent so, and
    its deadline counts from then (an import the forkserver did not preload is not the job's time).
    """
    send.send(("started",))
    try:
        _apply_limits(limits)
        outcome: tuple[Any, ...] = ("ok", job(*args))
    except BaseException as exc:  # noqa: BLE001 - every outcome is reported to the parent
        memory = _memory_failure(exc)
        if memory is not None:
            outcome = ("memory", memory)
        elif isinstance(exc, SluiceError):
            outcome = ("raise", type(exc), exc.message)
        else:
            outcome = ("failed", f"{type(exc).__name__}: {ort_reason(exc)}")
    try:
        send.send(outcome)
    except BaseException as exc:  # noqa: BLE001 - e.g. no memory left to pickle the answer
        memory = _memory_failure(exc)
        send.send(("memory", memory) if memory else ("failed", f"cannot return the result: {ort_reason(exc)}"))
    finally:
        send.close()


def _died(exitcode: int | None, limits: Limits) -> SandboxError:
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        name = signal.Signals(number).name if number in signal.valid_signals() else f"signal {number}"
        if number == signal.SIGXCPU or number == signal.SIGKILL:
            return SandboxTimeout(
                f"used more than {limits.cpu_seconds} s of CPU time or was killed ({name})"
            )
        if number == signal.SIGABRT:
            return SandboxCrashed(f"crashed ({name}, often a failed memory allocation)")
        return SandboxCrashed(f"crashed ({name})")
    return SandboxCrashed(f"exited with code {exitcode} without an answer")


def _receive(receive: Connection, process: Any, timeout: float, late: str) -> tuple[Any, ...] | None:
    """The child's next message; None when it died first; SandboxTimeout (it is killed) when late."""
    ready = wait([receive, process.sentinel], timeout=timeout)
    if receive in ready:
        try:
            return receive.recv()
        except EOFError:  # died before answering
            return None
    if not ready:
        process.kill()
        raise SandboxTimeout(f"{late} within {timeout:g} s")
    return None


def run(job: Callable[..., T], *args: Any, limits: Limits) -> T:
    """`job(*args)` in a limited child process (blocking: call it from a worker thread)."""
    preload(job.__module__)
    context = _context()
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(send, limits, job, args), daemon=True, name="sluice-sandbox")
    try:
        process.start()
    finally:
        send.close()
    with _lock:
        _running.add(process)
    try:
        outcome = _receive(receive, process, START_SECONDS, "did not start")
        if outcome is not None and outcome[0] == "started":
            outcome = _receive(receive, process, limits.timeout_seconds, "did not finish")
    finally:
        with _lock:
            _running.discard(process)
        if process.is_alive():
            process.kill()
        process.join()
        exitcode = process.exitcode
        process.close()
        receive.close()
    if outcome is None:
        raise _died(exitcode, limits)
    kind = outcome[0]
    if kind == "ok":
        return outcome[1]
    if kind == "raise":
        _, error_type, message = outcome
        raise error_type(message)
    if kind == "memory":
        raise SandboxMemory(f"needed more than the {limits.memory_mb} MB memory limit ({outcome[1]})")
    raise SandboxCrashed(f"failed: {outcome[1]}")
