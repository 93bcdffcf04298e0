"""Pieces every CLI command uses."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

from cli.output import EXIT_NOT_APPLIED, CliError
from controlplane.domain import DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS
from core.client import SluiceClient
from protos import controlplane_pb2

INT64_MAX = 2**63 - 1


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high], refused in one line otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in its own messages
    return parse


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text}")
    return value


UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(text: str) -> float:
    """An argparse type: a duration >= 0 as seconds or with a unit (90, 30s, 15m, 2h, 7d)."""
    number, scale = text.strip(), 1.0
    if number and number[-1].lower() in UNITS:
        number, scale = number[:-1], UNITS[number[-1].lower()]
    try:
        value = float(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; write e.g. 90, 30s, 15m, 2h or 7d") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a duration >= 0, got {text}")
    return value


def client_from(args: argparse.Namespace) -> SluiceClient:
    return SluiceClient(args.controlplane)


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def add_wait(parser: argparse.ArgumentParser) -> None:
    """--wait and --timeout: return once every connected agent serves the new generation."""
    parser.add_argument(
        "--wait",
        action="store_true",
        help="return once every connected agent serves the new generation (exit 8 if one refuses it or lags)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"seconds to wait with --wait (default {DEFAULT_WAIT_SECONDS:g}, at most {MAX_WAIT_SECONDS:g})",
    )


def wait_timeout(args: argparse.Namespace) -> float:
    """The --wait timeout, checked before anything changes (a retry must not apply a change twice)."""
    if args.timeout is not None and not args.wait:
        raise CliError("--timeout only applies with --wait")
    timeout = DEFAULT_WAIT_SECONDS if args.timeout is None else args.timeout
    if not 0 < timeout <= MAX_WAIT_SECONDS:
        raise CliError(f"--timeout is {timeout:g}; with --wait it must be more than 0 and at most {MAX_WAIT_SECONDS:g}")
    return timeout


def wait_for_agents(client: SluiceClient, deployment: controlplane_pb2.Deployment, timeout: float, quiet: bool) -> None:
    """Block until every connected agent has applied `deployment`'s generation; exit 8 (with the
    agents named) when one refused it or did not apply it within `timeout`."""
    sync = client.wait_for_sync(deployment.name, deployment.generation, timeout)
    if not sync.in_sync:
        if len(sync.refused_agents) == len(sync.lagging_agents):
            raise CliError(
                f"generation {deployment.generation} was refused by: " + ", ".join(sync.lagging_agents),
                EXIT_NOT_APPLIED,
            )
        raise CliError(
            f"generation {deployment.generation} not applied within {timeout:g}s by: " + ", ".join(sync.lagging_agents),
            EXIT_NOT_APPLIED,
        )
    if not sync.synced_agents:
        # Nothing to wait for is not the same as applied: say so, the change reaches agents when they connect.
        print(
            f"warning: no agent is connected; generation {deployment.generation} is committed and reaches "
            "each agent when it connects (`sluice agents`)",
            file=sys.stderr,
        )
    elif not quiet:
        print(f"applied by {len(sync.synced_agents)} agent(s): {', '.join(sync.synced_agents)}")
