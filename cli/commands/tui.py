"""`sluice tui`: the operator's terminal UI on the control plane (address and token as for the CLI)."""

from __future__ import annotations

import argparse
import os
import sys

from cli.output import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tui",
        help="the operator's terminal UI: live deployments, experiments, alerts; act by key",
        description="Open the terminal UI on the control plane given by --controlplane or "
        "SLUICE_CONTROLPLANE, with the token in SLUICE_TOKEN. Press ? inside for the keys.",
    )
    p.set_defaults(handler=cmd_tui)


def cmd_tui(args: argparse.Namespace) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError(
            "sluice tui needs an interactive terminal; for scripts use `sluice status`, "
            "`sluice agents`, `sluice alerts` (all with --json)"
        )
    # Imported here so that the control plane and the other commands never load Textual.
    from tui.app import run

    run(args.controlplane, os.environ.get("SLUICE_TOKEN"))
    return 0
