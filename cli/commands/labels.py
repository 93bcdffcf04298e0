"""`sluice labels import|list`: the truth about past predictions, in bulk (docs/PREDICTION_LOG.md).

A file is read and sent in batches as it is read, so a big one never sits in memory. A malformed
line stops the import with its line number: with --atomic the call is cancelled and nothing is
stored; without it the rows sent before that line are imported (their summary is printed) and the
command still fails, so a fixed file can be imported again (its rows already stored count as
duplicates, not twice). pyarrow is imported only for Parquet files.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import sys
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli.commands.common import add_json, client_from, whole_number
from cli.output import CliError, print_json, print_table, when
from core.client import ClientError
from core.names import validate_name
from protos import common_pb2, controlplane_pb2

BATCH_ROWS = 10_000  # the control plane's default limit per message (labels.max_rows_per_message)
PROGRESS_EVERY = 100_000  # rows between two progress lines on stderr
TRUTH_COLUMNS = ("label", "value")
_ROW = re.compile(r"^row (\d+) ")


def register(sub: argparse._SubParsersAction) -> None:
    labels = sub.add_parser("labels", help="import the true labels of past predictions; list the imports")
    lsub = labels.add_subparsers(dest="labels_command", required=True, metavar="import|list")

    imp = lsub.add_parser(
        "import",
        help="import labels from a CSV or Parquet file",
        description="Columns: request_id (what the prediction answered with) and label (a classifier's "
        "class by name) or value (a regressor's number); optional event_time (ISO 8601, UTC unless it "
        "says otherwise). A label equal to the stored one is a duplicate, a different one replaces it. "
        "The import id defaults to one derived from the file and the deployment, so running the same "
        "command again answers the recorded summary and stores nothing twice.",
    )
    imp.add_argument("deployment")
    imp.add_argument("file", type=Path, metavar="FILE.csv|FILE.parquet")
    imp.add_argument("--atomic", action="store_true", help="one bad row or line refuses the whole import")
    imp.add_argument("--import-id", default="", help="name the import (a retry with the same id stores nothing twice)")
    imp.add_argument("--batch", type=whole_number(1, BATCH_ROWS), default=BATCH_ROWS, help="rows per message")
    add_json(imp)
    imp.set_defaults(handler=cmd_import)

    ls = lsub.add_parser("list", help="a deployment's recent label imports, newest first")
    ls.add_argument("deployment")
    ls.add_argument("--limit", type=whole_number(1, 200), default=20)
    add_json(ls)
    ls.set_defaults(handler=cmd_list)


class Malformed(Exception):
    """A line or row of the file that cannot be read; stops the import."""


def default_import_id(deployment: str, path: Path) -> str:
    """The same deployment and file content give the same id: re-running a command is a retry."""
    digest = hashlib.sha256(deployment.encode() + b"\0")
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return f"file-{digest.hexdigest()[:40]}"


def _time(text: str, where: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(
            f"{where}: event_time {text[:40]!r} is not an ISO 8601 time (e.g. 2026-12-06T10:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _row(request_id: str, label: str | None, value: float | None, event_time: datetime | None) -> common_pb2.LabelRow:
    row = common_pb2.LabelRow(request_id=request_id)
    if label is not None:
        row.label = label
    if value is not None:
        row.value = value
    if event_time is not None:
        row.event_time.FromDatetime(event_time)
    return row


def _columns(names: list[str], where: str) -> tuple[int, int, str, int | None]:
    """(request_id index, truth index, truth column name, event_time index or None)."""
    if "request_id" not in names:
        raise Malformed(f"{where}: no request_id column (the columns are {', '.join(names)[:200]})")
    truths = [n for n in TRUTH_COLUMNS if n in names]
    if len(truths) != 1:
        raise Malformed(f"{where}: give exactly one of the columns label (classifiers) or value (regressors)")
    event = names.index("event_time") if "event_time" in names else None
    return names.index("request_id"), names.index(truths[0]), truths[0], event


def csv_rows(path: Path, lines: array) -> Iterator[common_pb2.LabelRow]:
    """The rows of a CSV file with a header; `lines` gets each row's line number (for messages)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise Malformed(f"{path} is empty: write a header (request_id,label or request_id,value) and rows")
            names = [h.strip() for h in header]
            id_at, truth_at, truth, event_at = _columns(names, f"{path} line 1")
            for fields in reader:
                where = f"{path} line {reader.line_num}"
                if not fields:
                    continue  # a blank line
                if len(fields) != len(names):
                    raise Malformed(f"{where}: {len(fields)} fields, but the header has {len(names)}")
                text = fields[truth_at]
                label: str | None = None
                value: float | None = None
                if truth == "label":
                    label = text
                else:
                    try:
                        value = float(text)
                    except ValueError:
                        raise Malformed(f"{where}: value {text[:40]!r} is not a number") from None
                moment = _time(fields[event_at], where) if event_at is not None else None
                lines.append(reader.line_num)
                yield _row(fields[id_at], label, value, moment)
        except csv.Error as exc:
            raise Malformed(f"{path} line {reader.line_num}: malformed CSV: {exc}") from None
        except UnicodeDecodeError:
            raise Malformed(f"{path} line {reader.line_num + 1}: not UTF-8 text") from None


def _cell_label(value: Any, where: str) -> str:
    if isinstance(value, float):
        if not value.is_integer():
            raise Malformed(
                f"{where}: label {value!r} is not a class (a classifier's label is a name or a whole number)"
            )
        return str(int(value))
    return str(value)


def parquet_rows(path: Path, batch: int) -> Iterator[common_pb2.LabelRow]:
    """The rows of a Parquet file, read a batch at a time."""
    import pyarrow.lib
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
    except pyarrow.lib.ArrowException as exc:
        raise Malformed(f"{path} is not a Parquet file: {str(exc).splitlines()[0][:200]}") from None
    names = list(source.schema_arrow.names)
    _, _, truth, _ = _columns(names, str(path))
    wanted = ["request_id", truth, *(["event_time"] if "event_time" in names else [])]
    number = 0
    for record_batch in source.iter_batches(batch_size=batch, columns=wanted):
        columns = {name: record_batch.column(name).to_pylist() for name in wanted}
        for i, request_id in enumerate(columns["request_id"]):
            number += 1
            where = f"{path} row {number}"
            cell = columns[truth][i]
            label = _cell_label(cell, where) if truth == "label" and cell is not None else None
            value = None
            if truth == "value" and cell is not None:
                if isinstance(cell, bool) or not isinstance(cell, int | float):
                    raise Malformed(f"{where}: value {str(cell)[:40]!r} is not a number")
                value = float(cell)
            moment = columns["event_time"][i] if "event_time" in columns else None
            if isinstance(moment, str):
                moment = _time(moment, where)
            elif isinstance(moment, datetime) and moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            yield _row("" if request_id is None else str(request_id), label, value, moment)


def batches(
    rows: Iterator[common_pb2.LabelRow], size: int, progress: list[int], *, keep_partial: bool
) -> Iterator[list[common_pb2.LabelRow]]:
    """Rows in messages of `size`; `progress[0]` counts the rows sent, with a line on stderr every
    PROGRESS_EVERY rows. When the file turns out malformed, the rows read before it are sent
    first if `keep_partial`, then the error goes on."""
    batch: list[common_pb2.LabelRow] = []
    try:
        for row in rows:
            batch.append(row)
            if len(batch) == size:
                yield batch
                _count(progress, len(batch))
                batch = []
    except Malformed:
        if keep_partial and batch:
            yield batch
            _count(progress, len(batch))
        raise
    if batch:
        yield batch
        _count(progress, len(batch))


def _count(progress: list[int], n: int) -> None:
    before = progress[0]
    progress[0] += n
    if progress[0] // PROGRESS_EVERY > before // PROGRESS_EVERY:
        print(f"{progress[0]:,} rows sent", file=sys.stderr, flush=True)


def with_line(message: str, path: Path, lines: array) -> str:
    """'row N ...' of the server, with the CSV line that row came from."""
    match = _ROW.match(message)
    if not match or not 0 < int(match.group(1)) <= len(lines):
        return message
    return f"{message} ({path} line {lines[int(match.group(1)) - 1]})"


def cmd_import(args: argparse.Namespace) -> int:
    validate_name("deployment", args.deployment)
    path: Path = args.file
    if not path.is_file():
        raise CliError(f"{path} is not a file")
    kind = path.suffix.lower()
    if kind not in (".csv", ".parquet", ".pq"):
        raise CliError(f"{path}: give a .csv or .parquet file")
    import_id = args.import_id or default_import_id(args.deployment, path)
    lines: array = array("Q")
    rows = csv_rows(path, lines) if kind == ".csv" else parquet_rows(path, args.batch)
    stopped: list[Malformed] = []
    progress = [0]

    def sent() -> Iterator[list[common_pb2.LabelRow]]:
        try:
            yield from batches(rows, args.batch, progress, keep_partial=not args.atomic)
        except Malformed as exc:
            stopped.append(exc)
            if args.atomic:
                raise  # cancels the call: the control plane stores nothing of it
        if progress[0] == 0:  # nothing to import: no import is recorded either
            if not stopped:
                stopped.append(Malformed(f"{path} has no label rows: nothing to import"))
            raise stopped[0]

    with client_from(args) as client:
        try:
            summary = client.submit_labels(args.deployment, import_id, sent(), atomic=args.atomic)
        except Malformed as exc:  # the call was cancelled because of the file: nothing stored
            raise CliError(str(exc)) from None
        except ClientError as exc:
            exc.message = with_line(exc.message, path, lines)
            raise
    if args.json:  # the summary of what was imported, also when the file stopped it (stderr says why)
        print_json(summary)
    else:
        print_summary(summary, path, lines)
    if stopped:
        raise CliError(
            f"{stopped[0]}; the {summary.rows:,} rows before it were imported (import {summary.import_id}): "
            "fix the file and import it again (rows already stored count as duplicates)"
        )
    return 0


def print_summary(s: controlplane_pb2.LabelImport, path: Path, lines: array) -> None:
    out = sys.stdout
    again = "  (imported before: the recorded summary; nothing stored now)" if s.replayed else ""
    print(f"import {s.import_id} into {s.deployment}: {s.rows:,} rows{again}", file=out)
    print(f"  accepted      {s.accepted:>12,}", file=out)
    print(f"  replaced      {s.replaced:>12,}  (a different label before: the new one counts)", file=out)
    print(f"  duplicates    {s.duplicates:>12,}  (equal to the stored label: not stored again)", file=out)
    print(f"  unknown ids   {s.unknown_ids:>12,}  (no prediction logged with that id yet: kept)", file=out)
    print(f"  late          {s.late:>12,}  (long after their prediction: kept)", file=out)
    print(f"  refused       {s.refused:>12,}", file=out)
    for refusal in s.refusals:
        print(f"    {with_line(refusal, path, lines)}", file=out)


def cmd_list(args: argparse.Namespace) -> int:
    validate_name("deployment", args.deployment)
    with client_from(args) as client:
        imports = client.label_imports(args.deployment, args.limit)
    if args.json:
        print_json(imports)
        return 0
    headers = (
        "WHEN",
        "IMPORT",
        "SOURCE",
        "ROWS",
        "ACCEPTED",
        "DUPLICATES",
        "REPLACED",
        "UNKNOWN",
        "LATE",
        "REFUSED",
        "BY",
    )
    rows = [
        (
            when(s.created_at),
            s.import_id,
            s.source,
            f"{s.rows:,}",
            f"{s.accepted:,}",
            f"{s.duplicates:,}",
            f"{s.replaced:,}",
            f"{s.unknown_ids:,}",
            f"{s.late:,}",
            f"{s.refused:,}",
            s.principal,
        )
        for s in imports
    ]
    print_table(headers, rows, empty=f"no label imports for {args.deployment}")
    return 0
    print(
        f"{'WHEN':<20} {'IMPORT':<46} {'SOURCE':<8} {'ROWS':>9} {'ACCEPTED':>9} {'DUPS':>7} {'REPLACED':>8} "
        f"{'UNKNOWN':>8} {'LATE':>6} {'REFUSED':>7}  BY"
    )
    for s in imports:
        print(
            f"{when(s.created_at):<20} {s.import_id:<46} {s.source:<8} {s.rows:>9,} {s.accepted:>9,} "
            f"{s.duplicates:>7,} {s.replaced:>8,} {s.unknown_ids:>8,} {s.late:>6,} {s.refused:>7,}  {s.principal}"
        )
    return 0
