"""Analysis of an experiment from the merged summaries of its two arms (never per-prediction rows).

Everything here is pure: it takes `ArmSummary` totals (counts, moments, latency sketches) and the
experiment's settings and returns an `Analysis` that the engine stores as JSON and the API turns
into an `ExperimentAnalysis` message.

How each metric is estimated and compared is in `estimates.py`; what each agent's evidence
contributed, and the verdict without it, in `evidence.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from controlplane.experiments.estimates import HIGHER_IS_BETTER, NAN, compare, estimate, sample_count
from controlplane.monitoring.query import ArmSummary
from controlplane.stats import (
    CHALLENGER_WINS,
    CHAMPION_HOLDS,
    NO_DIFFERENCE,
    Comparison,
    SequentialDesign,
    decide,
    mcnemar_test,
    srm_check,
)
from core.vocabulary import ServingRole

NOT_ENOUGH_DATA = "not_enough_data"
SRM_DETECTED = "srm_detected"
DECISIONS = (CHALLENGER_WINS, CHAMPION_HOLDS, NO_DIFFERENCE, NOT_ENOUGH_DATA, SRM_DETECTED)
#: fewest expected requests in every live arm before the chi-square SRM test is trusted
MIN_SRM_EXPECTED = 5.0


@dataclass(frozen=True)
class Arm:
    """One side of the comparison: which version, its role and what its windows add up to."""

    model: str
    version: str
    role: ServingRole
    summary: ArmSummary


@dataclass(frozen=True)
class GuardrailResult:
    metric: str
    max_degradation: float
    passed: bool
    ready: bool  # both arms have enough samples to judge
    detail: str


@dataclass(frozen=True)
class AgentEvidence:
    """What one agent's windows add to the arms, and the analysis of every other agent's evidence
    (None when it is the only agent that contributed, or one of the smallest beyond
    evidence.MAX_LEFT_OUT)."""

    agent_id: str
    name: str
    champion_n: int
    challenger_n: int
    champion_metric: float
    challenger_metric: float
    without: Analysis | None = None

    def to_json(self) -> dict[str, Any]:
        rest = self.without
        return {
            "agent_id": self.agent_id,
            "agent_name": self.name,
            "champion_n": self.champion_n,
            "challenger_n": self.challenger_n,
            "champion_metric": _clean(self.champion_metric),
            "challenger_metric": _clean(self.challenger_metric),
            "decision_without": rest.decision if rest is not None else "",
            "ready_without": rest.ready if rest is not None else False,
            "failed_without": failed_gates(rest) if rest is not None else [],
        }


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
    #: per contributing agent, largest share of the evidence first (evidence.py)
    agents: list[AgentEvidence] = field(default_factory=list)
    #: judged on delayed labels: the delay, this look's cutoff and each arm's waiting predictions
    #: (experiments/delayed.py); None on live feedback
    labels: dict[str, Any] | None = None

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
            "agents": [a.to_json() for a in self.agents],
            "labels": self.labels,
        }


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
            f"no relative interval (the champion's value is 0 or indistinguishable from 0), so "
            f"absolute: {worst:.4g} to {best:.4g} worse "
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
    design: SequentialDesign | None = None,
) -> Analysis:
    """Per-arm estimates, the comparison, the guardrails, SRM and the decision."""
    cs, ts = champion.summary, challenger.summary

    def n_of(m: str, s: ArmSummary, shadow_side: bool) -> int:
        if m == "accuracy" and paired and shadow_side:
            return int(s.shadow_labeled_pairs)
        return sample_count(m, s, task)

    comparison = compare(metric, cs, ts, task, alpha, sequential, paired, design)
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


def failed_gates(analysis: Analysis) -> list[str]:
    """The gates this analysis fails: guardrails beyond their allowance, and a challenger
    significantly worse on the primary metric (each "gate: detail")."""
    failed = [f"guardrail {g.metric}: {g.detail}" for g in analysis.failed_guardrails]
    if analysis.decision == CHAMPION_HOLDS:
        failed.append(f"primary metric {analysis.metric}: challenger significantly worse; {describe(analysis)}")
    return failed


def describe(analysis: Analysis) -> str:
    """One sentence on the primary metric, for status reasons and audit details."""
    c = analysis.comparison
    p = "-" if not math.isfinite(c.p_value) else f"{c.p_value:.3g}"
    return (
        f"{analysis.metric} champion {_fmt(c.control, analysis.metric)} vs challenger "
        f"{_fmt(c.treatment, analysis.metric)}, difference {_fmt(c.difference, analysis.metric)} "
        f"(p={p}, {c.method})"
    )
