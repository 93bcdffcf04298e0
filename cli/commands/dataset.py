"""`sluice dataset export DEPLOYMENT --out FILE.parquet`: logged predictions with their labels.

The control plane joins the prediction log with the current labels (DuckDB) into one Parquet
file and streams it; the file is written here under a temporary name beside --out and renamed
only once every byte arrived, so --out is either the whole export or untouched.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from cli.commands.common import add_json, client_from
from cli.output import CliError, print_json
from core.names import parse_version_ref, validate_name


def register(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser("dataset", help="datasets from the prediction log joined with the labels")
    dsub = ds.add_subparsers(dest="dataset_command", required=True, metavar="export")
    ex = dsub.add_parser(
        "export",
        help="write the features + prediction + label rows of a deployment's log to a Parquet file",
        description="Columns: the log's (ts, model, version, role, request_id, ..., the in_ features, "
        "label / value / probabilities: what was predicted) and the truth: true_label, true_value, "
        "label_event_time, label_received_at (null where no label arrived yet). Times are ISO 8601, "
        "UTC unless they say otherwise; --until is exclusive.",
    )
    ex.add_argument("deployment")
    ex.add_argument("--since", default="", metavar="TIME", help="rows predicted at or after TIME")
    ex.add_argument("--until", default="", metavar="TIME", help="rows predicted before TIME")
    ex.add_argument("--version", default="", metavar="MODEL:VERSION", help="only this version's rows")
    ex.add_argument("--labeled-only", action="store_true", help="only rows with a label")
    ex.add_argument("--out", required=True, type=Path, metavar="FILE.parquet")
    add_json(ex)
    ex.set_defaults(handler=cmd_export)


def parse_time(text: str, flag: str) -> datetime | None:
    """An ISO 8601 time (UTC when it names no zone), or None for ""."""
    if not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{flag} {text[:40]!r} is not an ISO 8601 time (e.g. 2026-12-06T10:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_export(args: argparse.Namespace) -> int:
    validate_name("deployment", args.deployment)
    out: Path = args.out
    if out.suffix.lower() != ".parquet":
        raise CliError(f"--out {str(out)!r}: the export is Parquet; name a file ending in .parquet")
    if out.is_dir():
        raise CliError(f"--out {str(out)!r} is a directory; name a file ending in .parquet")
    since = parse_time(args.since, "--since")
    until = parse_time(args.until, "--until")
    if since is not None and until is not None and since >= until:
        raise CliError(f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
    version = parse_version_ref(args.version) if args.version else None
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.parent / f".{out.name}.part"
    rows = size = received = 0
    try:
        with client_from(args) as client, temporary.open("wb") as handle:
            chunks = client.export_dataset(
                args.deployment, since=since, until=until, version=version, labeled_only=args.labeled_only
            )
            for chunk in chunks:
                if chunk.WhichOneof("payload") == "header":
                    rows, size = chunk.header.rows, chunk.header.size
                else:
                    handle.write(chunk.data)
                    received += len(chunk.data)
            if received != size:
                raise CliError(f"the export ended after {received} of {size} bytes; nothing was written")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    if args.json:
        print_json({"out": str(out), "rows": rows, "bytes": size})
    else:
        print(f"{rows} rows written to {out} ({size} bytes)", file=sys.stdout)
    return 0
