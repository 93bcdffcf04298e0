"""The analysis layer on its own: per-arm intervals, the latency comparison, guardrails, SRM."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as sps

from controlplane.experiments import analysis, estimates
from controlplane.experiments.analysis import Arm, analyze
from controlplane.monitoring.query import ArmSummary
from controlplane.stats import mcnemar_test
from core.sketch import LatencySketch
from core.summaries import Moments


def sketch_of(values: np.ndarray) -> LatencySketch:
    sketch = LatencySketch(0.01)
    sketch.add_many(values)
    return sketch


def arm(requests: int = 0, labeled: int = 0, correct: int = 0, errors: int = 0, **kw: object) -> ArmSummary:
    return ArmSummary(requests=requests, rows=requests, errors=errors, n_labeled=labeled, n_correct=correct, **kw)  # type: ignore[arg-type]


def test_wilson_interval_matches_the_closed_form() -> None:
    low, high = estimates.wilson(0, 10, 0.05)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = estimates.wilson(50, 100, 0.05)
    assert (low, high) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert all(math.isnan(v) for v in estimates.wilson(0, 0, 0.05))


def test_p95_interval_covers_the_true_quantile() -> None:
    rng = np.random.default_rng(1)
    true_p95 = float(np.exp(np.log(0.01) + 0.5 * sps.norm.ppf(0.95)))
    covered = 0
    for _ in range(200):
        _, low, high = estimates.quantile_interval(sketch_of(rng.lognormal(np.log(0.01), 0.5, 400)), 0.95, 0.05)
        covered += low <= true_p95 <= high
    assert 0.9 <= covered / 200 <= 1.0


@pytest.mark.parametrize("sequential", [False, True])
def test_latency_comparison_a_a_false_positives_and_a_real_slowdown(sequential: bool) -> None:
    rng = np.random.default_rng(2)
    runs = 300
    alarms = sum(
        estimates.latency_comparison(
            sketch_of(rng.lognormal(np.log(0.01), 0.4, 500)),
            sketch_of(rng.lognormal(np.log(0.01), 0.4, 500)),
            0.05,
            sequential,
        ).significant
        for _ in range(runs)
    )
    assert alarms / runs <= 0.08  # the rank interval plus the 1% sketch error stays near alpha
    slower = estimates.latency_comparison(
        sketch_of(rng.lognormal(np.log(0.01), 0.4, 500)),
        sketch_of(rng.lognormal(np.log(0.02), 0.4, 500)),
        0.05,
        sequential,
    )
    assert slower.significant and slower.p_value < 0.05
    assert slower.relative_lift == pytest.approx(1.0, abs=0.25)
    assert slower.relative_lift_ci[0] < slower.relative_lift < slower.relative_lift_ci[1]
    assert slower.difference == pytest.approx(slower.treatment - slower.control)


def test_latency_comparison_needs_samples() -> None:
    small = estimates.latency_comparison(sketch_of(np.full(5, 0.01)), sketch_of(np.full(5, 0.03)), 0.05, False)
    assert not small.significant and math.isnan(small.p_value)


def test_paired_accuracy_is_mcnemar_on_the_discordant_pairs() -> None:
    champion = arm(100, 100, 80)
    shadow = ArmSummary(shadow_pairs=100, shadow_agreements=90, shadow_labeled_pairs=100)
    shadow.champion_only_correct, shadow.challenger_only_correct = 2, 12
    result = estimates.paired_accuracy(champion, shadow, 0.05, False)
    assert result.p_value == mcnemar_test(2, 12)
    assert result.difference == pytest.approx(0.10)
    assert result.treatment == pytest.approx(0.90)
    assert result.significant


def test_guardrail_on_a_zero_error_rate_uses_an_absolute_allowance() -> None:
    champion, challenger = arm(1000, errors=0), arm(1000, errors=300)
    cmp = estimates.compare("error_rate", champion, challenger, "classifier", 0.05, False)
    failed = analysis.judge_guardrail("error_rate", 0.05, cmp, 1000, 1000, 100)
    assert not failed.passed and "absolute" in failed.detail
    small = estimates.compare("error_rate", champion, arm(1000, errors=3), "classifier", 0.05, False)
    assert analysis.judge_guardrail("error_rate", 0.05, small, 1000, 1000, 100).passed


def test_guardrail_fails_only_when_the_whole_interval_is_beyond_the_allowance() -> None:
    cmp = estimates.compare("accuracy", arm(400, 400, 360), arm(400, 400, 340), "classifier", 0.05, False)
    assert analysis.judge_guardrail("accuracy", 0.10, cmp, 400, 400, 100).passed  # 5.6% worse: noisy, allowed
    bad = estimates.compare("accuracy", arm(400, 400, 360), arm(400, 400, 200), "classifier", 0.05, False)
    result = analysis.judge_guardrail("accuracy", 0.10, bad, 400, 400, 100)
    assert not result.passed and result.ready
    waiting = analysis.judge_guardrail("accuracy", 0.10, bad, 40, 400, 100)
    assert waiting.passed and not waiting.ready


def test_mae_uses_welch_on_the_moments() -> None:
    rng = np.random.default_rng(3)
    champion = ArmSummary(abs_error=Moments.of(rng.exponential(0.3, 500)))
    challenger = ArmSummary(abs_error=Moments.of(rng.exponential(0.2, 500)))
    result = analyze(
        metric="mae",
        champion=Arm("m", "v1", "champion", champion),
        challenger=Arm("m", "v2", "challenger", challenger),
        task="regressor",
        alpha=0.05,
        min_samples=100,
        min_improvement=0.0,
        sequential=False,
        guardrails=[],
    )
    assert result.comparison.method == "welch_t"
    assert result.decision == "challenger_wins"


def test_srm_is_judged_only_with_enough_expected_counts() -> None:
    assert analysis.srm((3, 1), 10) == (False, pytest.approx(math.nan, nan_ok=True))
    detected, p = analysis.srm((500, 500), 10)
    assert detected and p < 1e-10
    detected, p = analysis.srm((905, 95), 10)
    assert not detected and p > 0.05


def test_analysis_json_is_strict_json_and_reports_every_field() -> None:
    result = analyze(
        metric="accuracy",
        champion=Arm("m", "v1", "champion", replace(arm(10, 0, 0), rows=40)),  # batch calls: 4 rows each
        challenger=Arm("m", "v2", "challenger", arm(2, 0, 0)),
        task="classifier",
        alpha=0.05,
        min_samples=100,
        min_improvement=0.0,
        sequential=True,
        guardrails=[("p95_latency", 0.25), ("error_rate", 0.1)],
        srm_counts=(10, 2),
        challenger_percent=10,
    )
    assert result.decision == "not_enough_data" and not result.ready
    data = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert data["p_value"] is None and len(data["arms"]) == 2 and len(data["guardrails"]) == 2
    assert [(a["requests"], a["rows"]) for a in data["arms"]] == [(10, 40), (2, 2)]
    assert data["waiting_for"][0].startswith("accuracy: 0 and 0 samples")
