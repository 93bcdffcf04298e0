"""`sluice token`: make tokens and their sha256 digests for the config file, list configured ones.

The config should hold digests only (`sha256 = "..."` in a `[[tokens]]` entry): a leaked config
file then gives no one a working token. The control plane hashes what a caller sends and compares
digests in constant time (controlplane/api/auth.py).
"""

from __future__ import annotations

import argparse
import secrets
import sys

from cli.commands.common import add_json, client_from
from cli.output import CliError, print_json, print_table
from controlplane.config import token_digest
from controlplane.domain import Role
from core.names import validate_name

MIN_TOKEN_CHARS = 16  # shorter secrets are guessable; `token new` makes 43 characters


def register(sub: argparse._SubParsersAction) -> None:
    token = sub.add_parser("token", help="make API tokens and their digests for the config file")
    tsub = token.add_subparsers(dest="token_command", metavar="ACTION")
    tsub.required = True
    hashing = tsub.add_parser("hash", help="print the sha256 digest of a token read from stdin (or given)")
    hashing.add_argument(
        "token", nargs="?", default=None, help="the token (default: read one line from stdin, kept out of history)"
    )
    hashing.set_defaults(handler=cmd_hash)
    new = tsub.add_parser("new", help="make a random token and print it with its [[tokens]] config entry")
    new.add_argument("--name", required=True, help="who or what uses it (shown in the audit log)")
    new.add_argument("--role", required=True, choices=sorted(r.value for r in Role))
    new.set_defaults(handler=cmd_new)
    listing = tsub.add_parser("list", help="the tokens the control plane knows (names and roles; admin only)")
    add_json(listing)
    listing.set_defaults(handler=cmd_list)


def cmd_hash(args: argparse.Namespace) -> int:
    token = args.token if args.token is not None else sys.stdin.readline()
    token = token.strip()
    if not token:
        raise CliError("no token: give one as an argument or on stdin")
    if len(token) < MIN_TOKEN_CHARS:  # a warning, not a refusal: existing tokens still need digests
        print(
            f"warning: the token is {len(token)} characters; use at least {MIN_TOKEN_CHARS} (`sluice token new`)",
            file=sys.stderr,
        )
    print(token_digest(token))
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    validate_name("token", args.name)
    token = secrets.token_urlsafe(32)
    # The secret goes to stderr so `> entry.toml` captures only the config entry.
    print(f"token (shown once; give it to {args.name} as SLUICE_TOKEN): {token}", file=sys.stderr)
    print(f'[[tokens]]\nname = "{args.name}"\nrole = "{args.role}"\nsha256 = "{token_digest(token)}"')
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        tokens = client.list_tokens()
    if args.json:
        print_json(tokens)
        return 0
    print_table(["name", "role"], [[t.name, t.role] for t in tokens], "(no tokens: auth is off)")
    return 0
