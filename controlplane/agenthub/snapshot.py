"""The full desired state an agent serves, built from the committed deployments."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from controlplane import convert, deployment_reads
from controlplane.context import Context
from controlplane.domain import DeploymentInfo
from core.vocabulary import ServingRole
from protos import agent_pb2


def deployment_snapshot(info: DeploymentInfo, tolerance: float) -> agent_pb2.DeploymentSnapshot:
    """`tolerance`: the configuration's `health.tolerance`, for a deployment whose policy sets none."""
    # Routes keep DeploymentInfo's order (newest position first): that is the routing order of
    # the cumulative bucket ranges, so ramping the newest version only moves keys toward it.
    routes = [
        agent_pb2.Route(
            version=convert.ref(s.version.model, s.version.version),
            sha256=s.version.sha256,
            weight=s.weight,
            role=ServingRole(s.role).to_wire(),
            baseline=convert.baseline(s.version.baseline),
            task=s.version.task,
        )
        for s in info.splits
    ]
    snapshot = agent_pb2.DeploymentSnapshot(
        name=info.name,
        generation=info.generation,
        salt=info.routing_salt or info.salt,
        routes=routes,
        experiment=info.experiment,
        segment_rules=convert.segment_rules(info.segment_rules),
        fallback=info.fallback,
        tolerance=info.tolerance if info.tolerance is not None else tolerance,
    )
    if info.log_sample_rate != 1.0:  # unset means 1.0: the digests of deployments that keep it stay as they were
        snapshot.log_sample_rate = info.log_sample_rate
    snapshot.digest = hashlib.sha256(snapshot.SerializeToString(deterministic=True)).hexdigest()
    return snapshot


def digest_of(info: DeploymentInfo, tolerance: float) -> str:
    """The identity of what a deployment's agents should serve now (DeploymentSnapshot.digest)."""
    return deployment_snapshot(info, tolerance).digest if info.splits else ""


def snapshot_of(infos: Iterable[DeploymentInfo], snapshot_id: int, tolerance: float) -> agent_pb2.Snapshot:
    return agent_pb2.Snapshot(
        snapshot_id=snapshot_id,
        deployments=[deployment_snapshot(i, tolerance) for i in infos if i.splits],
    )


def build_snapshot(ctx: Context, snapshot_id: int) -> agent_pb2.Snapshot:
    """Every agent serves every deployment."""
    return snapshot_of(deployment_reads.list_deployments(ctx), snapshot_id, ctx.config.health.tolerance)
