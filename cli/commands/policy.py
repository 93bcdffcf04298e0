"""`sluice policy show|set DEPLOYMENT`: health thresholds and the action on sustained critical health."""

from __future__ import annotations

import argparse
import math

from cli.commands.common import add_json, client_from, duration
from cli.output import CliError, print_json, when
from controlplane.config import THRESHOLD_PAIRS, THRESHOLDS
from core.names import validate_name
from core.vocabulary import MetricSource, PolicyAction, word_of
from protos import controlplane_pb2

#: --flag -> the (warning, critical) threshold names it sets: --accuracy, --p95-ms, --error-rate...
PAIRS = {w.removesuffix("_warning").replace("_latency_ms", "_ms"): (w, c) for w, c in THRESHOLD_PAIRS}


def register(sub: argparse._SubParsersAction) -> None:
    pol = sub.add_parser("policy", help="a deployment's health thresholds and automatic action")
    psub = pol.add_subparsers(dest="policy_command", required=True, metavar="show|set")

    show = psub.add_parser("show", help="the policy in force, what the deployment sets, a pending action")
    show.add_argument("deployment")
    add_json(show)
    show.set_defaults(handler=cmd_show)

    st = psub.add_parser(
        "set",
        help="change what the deployment sets (the rest stays the configuration's)",
        description="Thresholds are WARNING,CRITICAL (either may be left empty: ',0.05'). The action "
        "fires once health has stayed critical for --after seconds: none, alert (nothing moves), pause "
        "(the running experiment), rollback_challenger, rollback_champion. fallback=on: a request "
        "that fails on a challenger (a model failure) is answered by the champion, and still "
        "counts as the challenger's error.",
    )
    st.add_argument("deployment")
    st.add_argument(
        "settings",
        nargs="*",
        metavar="NAME=VALUE",
        help="settings as NAME=VALUE: fallback=on|off, accuracy_source=live|joined, label_delay=DURATION "
        "(the same as --fallback, --accuracy-source, --label-delay)",
    )
    st.add_argument("--fallback", choices=("on", "off"), help="a challenger's failure answered by the champion")
    st.add_argument(
        "--accuracy-source",
        choices=[m.value for m in MetricSource],
        help="health judges accuracy / mae / rmse on live feedback or on the prediction log joined with labels",
    )
    st.add_argument(
        "--label-delay",
        type=duration,
        metavar="DURATION",
        help="with accuracy_source=joined: judge predictions at least this old (e.g. 6h, 30m, 90s)",
    )
    st.add_argument("--action", choices=[a.value for a in PolicyAction])
    st.add_argument("--after", type=float, metavar="SECONDS", help="critical this long before the action")
    for flag in PAIRS:
        st.add_argument(f"--{flag.replace('_', '-')}", metavar="WARNING,CRITICAL", dest=flag)
    st.add_argument("--tolerance", type=float, help="regression: |error| <= tolerance counts as within")
    st.add_argument(
        "--reset",
        action="append",
        default=[],
        choices=(
            *THRESHOLDS,
            "action",
            "action_after_seconds",
            "fallback",
            "accuracy_source",
            "label_delay_seconds",
            "all",
        ),
        metavar="NAME",
        help="back to the configuration's value (repeatable; 'all' for everything)",
    )
    st.add_argument("--reason", default="")
    add_json(st)
    st.set_defaults(handler=cmd_set)


def _pair(flag: str, text: str) -> tuple[float | None, float | None]:
    parts = text.split(",")
    if len(parts) != 2:
        raise CliError(f"--{flag.replace('_', '-')} {text!r}: write WARNING,CRITICAL, e.g. 0.01,0.05 (or ,0.05)")
    values: list[float | None] = []
    for part in parts:
        if not part.strip():
            values.append(None)
            continue
        try:
            value = float(part)
        except ValueError:
            raise CliError(f"--{flag.replace('_', '-')}: {part!r} is not a number") from None
        if not math.isfinite(value):
            raise CliError(f"--{flag.replace('_', '-')}: {part!r} is not a finite number")
        values.append(value)
    return values[0], values[1]


SWITCH = {"on": True, "off": False, "true": True, "false": False}


def _settings(args: argparse.Namespace) -> None:
    """The NAME=VALUE settings onto the flags they stand for (fallback, accuracy_source, label_delay)."""
    for setting in args.settings:
        name, sep, value = setting.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or name not in ("fallback", "accuracy_source", "label_delay", "label_delay_seconds"):
            raise CliError(
                f"{setting!r}: the settings given as NAME=VALUE are fallback=on|off, "
                "accuracy_source=live|joined and label_delay=DURATION"
            )
        if name == "fallback":
            if value.lower() not in SWITCH:
                raise CliError(f"{setting!r}: fallback is on or off")
            args.fallback = "on" if SWITCH[value.lower()] else "off"
        elif name == "accuracy_source":
            if value not in {m.value for m in MetricSource}:
                raise CliError(f"{setting!r}: accuracy_source is {' or '.join(m.value for m in MetricSource)}")
            args.accuracy_source = value
        else:
            try:
                args.label_delay = duration(value)
            except argparse.ArgumentTypeError as exc:
                raise CliError(f"{setting!r}: {exc}") from None


def _fallback(args: argparse.Namespace) -> bool | None:
    """--fallback or fallback=on|off among the NAME=VALUE settings (None: not given)."""
    _settings(args)
    return SWITCH[args.fallback] if args.fallback else None


def cmd_set(args: argparse.Namespace) -> int:
    validate_name("deployment", args.deployment)
    fallback = _fallback(args)
    thresholds = controlplane_pb2.PolicyThresholds()
    for flag, names in PAIRS.items():
        text = getattr(args, flag)
        if text is None:
            continue
        for name, value in zip(names, _pair(flag, text), strict=True):
            if value is not None:
                setattr(thresholds, name, value)
    if args.tolerance is not None:
        thresholds.tolerance = args.tolerance
    request = controlplane_pb2.SetPolicyRequest(
        deployment=args.deployment, thresholds=thresholds, reset=args.reset, reason=args.reason
    )
    if args.action:
        request.action = PolicyAction(args.action).to_wire()
    if args.after is not None:
        request.action_after_seconds = args.after
    if fallback is not None:
        request.fallback = fallback
    if args.accuracy_source:
        request.accuracy_source = args.accuracy_source
    if args.label_delay is not None:
        request.label_delay_seconds = args.label_delay
    changes = (
        request.thresholds.ListFields()
        or args.action
        or args.after is not None
        or args.reset
        or fallback is not None
        or args.accuracy_source
        or args.label_delay is not None
    )
    if not changes:
        raise CliError(
            "nothing to change: give --action, --after, a threshold, fallback=on|off, accuracy_source=live|joined, "
            "label_delay=DURATION or --reset (see --help)"
        )
    with client_from(args) as client:
        policy = client.set_policy(request)
    if args.json:
        print_json(policy)
    else:
        print_policy(policy)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    validate_name("deployment", args.deployment)
    with client_from(args) as client:
        policy = client.get_policy(args.deployment)
    if args.json:
        print_json(policy)
    else:
        print_policy(policy)
    return 0


def print_policy(p: controlplane_pb2.Policy) -> None:
    own = set(p.overridden)
    action = word_of(PolicyAction, p.action)

    def mark(name: str) -> str:
        return " *" if name in own else ""

    print(f"policy of {p.deployment}  (* set for this deployment; the rest is the configuration's)")
    if action == PolicyAction.NONE:
        print(f"  action       none{mark('action')}")
    else:
        after = f"{p.action_after_seconds:g} s{mark('action_after_seconds')}"
        print(f"  action       {action}{mark('action')} after {after} critical")
    t = p.thresholds
    for flag, (warning, critical) in PAIRS.items():
        w, c = getattr(t, warning), getattr(t, critical)
        shown = "off" if not (w or c) else f"warning {w:g}{mark(warning)}, critical {c:g}{mark(critical)}"
        print(f"  {flag:<16} {shown}")
    print(f"  {'tolerance':<16} {t.tolerance:g}{mark('tolerance')}")
    print(f"  {'fallback':<16} {'on' if p.fallback else 'off'}{mark('fallback')}")
    source = p.accuracy_source or MetricSource.LIVE.value
    delay = f", label delay {p.label_delay_seconds:g} s{mark('label_delay_seconds')}" if source == "joined" else ""
    print(f"  {'accuracy from':<16} {source}{mark('accuracy_source')}{delay}")
    if p.HasField("acts_at"):
        print(f"  pending      critical since {when(p.critical_since)}; acts at {when(p.acts_at)} if it stays so")
    if p.last_action:
        print(f"  last action  {when(p.last_action_at)}: {p.last_action}")
    if p.updated_by:
        print(f"  changed by   {p.updated_by} at {when(p.updated_at)}")
