"""`sluice labels import` of a big CSV file into a real control plane: rows/s end to end (read,
send, judge in DuckDB against the stored labels and the prediction log, write), and again for the
same requests relabelled (every row then meets a stored label).

    .venv/bin/python bench/labels_import.py [--rows N] [--logged N]

The control plane runs in this process (its own thread); the CLI is a child process, as a user
runs it. The prediction log holds `--logged` request ids in one segment of the log's layout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from core.client import SluiceClient
from tests.controlplane.labels.support import write_log_segment
from tests.harness import SLUICE, start_server
from tests.models import make_classifier_onnx


def write_csv(path: Path, rows: int, flip: int) -> None:
    with path.open("w") as out:
        out.write("request_id,label\n")
        out.writelines(f"req-{i},{(i + flip) % 2}\n" for i in range(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--logged", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = start_server(root / "cp")
        try:
            with SluiceClient(server.address, token="") as client:
                client.register_version("cancer", "v1", make_classifier_onnx(root / "models"))
                client.deploy("bench", "cancer:v1")
            start = datetime(2026, 12, 1, tzinfo=UTC)
            logged = {f"req-{i}": start + timedelta(milliseconds=i) for i in range(args.logged)}
            write_log_segment(server.ctx, "bench", logged, name="bench-1")  # recorded like a shipped one
            for flip, what in ((0, "new labels"), (1, "every row replaces a stored label")):
                csv = root / f"labels-{flip}.csv"
                write_csv(csv, args.rows, flip)
                began = time.perf_counter()
                result = subprocess.run(
                    [*SLUICE, "--controlplane", server.address, "labels", "import", "bench", str(csv), "--json"],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                seconds = time.perf_counter() - began
                summary = json.loads(result.stdout)
                print(
                    f"{args.rows:,} rows ({what}): {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s; "
                    f"accepted {summary['accepted']:,}, replaced {summary['replaced']:,}, "
                    f"unknown {summary['unknown_ids']:,}"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
