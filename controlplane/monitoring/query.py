"""Reading metric windows back: merged summaries per version, arms of experiments, time series.

Raw windows and their rollups never overlap (a rollup deletes the raw rows it absorbed in the
same transaction), so a query simply merges every row of any resolution in its time range; over
days that is a few hundred hour rows, never one row per prediction or per second.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from controlplane.context import Context
from controlplane.monitoring.summary import WindowSummary, sketch_from
from controlplane.store.models import MetricWindowRow, utcnow
from core.report_limits import LATENCY_ACCURACY, MAX_COUNT
from core.sketch import LatencySketch
from core.summaries import Moments

MAX_POINTS = 1000


@dataclass
class ArmSummary:
    """Everything an experiment needs about one arm since a moment (mergeable totals)."""

    requests: int = 0
    rows: int = 0
    errors: int = 0
    latency: LatencySketch = field(default_factory=lambda: LatencySketch(LATENCY_ACCURACY))
    n_labeled: int = 0
    n_correct: int = 0
    abs_error: Moments = field(default_factory=Moments)
    n_within_tolerance: int = 0
    prediction_counts: list[int] = field(default_factory=list)
    shadow_pairs: int = 0
    shadow_agreements: int = 0
    shadow_labeled_pairs: int = 0
    champion_only_correct: int = 0
    challenger_only_correct: int = 0


def _windows(
    deployment: str, version_id: int | None, since: datetime, until: datetime | None, experiment: str | None
) -> Select[Any]:
    query = select(
        MetricWindowRow.agent_id,
        MetricWindowRow.requests,
        MetricWindowRow.errors,
        MetricWindowRow.n_labeled,
        MetricWindowRow.n_correct,
        MetricWindowRow.summary,
    ).where(MetricWindowRow.deployment == deployment, MetricWindowRow.window_start >= since)
    if until is not None:
        query = query.where(MetricWindowRow.window_start < until)
    if version_id is not None:
        query = query.where(MetricWindowRow.version_id == version_id)
    if experiment is not None:
        query = query.where(MetricWindowRow.experiment == experiment)
    return query


def merged_summary(
    ctx: Context,
    deployment: str,
    version_id: int | None,
    since: datetime,
    until: datetime | None = None,
    experiment: str | None = None,
) -> WindowSummary:
    """Every window of the deployment (one version, or all when None) starting in [since, until)."""
    total = WindowSummary()
    with ctx.db.session() as session:
        rows = session.execute(_windows(deployment, version_id, since, until, experiment)).all()
    for _agent, requests, errors, n_labeled, n_correct, data in rows:
        total.merge(WindowSummary.from_row(requests, errors, n_labeled, n_correct, data))
    return total


def summaries_by_agent(
    ctx: Context, deployment: str, version_id: int, since: datetime, experiment: str | None = None
) -> dict[str, WindowSummary]:
    """The windows of one version since `since`, merged per reporting agent ("": windows stored
    before agents were recorded)."""
    out: dict[str, WindowSummary] = {}
    with ctx.db.session() as session:
        rows = session.execute(_windows(deployment, version_id, since, None, experiment)).all()
    for agent, requests, errors, n_labeled, n_correct, data in rows:
        summary = WindowSummary.from_row(requests, errors, n_labeled, n_correct, data)
        current = out.get(agent)
        out[agent] = summary if current is None else current.merge(summary)
    return out


def arms_by_agent(
    ctx: Context, deployment: str, version_id: int, since: datetime, experiment: str | None = None
) -> dict[str, ArmSummary]:
    """`arm_summary` per reporting agent."""
    return {a: arm_of(s) for a, s in summaries_by_agent(ctx, deployment, version_id, since, experiment).items()}


def arm_summary(
    ctx: Context, deployment: str, version_id: int, since: datetime, experiment: str | None = None
) -> ArmSummary:
    """The merged windows of one version of a deployment since `since` (raw and rollups)."""
    return arm_of(merged_summary(ctx, deployment, version_id, since, experiment=experiment))


#: the counters of ArmSummary that add up when arms merge
_COUNTERS = (
    "requests",
    "rows",
    "errors",
    "n_labeled",
    "n_correct",
    "n_within_tolerance",
    "shadow_pairs",
    "shadow_agreements",
    "shadow_labeled_pairs",
    "champion_only_correct",
    "challenger_only_correct",
)


def merge_arms(arms: Iterable[ArmSummary]) -> ArmSummary:
    """A new ArmSummary adding up `arms` (counters saturate at MAX_COUNT, like stored summaries)."""
    total = ArmSummary()
    for arm in arms:
        for name in _COUNTERS:
            setattr(total, name, min(getattr(total, name) + getattr(arm, name), MAX_COUNT))
        if arm.latency.count:
            total.latency.merge(arm.latency)
        total.abs_error = total.abs_error.merge(arm.abs_error)
        mine, theirs = total.prediction_counts, arm.prediction_counts
        width = max(len(mine), len(theirs))
        mine, theirs = mine + [0] * (width - len(mine)), theirs + [0] * (width - len(theirs))
        total.prediction_counts = [min(a + b, MAX_COUNT) for a, b in zip(mine, theirs, strict=True)]
    return total


def arm_of(s: WindowSummary) -> ArmSummary:
    """The parts of a merged summary an experiment's analysis reads."""
    return ArmSummary(
        requests=s.requests,
        rows=s.rows,
        errors=s.n_errors,
        latency=s.latency,
        n_labeled=s.n_labeled,
        n_correct=s.n_correct,
        abs_error=s.abs_error,
        n_within_tolerance=s.n_within_tolerance,
        prediction_counts=list(s.prediction_counts),
        shadow_pairs=s.shadow_pairs,
        shadow_agreements=s.shadow_agreements,
        shadow_labeled_pairs=s.shadow_labeled_pairs,
        champion_only_correct=s.champion_only_correct,
        challenger_only_correct=s.challenger_only_correct,
    )


def labeled_since(session: Session, deployment: str, since: datetime) -> int:
    """Labels joined on the deployment (all versions) since a moment (retraining trigger)."""
    value = session.scalar(
        select(func.coalesce(func.sum(MetricWindowRow.n_labeled), 0)).where(
            MetricWindowRow.deployment == deployment, MetricWindowRow.window_start >= since
        )
    )
    return int(value or 0)


@dataclass(frozen=True)
class SeriesPoint:
    at: datetime
    requests_per_second: float
    error_rate: float
    latency_p95_ms: float
    accuracy: float


def metric_series(
    ctx: Context,
    deployment: str,
    version_id: int | None,
    window_seconds: float,
    step_seconds: float,
    now: datetime | None = None,
) -> list[SeriesPoint]:
    """Points every `step_seconds` over the last `window_seconds` (NaN where nothing is known)."""
    now = now or utcnow()
    steps = max(1, min(MAX_POINTS, math.ceil(window_seconds / step_seconds)))
    start = now - timedelta(seconds=steps * step_seconds)
    query = select(
        MetricWindowRow.window_start,
        MetricWindowRow.requests,
        MetricWindowRow.errors,
        MetricWindowRow.n_labeled,
        MetricWindowRow.n_correct,
        MetricWindowRow.summary["latency"],
    ).where(MetricWindowRow.deployment == deployment, MetricWindowRow.window_start >= start)
    if version_id is not None:
        query = query.where(MetricWindowRow.version_id == version_id)
    with ctx.db.session() as session:
        rows = session.execute(query).all()
    requests = [0] * steps
    errors = [0] * steps
    labeled = [0] * steps
    correct = [0] * steps
    sketches: list[LatencySketch | None] = [None] * steps
    for at, n, e, nl, nc, latency in rows:
        index = int((at - start).total_seconds() // step_seconds)
        if not 0 <= index < steps:
            continue
        requests[index] += n
        errors[index] += e
        labeled[index] += nl
        correct[index] += nc
        if latency:
            sketch = sketch_from(latency)
            current = sketches[index]
            if current is None:
                sketches[index] = sketch
            else:
                current.merge(sketch)
    points = []
    for i in range(steps):
        merged = sketches[i]
        p95 = merged.quantile(0.95) * 1000.0 if merged is not None and merged.count else math.nan
        points.append(
            SeriesPoint(
                at=start + timedelta(seconds=(i + 1) * step_seconds),
                requests_per_second=requests[i] / step_seconds,
                error_rate=errors[i] / requests[i] if requests[i] else math.nan,
                latency_p95_ms=p95,
                accuracy=correct[i] / labeled[i] if labeled[i] else math.nan,
            )
        )
    return points
