"""The matrix as a whole: every RPC of every service has a case, and its database check is not blind."""

from __future__ import annotations

import pytest

from core.client import SluiceClient
from tests.security.bad_input import (
    test_agenthub,
    test_deployments,
    test_experiments,
    test_inference,
    test_labels,
    test_monitoring,
    test_oip,
    test_registry,
    test_trail,
)
from tests.security.bad_input.support import SERVICES, Env

pytestmark = pytest.mark.xdist_group("bad-input")

CASES = [
    *test_registry.CASES,
    *test_deployments.CASES,
    *test_experiments.CASES,
    *test_monitoring.CASES,
    *test_trail.CASES,
    *test_labels.CASES,
    *test_agenthub.CASES,
    *test_inference.CASES,
    *test_oip.CASES,
]


def test_the_matrix_covers_every_rpc() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    for target, service in SERVICES.items():
        covered = {c.method for c in CASES if c.target == target}
        missing = {m.name for m in service.methods} - covered
        assert not missing, f"{service.full_name}: no bad-input case for {sorted(missing)}"


def test_the_snapshot_sees_a_change(env: Env) -> None:
    """The comparison the matrix relies on is not blind: a real mutation shows up (audit included)."""
    before = env.cp_db.take()
    with SluiceClient(env.cp.address, token="") as client:
        client.deploy("snapshot-check", "cancer:v1")
    after = env.cp_db.take()
    changed = {table for table in after if after[table] != before.get(table)}
    assert {"deployments", "traffic_splits", "deployment_history", "audit_events"} <= changed
