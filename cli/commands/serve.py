"""`sluice controlplane`: run the control plane."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from cli.commands.common import whole_number
from controlplane.defaults import DEFAULT_ARTIFACTS, DEFAULT_DB, DEFAULT_LISTEN


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("controlplane", help="run the control plane (gRPC, SQL store, engines)")
    p.add_argument(
        "--listen",
        default=os.environ.get("SLUICE_LISTEN", DEFAULT_LISTEN),
        help="gRPC address (default %(default)s)",
    )
    p.add_argument(
        "--db",
        default=os.environ.get("SLUICE_DB", DEFAULT_DB),
        help="SQLAlchemy URL or SQLite path (default %(default)s)",
    )
    p.add_argument(
        "--artifacts",
        default=os.environ.get("SLUICE_ARTIFACTS", DEFAULT_ARTIFACTS),
        help="artifact directory (default %(default)s)",
    )
    p.add_argument(
        "--config", type=Path, default=None, help="TOML config file (tokens, thresholds, retraining)"
    )
    p.add_argument(
        "--metrics-port",
        type=whole_number(0, 65535),
        default=None,
        help="Prometheus /metrics port, 0 to disable (default: the --listen port + 1, so 7401 for 7400)",
    )
    p.add_argument(
        "--allow-insecure", action="store_true", help="allow a non-loopback address without tokens"
    )
    p.set_defaults(handler=run_controlplane)


def run_controlplane(args: argparse.Namespace) -> int:
    from controlplane.config import load_config
    from core.errors import InvalidInput
    from core.lifecycle import metrics_port_for, split_listen_address

    # The configuration and the address first: a mistake in them is refused in a second, before
    # the server's imports (seconds on a busy machine) run. The server checks both again.
    config = load_config(args.config)
    try:
        metrics_port_for(split_listen_address(args.listen)[1], args.metrics_port)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None

    from controlplane.server import ServerOptions, serve

    options = ServerOptions(
        config=config,
        listen=args.listen,
        db_url=args.db,
        artifacts=Path(args.artifacts),
        config_path=args.config,
        allow_insecure=args.allow_insecure,
        metrics_port=args.metrics_port,
    )

    def ready(server: object) -> None:
        print(f"sluice control plane listening on {server.address}", flush=True)  # type: ignore[attr-defined]

    asyncio.run(serve(options, ready))
    return 0
