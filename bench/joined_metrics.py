"""Label-joined metrics at scale: accuracy per version per hour over 10 million logged
predictions and 1 million labels (issue 16 target: <= 10 s on this machine).

    .venv/bin/python bench/joined_metrics.py [--predictions N] [--labels N] [--files N]
    .venv/bin/python bench/joined_metrics.py --predictions 1000000 --labels 100000   # a quick look

Builds a control-plane store (SQLite file, a deployed classifier) and writes synthetic
prediction-log segments in the log's layout and columns (two versions, 24 hours, one float
feature, the predicted label) recorded in `log_segments`, and label files recorded in
`label_imports` (ten imports, as the label store writes them). Then times, in this process:

- `joined.compute(per_hour=True)`: the DuckDB join and aggregation per version per hour;
- `joined.joined_metrics` (what `sluice status` calls) twice: the first scans, the second is
  answered from the cache (nothing new recorded);
- the incremental cache (`joined.update`): from scratch, after one new segment (only it is
  computed), and after a new import (the segments holding its request ids are recomputed: here
  the last of the ten imports, whose ids are spread over every segment, so all of them).

and reports the process's peak memory (max RSS) before and after the query.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controlplane.artifacts import ArtifactStore
from controlplane.config import Config
from controlplane.context import Context
from controlplane.datafiles.files import labels_dir
from controlplane.events import EventBus
from controlplane.labels.incoming import label_schema
from controlplane.predlog import joined
from controlplane.predlog.segments import log_dir
from controlplane.store.db import Database
from controlplane.store.models import LabelImportRow, LogSegmentRow
from tests.controlplane.labels.support import deployed

START = datetime(2026, 12, 1, tzinfo=UTC)
VERSIONS = ("v1", "v2")
IMPORTS = 10


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ids(start: int, stop: int) -> pa.Array:
    """'req-<i>' for i in [start, stop), built in C++."""
    return pc.binary_join_element_wise("req-", pc.cast(pa.array(np.arange(start, stop)), pa.string()), "")


def write_segments(ctx: Context, deployment: str, model: str, predictions: int, files: int) -> None:
    root = log_dir(ctx)
    rng = np.random.default_rng(1)
    per_file = -(-predictions // files)
    records = []
    for n, start in enumerate(range(0, predictions, per_file)):
        stop = min(start + per_file, predictions)
        rows = stop - start
        version = VERSIONS[n % len(VERSIONS)]
        # Spread over 24 hours in order of the request number.
        offsets = (np.arange(start, stop, dtype=np.int64) * (86_400_000_000 // predictions)).astype(np.int64)
        ts = pa.array(int(START.timestamp() * 1_000_000) + offsets, pa.timestamp("us", tz="UTC"))

        def const(value: str, rows: int = rows) -> pa.Array:
            return pa.array([value], pa.string()).take(np.zeros(rows, dtype=np.int32))

        table = pa.table(
            {
                "ts": ts,
                "deployment": const(deployment),
                "model": const(model),
                "version": const(version),
                "role": const("champion"),
                "experiment": const(""),
                "request_id": ids(start, stop),
                "routing_key": pa.nulls(rows, pa.string()),
                "agent": const("bench-agent"),
                "latency_ms": pa.array(rng.uniform(0.1, 2.0, rows)),
                "in_x": pa.array(rng.normal(size=rows)),
                "label": pc.cast(pa.array(rng.integers(0, 2, rows)), pa.string()),
            }
        )
        date = f"{START:%Y-%m-%d}"
        relative = Path(f"deployment={deployment}") / f"date={date}" / f"version={version}" / f"bench-{n:05d}.parquet"
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd")
        records.append(
            LogSegmentRow(
                agent_id="bench-agent",
                segment_id=f"{n:05d}",
                deployment=deployment,
                model=model,
                version=version,
                date=date,
                rows=rows,
                bytes=path.stat().st_size,
                path=relative.as_posix(),
            )
        )
    with ctx.db.session() as session:
        session.add_all(records)


def write_labels(ctx: Context, deployment: str, predictions: int, labels: int) -> None:
    root = labels_dir(ctx.config, ctx.artifacts.root)
    rng = np.random.default_rng(2)
    chosen = np.sort(rng.choice(predictions, size=labels, replace=False))
    received = START + timedelta(days=2)
    records = []
    for n, part in enumerate(np.array_split(chosen, IMPORTS)):
        import_id = f"bench-{n}"
        rows = len(part)
        table = pa.table(
            {
                "request_id": pc.binary_join_element_wise("req-", pc.cast(pa.array(part), pa.string()), ""),
                "label": pc.cast(pa.array(rng.integers(0, 2, rows)), pa.string()),
                "value": pa.nulls(rows, pa.float64()),
                "event_time": pa.nulls(rows, pa.timestamp("us", tz="UTC")),
                "received_at": pa.array([received + timedelta(minutes=n)] * rows, pa.timestamp("us", tz="UTC")),
                "import_id": pa.array([import_id] * rows, pa.string()),
            },
            schema=label_schema(),
        )
        relative = Path(f"deployment={deployment}") / f"{import_id}.parquet"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / relative, compression="zstd")
        records.append(
            LabelImportRow(
                id=import_id,
                deployment=deployment,
                principal="bench",
                source="import",
                created_at=received + timedelta(minutes=n),
                rows=rows,
                accepted=rows,
                path=relative.as_posix(),
            )
        )
    with ctx.db.session() as session:
        session.add_all(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=10_000_000)
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=200, help="segment files (real ones hold <= 8 MB)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = Database(f"sqlite:///{root / 'store.db'}")
        ctx = Context(db=db, artifacts=ArtifactStore(root / "artifacts"), config=Config(), events=EventBus())
        deployment = deployed(ctx, root / "models")
        with ctx.db.session() as session:
            from sqlalchemy import select

            from controlplane.store.models import DeploymentRow, ModelVersionRow, TrafficSplitRow

            model = session.scalar(
                select(ModelVersionRow.model)
                .join(TrafficSplitRow, TrafficSplitRow.version_id == ModelVersionRow.id)
                .join(DeploymentRow, DeploymentRow.id == TrafficSplitRow.deployment_id)
                .where(DeploymentRow.name == deployment)
            )
        t0 = time.perf_counter()
        write_segments(ctx, deployment, str(model), args.predictions, args.files)
        write_labels(ctx, deployment, args.predictions, args.labels)
        print(
            f"wrote {args.predictions:,} predictions in {args.files} segments and {args.labels:,} labels "
            f"in {IMPORTS} imports: {time.perf_counter() - t0:.1f} s"
        )
        sources = joined.recorded_sources(ctx, deployment, per_hour=True)
        log_files = sources.log_files(ctx)  # local segments: no S3 copy to pin
        size = sum(p.stat().st_size for p in log_files) / 1e6
        print(f"log files {size:.0f} MB; max RSS before the query {max_rss_mb():.0f} MB")

        t0 = time.perf_counter()
        figures = joined.compute(log_files, sources.label_files, per_hour=True)
        per_hour = time.perf_counter() - t0
        print(
            f"accuracy per version per hour: {per_hour:.2f} s, {len(figures)} buckets; "
            f"max RSS after {max_rss_mb():.0f} MB"
        )
        total = sum(f.predictions for f in figures)
        labelled = sum(f.labeled for f in figures)
        assert total == args.predictions and labelled == args.labels, (total, labelled)

        t0 = time.perf_counter()
        whole = joined.joined_metrics(ctx, deployment)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = joined.joined_metrics(ctx, deployment)
        cached = time.perf_counter() - t0
        assert again is whole
        print(f"per version (status): {first:.2f} s, then {cached * 1000:.1f} ms from the cache")
        segments = dict(zip(sources.key[3], sources.log_files, strict=True))
        imports = dict(zip(sources.key[4], sources.label_files, strict=True))
        t0 = time.perf_counter()
        result, partials = joined.update(None, segments, imports, False)
        scratch = time.perf_counter() - t0
        newest = max(segments)
        before = joined._State({s: p for s, p in partials.items() if s != newest}, tuple(imports), result)
        t0 = time.perf_counter()
        after_segment, _ = joined.update(before, segments, imports, False)
        one_segment = time.perf_counter() - t0
        last_import = list(imports)[-1]
        before = joined._State(partials, tuple(i for i in imports if i != last_import), result)
        t0 = time.perf_counter()
        after_import, _ = joined.update(before, segments, imports, False)
        one_import = time.perf_counter() - t0
        for a, b in ((result, after_segment), (result, after_import)):
            assert [(f.predictions, f.labeled) for f in a] == [(f.predictions, f.labeled) for f in b]
        print(
            f"incremental: from scratch {scratch:.2f} s; after one new segment {one_segment:.2f} s; "
            f"after a new import of {args.labels // IMPORTS:,} labels {one_import:.2f} s"
        )
        for f in whole:
            print(
                f"  {f.model}:{f.version} predictions {f.predictions:,} labeled {f.labeled:,} "
                f"waiting {f.waiting:,} accuracy {f.accuracy:.4f}"
            )
        db.dispose()


if __name__ == "__main__":
    main()
