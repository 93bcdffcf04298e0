"""Dataset export: the rows of the recorded segments with their current labels, filtered by
time, version and label, equal to what was logged; bad ranges refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from controlplane.context import Context
from controlplane.labels.incoming import LabelInput
from controlplane.predlog.export import DatasetQuery, export_dataset
from core.errors import InvalidInput, NotFound
from tests.controlplane.labels.support import deployed, import_labels
from tests.controlplane.predlog.test_joined import log_predictions, serving

DAY = datetime(2026, 12, 1, tzinfo=UTC)


def rows_of(ctx: Context, query: DatasetQuery) -> list[dict[str, object]]:
    exported = export_dataset(ctx, query)
    try:
        table = pq.read_table(exported.path)
        assert table.num_rows == exported.rows and exported.path.stat().st_size == exported.size
        return table.to_pylist()
    finally:
        exported.path.unlink()


def test_export_rows_equal_what_was_logged_with_labels_and_filters(
    ctx: Context, models_dir: Path, tmp_path: Path
) -> None:
    deployment = deployed(ctx, models_dir)
    route = serving(ctx, deployment)
    first = [f"a{i}" for i in range(6)]
    second = [f"b{i}" for i in range(4)]
    log_predictions(ctx, tmp_path, deployment, route, first, labels=["0", "1"] * 3, ts=DAY.timestamp())
    later = DAY + timedelta(hours=2)
    log_predictions(ctx, tmp_path, deployment, route, second, labels=["1"] * 4, ts=later.timestamp())
    import_labels(ctx, deployment, "t", [LabelInput("a1", label="1"), LabelInput("b2", label="0")])

    everything = rows_of(ctx, DatasetQuery(deployment))
    assert len(everything) == 10
    by_id = {r["request_id"]: r for r in everything}
    assert set(by_id) == set(first + second)
    a1 = by_id["a1"]
    assert (a1["label"], a1["true_label"], a1["version"], a1["model"]) == ("1", "1", route[1], route[0])
    assert a1["in_x"] == [2.0, 3.0]  # row 1 of the features the agent logged
    assert a1["ts"] == DAY and a1["label_received_at"] is not None
    assert by_id["a0"]["true_label"] is None and by_id["b2"]["true_label"] == "0"

    labeled = rows_of(ctx, DatasetQuery(deployment, labeled_only=True))
    assert sorted(r["request_id"] for r in labeled) == ["a1", "b2"]
    recent = rows_of(ctx, DatasetQuery(deployment, since=DAY + timedelta(hours=1)))
    assert sorted(r["request_id"] for r in recent) == second
    early = rows_of(ctx, DatasetQuery(deployment, until=later))
    assert sorted(r["request_id"] for r in early) == first
    assert rows_of(ctx, DatasetQuery(deployment, version=(route[0], "other"))) == []


def test_nothing_logged_is_an_empty_file_and_bad_queries_are_refused(ctx: Context, models_dir: Path) -> None:
    deployment = deployed(ctx, models_dir)
    exported = export_dataset(ctx, DatasetQuery(deployment))
    try:
        assert exported.rows == 0 and "true_label" in pq.read_schema(exported.path).names
    finally:
        exported.path.unlink()
    with pytest.raises(InvalidInput, match="must be before until"):
        export_dataset(ctx, DatasetQuery(deployment, since=DAY, until=DAY - timedelta(hours=1)))
    with pytest.raises(NotFound):
        export_dataset(ctx, DatasetQuery("no-such-deployment"))
    # No temporary file left behind by a refused or an empty export.
    assert not list((ctx.artifacts.root.parent / "exports").glob("*"))
