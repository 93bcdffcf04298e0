"""One vocabulary for every process: the roles, states and health words Sluice uses.

Each enum's value is the word stored in SQL, printed by the CLI and written in JSON output; each
maps to and from its wire enum here and nowhere else (`to_wire` / `from_wire`). A wire value this
build does not know (a newer peer) reads as the enum's "unknown" member where it has one.
"""

from __future__ import annotations

import math
from enum import StrEnum

from protos import common_pb2, controlplane_pb2


class ServingRole(StrEnum):
    """What a version does in a deployment's traffic split."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"
    #: scores a copy of the request; never answers the caller
    SHADOW = "shadow"

    def to_wire(self) -> common_pb2.Role:
        return _ROLE_TO_WIRE[self]

    @classmethod
    def from_wire(cls, value: int) -> ServingRole:
        """Raises ValueError for ROLE_UNSPECIFIED or a value this build does not know."""
        try:
            return _ROLE_FROM_WIRE[value]
        except KeyError:
            raise ValueError(f"unknown serving role {value}") from None


_ROLE_TO_WIRE = {
    ServingRole.CHAMPION: common_pb2.ROLE_CHAMPION,
    ServingRole.CHALLENGER: common_pb2.ROLE_CHALLENGER,
    ServingRole.SHADOW: common_pb2.ROLE_SHADOW,
}
_ROLE_FROM_WIRE = {int(v): k for k, v in _ROLE_TO_WIRE.items()}


class ExperimentState(StrEnum):
    RUNNING = "running"
    #: a gate was inconclusive (or health went bad): waiting for a person
    PAUSED = "paused"
    #: stopped by an operator; the challenger is at 0%
    STOPPED = "stopped"
    ABORTED = "aborted"
    #: a gate failed
    ROLLED_BACK = "rolled_back"
    PROMOTED = "promoted"
    #: the last step passed without auto-promote
    COMPLETED = "completed"

    @property
    def active(self) -> bool:
        """Still owns the deployment's traffic split (running or paused)."""
        return self in ACTIVE_EXPERIMENT_STATES

    def to_wire(self) -> controlplane_pb2.ExperimentState:
        return _EXPERIMENT_TO_WIRE[self]

    @classmethod
    def from_wire(cls, value: int) -> ExperimentState:
        try:
            return _EXPERIMENT_FROM_WIRE[value]
        except KeyError:
            raise ValueError(f"unknown experiment state {value}") from None


ACTIVE_EXPERIMENT_STATES = frozenset({ExperimentState.RUNNING, ExperimentState.PAUSED})
ENDED_EXPERIMENT_STATES = frozenset(set(ExperimentState) - ACTIVE_EXPERIMENT_STATES)

_EXPERIMENT_TO_WIRE = {
    ExperimentState.RUNNING: controlplane_pb2.EXPERIMENT_RUNNING,
    ExperimentState.PAUSED: controlplane_pb2.EXPERIMENT_PAUSED,
    ExperimentState.STOPPED: controlplane_pb2.EXPERIMENT_STOPPED,
    ExperimentState.ABORTED: controlplane_pb2.EXPERIMENT_ABORTED,
    ExperimentState.ROLLED_BACK: controlplane_pb2.EXPERIMENT_ROLLED_BACK,
    ExperimentState.PROMOTED: controlplane_pb2.EXPERIMENT_PROMOTED,
    ExperimentState.COMPLETED: controlplane_pb2.EXPERIMENT_COMPLETED,
}
_EXPERIMENT_FROM_WIRE = {int(v): k for k, v in _EXPERIMENT_TO_WIRE.items()}


class AgentState(StrEnum):
    """What the control plane knows of an agent's connection. On the wire as this word
    (AgentInfo.state is a string)."""

    CONNECTED = "connected"
    #: went silent past the heartbeat timeout
    LOST = "lost"
    #: its stream ended without a Goodbye, or the control plane restarted since it last spoke
    DISCONNECTED = "disconnected"
    #: said Goodbye: shut down on purpose
    STOPPED = "stopped"


class RetrainingState(StrEnum):
    """Where a retraining run is. On the wire as this word (RetrainingRun.state is a string)."""

    RUNNING = "running"
    #: its command exited 0 and the model it wrote is registered
    SUCCEEDED = "succeeded"
    #: the command failed, timed out or was cancelled, or its model could not be registered
    FAILED = "failed"


class WindowRefusal(StrEnum):
    """Why the control plane refused one window of a metric report (the report itself is still
    committed and acknowledged; ReportAck.refused and `sluice_metric_windows_refused_total`
    count the windows by these words)."""

    #: the deployment or the version is not in the store
    UNKNOWN_VERSION = "unknown_version"
    #: (deployment, version) was not in a snapshot sent to this agent, now or within the grace
    UNKNOWN_ROUTE = "unknown_route"
    #: a role number this build does not know
    UNKNOWN_ROLE = "unknown_role"
    #: a window that cannot be read (more correct answers than labels, a sketch out of range...)
    MALFORMED = "malformed"
    #: counts no agent can serve in the window's length (limits.max_*_per_second_per_agent), or
    #: more errors or latencies than requests
    IMPLAUSIBLE = "implausible"


class Health(StrEnum):
    """A judgement of a metric, a version or a deployment; an alert's severity is WARNING or
    CRITICAL."""

    UNKNOWN = "unknown"  # not enough samples to judge
    HEALTHY = "healthy"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Worse is larger: max(..., key=rank) is the worst."""
        return _HEALTH_RANK[self]

    def to_wire(self) -> common_pb2.HealthState:
        return _HEALTH_TO_WIRE[self]

    @classmethod
    def from_wire(cls, value: int) -> Health:
        return _HEALTH_FROM_WIRE.get(value, Health.UNKNOWN)


#: what an alert's severity may be
ALERT_SEVERITIES = (Health.WARNING, Health.CRITICAL)

_HEALTH_RANK = {Health.UNKNOWN: 0, Health.HEALTHY: 1, Health.WARNING: 2, Health.CRITICAL: 3}
_HEALTH_TO_WIRE = {
    Health.UNKNOWN: common_pb2.HEALTH_UNKNOWN,
    Health.HEALTHY: common_pb2.HEALTH_HEALTHY,
    Health.WARNING: common_pb2.HEALTH_WARNING,
    Health.CRITICAL: common_pb2.HEALTH_CRITICAL,
}
_HEALTH_FROM_WIRE = {int(v): k for k, v in _HEALTH_TO_WIRE.items()}


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"

    def to_wire(self) -> controlplane_pb2.AlertState:
        return _ALERT_TO_WIRE[self]

    @classmethod
    def from_wire(cls, value: int) -> AlertState:
        try:
            return _ALERT_FROM_WIRE[value]
        except KeyError:
            raise ValueError(f"unknown alert state {value}") from None


#: not resolved yet: one per key at most
ACTIVE_ALERT_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED)

_ALERT_TO_WIRE = {
    AlertState.OPEN: controlplane_pb2.ALERT_OPEN,
    AlertState.ACKNOWLEDGED: controlplane_pb2.ALERT_ACKNOWLEDGED,
    AlertState.RESOLVED: controlplane_pb2.ALERT_RESOLVED,
}
_ALERT_FROM_WIRE = {int(v): k for k, v in _ALERT_TO_WIRE.items()}


class PolicyAction(StrEnum):
    """What a deployment's health policy does once its health has stayed critical long enough."""

    NONE = "none"
    ALERT = "alert"
    PAUSE = "pause"
    ROLLBACK_CHALLENGER = "rollback_challenger"
    ROLLBACK_CHAMPION = "rollback_champion"

    def to_wire(self) -> controlplane_pb2.PolicyAction:
        return _POLICY_TO_WIRE[self]

    @classmethod
    def from_wire(cls, value: int) -> PolicyAction:
        try:
            return _POLICY_FROM_WIRE[value]
        except KeyError:
            raise ValueError(f"unknown policy action {value}") from None


_POLICY_TO_WIRE = {
    PolicyAction.NONE: controlplane_pb2.POLICY_NONE,
    PolicyAction.ALERT: controlplane_pb2.POLICY_ALERT,
    PolicyAction.PAUSE: controlplane_pb2.POLICY_PAUSE,
    PolicyAction.ROLLBACK_CHALLENGER: controlplane_pb2.POLICY_ROLLBACK_CHALLENGER,
    PolicyAction.ROLLBACK_CHAMPION: controlplane_pb2.POLICY_ROLLBACK_CHAMPION,
}
_POLICY_FROM_WIRE = {int(v): k for k, v in _POLICY_TO_WIRE.items()}


def word_of(
    vocabulary: type[ServingRole] | type[ExperimentState] | type[AlertState] | type[Health] | type[PolicyAction],
    value: int,
    unknown: str = "?",
) -> str:
    """The word for a wire value, `unknown` for one this build does not know (or unspecified)."""
    try:
        return str(vocabulary.from_wire(value))
    except ValueError:
        return unknown


class ModelTask(StrEnum):
    """What kind of answer a model gives, read from its ONNX outputs at registration (the
    registry stores this word); it decides the kind of truth a label carries."""

    #: a class (and probabilities): its truth is the class, by name
    CLASSIFIER = "classifier"
    #: a number: its truth is a number
    REGRESSOR = "regressor"


class LabelSource(StrEnum):
    """Where an import of the label store came from (label_imports.source)."""

    #: SubmitLabels: `sluice labels import` or a script
    IMPORT = "import"
    #: an agent's Feedback RPC, forwarded over AgentHub
    FEEDBACK = "feedback"


class SegmentSource(StrEnum):
    """What an experiment's segment rule tests, from the prefix of its name (`--segment`).

    `country=de` (no prefix) tests the request attribute `country` when the request carries one,
    else the feature `country` of the request's rows; `attribute.country=de` only the attribute
    and `feature.country=de` only the feature. Batch rows carry no attributes, so for them an
    unprefixed rule is a feature rule."""

    #: no prefix: the request attribute if sent, else the feature
    EITHER = "either"
    #: `attribute.NAME`: only the request attribute
    ATTRIBUTE = "attribute"
    #: `feature.NAME`: only the feature (the model input of that name, one column)
    FEATURE = "feature"

    @classmethod
    def of_name(cls, name: str) -> tuple[SegmentSource, str]:
        """A rule's name as (source, the attribute or feature name)."""
        for source in (cls.FEATURE, cls.ATTRIBUTE):
            prefix = f"{source.value}."
            if name.startswith(prefix):
                return source, name[len(prefix) :]
        return cls.EITHER, name


def segment_text(rule: common_pb2.SegmentRule) -> str:
    """A rule as `--segment` takes it: 'feature.country=de,fr' or 'age=18..30' (the CLI and the
    TUI show it so)."""
    if rule.has_range:
        return f"{rule.attribute}={rule.min:g}..{rule.max:g}"
    return f"{rule.attribute}={','.join(rule.values)}"


def segment_number(text: str) -> float | None:
    """A segment rule's value as a number, for rules on numeric and bool features: `9`, `2.5`,
    `true`/`false` (1/0); None when it is not a number."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return 1.0 if lowered == "true" else 0.0
    try:
        number = float(lowered)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class MetricSource(StrEnum):
    """Where the figures that judge accuracy or MAE come from (an experiment's `--labels`, a
    health policy's `accuracy_source`)."""

    #: the agents' windows: labels joined by the agent that served the prediction (Feedback)
    LIVE = "live"
    #: the prediction log joined with the label store, judging only predictions older than the
    #: declared label delay
    JOINED = "joined"
