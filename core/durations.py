"""Durations as people type them: `30d`, `12h`, `90m`, `45s`, `2w`."""

from __future__ import annotations

import math

from core.errors import InvalidInput

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_duration(text: str) -> float:
    """Seconds of a duration such as `30d`; InvalidInput naming the text when it is none."""
    stripped = text.strip().lower()
    number, unit = stripped[:-1], stripped[-1:]
    try:
        value = float(number) * UNITS[unit]
    except (KeyError, ValueError):
        raise InvalidInput(
            f"{text!r} is not a duration: give a number and a unit (s, m, h, d or w), e.g. 30d, 12h, 90m"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise InvalidInput(f"{text!r} is not a duration: it must be more than 0")
    return value
