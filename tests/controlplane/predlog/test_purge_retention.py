"""Purge by routing key or age, and retention by age and size, over segments written by the real
agent log and stored by the real segment store: the rows are gone from the files on disk (every
Parquet file under the log and label directories is read back), the records match the files,
and the labels of purged request ids go too."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from agent.predlog import PredictionLog
from controlplane.audit import list_audit
from controlplane.context import Context
from controlplane.datafiles.files import labels_dir
from controlplane.labels.incoming import LabelInput
from controlplane.predlog.joined import joined_metrics
from controlplane.predlog.purge import PurgeSpec, purge
from controlplane.predlog.retention import retention_once, usage
from controlplane.predlog.segments import Segment, log_dir, receive_segment
from controlplane.store.models import LabelImportRow, LogSegmentRow
from core.errors import InvalidInput, NotFound
from runtime.logsegment import read_table, write_arrow
from tests.controlplane.experiments.support import ALICE
from tests.controlplane.labels.support import deployed, import_labels
from tests.controlplane.predlog.test_joined import serving

AGENT = "0123456789abcdef"


def log_rows(
    ctx: Context,
    tmp_path: Path,
    deployment: str,
    route: tuple[str, str],
    request_ids: list[str],
    keys: list[str],
    *,
    at: datetime | None = None,
) -> Segment:
    """One segment of these rows (routing keys per row), written by the agent's log, stored and
    recorded by the control plane's segment store; `at` moves every row's ts (and the day)."""
    model, version = route
    log = PredictionLog(tmp_path / f"agent-{random.randrange(10**9)}", "agent-a")
    n = len(request_ids)
    feeds = {"x": np.arange(n * 2, dtype=np.float32).reshape(n, 2)}
    labels = np.array(["1"] * n)
    log.append(deployment, model, version, "champion", "", feeds, labels, None, None, None, 0.001, request_ids, keys)
    [info] = log.flush()
    date = info.date
    if at is not None:
        table = read_table(info.path.read_bytes())  # the agent's Arrow file
        stamps = pa.array([at] * table.num_rows, pa.timestamp("us", tz="UTC"))
        table = table.set_column(table.schema.get_field_index("ts"), "ts", stamps)
        with open(info.path, "wb") as handle:  # as the agent writes it
            write_arrow(table, handle)
        date = at.date().isoformat()
    segment = Segment(AGENT, info.segment_id, deployment, model, version, date, info.rows, info.path.read_bytes())
    receive_segment(ctx, segment)
    return segment


def on_disk(root: Path, column: str) -> list[object]:
    """Every value of `column` in every Parquet file under root (recorded or not, hidden or not)."""
    values: list[object] = []
    for path in root.rglob("*.parquet*"):
        if path.is_file():
            values += pq.read_table(path, columns=[column]).column(column).to_pylist()
    return values


def records(ctx: Context, deployment: str) -> list[LogSegmentRow]:
    with ctx.db.session() as session:
        rows = list(session.scalars(select(LogSegmentRow).where(LogSegmentRow.deployment == deployment)))
        session.expunge_all()
        return rows


def test_purge_by_routing_key_removes_the_rows_and_their_labels_from_the_files(
    ctx: Context, models_dir: Path, tmp_path: Path
) -> None:
    deployment = deployed(ctx, models_dir)
    route = serving(ctx, deployment)
    rng = random.Random(3)
    keys_of: dict[str, str] = {}
    for s in range(3):
        ids = [f"s{s}-r{i}" for i in range(50)]
        keys = [rng.choice(["alice", "bob", "carol"]) for _ in ids]
        keys_of.update(zip(ids, keys, strict=True))
        log_rows(ctx, tmp_path, deployment, route, ids, keys)
    only_alice = [f"a-r{i}" for i in range(10)]
    keys_of.update((i, "alice") for i in only_alice)
    log_rows(ctx, tmp_path, deployment, route, only_alice, ["alice"] * 10)
    import_labels(ctx, deployment, "truth", [LabelInput(i, label="1") for i in keys_of])
    alice = {i for i, k in keys_of.items() if k == "alice"}
    bytes_before = sum(r.bytes for r in records(ctx, deployment))

    summary = purge(ctx, ALICE, PurgeSpec(deployment, routing_key="alice"), reason="GDPR request 17")

    assert summary.rows_removed == len(alice)
    assert summary.segments_deleted == 1  # the segment of alice alone
    assert summary.segments_rewritten == 3
    assert summary.labels_removed == len(alice)
    assert "alice" not in on_disk(log_dir(ctx), "routing_key")
    assert not alice & set(on_disk(log_dir(ctx), "request_id"))
    assert not alice & set(on_disk(labels_dir(ctx.config, ctx.artifacts.root), "request_id"))
    # The records tell the truth about the files: rows and bytes, and no record names a missing file.
    live = [r for r in records(ctx, deployment) if r.path]
    assert len(live) == 3
    for r in live:
        assert pq.ParquetFile(log_dir(ctx) / r.path).metadata.num_rows == r.rows
        assert (log_dir(ctx) / r.path).stat().st_size == r.bytes
    assert summary.bytes_freed == bytes_before - sum(r.bytes for r in live)
    # The rewritten label file's record holds its new size, and the disk use sums the records.
    [label_record] = label_records(ctx, deployment)
    label_root = labels_dir(ctx.config, ctx.artifacts.root)
    assert label_record.bytes == (label_root / label_record.path).stat().st_size
    assert usage(ctx, deployment)[deployment].label_bytes == label_record.bytes
    [figures] = joined_metrics(ctx, deployment)
    assert figures.predictions == len(keys_of) - len(alice) == figures.labeled
    [entry] = [e for e in list_audit(ctx.db, target=deployment) if e.action == "log.purge"]
    assert entry.details["rows_removed"] == len(alice)
    assert "alice" not in json.dumps(entry.details)  # the key is kept as its sha256 only
    # A label for a purged request arriving later is an unknown id, not an error.
    late = import_labels(ctx, deployment, "late", [LabelInput(sorted(alice)[0], label="0")])
    assert (late.accepted, late.unknown_ids, late.refused) == (1, 1, 0)


def test_a_resend_of_a_purged_segment_does_not_bring_its_rows_back(
    ctx: Context, models_dir: Path, tmp_path: Path
) -> None:
    deployment = deployed(ctx, models_dir)
    route = serving(ctx, deployment)
    segment = log_rows(ctx, tmp_path, deployment, route, ["x1", "x2"], ["dave", "dave"])
    assert purge(ctx, ALICE, PurgeSpec(deployment, routing_key="dave")).segments_deleted == 1
    stored = receive_segment(ctx, segment)  # the ack was lost: the agent sends it again
    assert not stored.new
    assert on_disk(log_dir(ctx), "routing_key") == []
    assert usage(ctx).get(deployment) is None or usage(ctx)[deployment].segments == 0


def test_purge_by_age_keeps_newer_rows(ctx: Context, models_dir: Path, tmp_path: Path) -> None:
    deployment = deployed(ctx, models_dir)
    route = serving(ctx, deployment)
    now = datetime.now(UTC)
    log_rows(ctx, tmp_path, deployment, route, [f"old{i}" for i in range(20)], "k", at=now - timedelta(days=40))
    log_rows(ctx, tmp_path, deployment, route, [f"new{i}" for i in range(30)], "k", at=now - timedelta(days=2))
    summary = purge(ctx, ALICE, PurgeSpec(deployment, older_than_seconds=30 * 86400))
    assert (summary.rows_removed, summary.segments_deleted, summary.segments_rewritten) == (20, 1, 0)
    assert summary.segments_scanned == 1  # the newer day is not even read
    remaining = on_disk(log_dir(ctx), "request_id")
    assert sorted(remaining) == sorted(f"new{i}" for i in range(30))


def test_purge_refuses_bad_requests(ctx: Context, models_dir: Path) -> None:
    deployment = deployed(ctx, models_dir)
    with pytest.raises(NotFound):
        purge(ctx, ALICE, PurgeSpec("no-such-deployment", routing_key="k"))
    for spec in (
        PurgeSpec(deployment),
        PurgeSpec(deployment, older_than_seconds=60, routing_key="k"),
        PurgeSpec(deployment, older_than_seconds=-5),
        PurgeSpec(deployment, older_than_seconds=float("nan")),
        PurgeSpec(deployment, routing_key="k" * 300),
    ):
        with pytest.raises(InvalidInput):
            purge(ctx, ALICE, spec)


def test_retention_deletes_old_days_then_the_oldest_beyond_the_size(
    ctx: Context, models_dir: Path, tmp_path: Path
) -> None:
    deployment = deployed(ctx, models_dir)
    route = serving(ctx, deployment)
    now = datetime.now(UTC)
    for age in (60, 45, 10, 5, 1):
        ids = [f"d{age}-{i}" for i in range(40)]
        log_rows(ctx, tmp_path, deployment, route, ids, "k", at=now - timedelta(days=age))
    ctx.config.log.retention_days = 30
    result = retention_once(ctx, now)
    assert (result.segments_by_age, result.rows) == (2, 80)
    left = records(ctx, deployment)
    assert sorted(r.date for r in left) == sorted((now - timedelta(days=a)).date().isoformat() for a in (10, 5, 1))
    assert {str(i)[:3] for i in on_disk(log_dir(ctx), "request_id")} == {"d10", "d5-", "d1-"}
    # Size: keep at most what the two newest hold; the oldest goes first.
    newest_two = sorted(left, key=lambda r: r.date)[1:]
    ctx.config.log.max_bytes = sum(r.bytes for r in newest_two)
    result = retention_once(ctx, now)
    assert result.segments_by_size == 1
    assert {r.id for r in records(ctx, deployment)} == {r.id for r in newest_two}
    assert {str(i)[:3] for i in on_disk(log_dir(ctx), "request_id")} == {"d5-", "d1-"}
    assert usage(ctx)[deployment].bytes == ctx.config.log.max_bytes
    entries = [e for e in list_audit(ctx.db, target=deployment) if e.action == "log.retention"]
    assert sorted(e.details["reason"] for e in entries) == ["age", "size"]
    assert retention_once(ctx, now).rows == 0  # nothing more to do


def test_usage_counts_recorded_segments_and_label_files(ctx: Context, models_dir: Path, tmp_path: Path) -> None:
    deployment = deployed(ctx, models_dir)
    route = serving(ctx, deployment)
    log_rows(ctx, tmp_path, deployment, route, [f"u{i}" for i in range(25)], "k")
    log_rows(ctx, tmp_path, deployment, route, [f"v{i}" for i in range(15)], "k")
    import_labels(ctx, deployment, "some", [LabelInput(f"u{i}", label="1") for i in range(5)])
    u = usage(ctx)[deployment]
    assert usage(ctx, deployment) == {deployment: u}  # one deployment's usage alone: the same figures
    files = [p for p in log_dir(ctx).rglob("*.parquet") if f"deployment={deployment}" in str(p)]
    assert (u.segments, u.rows, u.bytes) == (2, 40, sum(p.stat().st_size for p in files))
    label_files = list((labels_dir(ctx.config, ctx.artifacts.root) / f"deployment={deployment}").glob("*.parquet"))
    assert (u.label_files, u.label_bytes) == (1, label_files[0].stat().st_size)
    assert pc.sum(pq.read_table(label_files[0]).column("request_id").is_valid()).as_py() == 5


def label_records(ctx: Context, deployment: str) -> list[LabelImportRow]:
    with ctx.db.session() as session:
        query = select(LabelImportRow).where(LabelImportRow.deployment == deployment).order_by(LabelImportRow.id)
        return list(session.scalars(query))


def test_each_import_records_its_file_size_and_the_disk_use_sums_them(ctx: Context, models_dir: Path) -> None:
    deployment = deployed(ctx, models_dir)
    import_labels(ctx, deployment, "first", [LabelInput(f"r{i}", label="1") for i in range(40)])
    import_labels(ctx, deployment, "second", [LabelInput(f"q{i}", label=str(i % 2)) for i in range(7)])
    root = labels_dir(ctx.config, ctx.artifacts.root)
    records = label_records(ctx, deployment)
    assert [(r.id, r.bytes) for r in records] == [(r.id, (root / r.path).stat().st_size) for r in records]
    on_disk_bytes = sum(p.stat().st_size for p in (root / f"deployment={deployment}").glob("*.parquet"))
    assert usage(ctx, deployment)[deployment].label_bytes == on_disk_bytes
    assert usage(ctx, deployment)[deployment].label_files == 2


def test_an_import_recorded_before_the_size_column_gets_its_size_once(ctx: Context, models_dir: Path) -> None:
    """Revision 0012 leaves NULL for imports it cannot size (it does not know the labels
    directory): the first disk-use read stats their files and stores the sizes."""
    from sqlalchemy import update

    deployment = deployed(ctx, models_dir)
    import_labels(ctx, deployment, "old", [LabelInput(f"r{i}", label="1") for i in range(30)])
    with ctx.db.session() as session:
        session.execute(update(LabelImportRow).where(LabelImportRow.id == "old").values(bytes=None))
    [record] = label_records(ctx, deployment)
    path = labels_dir(ctx.config, ctx.artifacts.root) / record.path
    size = path.stat().st_size
    assert usage(ctx, deployment)[deployment].label_bytes == size
    assert label_records(ctx, deployment)[0].bytes == size
    path.unlink()  # stored: the figure no longer reads the file
    assert usage(ctx, deployment)[deployment].label_bytes == size


def test_retention_config_loads_and_refuses_negative_bounds(tmp_path: Path) -> None:
    from controlplane.config import load_config

    good = tmp_path / "good.toml"
    good.write_text("[log]\nretention_days = 90\nmax_bytes = 1_000_000\n[labels]\nretention_days = 400\n")
    config = load_config(good)
    assert (config.log.retention_days, config.log.max_bytes, config.labels.retention_days) == (90, 1_000_000, 400)
    for text in ("[log]\nretention_days = -1\n", "[log]\nmax_bytes = -5\n", "[labels]\nretention_days = -2\n"):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(InvalidInput):
            load_config(bad)


def test_label_retention_deletes_old_imports_record_first(ctx: Context, models_dir: Path) -> None:
    from sqlalchemy import update

    deployment = deployed(ctx, models_dir)
    import_labels(ctx, deployment, "old", [LabelInput("r1", label="1")])
    import_labels(ctx, deployment, "new", [LabelInput("r2", label="1")])
    long_ago = datetime.now(UTC) - timedelta(days=500)
    with ctx.db.session() as session:
        session.execute(update(LabelImportRow).where(LabelImportRow.id == "old").values(created_at=long_ago))
    ctx.config.labels.retention_days = 400
    assert retention_once(ctx).label_imports == 1
    root = labels_dir(ctx.config, ctx.artifacts.root)
    assert on_disk(root, "request_id") == ["r2"]
    assert usage(ctx)[deployment].label_files == 1
    [entry] = [e for e in list_audit(ctx.db, target=deployment) if e.action == "labels.retention"]
    assert entry.details["imports"] == 1
