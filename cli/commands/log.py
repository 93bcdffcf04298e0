"""`sluice log set DEPLOYMENT --sample-rate R|off` (the share of requests in the prediction log) and
`sluice log purge DEPLOYMENT --older-than AGE | --routing-key KEY`. `sluice logs` is the same group
(the issue's spelling)."""

from __future__ import annotations

import argparse
import math
import sys

from cli.commands.common import add_json, client_from
from cli.output import EXIT_USAGE, CliError, print_json
from core.durations import parse_duration
from core.errors import InvalidInput
from core.names import validate_name
from protos import controlplane_pb2


def register(sub: argparse._SubParsersAction) -> None:
    lg = sub.add_parser(
        "log", aliases=["logs"], help="the prediction log: what share of requests agents record; purges"
    )
    lsub = lg.add_subparsers(dest="log_command", required=True, metavar="set|purge")
    st = lsub.add_parser(
        "set",
        help="the share of a deployment's requests written to the prediction log",
        description="Agents keep a request when a hash of its request id falls under the rate, so a "
        "request and its shadows' answers are logged together. 'off' (or 0) logs nothing; 1 logs "
        "every request (the default).",
    )
    st.add_argument("deployment")
    st.add_argument("--sample-rate", required=True, metavar="R|off", help="0..1, or off")
    st.add_argument("--reason", default="")
    add_json(st)
    st.set_defaults(handler=cmd_set)
    pg = lsub.add_parser(
        "purge",
        help="remove a deployment's logged rows older than an age, or of one routing key (and their labels)",
        description="The rows are removed from the segment files themselves (each rewritten without them, or "
        "deleted when nothing remains), and the labels of their request ids from the label files. Rows "
        "still buffered on agents arrive later: run it again then. Audited (a routing key as its sha256).",
    )
    pg.add_argument("deployment")
    which = pg.add_mutually_exclusive_group(required=True)
    which.add_argument("--older-than", metavar="AGE", help="e.g. 30d, 12h, 90m, 2w: rows whose ts is older")
    which.add_argument("--routing-key", metavar="KEY", help="every row of this routing key")
    pg.add_argument("--reason", default="")
    add_json(pg)
    pg.set_defaults(handler=cmd_purge)


def parse_rate(text: str) -> float:
    if text.strip().lower() == "off":
        return 0.0
    try:
        rate = float(text)
    except ValueError:
        raise CliError(f"--sample-rate {text!r}: give a number between 0 and 1, or off") from None
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise CliError(f"--sample-rate {text!r}: give a number between 0 and 1, or off")
    return rate


def describe_rate(rate: float) -> str:
    return "off" if rate <= 0 else "every request" if rate >= 1 else f"{rate:.4g} of requests"


def cmd_set(args: argparse.Namespace) -> int:
    validate_name("deployment", args.deployment)
    rate = parse_rate(args.sample_rate)
    with client_from(args) as client:
        deployment = client.set_log_sample_rate(args.deployment, rate, args.reason)
    if args.json:
        print_json(deployment)
    else:
        print(f"prediction log of {deployment.name}: {describe_rate(deployment.log_sample_rate)}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    validate_name("deployment", args.deployment)
    older_than = 0.0
    if args.older_than is not None:
        try:
            older_than = parse_duration(args.older_than)
        except InvalidInput as exc:
            raise CliError(f"--older-than: {exc}", EXIT_USAGE) from None
    elif not args.routing_key:
        raise CliError("--routing-key: give a non-empty key")
    summary: controlplane_pb2.PurgeSummary | None = None
    with client_from(args) as client:
        for progress in client.purge_log(
            args.deployment, older_than_seconds=older_than, routing_key=args.routing_key or "", reason=args.reason
        ):
            if progress.HasField("summary"):
                summary = progress.summary
            elif not args.json:
                print(f"purging: {progress.segments_done}/{progress.segments_total} segments", file=sys.stderr)
    if summary is None:
        raise CliError("the control plane ended the purge without its summary; run it again to finish it")
    if args.json:
        print_json(summary)
    else:
        print(
            f"purged {args.deployment}: {summary.rows_removed} rows removed, {summary.segments_rewritten} "
            f"segments rewritten, {summary.segments_deleted} deleted, {summary.bytes_freed} bytes freed, "
            f"{summary.labels_removed} labels removed"
        )
    return 0
