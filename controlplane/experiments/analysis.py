"""Analysis of an experiment from the merged summaries of its two arms (never per-prediction rows).

Everything here is pure: it takes `ArmSummary` totals (counts, moments, latency sketches) and the
experiment's settings and returns an `Analysis` that the engine stores as JSON and the API turns
into an `ExperimentAnalysis` message.

Metrics and how they are compared:

- accuracy (higher is better): labeled requests answered correctly (classifiers) or within the
  tolerance (regressors); two-proportion z-test, or the always-valid confidence sequence.
- error_rate (lower is better): failed requests over requests; same tests as accuracy.
- mae (lower is better, regressors): mean absolute error from (n, mean, M2) moments; Welch t-test
  or its always-valid counterpart.
- p95_latency (lower is better, milliseconds): read from the mergeable latency sketches; the
  interval of each arm's p95 comes from the order statistics around rank 0.95 n (binomial ranks),
  and the two arms are compared on the log scale (a ratio), Kayenta-style.

In a shadow step the challenger scores copies of the champion's requests, so accuracy is compared
on the paired outcomes: McNemar's test on the discordant pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from scipy import special as spf

from controlplane.monitoring.query import ArmSummary
from controlplane.stats import (
    CHALLENGER_WINS,
    CHAMPION_HOLDS,
    NO_DIFFERENCE,
    Comparison,
    always_valid_p_value,
    confidence_sequence_half_width,
    decide,
    mcnemar_test,
    sequential_mean_test,
    sequential_proportion_test,
    srm_check,
    two_proportion_test,
    welch_test,
)
from core.sketch import LatencySketch

NAN = math.nan
METRICS = ("accuracy", "error_rate", "mae", "p95_latency")
HIGHER_IS_BETTER = {"accuracy": True, "error_rate": False, "mae": False, "p95_latency": False}
NOT_ENOUGH_DATA = "not_enough_data"
SRM_DETECTED = "srm_detected"
DECISIONS = (CHALLENGER_WINS, CHAMPION_HOLDS, NO_DIFFERENCE, NOT_ENOUGH_DATA, SRM_DETECTED)
P95 = 0.95
#: fewest latency samples per arm before a p95 is worth an interval
MIN_LATENCY_SAMPLES = 20
#: fewest expected requests in every live arm before the chi-square SRM test is trusted
MIN_SRM_EXPECTED = 5.0


@dataclass(frozen=True)
class Arm:
    """One side of the comparison: which version, its role and what its windows add up to."""

    model: str
    version: str
    role: str  # champion | challenger | shadow
    summary: ArmSummary


@dataclass(frozen=True)
class Estimate:
    n: int
    value: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class GuardrailResult:
    metric: str
    max_degradation: float
    passed: bool
    ready: bool  # both arms have enough samples to judge
    detail: str


@dataclass
class Analysis:
    metric: str
    arms: list[dict[str, Any]]
    comparison: Comparison
    decision: str
    ready: bool
    srm_detected: bool = False
    srm_p_value: float = NAN
    sequential: bool = False
    paired: bool = False
    guardrails: list[GuardrailResult] = field(default_factory=list)
    shadow_agreement: float = NAN
    shadow_mcnemar_p: float = NAN
    shadow_pairs: int = 0
    waiting_for: list[str] = field(default_factory=list)

    @property
    def failed_guardrails(self) -> list[GuardrailResult]:
        return [g for g in self.guardrails if not g.passed]

    def to_json(self) -> dict[str, Any]:
        """JSON-safe (NaN and infinities become null; PostgreSQL's JSON refuses them)."""
        c = self.comparison
        return {
            "metric": self.metric,
            "arms": [{k: _clean(v) for k, v in arm.items()} for arm in self.arms],
            "difference": _clean(c.difference),
            "difference_ci_low": _clean(c.difference_ci[0]),
            "difference_ci_high": _clean(c.difference_ci[1]),
            "relative_lift": _clean(c.relative_lift),
            "relative_lift_ci_low": _clean(c.relative_lift_ci[0]),
            "relative_lift_ci_high": _clean(c.relative_lift_ci[1]),
            "p_value": _clean(c.p_value),
            "method": c.method,
            "decision": self.decision,
            "ready": self.ready,
            "srm_detected": self.srm_detected,
            "srm_p_value": _clean(self.srm_p_value),
            "sequential": self.sequential,
            "paired": self.paired,
            "guardrails": [
                {
                    "metric": g.metric,
                    "max_degradation": g.max_degradation,
                    "passed": g.passed,
                    "ready": g.ready,
                    "detail": g.detail,
                }
                for g in self.guardrails
            ],
            "shadow_agreement": _clean(self.shadow_agreement),
            "shadow_mcnemar_p": _clean(self.shadow_mcnemar_p),
            "shadow_pairs": self.shadow_pairs,
            "waiting_for": list(self.waiting_for),
        }


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _z(alpha: float) -> float:
    return float(spf.ndtri(1.0 - alpha / 2.0))


# ---- per-arm estimates -------------------------------------------------------------------------


def _successes(metric: str, s: ArmSummary, task: str) -> tuple[int, int]:
    """(successes, trials) of a proportion metric."""
    if metric == "accuracy":
        correct = s.n_within_tolerance if task == "regressor" else s.n_correct
        return int(correct), int(s.n_labeled)
    return int(s.errors), int(s.requests)


def wilson(successes: int, n: int, alpha: float) -> tuple[float, float]:
    """Wilson score interval of a proportion (sensible at 0% and 100%, unlike Wald's)."""
    if n <= 0:
        return NAN, NAN
    z = _z(alpha)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def quantile_interval(sketch: LatencySketch, q: float, alpha: float) -> tuple[float, float, float]:
    """(estimate, low, high) of the q-quantile: order statistics at ranks n q -/+ z sqrt(n q (1-q)).

    Distribution-free (the rank of the true quantile is binomial); the sketch adds at most its
    relative accuracy (1%) to each end.
    """
    n = sketch.count
    if n == 0:
        return NAN, NAN, NAN
    spread = _z(alpha) * math.sqrt(q * (1 - q) / n)
    return (
        sketch.quantile(q),
        sketch.quantile(max(0.0, q - spread)),
        sketch.quantile(min(1.0, q + spread)),
    )


def sample_count(metric: str, s: ArmSummary, task: str) -> int:
    if metric in ("accuracy", "error_rate"):
        return _successes(metric, s, task)[1]
    if metric == "mae":
        return int(s.abs_error.n)
    return int(s.latency.count)


def estimate(metric: str, s: ArmSummary, task: str, alpha: float) -> Estimate:
    if metric in ("accuracy", "error_rate"):
        k, n = _successes(metric, s, task)
        return Estimate(n, k / n if n else NAN, wilson(k, n, alpha))
    if metric == "mae":
        m = s.abs_error
        if m.n == 0:
            return Estimate(0, NAN, (NAN, NAN))
        if m.n < 2:
            return Estimate(m.n, m.mean, (NAN, NAN))
        half = float(spf.stdtrit(m.n - 1, 1.0 - alpha / 2.0)) * m.standard_error
        return Estimate(m.n, m.mean, (m.mean - half, m.mean + half))
    value, low, high = quantile_interval(s.latency, P95, alpha)
    return Estimate(s.latency.count, value * 1000.0, (low * 1000.0, high * 1000.0))


# ---- comparisons -------------------------------------------------------------------------------


def _empty(control: float, treatment: float, method: str) -> Comparison:
    return Comparison(control, treatment, NAN, (NAN, NAN), NAN, (NAN, NAN), NAN, False, method)


def latency_comparison(control: LatencySketch, treatment: LatencySketch, alpha: float, sequential: bool) -> Comparison:
    """p95 of treatment against control, on the log scale so the shift reads as a ratio.

    Each arm's log-p95 gets a standard error from its order-statistic interval (half its width
    over 2 z); the difference of the logs is tested with a z-test or, when `sequential`, with the
    same always-valid confidence sequence as the other metrics. Values are in milliseconds.
    """
    method = "sequential_log_p95" if sequential else "log_p95_z"
    qc, lc, hc = quantile_interval(control, P95, alpha)
    qt, lt, ht = quantile_interval(treatment, P95, alpha)
    qc_ms, qt_ms = qc * 1000.0, qt * 1000.0
    if min(control.count, treatment.count) < MIN_LATENCY_SAMPLES or not (qc > 0 and qt > 0):
        return _empty(qc_ms, qt_ms, method)
    if not (lc > 0 and lt > 0):
        return _empty(qc_ms, qt_ms, method)
    z = _z(alpha)
    se_c = (math.log(hc) - math.log(lc)) / (2 * z)
    se_t = (math.log(ht) - math.log(lt)) / (2 * z)
    d = math.log(qt) - math.log(qc)
    se = math.hypot(se_c, se_t)
    if se == 0:
        if d == 0:
            return Comparison(qc_ms, qt_ms, 0.0, (0.0, 0.0), 0.0, (0.0, 0.0), 1.0, False, method)
        return Comparison(qc_ms, qt_ms, qt_ms - qc_ms, (NAN, NAN), math.expm1(d), (NAN, NAN), NAN, False, method)
    if sequential:
        n_total = control.count + treatment.count
        half = float(confidence_sequence_half_width(se, n_total, alpha))
        p = float(always_valid_p_value(d, se, n_total))
    else:
        half = z * se
        p = float(2.0 * spf.ndtr(-abs(d / se)))
    low, high = math.expm1(d - half), math.expm1(d + half)
    significant = (d - half) > 0 or (d + half) < 0
    return Comparison(
        qc_ms,
        qt_ms,
        qt_ms - qc_ms,
        (qc_ms * low, qc_ms * high),
        math.expm1(d),
        (low, high),
        p,
        significant,
        method,
    )


def paired_accuracy(champion: ArmSummary, shadow: ArmSummary, alpha: float, sequential: bool) -> Comparison:
    """Accuracy of a shadow against the champion on the same requests (McNemar).

    b = pairs only the champion got right, c = only the shadow; the paired difference is
    (c - b) / pairs. The champion's accuracy comes from all its labeled requests, the shadow's is
    that plus the paired difference.
    """
    method = "sequential_paired" if sequential else "mcnemar"
    m = int(shadow.shadow_labeled_pairs)
    b, c = int(shadow.champion_only_correct), int(shadow.challenger_only_correct)
    control = champion.n_correct / champion.n_labeled if champion.n_labeled else NAN
    if m == 0:
        return _empty(control, NAN, method)
    diff = (c - b) / m
    treatment = control + diff if math.isfinite(control) else NAN
    variance = max((b + c) / m - diff * diff, 0.0) / m
    se = math.sqrt(variance)
    if sequential:
        if se == 0:
            p = 1.0 if diff == 0 else NAN
            half = 0.0
        else:
            half = float(confidence_sequence_half_width(se, m, alpha))
            p = float(always_valid_p_value(diff, se, m))
        significant = se > 0 and (diff - half > 0 or diff + half < 0)
    else:
        half = _z(alpha) * se
        p = mcnemar_test(b, c)
        significant = p < alpha
    lift = treatment / control - 1 if control else NAN
    lift_ci = ((diff - half) / control, (diff + half) / control) if control else (NAN, NAN)
    return Comparison(control, treatment, diff, (diff - half, diff + half), lift, lift_ci, p, significant, method)


def compare(
    metric: str,
    champion: ArmSummary,
    challenger: ArmSummary,
    task: str,
    alpha: float,
    sequential: bool,
    paired: bool = False,
) -> Comparison:
    if metric == "accuracy" and paired:
        return paired_accuracy(champion, challenger, alpha, sequential)
    if metric in ("accuracy", "error_rate"):
        kc, nc = _successes(metric, champion, task)
        kt, nt = _successes(metric, challenger, task)
        if sequential:
            return sequential_proportion_test(kc, nc, kt, nt, alpha)
        return two_proportion_test(kc, nc, kt, nt, alpha)
    if metric == "mae":
        if sequential:
            return sequential_mean_test(champion.abs_error, challenger.abs_error, alpha)
        return welch_test(champion.abs_error, challenger.abs_error, alpha)
    return latency_comparison(champion.latency, challenger.latency, alpha, sequential)


# ---- guardrails --------------------------------------------------------------------------------


def _fmt(value: float, metric: str) -> str:
    if not math.isfinite(value):
        return "-"
    if metric == "p95_latency":
        return f"{value:.2f} ms"
    return f"{value:.4g}"


def judge_guardrail(
    metric: str, max_degradation: float, comparison: Comparison, n_champion: int, n_challenger: int, min_samples: int
) -> GuardrailResult:
    """Fails only when the whole interval of the degradation lies beyond the allowed amount.

    The degradation is relative (0.1 = 10% worse) — in the bad direction of the metric. When the
    champion's value is 0 (e.g. no errors at all) a relative change means nothing and the
    allowance is read as an absolute amount in the metric's units.
    """
    ready = min(n_champion, n_challenger) >= min_samples
    values = f"champion {_fmt(comparison.control, metric)}, challenger {_fmt(comparison.treatment, metric)}"
    if not ready:
        return GuardrailResult(
            metric,
            max_degradation,
            True,
            False,
            f"not enough data yet ({n_champion} and {n_challenger} samples, {min_samples} needed)",
        )
    sign = -1.0 if HIGHER_IS_BETTER[metric] else 1.0
    lift_low, lift_high = comparison.relative_lift_ci
    if math.isfinite(lift_low) and math.isfinite(lift_high) and comparison.control != 0:
        worst, best = sorted((sign * lift_low, sign * lift_high))
        shown = (
            f"challenger changed it {comparison.relative_lift:+.1%} (interval {lift_low:+.1%} to "
            f"{lift_high:+.1%}), i.e. {worst:.1%} to {best:.1%} worse"
        )
        limit = f"at most {max_degradation:.1%} worse allowed"
    else:
        diff_low, diff_high = comparison.difference_ci
        if not (math.isfinite(diff_low) and math.isfinite(diff_high)):
            return GuardrailResult(metric, max_degradation, True, True, f"{values}: no interval yet")
        worst, best = sorted((sign * diff_low, sign * diff_high))
        shown = (
            f"the champion's value is 0, so absolute: {worst:.4g} to {best:.4g} worse "
            f"(difference {_fmt(comparison.difference, metric)})"
        )
        limit = f"at most {max_degradation:g} worse allowed"
    if worst > max_degradation:
        return GuardrailResult(metric, max_degradation, False, True, f"{values}: {shown}; {limit}")
    return GuardrailResult(metric, max_degradation, True, True, f"{values}: {shown}; {limit}")


# ---- the whole analysis ------------------------------------------------------------------------


def srm(counts: tuple[int, int] | None, challenger_percent: int) -> tuple[bool, float]:
    """Sample ratio mismatch of the live split: (detected, p-value); (False, nan) when not judged."""
    if counts is None or challenger_percent <= 0:
        return False, NAN
    weights = (100 - challenger_percent, challenger_percent)
    total = sum(counts)
    live = [w for w in weights if w > 0]
    if total == 0 or min(total * w / 100 for w in live) < MIN_SRM_EXPECTED:
        return False, NAN
    result = srm_check(list(counts), list(weights))
    return bool(result.mismatch), float(result.p_value)


def analyze(
    *,
    metric: str,
    champion: Arm,
    challenger: Arm,
    task: str,
    alpha: float,
    min_samples: int,
    min_improvement: float,
    sequential: bool,
    guardrails: list[tuple[str, float]],
    paired: bool = False,
    srm_counts: tuple[int, int] | None = None,
    challenger_percent: int = 0,
) -> Analysis:
    """Per-arm estimates, the comparison, the guardrails, SRM and the decision."""
    cs, ts = champion.summary, challenger.summary

    def n_of(m: str, s: ArmSummary, shadow_side: bool) -> int:
        if m == "accuracy" and paired and shadow_side:
            return int(s.shadow_labeled_pairs)
        return sample_count(m, s, task)

    comparison = compare(metric, cs, ts, task, alpha, sequential, paired)
    arms = []
    for arm, is_challenger in ((champion, False), (challenger, True)):
        est = estimate(metric, arm.summary, task, alpha)
        value, ci = est.value, est.ci
        n = n_of(metric, arm.summary, is_challenger)
        if is_challenger and metric == "accuracy" and paired:
            value = comparison.treatment
            ci = (
                comparison.control + comparison.difference_ci[0],
                comparison.control + comparison.difference_ci[1],
            )
        arms.append(
            {
                "model": arm.model,
                "version": arm.version,
                "role": arm.role,
                "requests": int(arm.summary.requests),
                "rows": int(arm.summary.rows),
                "n": int(n),
                "metric": value,
                "ci_low": ci[0],
                "ci_high": ci[1],
            }
        )
    waiting: list[str] = []
    n_c, n_t = n_of(metric, cs, False), n_of(metric, ts, True)
    if min(n_c, n_t) < min_samples:
        waiting.append(f"{metric}: {n_c} and {n_t} samples of {min_samples} per arm")
    results = []
    for g_metric, allowed in guardrails:
        g_cmp = comparison if g_metric == metric else compare(g_metric, cs, ts, task, alpha, sequential, paired)
        gc, gt = n_of(g_metric, cs, False), n_of(g_metric, ts, True)
        result = judge_guardrail(g_metric, allowed, g_cmp, gc, gt, min_samples)
        if not result.ready:
            waiting.append(f"guardrail {g_metric}: {gc} and {gt} samples of {min_samples} per arm")
        results.append(result)
    detected, srm_p = srm(srm_counts, challenger_percent)
    primary_ready = min(n_c, n_t) >= min_samples
    if detected:
        decision = SRM_DETECTED
    elif not primary_ready:
        decision = NOT_ENOUGH_DATA
    else:
        decision = decide(comparison, HIGHER_IS_BETTER[metric], min_improvement)
    pairs = int(ts.shadow_pairs)
    labeled_pairs = int(ts.shadow_labeled_pairs)
    return Analysis(
        metric=metric,
        arms=arms,
        comparison=comparison,
        decision=decision,
        ready=not waiting,
        srm_detected=detected,
        srm_p_value=srm_p,
        sequential=sequential,
        paired=paired,
        guardrails=results,
        shadow_agreement=ts.shadow_agreements / pairs if pairs else NAN,
        shadow_mcnemar_p=(
            mcnemar_test(int(ts.champion_only_correct), int(ts.challenger_only_correct)) if labeled_pairs else NAN
        ),
        shadow_pairs=pairs,
        waiting_for=waiting,
    )


def describe(analysis: Analysis) -> str:
    """One sentence on the primary metric, for status reasons and audit details."""
    c = analysis.comparison
    p = "-" if not math.isfinite(c.p_value) else f"{c.p_value:.3g}"
    return (
        f"{analysis.metric} champion {_fmt(c.control, analysis.metric)} vs challenger "
        f"{_fmt(c.treatment, analysis.metric)}, difference {_fmt(c.difference, analysis.metric)} "
        f"(p={p}, {c.method})"
    )
