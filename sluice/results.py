"""What the facade returns: frozen dataclasses built from the wire messages, with the
vocabulary's enums for roles, states and health and datetimes in UTC (None when unset)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from core.vocabulary import AgentState, AlertState, ExperimentState, Health, ServingRole
from protos import common_pb2, controlplane_pb2


def _ref(ref: common_pb2.VersionRef) -> str:
    return f"{ref.model}:{ref.version}" if ref.model else ""


def _time(ts: Timestamp) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if ts.seconds or ts.nanos else None


@dataclass(frozen=True)
class Version:
    ref: str  # "model:version"
    task: str  # "classifier" or "regressor"
    sha256: str
    size_bytes: int
    inputs: tuple[str, ...]
    description: str
    created_at: datetime | None
    created_by: str

    @classmethod
    def from_wire(cls, m: common_pb2.ModelVersion) -> Version:
        return cls(
            ref=_ref(m.ref),
            task=m.task,
            sha256=m.sha256,
            size_bytes=m.size_bytes,
            inputs=tuple(i.name for i in m.inputs),
            description=m.description,
            created_at=_time(m.created_at),
            created_by=m.created_by,
        )


@dataclass(frozen=True)
class Split:
    version: str
    percent: int
    role: ServingRole


@dataclass(frozen=True)
class Deployment:
    name: str
    generation: int
    splits: tuple[Split, ...]
    experiment: str  # the running experiment, "" when none
    previous_champion: str
    #: in the answer to deploy/set_traffic/rollback: the experiment that change ended, else ""
    ended_experiment: str

    @property
    def champion(self) -> str:
        return next((s.version for s in self.splits if s.role is ServingRole.CHAMPION), "")

    @classmethod
    def from_wire(cls, d: controlplane_pb2.Deployment) -> Deployment:
        return cls(
            name=d.name,
            generation=d.generation,
            splits=tuple(Split(_ref(s.version), s.weight, ServingRole.from_wire(s.role)) for s in d.splits),
            experiment=d.experiment,
            previous_champion=_ref(d.previous_champion),
            ended_experiment=d.ended_experiment,
        )


@dataclass(frozen=True)
class Sync:
    """Do the connected agents serve a deployment's generation?"""

    in_sync: bool
    generation: int
    synced_agents: tuple[str, ...]
    lagging_agents: tuple[str, ...]
    refused_agents: tuple[str, ...]

    @classmethod
    def from_wire(cls, r: controlplane_pb2.WaitForSyncResponse) -> Sync:
        return cls(
            r.in_sync, r.generation, tuple(r.synced_agents), tuple(r.lagging_agents), tuple(r.refused_agents)
        )


@dataclass(frozen=True)
class Experiment:
    name: str
    deployment: str
    champion: str
    challenger: str
    state: ExperimentState
    percent: int  # the challenger's share now
    step_index: int
    plan: tuple[int, ...]
    metric: str
    status_reason: str
    #: challenger_wins | champion_holds | no_significant_difference | not_enough_data | srm_detected
    decision: str
    p_value: float
    difference: float
    difference_interval: tuple[float, float]

    @classmethod
    def from_wire(cls, e: controlplane_pb2.Experiment) -> Experiment:
        a = e.analysis
        return cls(
            name=e.name,
            deployment=e.config.deployment,
            champion=_ref(e.champion),
            challenger=_ref(e.config.challenger),
            state=ExperimentState.from_wire(e.state),
            percent=e.current_percent,
            step_index=e.step_index,
            plan=tuple(e.config.plan),
            metric=e.config.metric,
            status_reason=e.status_reason,
            decision=a.decision,
            p_value=a.p_value,
            difference=a.difference,
            difference_interval=(a.difference_ci_low, a.difference_ci_high),
        )


@dataclass(frozen=True)
class VersionHealth:
    version: str
    role: ServingRole
    percent: int
    health: Health
    reasons: tuple[str, ...]
    requests: int
    errors: int
    error_rate: float
    latency_p95_ms: float
    n_labeled: int
    accuracy: float
    mae: float


@dataclass(frozen=True)
class Status:
    deployment: Deployment
    health: Health
    versions: tuple[VersionHealth, ...]
    agents_in_sync: int
    agents_total: int
    open_alerts: int

    @classmethod
    def from_wire(cls, s: controlplane_pb2.DeploymentStatus) -> Status:
        versions = tuple(
            VersionHealth(
                version=_ref(v.version),
                role=ServingRole.from_wire(v.role),
                percent=v.weight,
                health=Health.from_wire(v.health),
                reasons=tuple(v.reasons),
                requests=v.requests,
                errors=v.errors,
                error_rate=v.error_rate,
                latency_p95_ms=v.latency_p95_ms,
                n_labeled=v.n_labeled,
                accuracy=v.accuracy,
                mae=v.mae,
            )
            for v in s.versions
        )
        return cls(
            Deployment.from_wire(s.deployment),
            Health.from_wire(s.health),
            versions,
            s.agents_in_sync,
            s.agents_total,
            s.open_alerts,
        )


@dataclass(frozen=True)
class Alert:
    id: int
    deployment: str
    version: str
    kind: str
    severity: Health
    state: AlertState
    message: str
    opened_at: datetime | None

    @classmethod
    def from_wire(cls, a: controlplane_pb2.Alert) -> Alert:
        return cls(
            a.id,
            a.deployment,
            _ref(a.version),
            a.kind,
            Health.from_wire(a.severity),
            AlertState.from_wire(a.state),
            a.message,
            _time(a.opened_at),
        )


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    address: str
    state: AgentState
    #: deployment -> the generation it serves
    applied: dict[str, int]
    last_seen: datetime | None

    @classmethod
    def from_wire(cls, a: controlplane_pb2.AgentInfo) -> Agent:
        return cls(
            a.id,
            a.name,
            a.address,
            AgentState(a.state),
            {d.deployment: d.applied_generation for d in a.deployments},
            _time(a.last_seen),
        )


@dataclass(frozen=True)
class Prediction:
    """One Predict call: every row was served by the same version."""

    request_id: str
    served_by: str
    role: ServingRole
    agent: str
    #: classifiers: one label per row (for string classes: the index in `classes`); regressors: None
    labels: np.ndarray | None
    #: classifiers: [rows, classes]; else None
    probabilities: np.ndarray | None
    #: regressors: one value per row, or [rows, outputs] for several outputs; classifiers: None
    values: np.ndarray | None
    #: classifiers with string classes: each row's class by name
    class_labels: tuple[str, ...] | None = None
    #: classifiers: the class of each probabilities column, as text (when the model names them)
    classes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class BatchPrediction:
    """One PredictBatch call, column by column: row i is entry i of each array. Rows may be
    served by different versions (routing is per row key)."""

    #: the versions that answered, "model:version"; `served_by` indexes into it
    versions: tuple[str, ...]
    served_by: np.ndarray  # int32 per row
    labels: np.ndarray | None  # int64 per row (classifiers)
    values: np.ndarray | None  # float64 per row (regressors), [rows, outputs] for several outputs
    probabilities: np.ndarray | None  # float32 [rows, classes] (classifiers)
    request_ids: tuple[str, ...]  # the ids the request sent, or none
    agent: str
    class_labels: tuple[str, ...] | None = None  # classifiers with string classes: each row's class

    def __len__(self) -> int:
        return int(self.served_by.shape[0])

    def version_of(self, row: int) -> str:
        return self.versions[int(self.served_by[row])]
