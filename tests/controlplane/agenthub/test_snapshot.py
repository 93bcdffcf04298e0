"""The deployment snapshot an agent serves, built from a DeploymentInfo without a database (pure):
what each field carries (docs/ARCHITECTURE.md, protos/agent.proto) and what its digest covers."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime

from controlplane.agenthub.snapshot import deployment_snapshot, digest_of, snapshot_of
from controlplane.domain import DeploymentInfo, SplitInfo, VersionInfo
from core.vocabulary import ServingRole
from protos import agent_pb2, common_pb2

T = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG_TOLERANCE = 0.02


def version(name: str) -> VersionInfo:
    return VersionInfo(
        id=hash(name) % 1000,
        model="m",
        version=name,
        sha256=hashlib.sha256(name.encode()).hexdigest(),
        size_bytes=10,
        task="classification",
        inputs=[],
        outputs=[],
        feature_names=[],
        description="",
        baseline=None,
        baseline_sha256=None,
        offline_evaluation=None,
        created_at=T,
        created_by="alice",
    )


def info(**changes: object) -> DeploymentInfo:
    base = DeploymentInfo(
        id=1,
        name="web",
        generation=7,
        salt="deployment-salt",
        splits=[
            SplitInfo(version("v2"), 10, ServingRole.CHALLENGER, 0),  # newest position first
            SplitInfo(version("v1"), 90, ServingRole.CHAMPION, 1),
        ],
        previous_champion=None,
        created_at=T,
        updated_at=T,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def without_digest(snapshot: agent_pb2.DeploymentSnapshot) -> bytes:
    copy = agent_pb2.DeploymentSnapshot()
    copy.CopyFrom(snapshot)
    copy.ClearField("digest")
    return copy.SerializeToString(deterministic=True)


def test_routes_keep_the_deployments_order_with_their_weights_and_roles() -> None:
    snap = deployment_snapshot(info(), CONFIG_TOLERANCE)
    assert [(r.version.version, r.weight, r.role) for r in snap.routes] == [
        ("v2", 10, common_pb2.ROLE_CHALLENGER),
        ("v1", 90, common_pb2.ROLE_CHAMPION),
    ]
    assert snap.routes[1].sha256 == version("v1").sha256 and snap.routes[1].task == "classification"
    assert (snap.name, snap.generation) == ("web", 7)


def test_an_experiments_salt_decides_the_buckets_while_it_runs() -> None:
    assert deployment_snapshot(info(), CONFIG_TOLERANCE).salt == "deployment-salt"
    running = deployment_snapshot(info(routing_salt="experiment-salt", experiment="e1"), CONFIG_TOLERANCE)
    assert (running.salt, running.experiment) == ("experiment-salt", "e1")


def test_the_policys_tolerance_else_the_configurations() -> None:
    assert deployment_snapshot(info(), CONFIG_TOLERANCE).tolerance == CONFIG_TOLERANCE
    assert deployment_snapshot(info(tolerance=0.25), CONFIG_TOLERANCE).tolerance == 0.25
    assert deployment_snapshot(info(tolerance=0.0), CONFIG_TOLERANCE).tolerance == 0.0  # 0 is a tolerance
    assert deployment_snapshot(info(fallback=True), CONFIG_TOLERANCE).fallback


def test_the_log_sample_rate_is_sent_only_when_it_is_not_the_default() -> None:
    # Unset means 1.0 to the agent; a deployment that keeps 1.0 keeps the digest it had before
    # the prediction log existed (no agent looks out of sync after an upgrade).
    default = deployment_snapshot(info(), CONFIG_TOLERANCE)
    assert not default.HasField("log_sample_rate")
    for rate in (0.0, 0.25):  # 0 (logging off) must reach the agent as 0, not as "unset"
        snap = deployment_snapshot(info(log_sample_rate=rate), CONFIG_TOLERANCE)
        assert snap.HasField("log_sample_rate") and snap.log_sample_rate == rate


def test_the_digest_covers_everything_the_agent_serves() -> None:
    snap = deployment_snapshot(info(), CONFIG_TOLERANCE)
    assert snap.digest == hashlib.sha256(without_digest(snap)).hexdigest()
    assert digest_of(info(), CONFIG_TOLERANCE) == snap.digest
    changed = [
        info(generation=8),
        info(log_sample_rate=0.5),
        info(fallback=True),
        info(tolerance=0.3),
        info(routing_salt="x"),
        info(splits=[SplitInfo(version("v1"), 100, ServingRole.CHAMPION, 0)]),
    ]
    digests = {digest_of(i, CONFIG_TOLERANCE) for i in changed}
    assert len(digests) == len(changed) and snap.digest not in digests


def test_a_deployment_without_versions_is_left_out() -> None:
    empty = info(name="empty", splits=[])
    assert digest_of(empty, CONFIG_TOLERANCE) == ""
    snapshot = snapshot_of([info(), empty], 42, CONFIG_TOLERANCE)
    assert snapshot.snapshot_id == 42 and [d.name for d in snapshot.deployments] == ["web"]
