"""The agent's model probe (agent/serving.py ModelProbe): each new artifact loads and warms up in the
sandbox first; a model onnxruntime cannot load and one over the limits are refused with a reason a
person can act on; outcomes are remembered per sha256 (the newest 256), so a refused version is
refused at once when a later snapshot names it again. Real sandbox, real onnxruntime."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from agent.cache import AgentCache
from agent.serving import DEFAULT_PROBE_LIMITS, ApplyError, ModelProbe, SnapshotApplier
from protos import agent_pb2, common_pb2
from runtime import sandbox
from tests.models import make_endless_loop_onnx
from tests.timing import scaled

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ROOMY = sandbox.Limits(timeout_seconds=120.0, memory_mb=2048)
#: for a model that never finishes: the wall-clock deadline ends it well before the CPU limit (2 s)
NEVER_IN_TIME = sandbox.Limits(timeout_seconds=0.2, memory_mb=2048)


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_file_onnxruntime_cannot_load_is_refused_and_remembered(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    sha = sha_of(bad)
    probe = ModelProbe(ROOMY)
    with pytest.raises(ApplyError) as caught:
        await probe.check(bad, sha, "m:v1")
    assert str(caught.value).startswith("onnxruntime cannot load m:v1: ")
    bad.unlink()  # remembered by its sha256: not probed again (the file is gone)
    with pytest.raises(ApplyError) as again:
        await probe.check(bad, sha, "m:v1")
    assert str(again.value) == str(caught.value)


async def test_a_model_over_the_time_limit_is_refused_with_the_option_to_raise(tmp_path: Path) -> None:
    # A Loop that never ends: "no load fits in 1 ms" was a bet on timing that a loaded machine lost
    # (the parent, descheduled between the child's "started" and its wait, found the answer there).
    model = make_endless_loop_onnx(tmp_path)
    probe = ModelProbe(NEVER_IN_TIME)
    with pytest.raises(ApplyError) as caught:
        await probe.check(model, sha_of(model), "m:v1")
    message = str(caught.value)
    assert message.startswith("m:v1 was refused: loading and warming it up in the sandbox ")
    assert message.endswith("; raise `sluice agent --model-timeout` if the model is just slow")


async def test_a_model_that_loads_passes_and_without_limits_nothing_is_probed(tmp_path: Path) -> None:
    model = FIXTURES / "classifier-logreg.onnx"
    await ModelProbe(ROOMY).check(model, sha_of(model), "m:v1")  # no error
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00")
    await ModelProbe(None).check(garbage, sha_of(garbage), "m:v2")  # the agent trusts what it loads


async def test_the_newest_256_outcomes_are_remembered(tmp_path: Path) -> None:
    probe = ModelProbe(ROOMY)
    missing = tmp_path / "missing.onnx"  # probing it would fail with another reason
    for i in range(257):  # the documented 256, and one more
        probe._remember(f"sha-{i}", (True, f"reason {i}"))
    for i in (1, 128, 256):
        with pytest.raises(ApplyError, match=f"reason {i}$"):
            await probe.check(missing, f"sha-{i}", "m:v")
    with pytest.raises(ApplyError) as oldest:  # forgotten: probed afresh
        await probe.check(missing, "sha-0", "m:v")
    assert "reason 0" not in str(oldest.value)


def test_the_documented_defaults() -> None:
    # docs/OPERATIONS.md: `--model-timeout` 30 s, `--model-memory-mb` 2048; docs/SECURITY.md: at nice +10.
    assert sandbox.Limits(timeout_seconds=30.0, memory_mb=2048, niceness=10) == DEFAULT_PROBE_LIMITS


def one_version(sha: str) -> agent_pb2.Snapshot:
    route = agent_pb2.Route(
        version=common_pb2.VersionRef(model="m", version="v1"),
        sha256=sha,
        weight=100,
        role=common_pb2.ROLE_CHAMPION,
        task="classifier",
    )
    deployment = agent_pb2.DeploymentSnapshot(name="web", generation=1, salt="s", routes=[route])
    return agent_pb2.Snapshot(snapshot_id=1, deployments=[deployment])


async def test_a_snapshots_new_artifact_is_probed_before_the_agent_loads_it(tmp_path: Path) -> None:
    """A new applier (a running agent's) sends every artifact it has not proven to the sandbox
    first: a model whose warm-up never ends is refused with the sandbox's reason, not loaded."""
    model = make_endless_loop_onnx(tmp_path)
    cache = AgentCache(tmp_path / "cache")
    cache.put(model.read_bytes(), sha_of(model))
    applier = SnapshotApplier(cache, NEVER_IN_TIME)
    # Were it loaded in this process unprobed, its warm-up would never end: a deadline, not a hang.
    table, problems = await asyncio.wait_for(applier.apply(one_version(sha_of(model)), None, None), scaled(30))
    assert table.deployments == {}
    assert len(problems) == 1 and "m:v1 was refused: loading and warming it up in the sandbox " in problems[0]


async def test_at_a_restart_a_cached_artifact_is_rehashed_and_a_changed_one_is_not_served(tmp_path: Path) -> None:
    """The agent's start (agent/server.py) applies its saved snapshot from the cache alone with
    `verify_cached`: a file whose bytes still match its sha256 is served; one whose bytes changed
    on disk (here: another valid model's) is dropped and reported missing, never served."""
    model, other = FIXTURES / "classifier-logreg.onnx", FIXTURES / "classifier-constant.onnx"
    sha = sha_of(model)
    cache = AgentCache(tmp_path / "cache")
    cache.put(model.read_bytes(), sha)

    def restarted() -> SnapshotApplier:
        applier = SnapshotApplier(cache, None)
        applier.verify_cached = True
        return applier

    table, problems = await restarted().apply(one_version(sha), None, None)
    assert problems == [] and table.generations() == {"web": 1}
    cache.artifact_path(sha).write_bytes(other.read_bytes())
    table, problems = await restarted().apply(one_version(sha), None, None)
    assert table.deployments == {} and not cache.has(sha)
    assert len(problems) == 1 and problems[0].endswith(f"the artifact of m:v1 ({sha[:12]}) is not in the cache")
