"""`sluice log set DEPLOYMENT --sample-rate R|off`: the share of requests in the prediction log."""

from __future__ import annotations

import argparse
import math

from cli.commands.common import add_json, client_from
from cli.output import CliError, print_json
from core.names import validate_name


def register(sub: argparse._SubParsersAction) -> None:
    lg = sub.add_parser("log", help="the prediction log: what share of requests agents record")
    lsub = lg.add_subparsers(dest="log_command", required=True, metavar="set")
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
