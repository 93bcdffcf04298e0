"""Set a deployment's health policy: the action on sustained critical health and its thresholds.

The form opens on the policy in force; only what is changed is sent, so values the deployment
does not set keep following the configuration.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Input, Static

from core.durations import UNITS, parse_duration
from core.errors import InvalidInput
from core.vocabulary import MetricSource, PolicyAction, word_of
from protos import controlplane_pb2
from tui.screens.form import FormError, FormScreen, decimal, entry, field

#: field id -> (label, warning threshold, critical threshold)
PAIRS = {
    "error-rate": ("error rate", "error_rate_warning", "error_rate_critical"),
    "p95": ("p95 ms", "p95_latency_ms_warning", "p95_latency_ms_critical"),
    "accuracy": ("accuracy", "accuracy_warning", "accuracy_critical"),
    "psi": ("drift PSI", "psi_warning", "psi_critical"),
    "prediction-psi": ("prediction PSI", "prediction_psi_warning", "prediction_psi_critical"),
    "mae": ("MAE (0 off)", "mae_warning", "mae_critical"),
    "rmse": ("RMSE (0 off)", "rmse_warning", "rmse_critical"),
}
ACTIONS = [a.value for a in PolicyAction]
SOURCES = [s.value for s in MetricSource]
SWITCH = {"on": True, "off": False}


def delay_text(seconds: float) -> str:
    """A delay as it is typed back (`6h`, `90m`); blank for none."""
    if seconds <= 0:
        return ""
    for unit, size in sorted(UNITS.items(), key=lambda item: -item[1]):
        if seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def parse_delay(text: str) -> float:
    """Seconds of a typed label delay; blank or 0 is none."""
    text = text.strip()
    if text in ("", "0"):
        return 0.0
    try:
        return parse_duration(text)  # the control plane checks the longest it accepts
    except InvalidInput as exc:
        raise FormError(f"label delay: {exc}") from None


def parse_pair(text: str, label: str) -> tuple[float, float]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise FormError(f"{label}: write WARNING,CRITICAL, e.g. 0.01,0.05")
    low, high = (decimal(p, label, 0.0, 1e9) for p in parts)
    return low, high


def policy_request(
    deployment: str, current: controlplane_pb2.Policy, values: dict[str, str], reason: str
) -> controlplane_pb2.SetPolicyRequest | None:
    """What differs from `current`, as a SetPolicyRequest; None when nothing changed."""
    request = controlplane_pb2.SetPolicyRequest(deployment=deployment, reason=reason)
    action = values["action"].strip()
    if action not in ACTIONS:
        raise FormError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    if action != word_of(PolicyAction, current.action):
        request.action = PolicyAction(action).to_wire()
    after = decimal(values["after"], "after (seconds)", 1.0, 7 * 86400.0, current.action_after_seconds)
    if after != current.action_after_seconds:
        request.action_after_seconds = after
    for key, (label, warning, critical) in PAIRS.items():
        for name, value in zip((warning, critical), parse_pair(values[key], label), strict=True):
            if value != getattr(current.thresholds, name):
                setattr(request.thresholds, name, value)
    fallback = values.get("fallback", "on" if current.fallback else "off").strip().lower()
    if fallback not in SWITCH:
        raise FormError(f"fallback {fallback!r}: write on or off")
    if SWITCH[fallback] != current.fallback:
        request.fallback = SWITCH[fallback]
    in_force = current.accuracy_source or MetricSource.LIVE.value
    source = values.get("source", in_force).strip().lower()
    if source not in SOURCES:
        raise FormError(f"accuracy from {source!r}: write {' or '.join(SOURCES)}")
    if source != in_force:
        request.accuracy_source = source
    delay = parse_delay(values.get("delay", delay_text(current.label_delay_seconds)))
    if delay != current.label_delay_seconds:
        request.label_delay_seconds = delay
    changed = (
        request.HasField("action_after_seconds")
        or request.action
        or request.thresholds.ListFields()
        or request.HasField("fallback")
        or request.accuracy_source
        or request.HasField("label_delay_seconds")
    )
    return request if changed else None


class PolicyForm(FormScreen[controlplane_pb2.SetPolicyRequest]):
    SUBMIT_LABEL = "Set policy"

    def __init__(self, deployment: str, current: controlplane_pb2.Policy) -> None:
        super().__init__()
        self.deployment = deployment
        self.current = current

    def title_text(self) -> str:
        return f"Health policy of {self.deployment}"

    def fields(self) -> Iterable[Widget]:
        current = self.current
        yield Static(
            "Pairs are WARNING,CRITICAL. Accuracy from live feedback or joined labels.",
            classes="dialog-text",
            markup=False,
        )
        yield field(
            "action",
            entry(word_of(PolicyAction, current.action), id="action", suggester=SuggestFromList(ACTIONS)),
        )
        yield field("after (s)", entry(f"{current.action_after_seconds:g}", type="number", id="after"))
        for key, (label, warning, critical) in PAIRS.items():
            value = f"{getattr(current.thresholds, warning):g},{getattr(current.thresholds, critical):g}"
            yield field(label, entry(value, id=key))
        fallback = "on" if current.fallback else "off"
        yield field("fallback", entry(fallback, id="fallback", suggester=SuggestFromList(list(SWITCH))))
        source = current.accuracy_source or MetricSource.LIVE.value
        yield field("accuracy from", entry(source, id="source", suggester=SuggestFromList(SOURCES)))
        yield field("label delay", entry(delay_text(current.label_delay_seconds), placeholder="e.g. 6h", id="delay"))
        yield field("reason", entry(placeholder="optional, for the audit log", id="reason"))

    def on_mount(self) -> None:
        self.query_one("#action", Input).focus()

    def result(self) -> controlplane_pb2.SetPolicyRequest:
        keys = ("action", "after", "fallback", "source", "delay", *PAIRS)
        values = {key: self.query_one(f"#{key}", Input).value for key in keys}
        request = policy_request(self.deployment, self.current, values, self.query_one("#reason", Input).value.strip())
        if request is None:
            raise FormError("nothing changed")
        return request
