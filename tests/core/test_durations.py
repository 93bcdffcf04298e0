"""Durations as people type them (`sluice log purge --older-than 30d`)."""

from __future__ import annotations

import pytest

from core.durations import parse_duration
from core.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("45s", 45), ("2w", 14 * 86400), (" 1.5H ", 5400)],
)
def test_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "30x", "-3d", "0h", "nand", "infd", "3 days"])
def test_malformed_durations_are_refused_naming_the_text(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_duration(text)
    assert repr(text) in str(refused.value)
