"""Label-joined metrics over segments stored by the real segment store and labels stored by the
real label store: accuracy, MAE and RMSE equal the test's own computation, predictions without a
label are counted as waiting, and the result is cached per set of recorded files."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from agent.predlog import PredictionLog
from controlplane.context import Context
from controlplane.labels.incoming import LabelInput
from controlplane.monitoring.status import statuses
from controlplane.predlog.joined import HOUR_US, joined_metrics
from controlplane.predlog.segments import Segment, receive_segment
from core.errors import NotFound
from runtime.logsegment import read_table, write_arrow
from tests.controlplane.labels.support import deployed, import_labels

AGENT = "0123456789abcdef"


def serving(ctx: Context, deployment: str) -> tuple[str, str]:
    """The (model, version) the deployment serves."""
    (health,) = statuses(ctx, deployment)
    v = health.versions[0].version
    return v.model, v.version


def log_predictions(
    ctx: Context,
    tmp_path: Path,
    deployment: str,
    route: tuple[str, str],
    request_ids: list[str],
    *,
    labels: list[str] | None = None,
    values: list[float] | None = None,
    ts: float | None = None,
) -> None:
    """Rows written by an agent's prediction log and stored by the control plane's segment store."""
    model, version = route
    log = PredictionLog(tmp_path / f"agent-{random.randrange(10**9)}", "agent-a")
    n = len(request_ids)
    feeds = {"x": np.arange(n * 2, dtype=np.float32).reshape(n, 2)}
    log.append(
        deployment, model, version, "champion", "", feeds,
        np.array(labels) if labels is not None else None, None,
        np.array(values, dtype=np.float64) if values is not None else None, None,
        0.001, request_ids, "",
    )  # fmt: skip
    for info in log.flush():
        if ts is not None:  # the rows' time, for the hour buckets: rewrite the ts column
            import pyarrow as pa

            table = read_table(info.path.read_bytes())  # the agent's Arrow file
            stamps = pa.array([int(ts * 1e6)] * table.num_rows, pa.timestamp("us", tz="UTC"))
            table = table.set_column(table.schema.get_field_index("ts"), "ts", stamps)
            with open(info.path, "wb") as handle:  # as the agent writes it
                write_arrow(table, handle)
        data = info.path.read_bytes()
        receive_segment(ctx, Segment(AGENT, info.segment_id, deployment, model, version, info.date, info.rows, data))


def test_classifier_accuracy_and_waiting_equal_our_own_count(ctx: Context, models_dir: Path, tmp_path: Path) -> None:
    deployment = deployed(ctx, models_dir)
    route = serving(ctx, deployment)
    rng = random.Random(7)
    ids = [f"r{i}" for i in range(300)]
    predicted = [rng.choice("01") for _ in ids]
    log_predictions(ctx, tmp_path, deployment, route, ids[:200], labels=predicted[:200])
    log_predictions(ctx, tmp_path, deployment, route, ids[200:], labels=predicted[200:])
    truth = {i: rng.choice("01") for i in ids[:180]}
    import_labels(ctx, deployment, "first", [LabelInput(i, label=t) for i, t in truth.items()])
    # A later import replaces some labels: the current one counts.
    for i in ids[:20]:
        truth[i] = "1" if truth[i] == "0" else "0"
    import_labels(ctx, deployment, "second", [LabelInput(i, label=truth[i]) for i in ids[:20]])

    (figures,) = joined_metrics(ctx, deployment)
    expected = sum(predicted[ids.index(i)] == t for i, t in truth.items()) / len(truth)
    assert (figures.model, figures.version) == route
    assert (figures.predictions, figures.labeled, figures.waiting) == (300, 180, 120)
    assert figures.accuracy == pytest.approx(expected, abs=1e-12)
    assert math.isnan(figures.mae) and math.isnan(figures.rmse)

    # The status of the version carries the same figures.
    (health,) = statuses(ctx, deployment)
    assert health.versions[0].labeled == figures


def test_regressor_mae_and_rmse_equal_our_own(ctx: Context, models_dir: Path, tmp_path: Path) -> None:
    deployment = deployed(ctx, models_dir, "ridge")
    route = serving(ctx, deployment)
    rng = random.Random(11)
    ids = [f"q{i}" for i in range(100)]
    predicted = [rng.uniform(-5, 5) for _ in ids]
    log_predictions(ctx, tmp_path, deployment, route, ids, values=predicted)
    truth = {i: rng.uniform(-5, 5) for i in ids[::2]}
    import_labels(ctx, deployment, "truth", [LabelInput(i, value=v) for i, v in truth.items()])

    (figures,) = joined_metrics(ctx, deployment)
    errors = [predicted[ids.index(i)] - v for i, v in truth.items()]
    assert (figures.predictions, figures.labeled, figures.waiting) == (100, 50, 50)
    assert figures.mae == pytest.approx(sum(abs(e) for e in errors) / 50, rel=1e-9)
    assert figures.rmse == pytest.approx(math.sqrt(sum(e * e for e in errors) / 50), rel=1e-9)
    assert math.isnan(figures.accuracy)


def test_hour_buckets_and_the_cache_keyed_by_recorded_files(ctx: Context, models_dir: Path, tmp_path: Path) -> None:
    deployment = deployed(ctx, models_dir)
    route = serving(ctx, deployment)
    ten = datetime(2026, 12, 1, 10, 15, tzinfo=UTC).timestamp()
    log_predictions(ctx, tmp_path, deployment, route, ["a", "b"], labels=["1", "0"], ts=ten)
    log_predictions(ctx, tmp_path, deployment, route, ["c", "d", "e"], labels=["1", "1", "0"], ts=ten + 3600)
    import_labels(ctx, deployment, "one", [LabelInput("a", label="1"), LabelInput("c", label="0")])

    first, second = joined_metrics(ctx, deployment, per_hour=True)
    assert first.hour_us == int(datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp() * 1e6)
    assert second.hour_us == first.hour_us + HOUR_US
    assert (first.predictions, first.labeled, first.waiting, first.accuracy) == (2, 1, 1, 1.0)
    assert (second.predictions, second.labeled, second.waiting, second.accuracy) == (3, 1, 2, 0.0)

    # Nothing new recorded: the same answer, not scanned again.
    whole = joined_metrics(ctx, deployment)
    assert joined_metrics(ctx, deployment) is whole
    # A new import changes the key, and the figures.
    import_labels(ctx, deployment, "two", [LabelInput("d", label="1")])
    (again,) = joined_metrics(ctx, deployment)
    assert (again.labeled, again.accuracy) == (3, pytest.approx(2 / 3))


def test_nothing_logged_gives_nothing_and_an_unknown_deployment_is_not_found(ctx: Context, models_dir: Path) -> None:
    deployment = deployed(ctx, models_dir)
    assert joined_metrics(ctx, deployment) == []
    (health,) = statuses(ctx, deployment)
    assert health.versions[0].labeled is None
    with pytest.raises(NotFound):
        joined_metrics(ctx, "no-such-deployment")


def test_the_cache_is_incremental_and_a_replaced_label_replaces(
    ctx: Context, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each segment's partial totals are kept: a new segment is computed alone, a new import
    recomputes only the segments holding its request ids, and the result always equals the
    from-scratch computation (a replaced label replaces, it does not add)."""
    from controlplane.predlog import joined

    deployment = deployed(ctx, models_dir)
    route = serving(ctx, deployment)
    rng = random.Random(3)
    batches = [[f"s{b}-{i}" for i in range(50)] for b in range(3)]
    predicted = {r: rng.choice("01") for batch in batches for r in batch}
    for batch in batches:
        log_predictions(ctx, tmp_path, deployment, route, batch, labels=[predicted[r] for r in batch])
    import_labels(ctx, deployment, "first", [LabelInput(r, label=rng.choice("01")) for r in batches[0] + batches[1]])

    recomputed: list[int] = []
    real = joined.compute_partials

    def counting(segments: dict[str, Path], label_files: list[Path], *, per_hour: bool) -> dict[str, joined.Partial]:
        recomputed.append(len(segments))
        return real(segments, label_files, per_hour=per_hour)

    monkeypatch.setattr(joined, "compute_partials", counting)

    def scratch() -> list[joined.JoinedFigures]:
        sources = joined.recorded_sources(ctx, deployment, per_hour=False)
        return joined.compute(sources.log_files(ctx), sources.label_files)

    def same(a: list[joined.JoinedFigures], b: list[joined.JoinedFigures]) -> None:
        assert [(f.predictions, f.labeled, f.waiting) for f in a] == [(f.predictions, f.labeled, f.waiting) for f in b]
        assert [f.accuracy for f in a] == pytest.approx([f.accuracy for f in b], abs=1e-12)

    same(joined_metrics(ctx, deployment), scratch())
    assert recomputed == [3]  # the first call computes every segment
    # A new segment: computed alone.
    extra = [f"s3-{i}" for i in range(50)]
    predicted.update({r: "1" for r in extra})
    log_predictions(ctx, tmp_path, deployment, route, extra, labels=["1"] * 50)
    same(joined_metrics(ctx, deployment), scratch())
    assert recomputed == [3, 1]
    # An import that replaces labels of segment 0 only: that segment alone is recomputed, and
    # the figures are the new labels' (20 answers made right by their replaced label).
    replaced = {r: predicted[r] for r in batches[0][:20]}
    import_labels(ctx, deployment, "fix", [LabelInput(r, label=t) for r, t in replaced.items()])
    (figures,) = joined_metrics(ctx, deployment)
    same([figures], scratch())
    assert recomputed == [3, 1, 1]
    assert (figures.predictions, figures.labeled) == (200, 100)  # replaced, not added
