"""What an experiment is: the spec a person asks for and its validation into the stored config
(the checks a challenger must pass against the versions are `challenger_checks.py`).

Also the read model (`ExperimentInfo`) and what one rollout step means for the traffic split,
since both the operator commands and the rollout engine build on them. No SQL is written here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controlplane.deployments import NewSplit
from controlplane.experiments.estimates import METRICS
from controlplane.stats import SequentialDesign, sequential_plan, sequential_plan_two_proportions
from controlplane.store.models import ModelVersionRow
from core.errors import InvalidInput
from core.names import validate_name
from core.vocabulary import (
    ACTIVE_EXPERIMENT_STATES,
    MetricSource,
    ModelTask,
    SegmentSource,
    ServingRole,
)

MAX_PLAN_STEPS = 20
MAX_GUARDRAILS = 10
MAX_SEGMENT_RULES = 10
MAX_SEGMENT_VALUES = 100
MAX_SEGMENT_TEXT = 256
MAX_HOLD_SECONDS = 30 * 24 * 3600.0
MAX_MIN_SAMPLES = 1_000_000_000
MAX_REASON = 2000
MAX_LABEL_DELAY_SECONDS = 366 * 24 * 3600.0
#: the metrics a label-joined experiment judges on the log: they are the ones labels decide
JOINED_METRICS = ("accuracy", "mae")


@dataclass
class ExperimentSpec:
    """What a person (or the retraining trigger) asks for; validated by `start_experiment`."""

    deployment: str
    challenger: tuple[str, str]
    traffic_percent: int = 10
    metric: str = "accuracy"
    guardrails: list[tuple[str, float]] = field(default_factory=list)
    min_samples: int = 100
    alpha: float = 0.05
    min_improvement: float = 0.0
    sequential: bool = False
    plan: list[int] = field(default_factory=list)
    hold_seconds: float | None = None  # None: config.rollout.default_hold_seconds
    auto_promote: bool = False
    shadow: bool = False
    segment_rules: list[dict[str, Any]] = field(default_factory=list)
    require_offline_win: bool = False
    min_detectable_effect: float = 0.0  # > 0 with sequential: plan the test for this effect
    baseline: float | None = None  # champion's rate, or the std of the absolute error for mae
    power: float = 0.8
    #: JOINED: accuracy / MAE from the prediction log joined with the label store, judging only
    #: predictions older than `label_delay_seconds` (experiments/delayed.py)
    label_source: MetricSource = MetricSource.LIVE
    label_delay_seconds: float = 0.0


@dataclass(frozen=True)
class ExperimentInfo:
    """An experiment as stored: its validated config, state and current step."""

    id: int
    name: str
    deployment: str
    config: dict[str, Any]
    state: str
    champion: tuple[str, str]
    challenger: tuple[str, str]
    champion_id: int
    challenger_id: int
    task: str
    step_index: int
    current_percent: int
    step_started_at: datetime
    hold_remaining_seconds: float  # the whole hold while the step is not live yet
    status_reason: str
    analysis: dict[str, Any] | None
    created_at: datetime
    ended_at: datetime | None
    salt: str
    created_by: str
    step_generation: int = 0
    step_live_at: datetime | None = None
    paused_at: datetime | None = None  # set while an operator has it paused

    @property
    def steps(self) -> list[int]:
        return [int(s) for s in self.config.get("steps", [])]

    @property
    def hold_seconds(self) -> float:
        return float(self.config.get("hold_seconds", 0.0))

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_EXPERIMENT_STATES


# ---- validation --------------------------------------------------------------------------------


def _finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidInput(f"{what} must be a finite number, got {value!r}")
    return number


def validate_segment_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalised rules: exactly the SegmentRule fields (attribute, values, has_range, min, max)."""
    if len(rules) > MAX_SEGMENT_RULES:
        raise InvalidInput(f"{len(rules)} segment rules given; the limit is {MAX_SEGMENT_RULES}")
    out = []
    seen: set[str] = set()
    for rule in rules:
        attribute = str(rule.get("attribute", "")).strip()
        if not attribute or len(attribute) > MAX_SEGMENT_TEXT:
            raise InvalidInput("a segment rule needs an attribute name of 1 to 256 characters")
        source, name = SegmentSource.of_name(attribute)
        if not name:
            raise InvalidInput(f"segment {attribute!r} names no {source.value}: write {attribute}NAME=...")
        if attribute in seen:
            raise InvalidInput(f"segment attribute {attribute!r} has two rules; give one rule per attribute")
        seen.add(attribute)
        values = [str(v) for v in rule.get("values", []) or []]
        has_range = bool(rule.get("has_range", False))
        if len(values) > MAX_SEGMENT_VALUES:
            raise InvalidInput(f"segment {attribute!r} lists {len(values)} values; the limit is {MAX_SEGMENT_VALUES}")
        if any(not v or len(v) > MAX_SEGMENT_TEXT for v in values):
            raise InvalidInput(f"segment {attribute!r}: every value must be 1 to 256 characters")
        if has_range and values:
            raise InvalidInput(f"segment {attribute!r} has both values and a range; give one of them")
        if not has_range and not values:
            raise InvalidInput(f"segment {attribute!r} needs values (ATTR=v1,v2) or a range (ATTR=lo..hi)")
        low = _finite(rule.get("min", 0.0), f"segment {attribute!r} minimum") if has_range else 0.0
        high = _finite(rule.get("max", 0.0), f"segment {attribute!r} maximum") if has_range else 0.0
        if has_range and low > high:
            raise InvalidInput(f"segment {attribute!r}: the range {low:g}..{high:g} is empty (min above max)")
        out.append({"attribute": attribute, "values": values, "has_range": has_range, "min": low, "max": high})
    return out


def validate_spec(spec: ExperimentSpec, default_hold: float) -> dict[str, Any]:
    """The experiment's stored config, with defaults resolved and the rollout steps spelled out."""
    validate_name("deployment", spec.deployment)
    model, version = spec.challenger
    validate_name("model", model)
    validate_name("version", version)
    if spec.metric not in METRICS:
        raise InvalidInput(f"unknown metric {spec.metric!r}; choose one of {', '.join(METRICS)}")
    if isinstance(spec.traffic_percent, bool) or not isinstance(spec.traffic_percent, int):
        raise InvalidInput("traffic percent must be a whole number")
    if not 1 <= spec.traffic_percent <= 99:
        raise InvalidInput(
            f"traffic percent is {spec.traffic_percent}; an experiment gives the challenger 1 to 99 "
            "(use a plan such as 10,50,100 to ramp to 100)"
        )
    alpha = _finite(spec.alpha, "alpha")
    if not 0.0 < alpha < 1.0:
        raise InvalidInput(f"alpha is {spec.alpha!r}; it must lie strictly between 0 and 1 (e.g. 0.05)")
    if isinstance(spec.min_samples, bool) or not isinstance(spec.min_samples, int):
        raise InvalidInput("min samples must be a whole number")
    if not 1 <= spec.min_samples <= MAX_MIN_SAMPLES:
        raise InvalidInput(f"min samples is {spec.min_samples}; it must be 1 to {MAX_MIN_SAMPLES}")
    min_improvement = _finite(spec.min_improvement, "min improvement")
    if min_improvement < 0:
        raise InvalidInput(f"min improvement is {min_improvement:g}; it must not be negative")
    if len(spec.guardrails) > MAX_GUARDRAILS:
        raise InvalidInput(f"{len(spec.guardrails)} guardrails given; the limit is {MAX_GUARDRAILS}")
    guardrails: list[dict[str, Any]] = []
    for metric, allowed in spec.guardrails:
        if metric not in METRICS:
            raise InvalidInput(f"unknown guardrail metric {metric!r}; choose one of {', '.join(METRICS)}")
        allowed = _finite(allowed, f"the allowed degradation of guardrail {metric}")
        if allowed < 0:
            raise InvalidInput(f"guardrail {metric}: the allowed degradation {allowed:g} is negative")
        if any(g["metric"] == metric for g in guardrails):
            raise InvalidInput(f"guardrail {metric} is given twice")
        guardrails.append({"metric": metric, "max_degradation": allowed})
    plan = list(spec.plan)
    if len(plan) > MAX_PLAN_STEPS:
        raise InvalidInput(f"the plan has {len(plan)} steps; the limit is {MAX_PLAN_STEPS}")
    for i, step in enumerate(plan):
        if isinstance(step, bool) or not isinstance(step, int):
            raise InvalidInput(f"plan step {step!r} is not a whole percentage")
        if not 1 <= step <= 100:
            raise InvalidInput(f"plan step {step} is outside 1..100: a step is the challenger's percent of traffic")
        if i and step <= plan[i - 1]:
            raise InvalidInput(
                f"the plan {','.join(map(str, plan))} is not increasing: every step must give the "
                f"challenger more traffic than the one before ({step} follows {plan[i - 1]})"
            )
    hold = default_hold if spec.hold_seconds is None else _finite(spec.hold_seconds, "hold seconds")
    if not 0 <= hold <= MAX_HOLD_SECONDS:
        raise InvalidInput(f"hold is {hold:g} s; it must be 0 to {MAX_HOLD_SECONDS:g} s")
    label_source, label_delay = validate_label_source(spec)
    steps = [0, *plan] if spec.shadow else plan or [spec.traffic_percent]
    live = next((s for s in steps if s > 0), spec.traffic_percent)
    sequential_plan = plan_sequential(spec, alpha, min(live, 99)) if spec.sequential else None
    return {
        "deployment": spec.deployment,
        "challenger": f"{model}:{version}",
        "traffic_percent": spec.traffic_percent,
        "metric": spec.metric,
        "guardrails": guardrails,
        "min_samples": spec.min_samples,
        "alpha": alpha,
        "min_improvement": min_improvement,
        "sequential": bool(spec.sequential),
        "plan": plan,
        "hold_seconds": hold,
        "auto_promote": bool(spec.auto_promote),
        "shadow": bool(spec.shadow),
        "segment_rules": validate_segment_rules(list(spec.segment_rules)),
        "require_offline_win": bool(spec.require_offline_win),
        "steps": steps,
        "sequential_plan": sequential_plan,
        "label_source": label_source.value,
        "label_delay_seconds": label_delay,
    }


def validate_label_source(spec: ExperimentSpec) -> tuple[MetricSource, float]:
    """The label source and delay; a delay only with joined labels, which judge accuracy or MAE
    on live traffic (a shadow step is judged on paired live feedback)."""
    try:
        source = MetricSource(spec.label_source)
    except ValueError:
        raise InvalidInput(
            f"unknown label source {spec.label_source!r}; choose {' or '.join(m.value for m in MetricSource)}"
        ) from None
    delay = _finite(spec.label_delay_seconds, "label delay")
    if source == MetricSource.LIVE:
        if delay:
            raise InvalidInput("a label delay needs --labels joined (live feedback has no delay to wait for)")
        return source, 0.0
    if not 0 <= delay <= MAX_LABEL_DELAY_SECONDS:
        raise InvalidInput(f"the label delay is {delay:g} s; it must be 0 to {MAX_LABEL_DELAY_SECONDS:g} s (366 days)")
    if spec.metric not in JOINED_METRICS:
        raise InvalidInput(
            f"--labels joined judges a metric that labels decide ({' or '.join(JOINED_METRICS)}), "
            f"not {spec.metric}; drop --labels joined for {spec.metric}"
        )
    if spec.shadow:
        raise InvalidInput(
            "--labels joined cannot judge a shadow step (it compares paired live feedback); drop --shadow"
        )
    return source, delay


def check_label_task(config: dict[str, Any], task: str) -> None:
    """A joined experiment's metric fits the champion's task: accuracy a classifier's, MAE a
    regressor's (a regressor's accuracy is a share within the tolerance, which the log does not judge)."""
    if config.get("label_source") != MetricSource.JOINED:
        return
    wanted = ModelTask.CLASSIFIER if config["metric"] == "accuracy" else ModelTask.REGRESSOR
    if task != wanted:
        other = "mae" if wanted == ModelTask.CLASSIFIER else "accuracy"
        raise InvalidInput(
            f"--labels joined judges {config['metric']} of a {wanted}, and the champion is a {task}; "
            f"use --metric {other}"
        )


def plan_sequential(spec: ExperimentSpec, alpha: float, percent: int) -> dict[str, Any] | None:
    """The planned sequential test of the primary metric (None: no effect given, unplanned)."""
    mde = _finite(spec.min_detectable_effect, "minimum detectable effect")
    if mde == 0:
        return None
    power = _finite(spec.power, "power")
    if mde < 0 or not 0 < power < 1:
        raise InvalidInput("the minimum detectable effect must be > 0 and the power in (0, 1), e.g. 0.8")
    if spec.metric == "p95_latency":
        raise InvalidInput("a sequential plan needs accuracy, error_rate or mae as the metric")
    if spec.baseline is None:
        what = "the std of the absolute error" if spec.metric == "mae" else f"the champion's {spec.metric}"
        raise InvalidInput(f"planning for an effect of {mde:g} needs --baseline ({what})")
    baseline = _finite(spec.baseline, "baseline")
    share = percent / 100
    try:
        if spec.metric == "mae":
            planned = sequential_plan(baseline**2, baseline**2, mde, alpha, power, share)
        else:
            # plan for the harder direction: the variance is largest nearest 0.5
            toward = mde if baseline < 0.5 else -mde
            planned = sequential_plan_two_proportions(baseline, toward, alpha, power, share)
    except ValueError as exc:
        raise InvalidInput(f"cannot plan the sequential test: {exc}") from None
    return {
        "min_detectable_effect": mde,
        "baseline": baseline,
        "power": power,
        "planned_se": planned.design.planned_se,
        "n_champion": planned.n_control,
        "n_challenger": planned.n_treatment,
        "expected_power": planned.expected_power,
        "fixed_n_champion": planned.fixed_n_control,
        "fixed_n_challenger": planned.fixed_n_treatment,
    }


def sequential_design(config: dict[str, Any]) -> SequentialDesign | None:
    """The stored plan's design, for the test at every look."""
    planned = config.get("sequential_plan")
    if not config.get("sequential") or not planned:
        return None
    return SequentialDesign(float(config["alpha"]), float(planned["planned_se"]))


def validate_reason(text: str) -> str:
    """The operator's reason for a change, refused when too long to keep in the audit."""
    if len(text) > MAX_REASON:
        raise InvalidInput(f"the reason is {len(text)} characters; the limit is {MAX_REASON}")
    return text


# ---- steps -------------------------------------------------------------------------------------


def step_splits(champion: ModelVersionRow, challenger: ModelVersionRow, percent: int) -> list[NewSplit]:
    """The deployment's splits at a step giving the challenger `percent` (0: a shadow step)."""
    if percent == 0:
        return [NewSplit(champion, 100, ServingRole.CHAMPION), NewSplit(challenger, 0, ServingRole.SHADOW)]
    return [
        NewSplit(champion, 100 - percent, ServingRole.CHAMPION),
        NewSplit(challenger, percent, ServingRole.CHALLENGER),
    ]


def step_text(percent: int) -> str:
    return ServingRole.SHADOW if percent == 0 else f"{percent}%"
