"""Byte counts for people: one format for the CLI and the TUI (`sluice status`, the Disk section)."""

from __future__ import annotations


def byte_size(n: int) -> str:
    """`n` bytes in binary units: `660 B`, `40.0 KiB`, `12.3 MiB`, `1.5 GiB`."""
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
