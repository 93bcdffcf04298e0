"""What drift judging reads: a version's raw baseline sample (cached) and the reservoir of its
recent inputs."""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from datetime import datetime

import numpy as np
from sqlalchemy import select

from controlplane.context import Context
from controlplane.domain import VersionInfo
from controlplane.monitoring import reservoir as reservoirs
from controlplane.store.models import ReservoirRow

log = logging.getLogger("sluice.monitoring")

BASELINE_CACHE = 32

_baselines: OrderedDict[str, np.ndarray | None] = OrderedDict()
_baselines_lock = threading.Lock()


def baseline_sample(ctx: Context, version: VersionInfo) -> np.ndarray | None:
    """The version's raw baseline sample (cached by sha256), None when it has none."""
    sha = version.baseline_sha256 or (version.baseline or {}).get("sample_sha256")
    if not sha:
        return None
    with _baselines_lock:
        if sha in _baselines:
            _baselines.move_to_end(sha)
            return _baselines[sha]
    sample: np.ndarray | None
    try:
        data = ctx.artifacts.path(sha).read_bytes()
        if data.startswith(b"\x93NUMPY"):
            sample = np.load(io.BytesIO(data), allow_pickle=False).astype(np.float64)
        else:
            sample = _table_sample(data, version.baseline or {})
        if sample is not None and sample.ndim != 2:
            sample = None
    except Exception:
        log.exception("cannot read the baseline sample %s of %s", sha[:12], version.ref)
        sample = None
    with _baselines_lock:
        _baselines[sha] = sample
        while len(_baselines) > BASELINE_CACHE:
            _baselines.popitem(last=False)
    return sample


def _table_sample(data: bytes, baseline: dict) -> np.ndarray | None:
    """A CSV/Parquet baseline's numeric features as [rows, features], in the feature order the
    agents' reservoirs use (None when it has none)."""
    from controlplane.tables import read_table

    table = read_table(data, "the baseline")
    features = sorted(baseline.get("features", []), key=lambda f: f["index"])
    names = [f.get("column") or f["name"] for f in features]
    if not names or any(n not in table.columns or table.kind(n) != "numeric" for n in names):
        names = table.numeric()
    if not names:
        return None
    return np.column_stack([table.columns[n] for n in names])


def reservoir_sample(ctx: Context, deployment: str, version_id: int, start: datetime) -> np.ndarray | None:
    """Stored input rows of the version from windows that started at or after `start`."""
    with ctx.db.session() as session:
        row = session.execute(
            select(ReservoirRow.n_features, ReservoirRow.sample).where(
                ReservoirRow.deployment == deployment, ReservoirRow.version_id == version_id
            )
        ).first()
    if row is None or not row.sample or row.n_features <= 0:
        return None
    rows = reservoirs.since(row.sample, row.n_features, start)
    return rows if rows.shape[0] else None
