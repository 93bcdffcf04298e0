"""CPU of each step of a prediction-log segment, per 1,024 rows, in process (no gRPC, no disk).

    .venv/bin/python bench/log_formats.py [--calls N] [--repeat N]

Builds the entries one flush of the agent holds (`--calls` PredictBatch answers of 1,024 rows of
the breast-cancer features: a [rows, 30] float32 input, class indices, two probabilities, a
request id per row), then times (process CPU, median of `--repeat`):

- the agent's record of each answer (`runtime.logrecords.encode`, on the request path; then one
  `os.writev`, not timed here) and its record file's size: what the agent ships;
- on the control plane: checking the record file and building the Arrow table of the log's
  columns (`read_records` = `read_segment` + `build_table`), and writing the log's Parquet file
  (`write_parquet`); read + write is also what an agent with an S3 sink pays (`to_parquet`);
- for comparison, the previous release's agent file: an Arrow IPC file with each buffer codec,
  and `build_table` alone.

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

from controlplane.sample_data import breast_cancer_arrays
from runtime.logread import read_segment
from runtime.logrecords import END, MAGIC, Entry, Footer, encode, encode_footer
from runtime.logsegment import (
    ARROW_COMPRESSION,
    ARROW_COMPRESSION_LEVEL,
    read_arrow,
    read_records,
    to_parquet,
    write_arrow,
    write_parquet,
)
from runtime.logtable import build_table


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
    ids = [f"{i:08x}-6f1c-4a5e-9b7d-0123456789ab" for i in range(1024)]  # uuid-sized request ids
    entries = [Entry(*entry, None, probabilities, 1.0, ids, "", 1024) for _ in range(args.calls)]
    per = 1e6 / args.calls  # seconds per flush -> µs per 1,024 rows

    def line(step: str, seconds: float, size: int | None = None) -> None:
        shown = f"{seconds * per:8.1f} µs" + (f"   {size // args.calls:>9,} bytes" if size is not None else "")
        print(f"  {step:<44}{shown}")

    print(f"per 1,024 rows (a flush of {args.calls} answers, median of {args.repeat})")
    records = b"".join(b"".join(bytes(b) for b in encode(e).buffers) for e in entries)
    footer = Footer("bench", "bench", "v1", "2026-12-07", 1024 * args.calls)
    data = MAGIC + records + encode_footer(footer)
    assert data.endswith(END)
    encoding = median_cpu(lambda: [encode(e) for e in entries], args.repeat)
    line("agent: encode (the record, on the request path)", encoding, len(data))
    line("control plane: read_segment (every record checked)", median_cpu(lambda: read_segment(data), args.repeat))
    building = median_cpu(lambda: read_records(data, "b"), args.repeat)
    line("control plane: read_records (checked + build_table)", building)
    line("control plane: to_parquet of the record file", median_cpu(lambda: to_parquet(data, "b"), args.repeat))
    print("the previous release's agent file, for comparison:")
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
    line("to_parquet of the Arrow file", median_cpu(lambda: to_parquet(data, "bench"), args.repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
