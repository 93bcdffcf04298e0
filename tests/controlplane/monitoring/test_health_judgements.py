"""Health judgements at their lines, without a database (docs/STATISTICS.md, the `health`
configuration's documented thresholds): written from the spec after issue 19's mutation sample.

A level is crossed strictly above (below, for accuracy) it, PSI from its line on, a test's
p-value strictly below alpha / n; categorical features share the Bonferroni correction and are
judged from `min_drift_samples` values, missing ones included.
"""

from __future__ import annotations

import math

import numpy as np

from controlplane.config import HealthConfig
from controlplane.monitoring.drift_judgement import (
    FeatureDriftInfo,
    feature_drift,
    feature_judgements,
    judge_drift,
    quality_judgements,
)
from controlplane.monitoring.health import judge_version
from controlplane.monitoring.summary import WindowSummary
from core.sketch import LatencySketch
from core.vocabulary import Health
from tests.controlplane.monitoring.test_prediction_drift import regressor_split

NAN = math.nan


def test_an_error_rate_between_its_two_levels_is_a_warning() -> None:
    config = HealthConfig()  # error_rate warning 1%, critical 5%
    for errors, state in ((5, Health.HEALTHY), (30, Health.WARNING), (80, Health.CRITICAL)):
        summary = WindowSummary(requests=1000, rows=1000, errors={"INTERNAL": errors})
        judged = judge_version(regressor_split(), summary, 60.0, config)
        assert {j.name: j.state for j in judged.judgements}["error_rate"] == state, errors


def test_requests_per_second_and_latency_quantiles_of_a_one_second_window() -> None:
    sketch = LatencySketch(0.01)
    sketch.add_many(np.arange(1, 101, dtype=np.float64) / 1000.0)  # 1 ms .. 100 ms
    summary = WindowSummary(requests=100, rows=100, latency=sketch)
    judged = judge_version(regressor_split(), summary, 1.0, HealthConfig())
    assert judged.requests_per_second == 100.0
    assert abs(judged.latency_p50_ms - 50.0) <= 1.5
    assert abs(judged.latency_p95_ms - 95.0) <= 2.0
    assert judge_version(regressor_split(), summary, 0.5, HealthConfig()).requests_per_second == 200.0


def drift(name: str, psi: float, p_value: float = NAN) -> FeatureDriftInfo:
    return FeatureDriftInfo(name, psi, p_value, drifted=psi >= 0.1)


def test_psi_at_the_warning_line_is_a_warning_and_every_drifted_feature_is_named() -> None:
    config = HealthConfig(psi_warning=0.1, psi_critical=0.25)
    at_line = judge_drift([drift("a", 0.1), drift("b", 0.01)], config)
    assert at_line is not None and at_line.state == Health.WARNING
    several = judge_drift([drift("a", 0.3), drift("b", 0.12), drift("c", 0.11), drift("d", 0.0)], config)
    assert several is not None and several.state == Health.CRITICAL
    assert several.reason.startswith("feature a drifted: PSI 0.300 >= 0.25 (critical)")
    assert several.reason.endswith("; 2 more feature(s) drifted: b, c")


def test_a_p_value_exactly_at_alpha_over_n_is_not_a_hit() -> None:
    config = HealthConfig(ks_alpha=0.01)
    [(_, at)] = feature_judgements([drift("a", 0.0, 0.01)], config)
    [(_, below)] = feature_judgements([drift("a", 0.0, 0.0099)], config)
    assert (at.state, below.state) == (Health.HEALTHY, Health.WARNING)


def test_a_missing_share_over_the_critical_level_names_that_level() -> None:
    config = HealthConfig(missing_share_warning=0.1, missing_share_critical=0.3)
    for share, state, limit in ((0.5, Health.CRITICAL, "30%"), (0.2, Health.WARNING, "10%")):
        info = FeatureDriftInfo("a", 0.0, NAN, False, missing_share=share, baseline_missing_share=0.0)
        [(kind, feature, judged)] = quality_judgements([info], config)
        assert (kind, feature, judged.state) == ("missing", "a", state)
        assert judged.reason.endswith(f"> {limit} ({state})"), judged.reason


CATEGORICAL = {"categories": [{"index": 0, "name": "colour", "counts": [5000, 5000]}]}


def test_a_categorical_feature_alone_is_tested_at_alpha() -> None:
    """A small shift over many rows: PSI far under its line, chi-square far under alpha."""
    summary = WindowSummary(categories=[[5300, 4700]], category_missing=[0])
    [info] = feature_drift(summary, CATEGORICAL, None, None, HealthConfig())
    assert info.kind == "categorical" and info.psi < 0.1
    assert info.chi2_p_value < 1e-3 and info.drifted


def test_a_categorical_feature_counts_its_missing_values() -> None:
    config = HealthConfig(min_drift_samples=200)
    with_missing = WindowSummary(categories=[[75, 75]], category_missing=[60])  # 210 values
    [info] = feature_drift(with_missing, CATEGORICAL, None, None, config)
    assert info.kind == "categorical" and info.missing_share == 60 / 210
    assert info.baseline_missing_share == 0.0  # a baseline that counted no missing values has none
    too_few = WindowSummary(categories=[[75, 75]], category_missing=[40])  # 190 values
    assert feature_drift(too_few, CATEGORICAL, None, None, config) == []


def test_a_window_stored_without_missing_counts_is_judged_as_having_none() -> None:
    """Windows stored before categorical missing counts existed have none (`from_row`): they are
    judged as windows with no missing value (neither a failure, which would leave the deployment's
    health unjudged, nor skipped, which would hide a drift)."""
    older = WindowSummary.from_row(300, 0, 0, 0, {"categories": {"counts": [[150, 150]]}})
    assert older.categories == [[150, 150]] and older.category_missing == []
    [info] = feature_drift(older, CATEGORICAL, None, None, HealthConfig(min_drift_samples=200))
    assert info.kind == "categorical" and info.missing_share == 0.0
    shifted = WindowSummary.from_row(300, 0, 0, 0, {"categories": {"counts": [[290, 10]]}})
    [info] = feature_drift(shifted, CATEGORICAL, None, None, HealthConfig(min_drift_samples=200))
    assert info.drifted
