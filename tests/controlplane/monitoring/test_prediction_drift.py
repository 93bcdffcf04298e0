"""Health judgements without a database. Prediction drift (docs/STATISTICS.md): the PSI of a
version's live predictions against its baseline predictions; NaN without baseline predictions or
below `health.min_drift_samples`. Feature drift's KS test: only from `KS_MIN_ROWS` rows on both
sides (the reservoir and the baseline sample)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from controlplane.config import HealthConfig
from controlplane.domain import SplitInfo, VersionInfo
from controlplane.monitoring.drift_judgement import KS_MIN_ROWS, feature_drift, prediction_drift
from controlplane.monitoring.health import judge_version
from controlplane.monitoring.summary import WindowSummary
from core.vocabulary import Health, ServingRole

CONFIG = HealthConfig()  # min_drift_samples 200
BASELINE = {"prediction_counts": [500, 500]}


def live(*counts: int) -> WindowSummary:
    return WindowSummary(prediction_counts=list(counts))


def test_the_same_mix_of_classes_is_no_drift_and_a_shifted_one_is() -> None:
    same = prediction_drift(live(150, 150), BASELINE, CONFIG)
    shifted = prediction_drift(live(270, 30), BASELINE, CONFIG)
    assert math.isfinite(same) and same < 0.01
    assert shifted > 0.5  # 90/10 against 50/50: far beyond any alarm threshold


def test_no_figure_without_enough_predictions_or_a_baseline() -> None:
    assert math.isfinite(prediction_drift(live(100, 100), BASELINE, CONFIG))  # exactly min_drift_samples
    assert math.isnan(prediction_drift(live(100, 99), BASELINE, CONFIG))
    assert math.isnan(prediction_drift(live(150, 150), None, CONFIG))
    assert math.isnan(prediction_drift(live(150, 150), {"n_rows": 10}, CONFIG))
    assert math.isnan(prediction_drift(live(), BASELINE, CONFIG))


def regressor_split() -> SplitInfo:
    version = VersionInfo(
        id=1, model="price", version="v1", sha256="0" * 64, size_bytes=1, task="regressor", inputs=[], outputs=[],
        feature_names=[], description="", baseline=None, baseline_sha256=None, offline_evaluation=None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC), created_by="alice",
    )  # fmt: skip
    return SplitInfo(version, 100, ServingRole.CHAMPION)


def test_a_critical_within_tolerance_level_alone_is_judged() -> None:
    """health.within_tolerance_warning / _critical: 0 disables a level; either level set alone judges."""
    summary = WindowSummary(requests=300, rows=300, n_labeled=300, n_within_tolerance=150, sum_abs_error=30.0)
    for config, state in (
        (HealthConfig(within_tolerance_critical=0.6), Health.CRITICAL),
        (HealthConfig(within_tolerance_warning=0.6), Health.WARNING),
        (HealthConfig(), Health.HEALTHY),  # both 0: the share within tolerance is not judged
    ):
        judged = judge_version(regressor_split(), summary, 60.0, config)
        assert judged.within_tolerance == 0.5 and judged.state == state, (config, judged.reasons)


def ks_p_values(reservoir_rows: int, sample_rows: int, features: int = 2) -> list[float]:
    """The KS p-value of each numeric feature, the reservoir and the baseline sample of these sizes."""
    rng = np.random.default_rng(reservoir_rows * 100 + sample_rows)
    baseline = {"features": [{"index": i, "name": f"x{i}", "counts": [25, 25, 25, 25]} for i in range(features)]}
    summary = WindowSummary(features=[[60, 60, 60, 60]] * features)  # 240 rows, the bins as the baseline's
    config = HealthConfig(min_drift_samples=200)
    drift = feature_drift(
        summary, baseline, rng.normal(size=(reservoir_rows, features)), rng.normal(size=(sample_rows, features)), config
    )
    assert [d.feature for d in drift] == [f"x{i}" for i in range(features)]
    return [d.ks_p_value for d in drift]


def test_the_ks_test_runs_from_exactly_ks_min_rows_on_each_side() -> None:
    assert KS_MIN_ROWS == 50  # docs/STATISTICS.md
    assert all(0.0 <= p <= 1.0 for p in ks_p_values(50, 50))  # exactly the least on both sides
    assert all(0.0 <= p <= 1.0 for p in ks_p_values(50, 50, features=1))
    assert all(math.isnan(p) for p in ks_p_values(49, 50))  # one row short: PSI only
    assert all(math.isnan(p) for p in ks_p_values(50, 49))
    assert all(0.0 <= p <= 1.0 for p in ks_p_values(51, 400))
