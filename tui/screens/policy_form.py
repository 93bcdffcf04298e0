"""Set a deployment's health policy: the action on sustained critical health and its thresholds.

The form opens on the policy in force; only what is changed is sent, so values the deployment
does not set keep following the configuration.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Input, Static

from core.vocabulary import PolicyAction, word_of
from protos import controlplane_pb2
from tui.screens.form import FormError, FormScreen, decimal, entry, field

#: field id -> (label, warning threshold, critical threshold)
PAIRS = {
    "error-rate": ("error rate", "error_rate_warning", "error_rate_critical"),
    "p95": ("p95 ms", "p95_latency_ms_warning", "p95_latency_ms_critical"),
    "accuracy": ("accuracy", "accuracy_warning", "accuracy_critical"),
    "psi": ("drift PSI", "psi_warning", "psi_critical"),
}
ACTIONS = [a.value for a in PolicyAction]
SWITCH = {"on": True, "off": False}


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
    changed = (
        request.HasField("action_after_seconds")
        or request.action
        or request.thresholds.ListFields()
        or request.HasField("fallback")
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
            "On sustained critical health: none, alert (nothing moves), pause (the experiment), "
            "rollback_challenger, rollback_champion. Thresholds are WARNING,CRITICAL. Fallback on: "
            "a challenger's failed request is answered by the champion.",
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
        yield field("reason", entry(placeholder="optional, for the audit log", id="reason"))

    def on_mount(self) -> None:
        self.query_one("#action", Input).focus()

    def result(self) -> controlplane_pb2.SetPolicyRequest:
        values = {key: self.query_one(f"#{key}", Input).value for key in ("action", "after", "fallback", *PAIRS)}
        request = policy_request(self.deployment, self.current, values, self.query_one("#reason", Input).value.strip())
        if request is None:
            raise FormError("nothing changed")
        return request
