"""How `sluice experiment status|list` and `sluice promote` print an experiment."""

from __future__ import annotations

import math

from cli.output import ago, fmt, print_table, vref, when
from core.vocabulary import ExperimentState, MetricSource, ServingRole, segment_text, word_of
from protos import controlplane_pb2


def step_text(e: controlplane_pb2.Experiment) -> str:
    steps = ([0] if e.config.shadow else []) + list(e.config.plan)
    if not steps:
        steps = [e.config.traffic_percent]
    percent = "shadow" if e.current_percent == 0 else f"{e.current_percent}%"
    step = f"{min(e.step_index + 1, len(steps))}/{len(steps)}"
    if e.state == controlplane_pb2.EXPERIMENT_PROMOTED:
        return f"promoted at {step}"
    return f"{step} ({percent})"


def _metric(value: float, metric: str) -> str:
    if metric == "p95_latency":
        return "-" if math.isnan(value) else f"{value:.2f} ms"
    return fmt(value, 4)


def plan_text(config: controlplane_pb2.ExperimentConfig) -> str:
    """The sequential plan in one line ('' when there is none)."""
    if not config.sequential:
        return ""
    if not config.planned_n_challenger:
        return "sequential plan: none (no --mde): the general confidence sequence judges it"
    return (
        f"sequential plan: {config.planned_n_champion} champion / {config.planned_n_challenger} challenger "
        f"samples to detect {config.min_detectable_effect:g} from {config.baseline:g}, "
        f"expected power {config.expected_power:.1%} (20 looks; valid at any number)"
    )


def print_experiment(e: controlplane_pb2.Experiment) -> None:
    state = word_of(ExperimentState, e.state)
    a = e.analysis
    print(f"experiment {e.name} on {e.config.deployment}: {state}")
    print(f"  champion {vref(e.champion)}  challenger {vref(e.config.challenger)}")
    line = f"  step {step_text(e)}"
    if e.state == controlplane_pb2.EXPERIMENT_RUNNING:
        line += f", hold {e.hold_remaining_seconds:.0f} s left"
    elif e.HasField("paused_at"):
        line += f", paused by an operator {ago(e.paused_at)} with {e.hold_remaining_seconds:.0f} s of hold left"
    print(line + f", since {when(e.step_started_at)}")
    if e.status_reason:
        print(f"  {e.status_reason}")
    test = "sequential (always valid)" if a.sequential else "fixed horizon"
    print(
        f"  metric {a.metric or e.config.metric}, alpha {e.config.alpha:g}, min samples {e.config.min_samples}, {test}"
    )
    if plan_text(e.config):
        print(f"  {plan_text(e.config)}")
    if e.config.segment_rules:
        rules = ", ".join(segment_text(rule) for rule in e.config.segment_rules)
        print(f"  segment: {rules} (requests and batch rows outside it stay on the champion)")
    joined = a.label_source == MetricSource.JOINED
    if joined:
        print(
            f"  labels joined from the prediction log, delay {e.config.label_delay_seconds:g} s: judged "
            f"predictions made until {when(a.judged_until)}"
        )
        for arm in a.arms:
            waiting = arm.labels_not_due + arm.labels_overdue
            if waiting:
                print(
                    f"  waiting for labels: {word_of(ServingRole, arm.role)} {vref(arm.version)} {waiting} of "
                    f"{arm.logged} predictions ({arm.labels_not_due} not due yet, {arm.labels_overdue} due "
                    "without a label)"
                )
    print_table(
        ["role", "version", "predictions", "n", "metric", "interval"],
        [
            [
                word_of(ServingRole, arm.role),
                vref(arm.version),
                arm.rows,
                arm.n,
                _metric(arm.metric, a.metric),
                f"{_metric(arm.ci_low, a.metric)} .. {_metric(arm.ci_high, a.metric)}",
            ]
            for arm in a.arms
        ],
        empty="  (no data yet)",
    )
    print(
        f"  difference {_metric(a.difference, a.metric)} "
        f"[{_metric(a.difference_ci_low, a.metric)} .. {_metric(a.difference_ci_high, a.metric)}], "
        f"lift {fmt(a.relative_lift * 100, 1)}% [{fmt(a.relative_lift_ci_low * 100, 1)}% .. "
        f"{fmt(a.relative_lift_ci_high * 100, 1)}%], p={fmt(a.p_value, 4)}"
    )
    srm = "DETECTED" if a.srm_detected else "ok"
    print(f"  decision: {a.decision or '-'}   SRM: {srm} (p={fmt(a.srm_p_value, 4)})")
    for g in a.guardrails:
        verdict = "FAIL" if not g.passed else ("pass" if g.ready else "waiting")
        print(f"  guardrail {g.metric} (at most {g.max_degradation:.1%} worse): {verdict} - {g.detail}")
    if a.shadow_pairs:
        print(
            f"  shadow: {a.shadow_pairs} pairs, agreement {fmt(a.shadow_agreement * 100, 1)}%, "
            f"McNemar p={fmt(a.shadow_mcnemar_p, 4)}"
        )
    if len(a.agents) >= 2:  # a forward move must also hold without each of them
        print_table(
            ["agent", "champion n", "challenger n", "champion", "challenger", "decision without it"],
            [
                [
                    g.agent_name or g.agent_id,
                    g.champion_n,
                    g.challenger_n,
                    _metric(g.champion_metric, a.metric),
                    _metric(g.challenger_metric, a.metric),
                    g.decision_without or "-",
                ]
                for g in a.agents
            ],
        )
