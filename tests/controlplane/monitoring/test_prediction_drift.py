"""Prediction drift (docs/STATISTICS.md): the PSI of a version's live predictions against its
baseline predictions; NaN without baseline predictions or below `health.min_drift_samples`. Pure."""

from __future__ import annotations

import math

from controlplane.config import HealthConfig
from controlplane.monitoring.health import prediction_drift
from controlplane.monitoring.summary import WindowSummary

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
