"""The stored sample of recent inputs per (deployment, version), for KS drift tests.

Stored in ReservoirRow.sample as the time of each row's window (float64 seconds since the epoch)
followed by the rows themselves (float32, row-major), so a test can use only the rows of the
window it judges: the newest RESERVOIR_ROWS rows are kept, whatever their age.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

#: rows of recent inputs kept per (deployment, version) (newest replace oldest)
RESERVOIR_ROWS = 1000


def encode(times: np.ndarray, rows: np.ndarray) -> bytes:
    return np.ascontiguousarray(times, dtype="<f8").tobytes() + np.ascontiguousarray(rows, dtype="<f4").tobytes()


def decode(data: bytes, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """(times, rows); empty arrays when the bytes do not hold whole rows."""
    width = 8 + 4 * n_features
    if n_features <= 0 or not data or len(data) % width:
        return np.zeros(0), np.zeros((0, max(n_features, 0)), dtype=np.float32)
    m = len(data) // width
    times = np.frombuffer(data, dtype="<f8", count=m)
    rows = np.frombuffer(data, dtype="<f4", offset=8 * m).reshape(m, n_features)
    return times, rows


def append(data: bytes, n_features: int, at: datetime, rows: np.ndarray) -> bytes:
    """The stored sample with `rows` (seen in the window starting `at`) added, trimmed to size."""
    times, old = decode(data, n_features) if n_features == rows.shape[1] else (np.zeros(0), rows[:0])
    new_times = np.full(rows.shape[0], at.timestamp(), dtype=np.float64)
    all_times = np.concatenate([times, new_times])[-RESERVOIR_ROWS:]
    all_rows = np.concatenate([old.astype(np.float32), rows.astype(np.float32)])[-RESERVOIR_ROWS:]
    return encode(all_times, all_rows)


def since(data: bytes, n_features: int, start: datetime) -> np.ndarray:
    """The stored rows whose window started at or after `start` (float64)."""
    times, rows = decode(data, n_features)
    return rows[times >= start.timestamp()].astype(np.float64)
