"""The C allocator's thresholds for serving processes (core.memory)."""

from __future__ import annotations

import platform
import sys

import pytest

from core.memory import keep_freed_memory


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only"
)
def test_glibc_takes_the_thresholds() -> None:
    assert keep_freed_memory() is True


def test_other_systems_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False
