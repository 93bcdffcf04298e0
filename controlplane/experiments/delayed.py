"""Experiments judged on delayed labels: the label-derived part of each arm comes from the
prediction log joined with the label store, for the predictions old enough to have their label.

With `label_source = joined` and a declared `label_delay_seconds`, a look at time `now` judges
the experiment's logged predictions made at or before `now - delay` (the cutoff) that have a
current label; the metric windows still give everything else (requests, errors, latency, the
sample ratio). What the gates could not judge yet is counted per arm: predictions not due (newer
than the cutoff) and due ones still without a label (overdue). docs/STATISTICS.md, "Experiments
on delayed labels", has the argument why the sequential guarantees hold when labels arrive late
and in bulk.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from controlplane.context import Context
from controlplane.experiments.spec import ExperimentInfo
from controlplane.monitoring.query import ArmSummary
from controlplane.predlog.delayed import SliceFigures, slice_figures
from core.summaries import Moments
from core.vocabulary import MetricSource, ServingRole

#: the agents' clocks stamp the log: a little slack keeps an experiment's first rows
LOG_SLACK = timedelta(seconds=60)


def judged_on_labels(config: dict[str, Any]) -> bool:
    return config.get("label_source") == MetricSource.JOINED


@dataclass(frozen=True)
class ArmLabels:
    """What one arm logged and how much of it the gates could judge."""

    predictions: int = 0
    labeled: int = 0
    not_due: int = 0
    overdue: int = 0

    def add(self, f: SliceFigures) -> ArmLabels:
        return ArmLabels(
            self.predictions + f.predictions,
            self.labeled + f.labeled,
            self.not_due + f.not_due,
            self.overdue + f.overdue,
        )

    @property
    def waiting(self) -> int:
        return self.not_due + self.overdue


@dataclass(frozen=True)
class LabelWaiting:
    """The experiment's label delay, the cutoff of this look and each arm's counts."""

    delay_seconds: float
    judged_until: datetime
    champion: ArmLabels
    challenger: ArmLabels

    def to_json(self) -> dict[str, Any]:
        def arm(a: ArmLabels) -> dict[str, int]:
            return {
                "logged": a.predictions,
                "labeled": a.labeled,
                "not_due": a.not_due,
                "overdue": a.overdue,
                "waiting": a.waiting,
            }

        return {
            "source": MetricSource.JOINED.value,
            "delay_seconds": self.delay_seconds,
            "judged_until": self.judged_until.isoformat(),
            ServingRole.CHAMPION.value: arm(self.champion),
            ServingRole.CHALLENGER.value: arm(self.challenger),
        }

    def waiting_text(self) -> str:
        """Why the gates wait, in one clause (for the status reason)."""
        return (
            f"labels (delay {self.delay_seconds:g} s): champion {self.champion.waiting} and challenger "
            f"{self.challenger.waiting} predictions waiting ({self.champion.not_due + self.challenger.not_due} "
            f"not due yet, {self.champion.overdue + self.challenger.overdue} due without a label)"
        )


def _without_labels(arm: ArmSummary) -> ArmSummary:
    return replace(arm, n_labeled=0, n_correct=0, abs_error=Moments(), n_within_tolerance=0)


def _with(arm: ArmSummary, f: SliceFigures) -> ArmSummary:
    return replace(
        arm,
        n_labeled=arm.n_labeled + f.labeled,
        n_correct=arm.n_correct + f.n_correct,
        abs_error=arm.abs_error.merge(f.abs_error),
    )


def joined_arms(
    ctx: Context,
    info: ExperimentInfo,
    now: datetime,
    champions: dict[str, ArmSummary],
    challengers: dict[str, ArmSummary],
) -> tuple[dict[str, ArmSummary], dict[str, ArmSummary], LabelWaiting]:
    """The arms per agent with their labels from the joined log (the windows' live feedback is
    left out, so nothing counts twice), and what is still waiting for a label."""
    delay = float(info.config.get("label_delay_seconds", 0.0))
    cutoff = now - timedelta(seconds=delay)
    figures = slice_figures(
        ctx,
        info.deployment,
        since=info.created_at - LOG_SLACK,
        cutoff=cutoff,
        experiment=info.name,
        versions={info.champion, info.challenger},
    )
    arms = {
        info.champion: {a: _without_labels(s) for a, s in champions.items()},
        info.challenger: {a: _without_labels(s) for a, s in challengers.items()},
    }
    counts = {info.champion: ArmLabels(), info.challenger: ArmLabels()}
    for f in figures:
        route = (f.model, f.version)
        if route not in arms:
            continue
        per_agent = arms[route]
        per_agent[f.agent] = _with(per_agent.get(f.agent, ArmSummary()), f)
        counts[route] = counts[route].add(f)
    waiting = LabelWaiting(delay, cutoff, counts[info.champion], counts[info.challenger])
    return arms[info.champion], arms[info.challenger], waiting
