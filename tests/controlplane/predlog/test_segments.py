"""The control plane's segment store: durable write + record, refusals that change nothing, and
a resend acknowledged without a second write. Runs on SQLite and PostgreSQL (the `ctx` fixture)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from agent.predlog import PredictionLog
from controlplane.context import Context
from controlplane.predlog.segments import Segment, log_dir, receive_segment, recorded_files
from controlplane.store.models import LogSegmentRow
from core.errors import InvalidInput, PermissionDenied

AGENT = "0123456789abcdef"
HIVE = ds.partitioning(
    pa.schema([("deployment", pa.string()), ("date", pa.string()), ("version", pa.string())]), flavor="hive"
)


def written_segment(tmp_path: Path, rows: int = 4, deployment: str = "d", version: str = "1") -> Segment:
    log = PredictionLog(tmp_path / "agent", "agent-a")
    feeds = {"x": np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)}
    log.append(
        deployment, "m", version, "champion", "", feeds, np.zeros(rows, dtype=np.int64), None, None, None,
        0.001, [f"r{i}" for i in range(rows)], "",
    )  # fmt: skip
    [info] = log.flush()
    return Segment(AGENT, info.segment_id, deployment, "m", version, info.date, info.rows, info.path.read_bytes())


def count_rows(ctx: Context) -> int:
    with ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(LogSegmentRow)) or 0)


def test_a_segment_is_stored_in_the_hive_layout_and_recorded(ctx: Context, tmp_path: Path) -> None:
    segment = written_segment(tmp_path)
    stored = receive_segment(ctx, segment, frozenset({("d", "m", "1")}))
    assert stored.new
    root = log_dir(ctx)
    assert (
        stored.path
        == root / "deployment=d" / f"date={segment.date}" / "version=1" / f"{AGENT}-{segment.segment_id}.parquet"
    )
    assert stored.path.read_bytes() == segment.data
    assert not list(stored.path.parent.glob(".tmp-*"))
    assert recorded_files(ctx) == [stored.path] and recorded_files(ctx, "other") == []
    table = ds.dataset(root, format="parquet", partitioning=HIVE).to_table()
    assert table.num_rows == 4 and set(table.column("version").to_pylist()) == {"1"}


def test_a_resend_is_acknowledged_without_a_second_write(ctx: Context, tmp_path: Path) -> None:
    segment = written_segment(tmp_path)
    first = receive_segment(ctx, segment)
    again = receive_segment(ctx, segment)
    assert first.new and not again.new and again.path == first.path
    assert count_rows(ctx) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": b"PAR1 not really parquet"}, "not a readable Parquet file"),
        ({"rows": 5}, "says 5 rows and holds 4"),
        ({"version": "2"}, "not every row has version '2'"),
        ({"segment_id": "../../etc"}, "segment id"),
        ({"date": "yesterday"}, "YYYY-MM-DD"),
        ({"deployment": "../x"}, "deployment name"),
    ],
)
def test_a_bad_segment_is_refused_and_changes_nothing(
    ctx: Context, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    segment = dataclasses.replace(written_segment(tmp_path), **change)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        receive_segment(ctx, segment)
    assert count_rows(ctx) == 0
    assert not log_dir(ctx).exists() or not any(p.is_file() for p in log_dir(ctx).rglob("*"))


def test_an_oversized_segment_is_refused(ctx: Context, tmp_path: Path) -> None:
    ctx.config.log.max_segment_bytes = 100
    with pytest.raises(InvalidInput, match=r"the limit is 100 \(\[log\] max_segment_bytes\)"):
        receive_segment(ctx, written_segment(tmp_path))
    assert count_rows(ctx) == 0


def test_a_file_without_the_log_columns_is_refused(ctx: Context, tmp_path: Path) -> None:
    segment = written_segment(tmp_path)
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"deployment": ["d"] * 4, "x": [1, 2, 3, 4]}), path)
    with pytest.raises(InvalidInput, match="has no column 'ts'"):
        receive_segment(ctx, dataclasses.replace(segment, data=path.read_bytes()))


def test_an_agent_may_log_only_routes_it_was_sent(ctx: Context, tmp_path: Path) -> None:
    with pytest.raises(PermissionDenied, match="was not sent m:1 of deployment 'd'"):
        receive_segment(ctx, written_segment(tmp_path), frozenset({("d", "m", "2")}))
    assert count_rows(ctx) == 0
