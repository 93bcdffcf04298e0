"""CPU of each step of a prediction-log segment, per 1,024 rows, in process (no gRPC, no disk).

    .venv/bin/python bench/log_formats.py [--calls N] [--repeat N]

Builds the entries one flush of the agent holds (`--calls` PredictBatch answers of 1,024 rows of
the breast-cancer features: a [rows, 30] float32 input, class indices, two probabilities; no
request ids), then times (process CPU, median of `--repeat`):

- `build_table`: the Arrow table of the log's columns (`agent/logformat.py`);
- the agent's Arrow IPC file with each buffer codec (the one `runtime/logsegment.py` uses marked);
- on the control plane: reading and fully validating that file, and writing the log's Parquet
  file (`write_parquet`), which is also what an agent with an S3 sink pays (`to_parquet`).

The data repeats (569 distinct rows), so the codecs compress it better than real traffic would:
compare the codecs' CPU with each other here, not the sizes with a production log.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa

from agent.logformat import build_table
from agent.predlog import Entry
from controlplane.sample_data import breast_cancer_arrays
from runtime.logsegment import (
    ARROW_COMPRESSION,
    ARROW_COMPRESSION_LEVEL,
    read_arrow,
    to_parquet,
    write_arrow,
    write_parquet,
)


def median_cpu(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=49, help="1,024-row answers in the flush (default 49)")
    parser.add_argument("--repeat", type=int, default=9, help="timings per step (default 9)")
    args = parser.parse_args()
    X = breast_cancer_arrays()[0].astype(np.float32)
    rows = np.resize(X, (1024, X.shape[1])).astype(np.float32)
    probabilities = np.tile(np.array([[0.3, 0.7]], dtype=np.float32), (1024, 1))
    labels = np.zeros(1024, dtype=np.int64)
    entry = (time.time(), "bench", "bench", "v1", "champion", "", {"input": rows}, labels, ("0", "1"))
    entries = [Entry(*entry, None, probabilities, 1.0, [], "", 1024) for _ in range(args.calls)]
    per = 1e6 / args.calls  # seconds per flush -> µs per 1,024 rows

    def line(step: str, seconds: float, size: int | None = None) -> None:
        shown = f"{seconds * per:8.1f} µs" + (f"   {size // args.calls:>9,} bytes" if size is not None else "")
        print(f"  {step:<44}{shown}")

    print(f"per 1,024 rows (a flush of {args.calls} answers, median of {args.repeat})")
    line("build_table", median_cpu(lambda: build_table(entries, "bench"), args.repeat))
    table = build_table(entries, "bench")
    codecs: list[tuple[str, pa.Codec | None]] = [
        ("none", None),
        ("lz4", pa.Codec("lz4")),
        ("zstd 1", pa.Codec("zstd", compression_level=1)),
        ("zstd -1", pa.Codec("zstd", compression_level=-1)),
    ]
    for name, codec in codecs:

        def write(codec: pa.Codec | None = codec) -> bytes:
            sink = io.BytesIO()
            options = pa.ipc.IpcWriteOptions(compression=codec, use_threads=False)
            with pa.ipc.new_file(sink, table.schema, options=options) as writer:
                writer.write_table(table)
            return sink.getvalue()

        line(f"Arrow IPC file, buffers {name}", median_cpu(write, args.repeat), len(write()))
    sink = io.BytesIO()
    write_arrow(table, sink)
    data = sink.getvalue()
    agent_write = median_cpu(lambda: write_arrow(table, io.BytesIO()), args.repeat)
    line(f"write_arrow (the agent's: {ARROW_COMPRESSION} {ARROW_COMPRESSION_LEVEL})", agent_write, len(data))
    line("control plane: read_arrow (+ full validation)", median_cpu(lambda: read_arrow(data), args.repeat))
    line("control plane: write_parquet", median_cpu(lambda: write_parquet(table, io.BytesIO()), args.repeat))
    line("to_parquet (read + write; the S3 sink's cost)", median_cpu(lambda: to_parquet(data), args.repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
