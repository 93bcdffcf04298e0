"""The agent's serving core without gRPC: snapshot application, routing, batches, shadows.

Real onnxruntime sessions on real sklearn models, the real metrics recorder and a real cache dir.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from agent.cache import AgentCache
from agent.core import AgentCore
from agent.prometheus import AgentPrometheus
from agent.recorder import MetricsRecorder
from agent.serving import ApplyError, ServingTable, SnapshotApplier
from core.errors import SluiceError
from core.grpc_errors import status_of
from core.tensors import decode_tensor
from protos import agent_pb2, common_pb2, inference_pb2
from runtime.model import ModelRuntime
from tests.models import breast_cancer_rows, make_classifier_onnx, make_mixed_onnx, mixed_columns, mixed_rows

CHAMPION, CHALLENGER, SHADOW = common_pb2.ROLE_CHAMPION, common_pb2.ROLE_CHALLENGER, common_pb2.ROLE_SHADOW


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, bytes]]:
    models = tmp_path_factory.mktemp("core-models")
    out = {}
    for name, kind in (("v1", "logreg"), ("v2", "gbm")):
        data = make_classifier_onnx(models, kind).read_bytes()
        out[name] = (hashlib.sha256(data).hexdigest(), data)
    return out


def route(version: str, sha: str, weight: int, role: int) -> agent_pb2.Route:
    return agent_pb2.Route(
        version=common_pb2.VersionRef(model="m", version=version),
        sha256=sha,
        weight=weight,
        role=role,
        task="classifier",
    )


def snapshot(sid: int, *deployments: agent_pb2.DeploymentSnapshot) -> agent_pb2.Snapshot:
    return agent_pb2.Snapshot(snapshot_id=sid, deployments=list(deployments))


def apply(
    cache: AgentCache, snap: agent_pb2.Snapshot, current: ServingTable | None = None, fetch: object = None
) -> tuple[ServingTable, list[str]]:
    return asyncio.run(SnapshotApplier(cache).apply(snap, current, fetch))  # type: ignore[arg-type]


def core_for(table: ServingTable, snap: agent_pb2.Snapshot) -> tuple[AgentCore, MetricsRecorder]:
    recorder = MetricsRecorder()
    recorder.configure(snap)
    core = AgentCore("test-agent", "0123456789abcdef", recorder, AgentPrometheus())
    core.table = table
    return core, recorder


def test_apply_reuses_sessions_and_keeps_the_old_state_of_a_failing_deployment(
    tmp_path: Path, artifacts: dict[str, tuple[str, bytes]]
) -> None:
    cache = AgentCache(tmp_path)
    (sha1, data1), (sha2, _) = artifacts["v1"], artifacts["v2"]
    cache.put(data1, sha1)
    first = snapshot(
        1, agent_pb2.DeploymentSnapshot(name="web", generation=1, salt="s", routes=[route("v1", sha1, 100, CHAMPION)])
    )
    table, problems = apply(cache, first)
    assert problems == [] and table.generations() == {"web": 1}

    # v2 is not in the cache and there is no control plane to fetch it from: web keeps gen 1.
    second = snapshot(
        2,
        agent_pb2.DeploymentSnapshot(
            name="web",
            generation=2,
            salt="s",
            routes=[route("v2", sha2, 10, CHALLENGER), route("v1", sha1, 90, CHAMPION)],
        ),
        agent_pb2.DeploymentSnapshot(name="api", generation=5, salt="t", routes=[route("v1", sha1, 100, CHAMPION)]),
    )
    table2, problems = apply(cache, second, table)
    assert len(problems) == 1 and "deployment web generation 2" in problems[0] and "not in the cache" in problems[0]
    assert table2.generations() == {"web": 1, "api": 5}
    assert table2.deployments["web"] is table.deployments["web"]
    # The session of an unchanged artifact is shared, not reopened.
    assert table2.deployments["api"].routes[0].runtime is table.deployments["web"].routes[0].runtime
    assert table2.applied_snapshot().deployments[1].generation == 1  # what is served is what is saved

    async def fetch(sha: str) -> Path:
        raise ApplyError(f"sha256 mismatch: artifact {sha[:12]}")

    table3, problems = apply(cache, second, table2, fetch)
    assert "sha256 mismatch" in problems[0] and table3.generations() == {"web": 1, "api": 5}

    async def good_fetch(sha: str) -> Path:
        return cache.put(artifacts["v2"][1], sha)

    table4, problems = apply(cache, second, table3, good_fetch)
    assert problems == [] and table4.generations() == {"web": 2, "api": 5}
    assert [r.version for r in table4.deployments["web"].routes] == ["v2", "v1"]

    # A deployment gone from the snapshot is no longer served.
    table5, _ = apply(cache, snapshot(3, second.deployments[1]), table4)
    assert set(table5.deployments) == {"api"}


def test_a_changed_snapshot_under_the_same_generation_is_applied(
    tmp_path: Path, artifacts: dict[str, tuple[str, bytes]]
) -> None:
    """The control plane's `health.tolerance` reaches deployments without a policy of their own
    without a new generation: the agent serves what the snapshot says, not what it had."""
    cache = AgentCache(tmp_path)
    sha1, data1 = artifacts["v1"]
    cache.put(data1, sha1)
    web = agent_pb2.DeploymentSnapshot(
        name="web", generation=3, salt="s", routes=[route("v1", sha1, 100, CHAMPION)], tolerance=0.05
    )
    table, problems = apply(cache, snapshot(1, web))
    assert problems == []
    changed = agent_pb2.DeploymentSnapshot()
    changed.CopyFrom(web)
    changed.tolerance = 0.2
    table2, problems = apply(cache, snapshot(2, changed), table)
    assert problems == [] and table2.deployments["web"].snapshot.tolerance == 0.2
    assert table2.applied_snapshot().deployments[0].tolerance == 0.2  # and it is what a restart serves
    table3, _ = apply(cache, snapshot(3, changed), table2)
    assert table3.deployments["web"] is table2.deployments["web"]  # the same snapshot again: kept as it is


def filled_cache(tmp_path: Path, artifacts: dict[str, tuple[str, bytes]]) -> tuple[AgentCache, str, str]:
    """A cache holding every artifact; returns it with the sha256 of v1 and of v2."""
    cache = AgentCache(tmp_path)
    for sha, data in artifacts.values():
        cache.put(data, sha)
    return cache, artifacts["v1"][0], artifacts["v2"][0]


def test_predict_batch_matches_single_row_predictions(tmp_path: Path, artifacts: dict[str, tuple[str, bytes]]) -> None:
    cache, sha1, sha2 = filled_cache(tmp_path, artifacts)
    snap = snapshot(
        1,
        agent_pb2.DeploymentSnapshot(
            name="web",
            generation=3,
            salt="pepper",
            routes=[route("v2", sha2, 40, CHALLENGER), route("v1", sha1, 60, CHAMPION)],
        ),
    )
    table, _ = apply(cache, snap)
    core, _ = core_for(table, snap)
    rows = breast_cancer_rows(300, seed=1).astype(np.float32)
    keys = [f"key-{i}" for i in range(300)]
    dep = core.deployment("web")
    outcomes, positions, ids = core.predict_batch(dep, rows, keys, [f"id-{i}" for i in range(300)])
    assert ids[7] == "id-7"
    assert {o.route.version for o in outcomes} == {"v1", "v2"}
    labels = np.empty(300, dtype=np.int64)
    version = np.empty(300, dtype=object)
    for outcome, where in zip(outcomes, positions, strict=True):
        labels[where] = outcome.labels
        version[where] = outcome.route.version
    for i in range(0, 300, 7):
        single, _ = core.predict(dep, rows[i : i + 1], key=keys[i])
        assert single.route.version == version[i]
        assert single.labels is not None and int(single.labels[0]) == labels[i]
    runtimes = {r.version: ModelRuntime(cache.artifact_path(r.sha256)) for r in dep.routes}
    for outcome, where in zip(outcomes, positions, strict=True):
        expected = runtimes[outcome.route.version].predict(rows[where])
        assert np.array_equal(expected.labels, outcome.labels)
        assert np.allclose(expected.probabilities, outcome.probabilities)


def test_shadow_scores_a_copy_and_never_answers(tmp_path: Path, artifacts: dict[str, tuple[str, bytes]]) -> None:
    cache, sha1, sha2 = filled_cache(tmp_path, artifacts)
    snap = snapshot(
        1,
        agent_pb2.DeploymentSnapshot(
            name="web",
            generation=1,
            salt="s",
            experiment="shadow-test",
            routes=[route("v2", sha2, 0, SHADOW), route("v1", sha1, 100, CHAMPION)],
        ),
    )
    table, _ = apply(cache, snap)
    core, recorder = core_for(table, snap)
    dep = core.deployment("web")
    rows = breast_cancer_rows(50, seed=2).astype(np.float32)
    served = set()
    for i in range(50):
        outcome, request_id = core.predict(dep, rows[i : i + 1], key=f"k{i}", request_id=f"r{i}")
        served.add(outcome.route.version)
        assert request_id == f"r{i}"
    assert served == {"v1"}
    core.close(wait=True)  # let the copies finish
    report = recorder.flush()
    assert report is not None
    windows = {(w.version.version, w.role): w for w in report.windows}
    assert windows[("v1", CHAMPION)].requests == 50
    shadow = windows[("v2", SHADOW)]
    assert shadow.shadow.pairs == 50 and 0 < shadow.shadow.agreements <= 50
    # Feedback reaches both the champion's accuracy and the shadow pair.
    assert core.feedback("web", "r3", label=1, value=None)
    assert not core.feedback("web", "unknown-id", label=1, value=None)


def test_request_ids_the_agent_makes_cannot_be_guessed(tmp_path: Path, artifacts: dict[str, tuple[str, bytes]]) -> None:
    """Feedback is matched by request id: ids the agent makes are 128 random bits, so a caller who
    saw its own ids cannot name (and mislabel) the next caller's prediction."""
    cache, sha1, _ = filled_cache(tmp_path, artifacts)
    only = agent_pb2.DeploymentSnapshot(name="web", generation=1, salt="s", routes=[route("v1", sha1, 100, CHAMPION)])
    snap = snapshot(1, only)
    table, _ = apply(cache, snap)
    core, _ = core_for(table, snap)
    dep = core.deployment("web")
    row = breast_cancer_rows(1).astype(np.float32)
    ids = [core.predict(dep, row, key=f"k{i}")[1] for i in range(200)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == 200
    # No shared prefix or counter to extrapolate from: consecutive ids share no more leading hex
    # digits than chance (16 ** -4 per pair for four digits).
    assert sum(a[:4] == b[:4] for a, b in itertools.pairwise(ids)) <= 2
    assert not core.feedback("web", ids[-1][:-1] + format((int(ids[-1][-1], 16) + 1) % 16, "x"), label=1, value=None)
    assert core.feedback("web", ids[-1], label=1, value=None)
    core.close(wait=True)


def test_segment_rules_keep_other_requests_on_the_champion(
    tmp_path: Path, artifacts: dict[str, tuple[str, bytes]]
) -> None:
    cache, sha1, sha2 = filled_cache(tmp_path, artifacts)
    snap = snapshot(
        1,
        agent_pb2.DeploymentSnapshot(
            name="web",
            generation=1,
            salt="s",
            routes=[route("v2", sha2, 100, CHALLENGER), route("v1", sha1, 0, CHAMPION)],
            segment_rules=[common_pb2.SegmentRule(attribute="country", values=["fr"])],
        ),
    )
    table, _ = apply(cache, snap)
    core, _ = core_for(table, snap)
    dep = core.deployment("web")
    row = breast_cancer_rows(1).astype(np.float32)
    assert core.predict(dep, row, key="a", attributes={"country": "fr"})[0].route.version == "v2"
    assert core.predict(dep, row, key="a", attributes={"country": "de"})[0].route.version == "v1"
    assert core.predict(dep, row, key="a")[0].route.version == "v1"


def test_segment_rules_on_features_route_typed_tensor_rows_one_by_one(tmp_path: Path, models_dir: Path) -> None:
    """The mixed model's inputs as typed tensors: `feature.country=de` and `age=30..50` pick each
    batch row's version; a request attribute cannot override a `feature.` rule."""
    data = make_mixed_onnx(models_dir).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    cache = AgentCache(tmp_path)
    cache.put(data, sha)
    snap = snapshot(
        1,
        agent_pb2.DeploymentSnapshot(
            name="web",
            generation=1,
            salt="s",
            routes=[route("v2", sha, 100, CHALLENGER), route("v1", sha, 0, CHAMPION)],
            segment_rules=[
                common_pb2.SegmentRule(attribute="feature.country", values=["de"]),
                common_pb2.SegmentRule(attribute="age", has_range=True, min=30, max=50),
            ],
        ),
    )
    table, _ = apply(cache, snap)
    core, _ = core_for(table, snap)
    dep = core.deployment("web")
    rows = mixed_rows(60, seed=3)
    columns = mixed_columns(rows)
    country, age = rows[:, 4].tolist(), rows[:, 0].astype(np.float64)
    expected = ["v2" if c == "de" and 30 <= a <= 50 else "v1" for c, a in zip(country, age.tolist(), strict=True)]
    assert 5 <= expected.count("v2") <= 55
    outcomes, positions, _ = core.predict_batch(dep, columns, [], [])
    served = [""] * len(expected)
    for outcome, where in zip(outcomes, positions, strict=True):
        for i in where.tolist():
            served[i] = outcome.route.version
    assert served == expected
    # one row as typed tensors: in the segment, and a request attribute cannot move a feature rule
    inside = expected.index("v2")
    one = {name: column[[inside]] for name, column in columns.items()}
    assert core.predict(dep, one, key="k", attributes={"country": "us"})[0].route.version == "v2"
    outside = expected.index("v1")
    assert core.predict(dep, {n: c[[outside]] for n, c in columns.items()})[0].route.version == "v1"
    # a batch the model refuses is refused whole, before any version runs
    bad = dict(columns, age=columns["plan"])
    with pytest.raises(SluiceError) as info:
        core.predict_batch(dep, bad, [], [])
    assert status_of(info.value) == grpc.StatusCode.INVALID_ARGUMENT
    core.close(wait=True)


def test_lookups_and_inputs_are_refused_with_the_right_status(
    tmp_path: Path, artifacts: dict[str, tuple[str, bytes]]
) -> None:
    core = AgentCore("lonely", "0123456789abcdef", MetricsRecorder(), AgentPrometheus())
    with pytest.raises(SluiceError) as info:
        core.deployment("web")
    assert status_of(info.value) == grpc.StatusCode.UNAVAILABLE
    cache = AgentCache(tmp_path)
    sha, data = artifacts["v1"]
    cache.put(data, sha)
    snap = snapshot(
        1, agent_pb2.DeploymentSnapshot(name="web", generation=1, salt="s", routes=[route("v1", sha, 100, CHAMPION)])
    )
    core.table, _ = apply(cache, snap)
    with pytest.raises(SluiceError) as info:
        core.deployment("other")
    assert status_of(info.value) == grpc.StatusCode.NOT_FOUND and "it serves: web" in info.value.message
    dep = core.deployment("web")
    cases = [
        (np.zeros((2, 29), np.float32), "30"),
        (np.full((1, 30), np.nan, np.float32), "NaN"),
        (np.zeros((30,), np.float32), "30"),
    ]
    for x, text in cases:
        with pytest.raises(SluiceError) as info:
            core.predict(dep, x)
        assert status_of(info.value) == grpc.StatusCode.INVALID_ARGUMENT and text in info.value.message
    for tensor, text in [
        (inference_pb2.Tensor(shape=[0, 30]), "no rows"),
        (inference_pb2.Tensor(shape=[2, 2], values=[1, 2, 3]), "needs 4 values"),
        (inference_pb2.Tensor(shape=[1, 1], values=[1], raw=b"\0\0\0\0"), "both"),
        (inference_pb2.Tensor(shape=[-1, 1], values=[1]), "negative"),
        (inference_pb2.Tensor(values=[1]), "no shape"),
    ]:
        with pytest.raises(SluiceError) as info:
            decode_tensor(tensor)
        assert status_of(info.value) == grpc.StatusCode.INVALID_ARGUMENT and text in info.value.message
    raw = np.arange(6, dtype="<f4")
    assert decode_tensor(inference_pb2.Tensor(shape=[2, 3], raw=raw.tobytes())).tolist() == raw.reshape(2, 3).tolist()


def test_every_outcome_counts_against_the_version_it_was_routed_to(
    tmp_path: Path, artifacts: dict[str, tuple[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, sha1, sha2 = filled_cache(tmp_path, artifacts)
    snap = snapshot(
        1,
        agent_pb2.DeploymentSnapshot(
            name="web",
            generation=1,
            salt="pepper",
            routes=[route("v2", sha2, 50, CHALLENGER), route("v1", sha1, 50, CHAMPION)],
        ),
    )
    table, _ = apply(cache, snap)
    core, recorder = core_for(table, snap)
    dep = core.deployment("web")
    v2 = next(r for r in dep.routes if r.version == "v2")
    assert v2.sha256 != next(r for r in dep.routes if r.version == "v1").sha256  # sessions not shared
    keys = [f"key-{i}" for i in range(40)]
    to_v2 = next(k for k in keys if dep.routes[dep.router.route(k)].version == "v2")
    rows = breast_cancer_rows(40, seed=2).astype(np.float32)

    def nan_out(x: np.ndarray) -> Any:
        result = real_predict(x)
        probabilities = result.probabilities.copy()
        probabilities[-1, 0] = np.nan
        return type(result)(result.labels, probabilities, None)

    real_predict = v2.runtime.predict
    monkeypatch.setattr(v2.runtime, "predict", nan_out)
    with pytest.raises(SluiceError) as failed:
        core.predict(dep, rows[:1], key=to_v2)  # a model failure: NaN out
    assert status_of(failed.value) == grpc.StatusCode.INTERNAL and "v2 computed NaN" in failed.value.message
    with pytest.raises(SluiceError) as refused:
        core.predict(dep, rows[:1, :5], key=to_v2)  # a refused input: 5 features for 30
    assert status_of(refused.value) == grpc.StatusCode.INVALID_ARGUMENT and refused.value.counted
    core.refused("web", "INVALID_ARGUMENT", refused.value)  # the servicer's hook: already counted
    with pytest.raises(SluiceError):
        core.predict_batch(dep, rows, keys, [])  # v1 answers its rows, v2 fails on its own: one call each
    report = recorder.flush()
    assert report is not None
    by_version = {w.version.version: w for w in report.windows}
    assert {c.code: c.count for c in by_version["v2"].errors} == {"INTERNAL": 2, "INVALID_ARGUMENT": 1}
    assert (by_version["v2"].requests, by_version["v2"].rows, by_version["v2"].rejected_inputs) == (3, 0, 1)
    assert (by_version["v1"].requests, list(by_version["v1"].errors), by_version["v1"].rejected_inputs) == (1, [], 0)
    assert by_version["v1"].rows == int(
        np.count_nonzero(
            dep.router.route_many(keys, 40) == dep.routes.index(next(r for r in dep.routes if r.version == "v1"))
        )
    )
