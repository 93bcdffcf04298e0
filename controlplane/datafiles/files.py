"""Where the label store's and the prediction log's Parquet files are, and how one is written.

Readers only read files recorded in SQL: a file is renamed into place before its row commits, so
a crash between the two leaves a file no reader sees (and a retry of the same import rewrites it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.config import Config
from controlplane.store.models import LabelImportRow, LogSegmentRow

if TYPE_CHECKING:
    import pyarrow as pa


def data_dir(artifacts_root: Path) -> Path:
    """The control plane's data directory: the artifacts directory's parent (sluice-data/)."""
    return artifacts_root.parent


def labels_dir(config: Config, artifacts_root: Path) -> Path:
    """`[labels] dir`, or <data dir>/labels."""
    return Path(config.labels.dir) if config.labels.dir else data_dir(artifacts_root) / "labels"


def import_file(deployment: str, import_id: str) -> Path:
    """The file of one import, relative to the labels directory (both names are validated: no
    separator, no '..')."""
    return Path(f"deployment={deployment}") / f"{import_id}.parquet"


def recorded_label_files(session: Session, root: Path, deployment: str) -> list[Path]:
    """The files of the deployment's recorded imports, oldest first."""
    query = (
        select(LabelImportRow.path)
        .where(LabelImportRow.deployment == deployment, LabelImportRow.path != "")
        .order_by(LabelImportRow.created_at, LabelImportRow.id)
    )
    return [root / path for path in session.scalars(query)]


def prediction_log_files(session: Session, resolve: Callable[[str], Path], deployment: str) -> list[Path]:
    """The deployment's prediction-log segments: those recorded in `log_segments` (a file
    without its row is not part of the log); `resolve` turns a recorded path (or s3:// URI) into
    a local file."""
    query = (
        select(LogSegmentRow.path)
        .where(LogSegmentRow.deployment == deployment, LogSegmentRow.path != "")  # "": purged
        .order_by(LogSegmentRow.path)
    )
    return [resolve(path) for path in session.scalars(query)]


def write_parquet_atomically(table: pa.Table, path: Path) -> int:
    """Write `table` to `path` so that it is never half visible and survives a crash once this
    returns: a temporary name in the same directory, fsync, rename, fsync of the directory.
    Returns the file's size in bytes."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with temporary.open("wb") as handle:
            pq.write_table(table, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        size = temporary.stat().st_size
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return size
