"""Jobs for the sandbox tests: module-level functions, so the child imports this light module only."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from core.errors import InvalidInput


def add(a: int, b: int) -> int:
    return a + b


def refuse(message: str) -> None:
    raise InvalidInput(message)


def allocate(megabytes: int) -> int:
    """Touch `megabytes` of memory (a filled array, not a lazy mapping)."""
    return int(np.ones(megabytes << 17, np.float64).sum())  # 2**17 float64 = 1 MiB


def spin() -> None:
    while True:
        pass


def die(signal_number: int) -> None:
    os.kill(os.getpid(), signal_number)
    time.sleep(60)  # the signal ends the process first


def exit_quietly() -> None:
    os._exit(3)


def crash_with(message: str) -> None:
    raise RuntimeError(message)


def limits_seen() -> tuple[int, int]:
    import resource

    return resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_CPU)[0]


SIGSEGV = int(signal.SIGSEGV)
