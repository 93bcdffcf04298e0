"""`sluice history`, `sluice audit`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cli.commands.common import add_json, client_from, whole_number
from cli.output import print_json, print_table, to_jsonable, vref, when
from core.names import validate_name
from protos import controlplane_pb2


def register(sub: argparse._SubParsersAction) -> None:
    hist = sub.add_parser("history", help="every change of a deployment, newest first")
    hist.add_argument("deployment")
    hist.add_argument("--limit", type=whole_number(1, 2**31), default=100, help="newest first (at most 1000)")
    add_json(hist)
    hist.set_defaults(handler=cmd_history)

    aud = sub.add_parser("audit", help="the audit trail: who changed what")
    aud.add_argument(
        "--target",
        default="",
        help="only events whose target is exactly this (a deployment, MODEL:V, an experiment, alert:ID)",
    )
    aud.add_argument(
        "--deployment",
        default="",
        help="every event about this deployment: its own changes, its experiments' and its alerts'",
    )
    aud.add_argument("--limit", type=whole_number(1, 2**31), default=100, help="newest first (at most 1000)")
    add_json(aud)
    aud.set_defaults(handler=cmd_audit)


def cmd_history(args: argparse.Namespace) -> int:
    validate_name("deployment", args.deployment)
    with client_from(args) as client:
        entries = client.history(args.deployment, args.limit)
    if args.json:
        print_json(entries)
        return 0
    print_table(
        ["gen", "when", "action", "by", "traffic", "reason"],
        [
            [
                e.generation,
                when(e.at),
                e.action,
                e.principal,
                ", ".join(f"{vref(s.version)}={s.weight}" for s in e.splits),
                e.reason or "-",
            ]
            for e in entries
        ],
    )
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    if args.deployment:
        validate_name("deployment", args.deployment)
    with client_from(args) as client:
        events = client.audit(args.target, args.limit, args.deployment)
    if args.json:
        print_json([_audit_json(e) for e in events])
        return 0
    print_table(
        ["id", "when", "principal", "action", "target", "details"],
        [[e.id, when(e.at), e.principal, e.action, e.target, e.details_json[:80]] for e in events],
    )
    return 0


def _audit_json(event: controlplane_pb2.AuditEvent) -> dict[str, Any]:
    """The event with `details` as a JSON object (the wire carries it as a JSON string)."""
    data = to_jsonable(event)
    del data["details_json"]
    try:
        data["details"] = json.loads(event.details_json) if event.details_json else {}
    except ValueError:
        data["details"] = {"unparsed": event.details_json}
    return data
