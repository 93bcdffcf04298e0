"""What keeping metrics on disk costs the agent: the window journal per request, the spool per report.

    .venv/bin/python bench/report_durability.py [--calls N] [--rounds N] [--dir DIR]

In process, no gRPC: `MetricsRecorder.record_prediction` for one-row predictions with and without
a window journal (`agent.journal`, one `os.write` per call), rounds alternating, the median of the
rounds' per-call times; then `ReportBuffer.add` of one-second reports into a spool
(`agent.spool`, write + fsync) and `compact` after the acks. `--dir` puts the files on the disk
to measure (default: a temporary directory under the system's temp dir).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.journal import WindowJournal  # noqa: E402
from agent.recorder import MetricsRecorder  # noqa: E402
from agent.reports import ReportBuffer  # noqa: E402
from agent.spool import ReportSpool  # noqa: E402
from protos import agent_pb2, common_pb2  # noqa: E402


def per_call_us(recorder: MetricsRecorder, calls: int) -> float:
    row = np.zeros((1, 30), dtype=np.float32)
    label = np.zeros(1, dtype=np.int64)
    start = time.perf_counter()
    for _ in range(calls):
        recorder.record_prediction("d", "m", "v1", "champion", row, label, None, 0.0004)
    elapsed = time.perf_counter() - start
    recorder.flush()
    return elapsed / calls * 1e6


def report() -> agent_pb2.MetricReport:
    window = agent_pb2.VersionWindow(
        deployment="d", version=common_pb2.VersionRef(model="m", version="v1"), requests=1000, rows=1000
    )
    window.latency.keys.extend(range(40))
    window.latency.counts.extend([25] * 40)
    window.features.extend(agent_pb2.FeatureWindow(index=i, counts=[10] * 10) for i in range(30))
    window.reservoir_features = 30
    window.reservoir.extend([0.5] * 30 * 200)
    return agent_pb2.MetricReport(window_seconds=1.0, windows=[window])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=8000, help="record_prediction calls per round (default 8000)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per side (default 10)")
    parser.add_argument("--reports", type=int, default=200, help="reports spooled (default 200)")
    parser.add_argument("--dir", default=None, help="where the journal and spool go (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        plain = MetricsRecorder()
        journaled = MetricsRecorder(journal=WindowJournal(root / "windows"))
        per_call_us(plain, 1000)  # warm-up
        per_call_us(journaled, 1000)
        without, with_journal = [], []
        for _ in range(args.rounds):
            without.append(per_call_us(plain, args.calls))
            with_journal.append(per_call_us(journaled, args.calls))
        ratios = [b / a for a, b in zip(without, with_journal, strict=True)]
        print(f"record_prediction, one row, {args.rounds} rounds x {args.calls} calls (median of rounds):")
        print(f"  without journal {statistics.median(without):6.2f} us/call")
        print(f"  with journal    {statistics.median(with_journal):6.2f} us/call")
        print(f"  added           {statistics.median(with_journal) - statistics.median(without):6.2f} us/call")
        print(f"  ratio (median of round ratios) {statistics.median(ratios):.2f}x")

        buffer = ReportBuffer("bench", first_seq=1, spool=ReportSpool(root / "reports"))
        size = len(report().SerializeToString())
        adds, compacts = [], []
        for _ in range(args.reports):
            start = time.perf_counter()
            sent = buffer.add(report())
            adds.append(time.perf_counter() - start)
            buffer.ack(sent.seq)
            start = time.perf_counter()
            buffer.compact()
            compacts.append(time.perf_counter() - start)
        adds.sort()
        compacts.sort()
        n = len(adds)
        print(f"spool: {n} reports of {size:,} bytes, each acked before the next (steady state):")
        p50, p99 = adds[n // 2] * 1e3, adds[n * 99 // 100] * 1e3
        print(f"  add (write + fsync, new segment)  p50 {p50:.2f} ms  p99 {p99:.2f} ms")
        print(f"  compact (unlink)                  p50 {compacts[n // 2] * 1e3:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
