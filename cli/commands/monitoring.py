"""`sluice status`, `sluice alerts`, `sluice alerts ack ID`, `sluice retraining`."""

from __future__ import annotations

import argparse
import math
import sys

from cli.commands.common import INT64_MAX, add_json, client_from, whole_number
from cli.output import EXIT_CRITICAL, EXIT_WARNING, CliError, ago, fmt, print_json, print_table, vref, when
from core.names import validate_name
from core.sizes import byte_size
from core.text import printable
from core.vocabulary import AlertState, Health, ServingRole, word_of
from protos import controlplane_pb2


def health_word(value: int) -> str:
    """healthy and unknown in lower case; WARNING and CRITICAL stand out."""
    health = Health.from_wire(value)
    return str(health).upper() if health.rank >= Health.WARNING.rank else str(health)


def severity_word(value: int) -> str:
    """An alert's severity: warning or critical ("-" for anything else)."""
    health = Health.from_wire(value)
    return str(health) if health.rank >= Health.WARNING.rank else "-"


def register(sub: argparse._SubParsersAction) -> None:
    st = sub.add_parser("status", help="health and metric values per deployment and version")
    st.add_argument("deployment", nargs="?", default="")
    st.add_argument("--window", type=float, default=0.0, metavar="SECONDS", help="look back this far (default: config)")
    st.add_argument(
        "--check",
        action="store_true",
        help="for cron and CI: exit 10 when a deployment shown is critical, 9 when the worst is warning, "
        "0 otherwise (healthy or no verdict yet); names them on stderr",
    )
    add_json(st)
    st.set_defaults(handler=cmd_status)

    al = sub.add_parser("alerts", help="open alerts (--all: resolved too); `alerts ack ID`")
    al.add_argument("--all", action="store_true", help="include resolved alerts")
    al.add_argument("--deployment", default="", help="only this deployment's alerts")
    add_json(al)
    al.set_defaults(handler=cmd_alerts)
    asub = al.add_subparsers(dest="alerts_command", metavar="ACTION")
    ack = asub.add_parser("ack", help="acknowledge alert ID (it stays active until resolved)")
    ack.add_argument("id", type=whole_number(1, INT64_MAX))
    add_json(ack)
    ack.set_defaults(handler=cmd_ack)

    rt = sub.add_parser("retraining", help="retraining runs (of one deployment)")
    rt.add_argument("deployment", nargs="?", default="")
    add_json(rt)
    rt.set_defaults(handler=cmd_retraining)


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.2f}%"


def _quality(v: controlplane_pb2.VersionStatus) -> str:
    if not v.n_labeled:
        return "-"
    if not math.isnan(v.accuracy):
        return f"acc {fmt(v.accuracy)} (n={v.n_labeled})"
    return f"mae {fmt(v.mae)}, rmse {fmt(v.rmse)}, within {_pct(v.within_tolerance)} (n={v.n_labeled})"


def labeled_text(v: controlplane_pb2.VersionStatus) -> str:
    """The label-joined figures beside the live ones: the judged figure and the coverage,
    e.g. `acc 0.9120, 7500/10000 labeled (2500 waiting)`; "-" when nothing is logged."""
    if not v.HasField("labeled"):
        return "-"
    f = v.labeled
    if f.HasField("accuracy"):
        judged = f"acc {fmt(f.accuracy)}, "
    elif f.HasField("mae"):
        judged = f"mae {fmt(f.mae)} rmse {fmt(f.rmse)}, "
    else:
        judged = ""
    return f"{judged}{f.labeled}/{f.predictions} labeled ({f.waiting} waiting)"


def disk_text(u: controlplane_pb2.LogUsage) -> str:
    """A deployment's log and labels on disk, e.g. `prediction log 12 segments, 3400 rows, 1.2 MiB;
    labels 3 files, 40.0 KiB`."""
    return (
        f"prediction log {u.segments} segments, {u.rows} rows, {byte_size(u.bytes)}; "
        f"labels {u.label_files} files, {byte_size(u.label_bytes)}"
    )


def _drift(v: controlplane_pb2.VersionStatus) -> str:
    predictions = "" if math.isnan(v.prediction_psi) else f"predictions psi {v.prediction_psi:.3f}"
    if not v.drift:
        return predictions or "-"
    top = max(v.drift, key=lambda d: d.psi)
    text = f"psi {top.psi:.3f} {top.feature}"
    drifted = sum(1 for d in v.drift if d.drifted)
    if drifted:
        text += f" ({drifted} drifted)"
    return f"{text}; {predictions}" if predictions else text


def cmd_status(args: argparse.Namespace) -> int:
    if args.deployment:
        validate_name("deployment", args.deployment)
    if not math.isfinite(args.window) or args.window < 0:
        raise CliError("--window must be a number of seconds >= 0")
    with client_from(args) as client:
        deployments = client.status(args.deployment, args.window)
    if args.json:
        print_json(deployments)
    elif not deployments:
        print("(no deployments)")
    else:
        print_status(deployments)
    return check(deployments) if args.check else 0


def check(deployments: list[controlplane_pb2.DeploymentStatus]) -> int:
    """`status --check`: the exit code of the worst health shown, with one line on stderr naming
    the deployments at that health and why."""
    worst = max((Health.from_wire(d.health) for d in deployments), key=lambda h: h.rank, default=Health.UNKNOWN)
    if worst.rank < Health.WARNING.rank:
        return 0
    named = []
    for d in deployments:
        if Health.from_wire(d.health) == worst:
            reasons = [printable(r) for v in d.versions for r in v.reasons][:2]
            if d.open_alerts:
                reasons.append(f"{d.open_alerts} open alert(s): `sluice alerts --deployment {d.deployment.name}`")
            named.append(d.deployment.name + (f" ({'; '.join(reasons)})" if reasons else ""))
    print(f"check: {worst} — {', '.join(named)}", file=sys.stderr)
    return EXIT_CRITICAL if worst == Health.CRITICAL else EXIT_WARNING


def print_status(deployments: list[controlplane_pb2.DeploymentStatus]) -> None:
    for i, d in enumerate(deployments):
        if i:
            print()
        experiment = f"  experiment {d.experiment.name}" if d.experiment.name else ""
        lost = f" ({d.agents_lost} lost)" if d.agents_lost else ""
        rate = d.deployment.log_sample_rate
        logged = "off" if rate <= 0 else f"{rate * 100:.4g}%"
        print(
            f"{d.deployment.name}  {health_word(d.health)}  generation {d.deployment.generation}  "
            f"agents in sync {d.agents_in_sync}/{d.agents_total}{lost}  {d.requests_per_second:.1f} req/s  "
            f"open alerts {d.open_alerts}  prediction log {logged}{experiment}"
        )
        print_table(
            [
                "version",
                "role",
                "weight",
                "health",
                "requests",
                "req/s",
                "errors",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "quality",
                "labeled (log)",
                "drift",
                "rejected",
                "out of range",
            ],
            [
                [
                    vref(v.version),
                    word_of(ServingRole, v.role, "-"),
                    f"{v.weight}%",
                    health_word(v.health),
                    v.requests,
                    f"{v.requests_per_second:.1f}",
                    _pct(v.error_rate),
                    _ms(v.latency_p50_ms),
                    _ms(v.latency_p95_ms),
                    _ms(v.latency_p99_ms),
                    _quality(v),
                    labeled_text(v),
                    _drift(v),
                    v.rejected_inputs,
                    _pct(v.out_of_range_share),
                ]
                for v in d.versions
            ],
            "(no versions)",
        )
        if d.HasField("log_usage"):
            print(f"  disk: {disk_text(d.log_usage)}")
        for v in d.versions:
            if v.errors_by_code:
                codes = ", ".join(f"{code} {n}" for code, n in sorted(v.errors_by_code.items(), key=lambda c: -c[1]))
                print(f"  {vref(v.version)}: errors {printable(codes)}")
            for reason in v.reasons:
                print(f"  {vref(v.version)}: {printable(reason)}")


def cmd_alerts(args: argparse.Namespace) -> int:
    if args.deployment:
        validate_name("deployment", args.deployment)
    with client_from(args) as client:
        alerts = client.alerts(include_resolved=args.all, deployment=args.deployment)
    if args.json:
        print_json(alerts)
        return 0
    print_table(
        [
            "id",
            "severity",
            "state",
            "kind",
            "subject",
            "deployment",
            "version",
            "agent",
            "seen",
            "opened",
            "updated",
            "message",
        ],
        [
            [
                a.id,
                severity_word(a.severity),
                word_of(AlertState, a.state, "-") + (f" by {a.acknowledged_by}" if a.acknowledged_by else ""),
                a.kind,
                a.subject or "-",
                a.deployment or "-",
                vref(a.version),
                a.agent or "-",
                f"{a.occurrences}x",
                when(a.opened_at),
                ago(a.updated_at),
                a.message,
            ]
            for a in alerts
        ],
        "(no alerts)" if args.all else "(no open alerts)",
    )
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    if args.id <= 0:
        raise CliError("the alert id is a positive number; `sluice alerts` lists them")
    with client_from(args) as client:
        alert = client.ack_alert(args.id)
    if args.json:
        print_json(alert)
    else:
        print(printable(f"alert {alert.id} acknowledged by {alert.acknowledged_by}: {alert.kind} — {alert.message}"))
    return 0


def cmd_retraining(args: argparse.Namespace) -> int:
    if args.deployment:
        validate_name("deployment", args.deployment)
    with client_from(args) as client:
        runs = client.retraining_runs(args.deployment)
    if args.json:
        print_json(runs)
        return 0
    print_table(
        ["id", "deployment", "state", "produced", "started", "finished", "reason", "detail"],
        [
            [r.id, r.deployment, r.state, vref(r.produced), when(r.started_at), when(r.finished_at), r.reason, r.detail]
            for r in runs
        ],
        "(no retraining runs)",
    )
    return 0
