"""`sluice experiment start|status|list|pause|resume|stop|abort`, `sluice promote`, `sluice evaluate`."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from cli.commands.common import (
    INT64_MAX,
    add_json,
    add_wait,
    client_from,
    duration,
    wait_for_agents,
    wait_timeout,
    whole_number,
)
from cli.commands.experiment_view import plan_text, print_experiment, step_text
from cli.output import CliError, print_json, print_table, vref, when
from core.names import parse_version_ref, validate_name
from core.vocabulary import ExperimentState, MetricSource, word_of
from protos import common_pb2, controlplane_pb2

METRICS = ("accuracy", "error_rate", "mae", "p95_latency")
ACTIONS = {
    "pause": "PauseExperiment",
    "resume": "ResumeExperiment",
    "stop": "StopExperiment",
    "abort": "AbortExperiment",
}
PAST = {"pause": "paused", "resume": "resumed", "stop": "stopped", "abort": "aborted"}
DEFAULT_TRAFFIC = 10  # percent for the challenger without --traffic or --plan


def register(sub: argparse._SubParsersAction) -> None:
    exp = sub.add_parser("experiment", help="experiments and progressive rollouts")
    esub = exp.add_subparsers(dest="experiment_command", metavar="ACTION")
    esub.required = True

    st = esub.add_parser(
        "start",
        help="put a challenger beside the champion",
        description=(
            "Start an experiment. Without --plan the challenger gets --traffic percent; with --plan it "
            "walks the steps, each held --hold seconds and gated on the guardrails and on 'challenger "
            "not significantly worse'. --shadow adds a first step where the challenger only scores "
            "copies of requests (shadow alone, without --plan, stays in shadow)."
        ),
    )
    st.add_argument("name")
    st.add_argument("--deployment", required=True)
    st.add_argument("--challenger", required=True, metavar="MODEL:VERSION")
    st.add_argument(
        "--traffic",
        type=whole_number(1, 99),
        default=None,
        metavar="PCT",
        help="challenger's share without a plan (default 10; a plan's first step sets it)",
    )
    st.add_argument("--metric", default="accuracy", choices=METRICS, help="primary metric (default accuracy)")
    st.add_argument(
        "--min-samples",
        type=whole_number(1, INT64_MAX),
        default=100,
        help="per arm, before any gate judges (default 100)",
    )
    st.add_argument("--alpha", type=float, default=0.05, help="significance level, in (0, 1) (default 0.05)")
    st.add_argument("--sequential", action="store_true", help="always-valid testing: safe to look at any time")
    st.add_argument(
        "--mde",
        type=float,
        default=0.0,
        metavar="EFFECT",
        help="with --sequential: plan the test to detect this difference (metric units, e.g. 0.03)",
    )
    st.add_argument(
        "--baseline",
        type=float,
        default=None,
        help="with --mde: the champion's current rate (accuracy, error_rate) or the std of |error| (mae)",
    )
    st.add_argument("--power", type=float, default=0.8, help="with --mde: power to plan for (default 0.8)")
    st.add_argument("--plan", default="", metavar="5,25,50,100", help="rollout steps (challenger percent)")
    st.add_argument("--hold", type=float, default=None, metavar="SECONDS", help="hold per step (default: config)")
    st.add_argument("--auto-promote", action="store_true", help="promote when the last step's gate is won")
    st.add_argument("--shadow", action="store_true", help="start with a shadow step (challenger scores copies)")
    st.add_argument(
        "--guardrail",
        action="append",
        default=[],
        metavar="METRIC:MAX_DEGRADATION",
        help="e.g. p95_latency:0.25 (may be 25%% worse); repeatable",
    )
    st.add_argument("--min-improvement", type=float, default=0.0, help="in the metric's units (default 0)")
    st.add_argument(
        "--segment",
        action="append",
        default=[],
        metavar="NAME=v1,v2|NAME=lo..hi",
        help="only requests (and batch rows) that match take part; NAME is a request attribute when "
        "the request sends it, else the feature of that name; attribute.NAME or feature.NAME "
        "picks one; repeatable",
    )
    st.add_argument("--require-offline-win", action="store_true", help="refuse without a winning `sluice evaluate`")
    st.add_argument(
        "--labels",
        choices=[m.value for m in MetricSource],
        default=MetricSource.LIVE.value,
        help="where accuracy / mae come from: live (the agents' Feedback, default) or joined (the "
        "prediction log joined with imported labels; gates judge only predictions older than --label-delay)",
    )
    st.add_argument(
        "--label-delay",
        type=duration,
        default=None,
        metavar="DURATION",
        help="with --labels joined: how long labels take to arrive (e.g. 2h, 30m, 90s; default 0)",
    )
    st.add_argument("--reason", default="")
    add_json(st)
    st.set_defaults(handler=cmd_start)

    status = esub.add_parser("status", aliases=["show"], help="state, step and analysis of one experiment")
    status.add_argument("name")
    add_json(status)
    status.set_defaults(handler=cmd_status)

    ls = esub.add_parser("list", help="running and paused experiments (--all: finished ones too)")
    ls.add_argument("--deployment", default="")
    ls.add_argument("--all", action="store_true", help="include finished experiments")
    add_json(ls)
    ls.set_defaults(handler=cmd_list)

    for action, text in (
        (
            "pause",
            "hold the experiment: traffic stays as it is, the rollout clock stops and no gate is checked "
            "(no step, promotion or automatic rollback) until resume",
        ),
        (
            "resume",
            "run a paused experiment again: after `pause` its step's hold continues where it stopped; "
            "after the engine paused it the hold starts over",
        ),
        ("stop", "end the experiment, its result standing as the outcome: challenger to 0%% (final, no resume)"),
        ("abort", "cancel the experiment, recorded as aborted (no verdict): challenger to 0%% (final, no resume)"),
    ):
        p = esub.add_parser(action, help=text, description=text.replace("%%", "%"))
        p.add_argument("name")
        p.add_argument("--reason", default="")
        add_json(p)
        p.set_defaults(handler=cmd_action, action=action)

    pr = sub.add_parser("promote", help="make an experiment's challenger the champion at 100%%")
    pr.add_argument("experiment")
    pr.add_argument("--reason", default="")
    add_wait(pr)
    add_json(pr)
    pr.set_defaults(handler=cmd_promote)

    ev = sub.add_parser("evaluate", help="offline champion/challenger verdict on a labeled file")
    ev.add_argument("version", metavar="MODEL:VERSION")
    ev.add_argument("--deployment", required=True)
    ev.add_argument("--data", required=True, type=Path, metavar="FILE", help="CSV with a header, or .npy")
    ev.add_argument("--label", default="", metavar="COL", help="label column of a CSV (default: the last)")
    ev.add_argument("--min-improvement", type=float, default=0.0)
    ev.add_argument("--alpha", type=float, default=0.05)
    add_json(ev)
    ev.set_defaults(handler=cmd_evaluate)


# ---- parsing -----------------------------------------------------------------------------------


def parse_plan(text: str) -> list[int]:
    if not text.strip():
        return []
    steps = []
    for part in text.split(","):
        try:
            steps.append(int(part.strip()))
        except ValueError:
            raise CliError(f"plan step {part.strip()!r} is not a whole percentage; e.g. --plan 5,25,50,100") from None
    return steps


def parse_guardrail(text: str) -> controlplane_pb2.Guardrail:
    """METRIC:MAX_DEGRADATION (`=` is accepted too, as in the TUI's form)."""
    metric, sep, number = text.replace("=", ":", 1).partition(":")
    if not sep:
        raise CliError(f"guardrail {text!r} is not METRIC:MAX_DEGRADATION, e.g. error_rate:0.1")
    if metric not in METRICS:
        raise CliError(f"unknown guardrail metric {metric!r}; choose one of {', '.join(METRICS)}")
    try:
        value = float(number)
    except ValueError:
        raise CliError(f"the allowed degradation in {text!r} must be a number, e.g. {metric}:0.1") from None
    if not math.isfinite(value) or value < 0:
        raise CliError(f"the allowed degradation in {text!r} must be a number >= 0")
    return controlplane_pb2.Guardrail(metric=metric, max_degradation=value)


def parse_segment(text: str) -> common_pb2.SegmentRule:
    attribute, sep, rest = text.partition("=")
    attribute = attribute.strip()
    if not sep or not attribute or not rest.strip():
        raise CliError(f"segment {text!r} is not ATTR=v1,v2 or ATTR=lo..hi")
    if ".." in rest:
        low_text, _, high_text = rest.partition("..")
        try:
            low, high = float(low_text), float(high_text)
        except ValueError:
            raise CliError(f"segment range {rest!r} needs two numbers, e.g. {attribute}=18..65") from None
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise CliError(f"segment range {rest!r} must be finite with low <= high")
        return common_pb2.SegmentRule(attribute=attribute, has_range=True, min=low, max=high)
    values = [v.strip() for v in rest.split(",") if v.strip()]
    return common_pb2.SegmentRule(attribute=attribute, values=values)


def build_config(args: argparse.Namespace) -> controlplane_pb2.ExperimentConfig:
    validate_name("deployment", args.deployment)
    parse_version_ref(args.challenger)
    if not (0 < args.alpha < 1):
        raise CliError(f"--alpha is {args.alpha:g}; it must lie strictly between 0 and 1 (e.g. 0.05)")
    if args.traffic is not None and args.plan.strip():
        raise CliError("give --traffic or --plan, not both: a plan's first step is the challenger's share")
    if args.min_samples < 1:
        raise CliError(f"--min-samples is {args.min_samples}; it must be at least 1")
    if args.hold is not None and (not math.isfinite(args.hold) or args.hold < 0):
        raise CliError(f"--hold is {args.hold:g}; it must be a number of seconds >= 0")
    if not math.isfinite(args.min_improvement) or args.min_improvement < 0:
        raise CliError("--min-improvement must be a number >= 0")
    model, _, version = args.challenger.partition(":")
    config = controlplane_pb2.ExperimentConfig(
        deployment=args.deployment,
        challenger=common_pb2.VersionRef(model=model, version=version),
        traffic_percent=args.traffic if args.traffic is not None else DEFAULT_TRAFFIC,
        metric=args.metric,
        guardrails=[parse_guardrail(g) for g in args.guardrail],
        min_samples=args.min_samples,
        alpha=args.alpha,
        min_improvement=args.min_improvement,
        sequential=args.sequential,
        plan=parse_plan(args.plan),
        auto_promote=args.auto_promote,
        shadow=args.shadow,
        segment_rules=[parse_segment(s) for s in args.segment],
        require_offline_win=args.require_offline_win,
    )
    if args.mde:
        if not args.sequential:
            raise CliError("--mde plans the sequential test; add --sequential")
        if not math.isfinite(args.mde) or args.mde <= 0 or not 0 < args.power < 1:
            raise CliError("--mde must be a number > 0 and --power lie in (0, 1)")
        config.min_detectable_effect = args.mde
        config.power = args.power
        if args.baseline is not None:
            config.baseline = args.baseline
    if args.labels == MetricSource.JOINED:
        config.label_source = MetricSource.JOINED.value
        config.label_delay_seconds = args.label_delay or 0.0
    elif args.label_delay is not None:
        raise CliError("--label-delay needs --labels joined (live feedback has no delay to wait for)")
    if args.hold is not None:
        # 0 on the wire means "the configured default"; a tiny hold stands for "no hold".
        config.hold_seconds = args.hold if args.hold > 0 else 1e-6
    return config


# ---- commands ----------------------------------------------------------------------------------


def cmd_start(args: argparse.Namespace) -> int:
    validate_name("experiment", args.name)
    config = build_config(args)
    with client_from(args) as client:
        experiment = client.start_experiment(args.name, config, reason=args.reason)
    if args.json:
        print_json(experiment)
    else:
        print(f"started experiment {experiment.name}: {vref(config.challenger)} at step {step_text(experiment)}")
        if plan_text(experiment.config):
            print(plan_text(experiment.config))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    validate_name("experiment", args.name)
    with client_from(args) as client:
        experiment = client.get_experiment(args.name)
    print_json(experiment) if args.json else print_experiment(experiment)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    if args.deployment:
        validate_name("deployment", args.deployment)
    with client_from(args) as client:
        experiments = client.list_experiments(args.deployment, include_finished=args.all)
    if args.json:
        print_json(experiments)
        return 0
    print_table(
        ["name", "deployment", "state", "challenger", "step", "decision", "created"],
        [
            [
                e.name,
                e.config.deployment,
                word_of(ExperimentState, e.state),
                vref(e.config.challenger),
                step_text(e),
                e.analysis.decision or "-",
                when(e.created_at),
            ]
            for e in experiments
        ],
    )
    return 0


def cmd_action(args: argparse.Namespace) -> int:
    validate_name("experiment", args.name)
    with client_from(args) as client:
        experiment = client.experiment_action(ACTIONS[args.action], args.name, reason=args.reason)
    if args.json:
        print_json(experiment)
    else:
        if args.action == "resume":
            print(f"experiment {experiment.name} resumed: {experiment.status_reason or 'running'}")
        elif args.action == "pause":
            print(
                f"experiment {experiment.name} paused: {vref(experiment.config.challenger)} keeps "
                f"{experiment.current_percent}% of the traffic; the rollout clock is stopped with "
                f"{experiment.hold_remaining_seconds:.0f} s of hold left and no gate is checked until "
                f"`sluice experiment resume {experiment.name}`"
            )
        else:
            print(
                f"experiment {experiment.name} {PAST[args.action]}: {vref(experiment.config.challenger)} gets no "
                f"more traffic, {vref(experiment.champion)} serves 100%"
            )
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    validate_name("experiment", args.experiment)
    timeout = wait_timeout(args)
    with client_from(args) as client:
        deployment = client.experiment_action("Promote", args.experiment, reason=args.reason)
        decision = client.get_experiment(args.experiment).analysis.decision
        if not args.json:
            champion = next((s for s in deployment.splits if s.role == common_pb2.ROLE_CHAMPION), None)
            now = vref(champion.version) if champion else "-"
            print(
                f"promoted {now} to champion of {deployment.name} at 100% (generation {deployment.generation}; "
                f"previous champion {vref(deployment.previous_champion)})"
            )
            if decision != "challenger_wins":
                print(f"note: promoted on your call; the analysis said {decision.replace('_', ' ') or 'nothing yet'}")
            sys.stdout.flush()
        if args.wait:
            wait_for_agents(client, deployment, timeout, quiet=args.json)
    if args.json:
        print_json(deployment)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    parse_version_ref(args.version)
    validate_name("deployment", args.deployment)
    if not (0 < args.alpha < 1):
        raise CliError(f"--alpha is {args.alpha:g}; it must lie strictly between 0 and 1")
    if not math.isfinite(args.min_improvement) or args.min_improvement < 0:
        raise CliError("--min-improvement must be a number >= 0")
    path: Path = args.data
    if not path.is_file():
        raise CliError(f"{path} does not exist or is not a file")
    with client_from(args) as client:
        result = client.evaluate(
            args.version,
            args.deployment,
            path,
            label_column=args.label,
            min_improvement=args.min_improvement,
            alpha=args.alpha,
        )
    if args.json:
        print_json(result)
        return 0
    print(("WIN: " if result.challenger_wins else "NO WIN: ") + result.verdict)
    return 0
