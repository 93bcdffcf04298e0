"""The `sluice` command line: one console script, one subcommand per task.

The control plane's address comes from --controlplane or SLUICE_CONTROLPLANE, the token from
SLUICE_TOKEN. Errors exit non-zero with one line on stderr, never a traceback.
"""

from __future__ import annotations

import os

# gRPC's C core writes its own lines to stderr (a failed bind, an illegal header) beside our one-line
# errors. It reads this only when grpc is first imported, so it is set here, before anything imports
# grpc; GRPC_VERBOSITY=error (or debug) in the environment brings those lines back.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import argparse
import logging
import sys
from collections.abc import Callable
from typing import NoReturn

import grpc

from cli import commands
from cli.output import (
    EXIT_CONFLICT,
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_PERMISSION,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliError,
)
from core.client import DEFAULT_ADDRESS, ClientError
from core.errors import SluiceError

EXIT_OF_STATUS = {
    grpc.StatusCode.UNAVAILABLE: EXIT_UNAVAILABLE,
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_REFUSED,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_REFUSED,
    grpc.StatusCode.OUT_OF_RANGE: EXIT_REFUSED,
    grpc.StatusCode.ABORTED: EXIT_CONFLICT,
    grpc.StatusCode.ALREADY_EXISTS: EXIT_CONFLICT,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_PERMISSION,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_PERMISSION,
}

# Which extra brings what a command imports (`pip install 'sluice[EXTRA]'`); the base install is
# enough for every command that only talks to a control plane or an agent.
COMMAND_EXTRAS = {"agent": "agent", "controlplane": "controlplane", "tui": "tui", "train": "train", "demo": "all"}
MODULE_EXTRAS = {
    "onnxruntime": "agent",
    "prometheus_client": "agent",
    "sqlalchemy": "controlplane",
    "alembic": "controlplane",
    "psycopg": "controlplane",
    "scipy": "controlplane",
    "onnx": "controlplane",
    "pyarrow": "controlplane",
    "duckdb": "controlplane",
    "textual": "tui",
    "sklearn": "train",
    "skl2onnx": "train",
}


def missing_extra(command: str, module: str) -> str:
    """One line for a command whose extra is not installed."""
    extra = COMMAND_EXTRAS.get(command) or MODULE_EXTRAS.get(module, "all")
    return (
        f"`sluice {command}` needs the Python package {module!r}, which this install lacks: "
        f"install the {extra!r} extra (pip install 'sluice[{extra}]')"
    )


class OneLineErrors(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr like every other error (subparsers inherit it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message}; `{self.prog} --help` shows the usage\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="sluice",
        description="Put ML models into production safely: deploy, experiment, roll out, roll back.",
    )
    parser.add_argument(
        "--controlplane",
        default=os.environ.get("SLUICE_CONTROLPLANE", DEFAULT_ADDRESS),
        help="control-plane address (env SLUICE_CONTROLPLANE, default %(default)s)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in commands.REGISTRARS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("alembic", "skl2onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    handler: Callable[[argparse.Namespace], int | None] = args.handler
    try:
        return handler(args) or 0
    except ClientError as exc:
        print(f"error: {exc.message} ({exc.code.name})", file=sys.stderr)
        return EXIT_OF_STATUS.get(exc.code, EXIT_ERROR)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except SluiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except ModuleNotFoundError as exc:  # a process whose extra is not installed
        print(f"error: {missing_extra(args.command, (exc.name or '?').split('.')[0])}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a full disk under the output or a file the command writes
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except Exception as exc:  # even a bug ends in one line; -v adds the traceback
        logging.getLogger("sluice.cli").debug("unexpected error", exc_info=True)
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"error: unexpected {type(exc).__name__}: {first} (a bug in sluice; -v shows it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
