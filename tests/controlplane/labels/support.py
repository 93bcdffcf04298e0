"""Pieces of the label store tests: a deployed classifier or regressor, prediction-log segments
in the log's hive layout, and one-call imports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from controlplane import deployments
from controlplane.context import Context
from controlplane.labels.incoming import LabelInput, PendingImport
from controlplane.labels.store import ImportSummary, begin_import, finish_import
from controlplane.predlog.segments import log_dir
from controlplane.store.models import LogSegmentRow
from tests.controlplane.experiments.support import ALICE, model_path, register
from tests.harness import unique


def deployed(ctx: Context, models_dir: Path, kind: str = "logreg") -> str:
    """A fresh deployment serving one version: a classifier ('logreg') or a regressor ('ridge')."""
    model = unique("labelled")
    register(ctx, model, "v1", model_path(models_dir, kind))
    deployment = unique("dep")
    deployments.deploy(ctx, ALICE, deployment, model, "v1")
    return deployment


def write_log_segment(ctx: Context, deployment: str, predicted: dict[str, datetime], name: str = "a-1") -> Path:
    """A prediction-log segment (the columns readers use: ts, request_id) where the log keeps it,
    recorded in `log_segments` as the segment store records what it stores."""
    first = min(predicted.values())
    relative = Path(f"deployment={deployment}") / f"date={first:%Y-%m-%d}" / "version=v1" / f"{name}.parquet"
    path = log_dir(ctx) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "ts": pa.array(list(predicted.values()), pa.timestamp("us", tz="UTC")),
            "deployment": [deployment] * len(predicted),
            "version": ["v1"] * len(predicted),
            "request_id": list(predicted),
        }
    )
    pq.write_table(table, path)
    with ctx.db.session() as session:
        session.add(
            LogSegmentRow(
                agent_id="test-agent",
                segment_id=f"{deployment}-{name}",
                deployment=deployment,
                model="m",
                version="v1",
                date=f"{first:%Y-%m-%d}",
                rows=len(predicted),
                bytes=path.stat().st_size,
                path=str(relative),
            )
        )
    return path


def import_labels(
    ctx: Context,
    deployment: str,
    import_id: str,
    rows: Sequence[LabelInput],
    *,
    atomic: bool = True,
    batch: int = 1000,
) -> ImportSummary:
    """One import, start to end, as the servicer runs it."""
    pending = begin_import(ctx, deployment, import_id, atomic=atomic)
    if not isinstance(pending, PendingImport):
        return pending
    for start in range(0, len(rows), batch):
        pending.add(rows[start : start + batch])
    return finish_import(ctx, ALICE, pending)


def labels(*pairs: tuple[str, str]) -> list[LabelInput]:
    return [LabelInput(request_id, label=label) for request_id, label in pairs]
