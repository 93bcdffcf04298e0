"""Pieces every CLI command uses."""

from __future__ import annotations

import argparse

from controlplane.client import SluiceClient


def client_from(args: argparse.Namespace) -> SluiceClient:
    return SluiceClient(args.controlplane)


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
