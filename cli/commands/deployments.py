"""`sluice deploy`, `sluice traffic set`, `sluice rollback`."""

from __future__ import annotations

import argparse
import sys

import grpc

from cli.commands.common import INT64_MAX, add_json, add_wait, client_from, wait_for_agents, wait_timeout, whole_number
from cli.output import CliError, print_json, vref
from core.client import ClientError
from core.names import parse_version_ref, validate_name
from core.vocabulary import ServingRole, word_of
from protos import common_pb2, controlplane_pb2


def register(sub: argparse._SubParsersAction) -> None:
    dep = sub.add_parser("deploy", help="make MODEL:VERSION the champion of DEPLOYMENT at 100%%")
    dep.add_argument("deployment")
    dep.add_argument("version", metavar="MODEL:VERSION")
    dep.add_argument("--expected-generation", type=whole_number(0, INT64_MAX), default=None)
    dep.add_argument("--reason", default="")
    add_wait(dep)
    add_json(dep)
    dep.set_defaults(handler=cmd_deploy)

    traffic = sub.add_parser("traffic", help="traffic weights")
    tsub = traffic.add_subparsers(dest="traffic_command", metavar="ACTION")
    tsub.required = True
    ts = tsub.add_parser("set", help="set weights: MODEL:V=WEIGHT ... (integers summing to 100)")
    ts.add_argument("deployment")
    ts.add_argument("weights", nargs="+", metavar="MODEL:V=WEIGHT")
    ts.add_argument("--expected-generation", type=whole_number(0, INT64_MAX), default=None)
    ts.add_argument("--reason", default="")
    add_wait(ts)
    add_json(ts)
    ts.set_defaults(handler=cmd_traffic_set)

    rb = sub.add_parser(
        "rollback",
        help="return DEPLOYMENT to its previous champion, the last one not itself rolled back (or --to); "
        "says what it restores first",
    )
    rb.add_argument("deployment")
    rb.add_argument("--to", default=None, metavar="MODEL:VERSION")
    rb.add_argument(
        "--expected-generation",
        type=whole_number(0, INT64_MAX),
        default=None,
        help="refuse (exit 6) unless the deployment is still at this generation (default: the one it reads first)",
    )
    rb.add_argument("--reason", default="")
    add_wait(rb)
    add_json(rb)
    rb.set_defaults(handler=cmd_rollback)


def parse_weights(items: list[str]) -> list[tuple[str, int]]:
    weights = []
    for item in items:
        target, sep, number = item.rpartition("=")
        if not sep:
            raise CliError(f"{item!r} is not MODEL:VERSION=WEIGHT")
        parse_version_ref(target)
        try:
            weight = int(number)
        except ValueError:
            raise CliError(f"the weight in {item!r} must be a whole number, e.g. {target}=10") from None
        weights.append((target, weight))
    return weights


def describe(deployment: controlplane_pb2.Deployment) -> str:
    ordered = sorted(deployment.splits, key=lambda s: (s.role != common_pb2.ROLE_CHAMPION, -s.weight))
    splits = ", ".join(f"{vref(s.version)}={s.weight}% ({word_of(ServingRole, s.role)})" for s in ordered)
    return f"{deployment.name} generation {deployment.generation}: {splits}"


def say_ended(deployment: controlplane_pb2.Deployment) -> None:
    if deployment.ended_experiment:
        print(
            f"experiment {deployment.ended_experiment} ended: this change replaced its traffic "
            f"(`sluice experiment status {deployment.ended_experiment}`)"
        )


def cmd_deploy(args: argparse.Namespace) -> int:
    validate_name("deployment", args.deployment)
    parse_version_ref(args.version)
    timeout = wait_timeout(args)
    with client_from(args) as client:
        deployment = client.deploy(
            args.deployment, args.version, expected_generation=args.expected_generation, reason=args.reason
        )
        if not args.json:
            print(f"deployed {describe(deployment)}", flush=True)
            say_ended(deployment)
        if args.wait:
            wait_for_agents(client, deployment, timeout, quiet=args.json)
    if args.json:
        print_json(deployment)
    return 0


def cmd_traffic_set(args: argparse.Namespace) -> int:
    validate_name("deployment", args.deployment)
    weights = parse_weights(args.weights)
    timeout = wait_timeout(args)
    with client_from(args) as client:
        deployment = client.set_traffic(
            args.deployment, weights, expected_generation=args.expected_generation, reason=args.reason
        )
        if not args.json:
            print(f"traffic set: {describe(deployment)}", flush=True)
            say_ended(deployment)
        if args.wait:
            wait_for_agents(client, deployment, timeout, quiet=args.json)
    if args.json:
        print_json(deployment)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Say what is serving and what will be restored, then roll back at that generation: a change by
    someone else in between is refused (a conflict), so what was announced is what happens."""
    validate_name("deployment", args.deployment)
    if args.to:
        parse_version_ref(args.to)
    timeout = wait_timeout(args)
    with client_from(args) as client:
        current = client.get_deployment(args.deployment)
        expected = current.generation if args.expected_generation is None else args.expected_generation
        if expected != current.generation:  # refused before announcing a rollback that will not happen
            raise ClientError(
                grpc.StatusCode.ABORTED,
                f"deployment {current.name!r} is at generation {current.generation}, not {expected} "
                f"(--expected-generation): someone else changed it; nothing was rolled back "
                f"(`sluice history {current.name}`)",
            )
        champion = next((s for s in current.splits if s.role == common_pb2.ROLE_CHAMPION), None)
        serving = vref(champion.version) if champion else "nothing"
        target = args.to or (vref(current.previous_champion) if current.previous_champion.model else "")
        if target and not args.json:
            print(
                f"rolling back {current.name} (generation {current.generation}, serving {serving}): "
                f"restoring {target} at 100%",
                flush=True,
            )
        deployment = client.rollback(args.deployment, args.to, expected_generation=expected, reason=args.reason)
        if not args.json:
            now = next((s for s in deployment.splits if s.role == common_pb2.ROLE_CHAMPION), None)
            print(f"restored {vref(now.version) if now else '-'}: {describe(deployment)}")
            if deployment.previous_champion.model:
                print(f"a plain rollback now would restore {vref(deployment.previous_champion)}")
            else:
                print("no earlier champion is left to roll back to (each was rolled back or there is none)")
            say_ended(deployment)
            sys.stdout.flush()
        if args.wait:
            wait_for_agents(client, deployment, timeout, quiet=args.json)
    if args.json:
        print_json(deployment)
    return 0
