"""`sluice demo`: the whole system on this machine, on the embedded defaults."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run the whole system locally: control plane, agents, traffic, TUI")
    p.add_argument("--headless", action="store_true", help="print progress instead of opening the TUI")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of traffic after the scenario (default: 20 headless, until you quit the TUI)",
    )
    p.add_argument(
        "--workdir", type=Path, default=Path("sluice-data/demo"), help="where the demo keeps its files"
    )
    p.add_argument(
        "--port", type=int, default=7400, help="control-plane port (a free one is used when taken)"
    )
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from controlplane.demo import Demo

    return Demo(args.workdir, headless=args.headless, duration=args.duration, port=args.port).run()
