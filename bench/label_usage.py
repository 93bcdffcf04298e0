"""The label store's disk use as `sluice status D` reads it (`retention.usage`), over a deployment
with many label imports: median time of one call.

    .venv/bin/python bench/label_usage.py [--imports N] [--calls K]

Each import is a row in `label_imports` (SQLite file) and a small Parquet file in the labels
directory, as `sluice labels import` leaves them. Run it on two trees to compare (the column
`label_imports.bytes` is filled when the ORM has it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa
import pyarrow.parquet as pq

from controlplane.artifacts import ArtifactStore
from controlplane.config import Config
from controlplane.context import Context
from controlplane.datafiles.files import import_file, labels_dir
from controlplane.events import EventBus
from controlplane.predlog.retention import usage
from controlplane.store.db import Database
from controlplane.store.models import LabelImportRow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = Database(f"sqlite:///{root / 'store.db'}")
        ctx = Context(db=db, artifacts=ArtifactStore(root / "artifacts"), config=Config(), events=EventBus())
        labels = labels_dir(ctx.config, ctx.artifacts.root)
        table = pa.table({"request_id": [f"r{i}" for i in range(50)], "label": ["1"] * 50})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        data = sink.getvalue().to_pybytes()
        with_sizes = hasattr(LabelImportRow, "bytes")
        began = time.perf_counter()
        with db.session() as session:
            for i in range(args.imports):
                relative = import_file("bench", f"imp-{i}")
                path = labels / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                row = LabelImportRow(id=f"imp-{i}", deployment="bench", principal="bench", source="import")
                row.path = str(relative)
                if with_sizes:
                    row.bytes = len(data)
                session.add(row)
        print(f"{args.imports:,} imports written in {time.perf_counter() - began:.1f} s (sizes stored: {with_sizes})")
        first = usage(ctx, "bench")["bench"]
        assert (first.label_files, first.label_bytes) == (args.imports, args.imports * len(data)), first
        times = []
        for _ in range(args.calls):
            began = time.perf_counter()
            usage(ctx, "bench")
            times.append(time.perf_counter() - began)
        print(f"usage(ctx, 'bench'): median {statistics.median(times) * 1000:.1f} ms, min {min(times) * 1000:.1f} ms")
        db.dispose()


if __name__ == "__main__":
    main()
