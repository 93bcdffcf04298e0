"""The experiment panel: arms, metric with interval, lift, p-value, decision, SRM, rollout step."""

from __future__ import annotations

import math

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from core.vocabulary import segment_text
from protos import controlplane_pb2
from tui.format import (
    decision,
    duration,
    experiment_state,
    metric_value,
    p_value,
    percent,
    role_name,
    vref,
)


def interval(metric: str, low: float, high: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)) or (low == 0 and high == 0):
        return ""
    return f"[{metric_value(metric, low)}, {metric_value(metric, high)}]"


def render_experiment(exp: controlplane_pb2.Experiment) -> RenderableType:
    config = exp.config
    analysis = exp.analysis
    metric = analysis.metric or config.metric or "metric"
    head = Text(exp.name, style="bold")
    head.append("  ")
    head.append_text(experiment_state(exp.state))
    plan = list(config.plan)
    if plan:
        head.append(f"  step {exp.step_index + 1}/{len(plan)} at {exp.current_percent}%")
    else:
        head.append(f"  at {exp.current_percent}%")
    if exp.state == controlplane_pb2.EXPERIMENT_RUNNING and exp.hold_remaining_seconds > 0:
        head.append(f"  hold {duration(exp.hold_remaining_seconds)} left")
    settings = [f"{vref(exp.champion)} vs {vref(config.challenger)}"] if exp.champion.model else []
    if plan:
        settings.append("plan " + "→".join(str(p) for p in plan))
    settings.append("sequential" if config.sequential or analysis.sequential else "fixed horizon")
    if config.min_samples:
        settings.append(f"min {config.min_samples} samples")
    if config.alpha:
        settings.append(f"alpha {config.alpha:g}")
    if config.shadow:
        settings.append("shadow")
    if config.auto_promote:
        settings.append("auto-promote")
    if config.label_source == "joined":
        settings.append(f"labels joined, delay {duration(config.label_delay_seconds)}")
    if config.segment_rules:
        settings.append("segment " + ", ".join(segment_text(rule) for rule in config.segment_rules))
    details = Text(" · ".join(settings), style="dim")

    arms = Table(box=None, padding=(0, 1), show_edge=False, expand=False, header_style="bold")
    arms.add_column("arm")
    arms.add_column("version")
    arms.add_column("predictions", justify="right")
    arms.add_column("n", justify="right")
    arms.add_column(metric, justify="right")
    arms.add_column("interval")
    for arm in analysis.arms:
        arms.add_row(
            role_name(arm.role),
            vref(arm.version),
            str(arm.rows),
            str(arm.n),
            metric_value(metric, arm.metric) if arm.n else "-",
            interval(metric, arm.ci_low, arm.ci_high),
        )

    verdict = Text("lift ")
    verdict.append(percent(analysis.relative_lift, signed=True), style="bold")
    lift_ci = ""
    if analysis.relative_lift_ci_low or analysis.relative_lift_ci_high:
        lift_ci = (
            f" [{percent(analysis.relative_lift_ci_low, signed=True)}, "
            f"{percent(analysis.relative_lift_ci_high, signed=True)}]"
        )
    verdict.append(lift_ci)
    verdict.append(f"  p {p_value(analysis.p_value)}  ")
    verdict.append_text(decision(analysis.decision))
    verdict.append("  SRM ")
    if analysis.srm_detected:
        verdict.append(f"MISMATCH (p {p_value(analysis.srm_p_value)})", style="bold red")
    else:
        verdict.append("ok", style="green")
    parts: list[RenderableType] = [head, details]
    if analysis.arms:
        parts.append(arms)
    parts.append(verdict)
    if analysis.guardrails:
        guards = Text("guardrails ")
        for g in analysis.guardrails:
            guards.append(f"{g.metric} ≤{g.max_degradation:.0%} worse ")
            if not g.passed:
                guards.append("✗  ", style="bold red")
            elif g.ready:
                guards.append("✓  ", style="green")
            else:
                guards.append("… waiting for data  ", style="dim")
        parts.append(guards)
    if analysis.label_source == "joined":
        parts.append(label_waiting(analysis))
    if analysis.shadow_pairs:
        parts.append(
            Text(
                f"shadow: {analysis.shadow_pairs} pairs, agreement {percent(analysis.shadow_agreement)}, "
                f"McNemar p {p_value(analysis.shadow_mcnemar_p)}"
            )
        )
    if exp.status_reason:
        parts.append(Text(exp.status_reason, style="italic"))
    return Group(*parts)


def label_waiting(analysis: controlplane_pb2.ExperimentAnalysis) -> Text:
    """Judged on delayed labels: per arm, the predictions the gates could not judge yet."""
    line = Text("waiting for labels ")
    for arm in analysis.arms:
        waiting = arm.labels_not_due + arm.labels_overdue
        line.append(f"{role_name(arm.role)} {waiting}/{arm.logged}", style="bold" if waiting else "green")
        line.append(f" ({arm.labels_not_due} not due, {arm.labels_overdue} overdue)  ", style="dim")
    line.append(f"delay {duration(analysis.label_delay_seconds)}", style="dim")
    return line


class ExperimentPanel(Static):
    DEFAULT_CSS = """
    ExperimentPanel {
        height: auto;
    }
    """

    def show(self, experiment: controlplane_pb2.Experiment | None, note: str = "") -> None:
        if experiment is None:
            self.update(Text(note or "no experiment running: start one with e", style="dim"))
        else:
            self.update(render_experiment(experiment))
