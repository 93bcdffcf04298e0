"""The control plane's SQL schema (SQLAlchemy 2.0 typed ORM).

Relationships are `lazy="raise"`: every query is explicit, none hides in attribute access.
Rows never leave a session: the store turns them into plain domain objects first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.names import NAME_LENGTH

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    task: Mapped[str] = mapped_column(String(32))
    inputs: Mapped[list[Any]] = mapped_column(JSON)
    outputs: Mapped[list[Any]] = mapped_column(JSON)
    feature_names: Mapped[list[Any]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    # Baseline bins per feature, computed once at registration (never refit on live data).
    baseline: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    baseline_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    offline_evaluation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(NAME_LENGTH))


class DeploymentRow(Base):
    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    # Bumped by every change; the optimistic-concurrency token and what agents ACK.
    generation: Mapped[int] = mapped_column(BigInteger, default=1)
    salt: Mapped[str] = mapped_column(String(64))
    #: share of requests its agents write to the prediction log (0: off), `sluice log set`
    log_sample_rate: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    previous_champion_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentPolicyRow(Base):
    """A deployment's health policy (what it sets; the rest is the configuration's) and the clock
    of its pending action. No row: the configuration's policy, no clock running."""

    __tablename__ = "deployment_policies"

    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True)
    #: threshold name -> value, and "action", "action_after_seconds": only what this deployment sets
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str] = mapped_column(String(NAME_LENGTH), default="", server_default="")
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: critical on the versions' own figures since, and at which generation that began (a change of
    #: the deployment by anyone restarts the clock: the policy never fights an operator)
    critical_since: Mapped[datetime | None] = mapped_column(nullable=True)
    critical_generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: consecutive evaluations not critical while the clock runs; it stops after alerts.resolve_after
    calm_rounds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_action: Mapped[str] = mapped_column(Text, default="", server_default="")
    last_action_at: Mapped[datetime | None] = mapped_column(nullable=True)


class TrafficSplitRow(Base):
    __tablename__ = "traffic_splits"
    __table_args__ = (UniqueConstraint("deployment_id", "version_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    weight: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # champion | challenger | shadow
    # Fixed position in the cumulative bucket ranges, so ramps only move keys one way.
    position: Mapped[int] = mapped_column(Integer, default=0)


class DeploymentHistoryRow(Base):
    __tablename__ = "deployment_history"
    __table_args__ = (UniqueConstraint("deployment_id", "generation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    generation: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(64))
    principal: Mapped[str] = mapped_column(String(NAME_LENGTH))
    reason: Mapped[str] = mapped_column(Text, default="")
    splits: Mapped[list[Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEventRow(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    principal: Mapped[str] = mapped_column(String(NAME_LENGTH))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(512), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ExperimentRow(Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    champion_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    challenger_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # running | paused | stopped | aborted | rolled_back | promoted | completed
    state: Mapped[str] = mapped_column(String(16), index=True)
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    current_percent: Mapped[int] = mapped_column(Integer, default=0)
    step_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the deployment generation that put the current step's weights in place (0: unknown)
    step_generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: when every connected agent had applied that generation: the step's hold counts from here
    step_live_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: when an operator paused it (None otherwise): resuming moves step_live_at on by the pause,
    #: so the hold continues where it stopped
    paused_at: Mapped[datetime | None] = mapped_column(nullable=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    salt: Mapped[str] = mapped_column(String(64))
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_by: Mapped[str] = mapped_column(String(NAME_LENGTH))


class AlertRow(Base):
    """An alert. With a `subject` (the metric, or the feature of a drift alert) its identity is the
    condition (deployment, kind, subject): `version_id` is then the version it was last seen on and
    changes with the champion. Without one, the version is part of the identity."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_open_key", "deployment", "version_id", "kind", "state"),
        Index("ix_alerts_condition", "deployment", "kind", "subject", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(String(NAME_LENGTH))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255), default="", server_default="")
    severity: Mapped[str] = mapped_column(String(16))  # warning | critical
    state: Mapped[str] = mapped_column(String(16))  # open | acknowledged | resolved
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Float, default=0.0)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    # Consecutive healthy evaluations seen while open; resolution needs several (hysteresis).
    healthy_streak: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AgentRow(Base):
    """A serving agent, bound to the credential that registered it (`owner_token`,
    `owner_certificate`; both "" when nothing binds it: authentication off, or a row from before
    revision 0007). Another credential may not connect under its id or its name."""

    __tablename__ = "agents"
    __table_args__ = (
        Index("ix_agents_name", "name"),
        Index("ix_agents_owner", "owner_token", "owner_certificate"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    #: the name of the token that registered it ("" without tokens)
    owner_token: Mapped[str] = mapped_column(String(NAME_LENGTH), default="", server_default="")
    #: the common name of its client certificate under mutual TLS ("" without one)
    owner_certificate: Mapped[str] = mapped_column(String(255), default="", server_default="")
    host: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(255))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))  # connected | lost | disconnected
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    connected_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_nack: Mapped[str] = mapped_column(Text, default="")


class AgentDeploymentRow(Base):
    """The generation of each deployment an agent has applied and ACKed."""

    __tablename__ = "agent_deployments"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    deployment: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    applied_generation: Mapped[int] = mapped_column(BigInteger)
    #: the generation the agent last refused (NACK) and has not applied since; 0 when none
    refused_generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: DeploymentSnapshot.digest of what it applied ("" from agents that send none)
    applied_digest: Mapped[str] = mapped_column(String(64), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MetricReceiptRow(Base):
    """(agent, seq) of every committed metric report: makes a replay a no-op."""

    __tablename__ = "metric_receipts"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    #: windows of the report refused on ingest, by reason (None: none); a replay's ack repeats it
    refused: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class AgentReportDropsRow(Base):
    """The dropped-report counter each agent last reported (it counts since the agent started):
    kept in SQL so a control-plane restart neither re-opens the overflow alert nor counts twice."""

    __tablename__ = "agent_report_drops"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dropped: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: prediction-log rows the agent dropped since it started (MetricReport.dropped_log_rows)
    dropped_log_rows: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LogSegmentRow(Base):
    """One prediction-log segment stored under the log dir: what readers may read (a file
    without its row is not part of the log), and what makes a resend a no-op."""

    __tablename__ = "log_segments"
    __table_args__ = (UniqueConstraint("agent_id", "segment_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    segment_id: Mapped[str] = mapped_column(String(64))
    deployment: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    date: Mapped[str] = mapped_column(String(10))
    rows: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    #: relative to the log dir
    path: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class MetricWindowRow(Base):
    """Aggregated metrics of one (deployment, version) over one window at one resolution."""

    __tablename__ = "metric_windows"
    __table_args__ = (Index("ix_metric_windows_lookup", "deployment", "resolution", "window_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(String(NAME_LENGTH))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    #: the agent that reported it (rollups keep it): experiments weigh the evidence per agent;
    #: "" for windows stored before agents were recorded
    agent_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    role: Mapped[str] = mapped_column(String(16))
    experiment: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    resolution: Mapped[str] = mapped_column(String(8))  # raw | minute | hour
    window_start: Mapped[datetime] = mapped_column()
    window_seconds: Mapped[float] = mapped_column(Float)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    n_labeled: Mapped[int] = mapped_column(BigInteger, default=0)
    n_correct: Mapped[int] = mapped_column(BigInteger, default=0)
    # Sketches, histograms, feedback moments, shadow pairs...: a mergeable summary.
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class ReservoirRow(Base):
    """A bounded sample of recent inputs per (deployment, version), for KS drift tests."""

    __tablename__ = "reservoirs"

    deployment: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    n_features: Mapped[int] = mapped_column(Integer)
    seen: Mapped[int] = mapped_column(BigInteger, default=0)
    sample: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RetrainingRunRow(Base):
    __tablename__ = "retraining_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed
    produced_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class LabelImportRow(Base):
    """One import of labels into the label store (docs/PREDICTION_LOG.md). The labels themselves
    are a Parquet file (`path`, relative to the labels directory; "" when the import stored no
    row); this row is written after the file is in place, so a recorded import's file exists and
    a file without a row is never read. The id makes a retry answer this summary."""

    __tablename__ = "label_imports"
    __table_args__ = (Index("ix_label_imports_deployment", "deployment", "created_at"),)

    #: the client's import id (`sluice labels import` derives it from the file), or
    #: "fb-AGENT-BATCH" for labels an agent forwarded from its Feedback RPC
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    deployment: Mapped[str] = mapped_column(String(NAME_LENGTH))
    principal: Mapped[str] = mapped_column(String(NAME_LENGTH))
    source: Mapped[str] = mapped_column(String(16))  # import | feedback (core.vocabulary.LabelSource)
    atomic: Mapped[bool] = mapped_column(default=False)
    #: also the received_at of every row in its file: a later import's label replaces this one's
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    replaced: Mapped[int] = mapped_column(BigInteger, default=0)
    unknown_ids: Mapped[int] = mapped_column(BigInteger, default=0)
    late: Mapped[int] = mapped_column(BigInteger, default=0)
    refused: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the first refusals, each naming its row
    refusals: Mapped[list[Any]] = mapped_column(JSON, default=list)
    path: Mapped[str] = mapped_column(String(512), default="")
    #: the size of that file in bytes (0 without one); NULL for an import recorded before
    #: revision 0012, until `sluice status` first reads the label store's disk use and fills it in
    bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
