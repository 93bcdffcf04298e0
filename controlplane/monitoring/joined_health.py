"""Health judged on label-joined figures: accuracy, MAE and RMSE from the prediction log joined
with the label store, for deployments whose policy says `accuracy_source = joined`.

Labels that arrive hours later cannot judge the last minute of traffic, so the predictions judged
are those made in the `label_window_seconds` that ended `label_delay_seconds` ago: every one of
them had its delay to get its label. The thresholds, the minimum samples and the alert kinds are
the live ones (an `accuracy` alert stays an `accuracy` alert whatever its source); the reason, and
so the alert's message, names the source and the slice of time judged. The live feedback figures
are not judged then (one source at a time, as the policy says).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from controlplane.config import HealthConfig
from controlplane.context import Context
from controlplane.monitoring.judgement import Judgement, high_is_bad, low_is_bad
from controlplane.predlog.delayed import SliceFigures, slice_figures
from core.vocabulary import MetricSource, ModelTask

log = logging.getLogger("sluice.monitoring")


@dataclass(frozen=True)
class LabelSlice:
    """One version's label-joined figures over the judged slice of time."""

    figures: SliceFigures
    since: datetime
    until: datetime

    def source(self, config: HealthConfig) -> str:
        return (
            f"label-joined: predictions made {_hours(config.label_delay_seconds + config.label_window_seconds)} "
            f"to {_hours(config.label_delay_seconds)} ago"
        )


def _hours(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:g}h"
    if seconds >= 120:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def label_slices(
    ctx: Context, deployment: str, config: HealthConfig, now: datetime
) -> dict[tuple[str, str], LabelSlice] | None:
    """Per (model, version) its figures over the judged slice; None when the deployment's health
    reads live feedback. A log that cannot be read is logged and judges nothing this round."""
    if config.accuracy_source != MetricSource.JOINED:
        return None
    until = now - timedelta(seconds=config.label_delay_seconds)
    since = until - timedelta(seconds=config.label_window_seconds)
    try:
        figures = slice_figures(ctx, deployment, since=since, cutoff=until, until=until)
    except Exception:
        log.exception("reading the prediction log of %s for its label-joined health failed", deployment)
        return {}
    out: dict[tuple[str, str], LabelSlice] = {}
    for f in figures:
        key = (f.model, f.version)
        merged = out[key].figures.merge(f) if key in out else f
        out[key] = LabelSlice(merged, since, until)
    return out


def judge_labels(task: str, labels: LabelSlice | None, config: HealthConfig) -> list[Judgement]:
    """The judgements of accuracy (classifiers) or MAE and RMSE (regressors) on the slice's
    labelled predictions; none below the minimum samples, as live."""
    if labels is None or labels.figures.labeled < config.min_samples:
        return []
    f = labels.figures
    if task == ModelTask.REGRESSOR:
        if not f.abs_error.n:
            return []
        mae, rmse = f.abs_error.mean, math.sqrt(f.sum_squared_error / f.abs_error.n)
        found = [high_is_bad("mae", mae, config.mae_warning, config.mae_critical)]
        if config.rmse_warning > 0 or config.rmse_critical > 0:
            found.append(high_is_bad("rmse", rmse, config.rmse_warning, config.rmse_critical))
    else:
        found = [low_is_bad("accuracy", f.n_correct / f.labeled, config.accuracy_warning, config.accuracy_critical)]
    source = labels.source(config)
    return [
        Judgement(j.name, j.value, j.state, f"{j.reason} on {f.labeled} {source}" if j.reason else "") for j in found
    ]
