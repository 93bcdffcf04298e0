"""Domain objects -> protobuf messages (and the few reverse parsings servicers need)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.domain import AuditEntry, DeploymentInfo, HistoryEntry, VersionInfo
from core.errors import InvalidInput
from core.names import validate_name
from core.vocabulary import AlertState, ExperimentState, Health, ServingRole
from protos import common_pb2, controlplane_pb2

_Word = TypeVar("_Word", ServingRole, ExperimentState, Health, AlertState)


def wire_or(vocabulary: type[_Word], word: str, default: int) -> Any:
    """The wire value of a stored word (the message field's enum type); `default` for a word this
    build does not know."""
    try:
        return int(vocabulary(word).to_wire())
    except ValueError:
        return default


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def ref(model: str, version: str) -> common_pb2.VersionRef:
    return common_pb2.VersionRef(model=model, version=version)


def parse_ref(message: common_pb2.VersionRef, what: str = "version") -> tuple[str, str]:
    if not message.model and not message.version:
        raise InvalidInput(f"{what} is required (MODEL:VERSION)")
    return validate_name("model", message.model), validate_name("version", message.version)


def tensor_specs(specs: list[dict[str, Any]]) -> list[common_pb2.TensorSpec]:
    return [common_pb2.TensorSpec(name=s["name"], dtype=s["dtype"], shape=s["shape"]) for s in specs]


def baseline(data: dict[str, Any] | None) -> common_pb2.Baseline | None:
    if not data:
        return None
    return common_pb2.Baseline(
        n_rows=data.get("n_rows", 0),
        sample_sha256=data.get("sample_sha256", ""),
        features=[
            common_pb2.FeatureBins(
                index=f["index"],
                name=f["name"],
                inner_edges=f["inner_edges"],
                counts=f["counts"],
                min=f["min"],
                max=f["max"],
                missing=f.get("missing", 0),
            )
            for f in data.get("features", [])
        ],
        prediction_counts=data.get("prediction_counts", []),
        categories=[
            common_pb2.CategoryBins(
                index=c["index"],
                name=c["name"],
                categories=c["categories"],
                counts=c["counts"],
                missing=c.get("missing", 0),
                known=c.get("known", []),
                known_complete=c.get("known_complete", False),
            )
            for c in data.get("categories", [])
        ],
        prediction_edges=data.get("prediction_edges", []),
    )


def offline_evaluation(data: dict[str, Any] | None) -> common_pb2.OfflineEvaluation | None:
    if not data:
        return None
    message = common_pb2.OfflineEvaluation()
    for key, value in data.items():
        if key in ("champion", "challenger"):
            model, _, version = value.partition(":")
            getattr(message, key).CopyFrom(ref(model, version))
        elif key == "evaluated_at":
            message.evaluated_at.FromDatetime(datetime.fromisoformat(value))
        elif hasattr(message, key):
            setattr(message, key, value)
    return message


def version(info: VersionInfo) -> common_pb2.ModelVersion:
    return common_pb2.ModelVersion(
        ref=ref(info.model, info.version),
        sha256=info.sha256,
        size_bytes=info.size_bytes,
        inputs=tensor_specs(info.inputs),
        outputs=tensor_specs(info.outputs),
        task=info.task,
        description=info.description,
        created_at=timestamp(info.created_at),
        created_by=info.created_by,
        baseline=baseline(info.baseline),
        offline_evaluation=offline_evaluation(info.offline_evaluation),
    )


def segment_rules(rules: list[dict[str, Any]]) -> list[common_pb2.SegmentRule]:
    return [common_pb2.SegmentRule(**rule) for rule in rules]


def deployment(info: DeploymentInfo) -> controlplane_pb2.Deployment:
    previous = info.previous_champion
    return controlplane_pb2.Deployment(
        name=info.name,
        generation=info.generation,
        splits=[
            common_pb2.TrafficSplit(
                version=ref(s.version.model, s.version.version),
                weight=s.weight,
                role=ServingRole(s.role).to_wire(),
                sha256=s.version.sha256,
            )
            for s in info.splits
        ],
        salt=info.salt,
        experiment=info.experiment,
        ended_experiment=info.ended_experiment,
        previous_champion=ref(previous.model, previous.version) if previous else None,
        created_at=timestamp(info.created_at),
        updated_at=timestamp(info.updated_at),
        segment_rules=segment_rules(info.segment_rules),
        log_sample_rate=info.log_sample_rate,
    )


def history_entry(entry: HistoryEntry) -> controlplane_pb2.HistoryEntry:
    splits = []
    for s in entry.splits:
        model, _, ver = s["version"].partition(":")
        splits.append(
            common_pb2.TrafficSplit(version=ref(model, ver), weight=s["weight"], role=ServingRole(s["role"]).to_wire())
        )
    return controlplane_pb2.HistoryEntry(
        id=entry.id,
        deployment=entry.deployment,
        generation=entry.generation,
        action=entry.action,
        principal=entry.principal,
        reason=entry.reason,
        splits=splits,
        at=timestamp(entry.at),
    )


def audit_event(entry: AuditEntry) -> controlplane_pb2.AuditEvent:
    return controlplane_pb2.AuditEvent(
        id=entry.id,
        at=timestamp(entry.at),
        principal=entry.principal,
        action=entry.action,
        target=entry.target,
        details_json=json.dumps(entry.details, sort_keys=True, default=str),
    )
