"""`sluice demo`: the whole system on this machine, on the embedded defaults."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from cli.output import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole system locally: control plane, two agents, traffic, drift, rollouts, TUI",
    )
    p.add_argument("--headless", action="store_true", help="print progress instead of opening the TUI")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds of traffic after the scenario (default: 10 headless; with the TUI, until you quit it)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path("sluice-data/demo"),
        help="where the demo keeps its database, models and logs; wiped at start (default %(default)s)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=7400,
        help="control-plane port; the agents use PORT+100 and PORT+110 (free ones are used when taken)",
    )
    p.add_argument(
        "--no-story",
        action="store_true",
        help="set up the cluster, the four versions and the traffic, then skip the scripted story (a quick sandbox)",
    )
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.duration is not None and (not math.isfinite(args.duration) or args.duration < 0):
        raise CliError("--duration must be a number of seconds >= 0")
    if not 0 <= args.port <= 65535:
        raise CliError("--port must be 0-65535 (0 picks a free one)")
    from cli.demo.session import Demo

    demo = Demo(args.workdir, headless=args.headless, duration=args.duration, port=args.port, story=not args.no_story)
    return demo.run()
