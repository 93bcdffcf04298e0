"""Plain domain objects: what the store hands out once its session is closed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.vocabulary import ServingRole

#: how long a WaitForSync (`traffic set --wait`) waits by default, and at the most
DEFAULT_WAIT_SECONDS = 30.0
MAX_WAIT_SECONDS = 600.0


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    AGENT = "agent"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    def can_read(self) -> bool:
        return self.role in (Role.VIEWER, Role.OPERATOR, Role.ADMIN)

    def can_mutate(self) -> bool:
        return self.role in (Role.OPERATOR, Role.ADMIN)


SYSTEM = Principal("system", Role.ADMIN)

#: one version of one deployment, as agents serve and report it: (deployment, model, version)
Route = tuple[str, str, str]


@dataclass(frozen=True)
class VersionInfo:
    id: int
    model: str
    version: str
    sha256: str
    size_bytes: int
    task: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    feature_names: list[str]
    description: str
    baseline: dict[str, Any] | None
    baseline_sha256: str | None
    offline_evaluation: dict[str, Any] | None
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"


@dataclass(frozen=True)
class SplitInfo:
    version: VersionInfo
    weight: int
    role: str  # a ServingRole (stored as its word)
    position: int = 0


@dataclass(frozen=True)
class DeploymentInfo:
    id: int
    name: str
    generation: int
    salt: str
    splits: list[SplitInfo]
    previous_champion: VersionInfo | None
    created_at: datetime
    updated_at: datetime
    experiment: str = ""
    # Sticky assignment uses the running experiment's salt, else the deployment's.
    routing_salt: str = ""
    segment_rules: list[dict[str, Any]] = field(default_factory=list)
    # In the answer to a change: the experiment that change ended ("" when none).
    ended_experiment: str = ""
    # Share of requests its agents write to the prediction log (0: off).
    log_sample_rate: float = 1.0
    # The policy's fallback: a challenger's model failure is answered by the champion.
    fallback: bool = False
    # The policy's regression tolerance (None: the configuration's `health.tolerance`).
    tolerance: float | None = None

    @property
    def champion(self) -> VersionInfo | None:
        for split in self.splits:
            if split.role == ServingRole.CHAMPION:
                return split.version
        return None


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    deployment: str
    generation: int
    action: str
    principal: str
    reason: str
    splits: list[dict[str, Any]]
    at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    principal: str
    action: str
    target: str
    details: dict[str, Any]
