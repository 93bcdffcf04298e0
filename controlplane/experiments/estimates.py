"""How one metric is estimated for an arm and compared between two arms.

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
from dataclasses import dataclass

from scipy import special as spf

from controlplane.monitoring.query import ArmSummary
from controlplane.stats import (
    Comparison,
    SequentialDesign,
    always_valid_p_value,
    confidence_sequence_half_width,
    mcnemar_test,
    sequential_mean_test,
    sequential_proportion_test,
    two_proportion_test,
    welch_test,
)
from core.sketch import LatencySketch

NAN = math.nan
METRICS = ("accuracy", "error_rate", "mae", "p95_latency")
HIGHER_IS_BETTER = {"accuracy": True, "error_rate": False, "mae": False, "p95_latency": False}
P95 = 0.95
#: fewest latency samples per arm before a p95 is worth an interval
MIN_LATENCY_SAMPLES = 20


@dataclass(frozen=True)
class Estimate:
    n: int
    value: float
    ci: tuple[float, float]


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
    design: SequentialDesign | None = None,
) -> Comparison:
    """The comparison of one metric; ``design`` (the experiment's plan) for its primary metric."""
    if metric == "accuracy" and paired:
        return paired_accuracy(champion, challenger, alpha, sequential)
    if metric in ("accuracy", "error_rate"):
        kc, nc = _successes(metric, champion, task)
        kt, nt = _successes(metric, challenger, task)
        if sequential:
            return sequential_proportion_test(kc, nc, kt, nt, alpha, design=design)
        return two_proportion_test(kc, nc, kt, nt, alpha)
    if metric == "mae":
        if sequential:
            return sequential_mean_test(champion.abs_error, challenger.abs_error, alpha, design=design)
        return welch_test(champion.abs_error, challenger.abs_error, alpha)
    return latency_comparison(champion.latency, challenger.latency, alpha, sequential)
