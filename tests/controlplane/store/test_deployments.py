"""Deployments and traffic on both databases: rules, generations, history and audit."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from controlplane import deployment_history, deployment_reads, deployments, registry
from controlplane.context import Context
from controlplane.domain import Principal, Role
from controlplane.store.models import AuditEventRow, DeploymentHistoryRow, TrafficSplitRow
from core.errors import Conflict, FailedPrecondition, InvalidInput, NotFound
from tests.models import make_classifier_onnx, make_regressor_onnx

BOB = Principal("bob", Role.OPERATOR)


def _register(ctx: Context, model: str, version: str, path: Path) -> None:
    pending = ctx.artifacts.begin_upload()
    pending.write(path.read_bytes())
    registry.register_version(ctx, BOB, registry.NewVersion(model, version), pending, None)


@pytest.fixture
def versions(ctx: Context, models_dir: Path) -> Context:
    _register(ctx, "cancer", "v1", make_classifier_onnx(models_dir, "logreg"))
    _register(ctx, "cancer", "v2", make_classifier_onnx(models_dir, "gbm"))
    _register(ctx, "cancer", "v3", make_classifier_onnx(models_dir, "logreg", seed=3))
    _register(ctx, "other", "v1", make_classifier_onnx(models_dir, "logreg"))
    _register(ctx, "price", "v1", make_regressor_onnx(models_dir))
    _register(ctx, "cancer", "reg", make_regressor_onnx(models_dir))  # same model name and inputs, other task
    return ctx


def table_state(ctx: Context) -> tuple[int, int, int, list[tuple[int, int, str]]]:
    with ctx.db.session() as s:
        history = s.scalar(select(func.count()).select_from(DeploymentHistoryRow))
        audits = s.scalar(select(func.count()).select_from(AuditEventRow))
        splits = s.execute(select(TrafficSplitRow.version_id, TrafficSplitRow.weight, TrafficSplitRow.role)).all()
    gens = [d.generation for d in deployment_reads.list_deployments(ctx)]
    return int(history or 0), int(audits or 0), sum(gens), sorted(tuple(r) for r in splits)


def weights(info: object) -> dict[str, tuple[int, str]]:
    return {s.version.ref: (s.weight, s.role) for s in info.splits}  # type: ignore[attr-defined]


def test_deploy_creates_then_replaces(versions: Context) -> None:
    ctx = versions
    first = deployments.deploy(ctx, BOB, "web", "cancer", "v1", reason="launch")
    assert first.generation == 1 and weights(first) == {"cancer:v1": (100, "champion")}
    second = deployments.deploy(ctx, BOB, "web", "cancer", "v2")
    assert second.generation == 2 and weights(second) == {"cancer:v2": (100, "champion")}
    assert second.previous_champion is not None and second.previous_champion.ref == "cancer:v1"
    history = deployment_reads.list_history(ctx, "web")
    assert [(h.generation, h.action, h.principal) for h in history] == [
        (2, "deploy", "bob"),
        (1, "deploy", "bob"),
    ]
    assert history[1].reason == "launch"


def test_traffic_split_and_roles(versions: Context) -> None:
    ctx = versions
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    info = deployments.set_traffic(ctx, BOB, "web", [("cancer", "v1", 90), ("cancer", "v2", 10)])
    assert weights(info) == {"cancer:v1": (90, "champion"), "cancer:v2": (10, "challenger")}
    # Routing order: the newcomer first, so ramping it only takes keys from the champion.
    assert [s.version.ref for s in info.splits] == ["cancer:v2", "cancer:v1"]
    info = deployments.set_traffic(ctx, BOB, "web", [("cancer", "v2", 100), ("cancer", "v1", 0)])
    assert weights(info) == {"cancer:v2": (100, "champion")}
    assert info.previous_champion is not None and info.previous_champion.ref == "cancer:v1"


@pytest.mark.parametrize(
    ("weights_in", "message"),
    [
        ([("cancer", "v1", 60), ("cancer", "v2", 30)], "sum to 90"),
        ([("cancer", "v1", 110), ("cancer", "v2", -10)], "weights are 0 to 100"),
        ([("cancer", "v1", 50), ("other", "v1", 50)], "serves model 'cancer'"),
        ([("cancer", "v1", 50), ("cancer", "v1", 50)], "named twice"),
        ([], "no weights"),
        ([("cancer", "v1", 50), ("cancer", "v9", 50)], "no version 'v9'"),
        ([("cancer", "v1", 50), ("price", "v1", 50)], "serves model 'cancer'"),
        ([("cancer", "v1", 50), ("cancer", "reg", 50)], "cancer:reg is a regressor but cancer:v1 is a classifier"),
    ],
)
def test_bad_traffic_changes_nothing(versions: Context, weights_in: list[tuple[str, str, int]], message: str) -> None:
    ctx = versions
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    before = table_state(ctx)
    with pytest.raises((InvalidInput, NotFound), match=message):
        deployments.set_traffic(ctx, BOB, "web", weights_in)
    assert table_state(ctx) == before


def test_unknown_deployment_and_version(versions: Context) -> None:
    with pytest.raises(NotFound, match="no deployment named 'ghost'"):
        deployments.set_traffic(versions, BOB, "ghost", [("cancer", "v1", 100)])
    before = table_state(versions)
    with pytest.raises(NotFound):
        deployments.deploy(versions, BOB, "web", "cancer", "v42")
    assert table_state(versions) == before


def test_stale_expected_generation_is_aborted(versions: Context) -> None:
    ctx = versions
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    deployments.set_traffic(ctx, BOB, "web", [("cancer", "v1", 50), ("cancer", "v2", 50)], expected_generation=1)
    before = table_state(ctx)
    with pytest.raises(Conflict, match="generation 2, not 1"):
        deployments.set_traffic(ctx, BOB, "web", [("cancer", "v1", 100)], expected_generation=1)
    assert table_state(ctx) == before


def test_rollback_to_previous_and_named(versions: Context) -> None:
    ctx = versions
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    with pytest.raises(FailedPrecondition, match="no earlier champion that was not itself rolled back"):
        deployments.rollback(ctx, BOB, "web")
    deployments.deploy(ctx, BOB, "web", "cancer", "v2")
    info = deployments.rollback(ctx, BOB, "web", reason="v2 misbehaves")
    assert weights(info) == {"cancer:v1": (100, "champion")}
    info = deployments.rollback(ctx, BOB, "web", ("cancer", "v3"))
    assert weights(info) == {"cancer:v3": (100, "champion")}
    with pytest.raises(InvalidInput, match="not a version of 'cancer'"):
        deployments.rollback(ctx, BOB, "web", ("other", "v1"))
    actions = [h.action for h in deployment_reads.list_history(ctx, "web")]
    assert actions == ["rollback", "rollback", "deploy", "deploy"]


def test_rollback_is_a_stack_and_never_restores_a_rolled_back_version(versions: Context) -> None:
    ctx = versions
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    deployments.deploy(ctx, BOB, "web", "cancer", "v2")
    info = deployments.deploy(ctx, BOB, "web", "cancer", "v3")  # the bad one
    assert info.previous_champion is not None and info.previous_champion.ref == "cancer:v2"
    info = deployments.rollback(ctx, BOB, "web")
    assert weights(info) == {"cancer:v2": (100, "champion")}
    # v3 was rolled back: what a plain rollback restores now is v1, not v3 (no toggle)
    assert info.previous_champion is not None and info.previous_champion.ref == "cancer:v1"
    info = deployments.rollback(ctx, BOB, "web")
    assert weights(info) == {"cancer:v1": (100, "champion")}
    assert info.previous_champion is None
    before = table_state(ctx)
    with pytest.raises(FailedPrecondition, match=r"no earlier champion .* \(serving cancer:v1=100%\)"):
        deployments.rollback(ctx, BOB, "web")
    assert table_state(ctx) == before


def test_a_version_made_champion_again_can_be_restored(versions: Context) -> None:
    ctx = versions
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    deployments.deploy(ctx, BOB, "web", "cancer", "v2")
    deployments.rollback(ctx, BOB, "web")  # v2 rolled back
    deployments.deploy(ctx, BOB, "web", "cancer", "v2")  # ...fixed and deployed again on purpose
    deployments.deploy(ctx, BOB, "web", "cancer", "v3")
    info = deployments.rollback(ctx, BOB, "web")
    assert weights(info) == {"cancer:v2": (100, "champion")}


def test_a_rollback_to_what_already_serves_is_refused(versions: Context) -> None:
    ctx = versions
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    deployments.deploy(ctx, BOB, "web", "cancer", "v2")
    before = table_state(ctx)
    with pytest.raises(FailedPrecondition, match=r"cancer:v2 already serves 'web' at 100% \(generation 2\)"):
        deployments.rollback(ctx, BOB, "web", ("cancer", "v2"))
    assert table_state(ctx) == before
    # with a challenger beside it, rolling back to the champion does change something
    deployments.set_traffic(ctx, BOB, "web", [("cancer", "v2", 90), ("cancer", "v3", 10)])
    info = deployments.rollback(ctx, BOB, "web", ("cancer", "v2"))
    assert weights(info) == {"cancer:v2": (100, "champion")}


@pytest.mark.parametrize(
    ("reigns", "expected"),
    [
        ([], None),
        ([("deploy", "a")], None),
        ([("deploy", "a"), ("deploy", "b")], "a"),
        ([("deploy", "a"), ("deploy", "b"), ("rollback", "a")], None),
        ([("deploy", "a"), ("deploy", "b"), ("deploy", "c"), ("rollback", "b")], "a"),
        ([("deploy", "a"), ("deploy", "b"), ("deploy", "c"), ("rollback", "a")], "b"),
        ([("deploy", "a"), ("deploy", "b"), ("rollback", "a"), ("promote", "b"), ("deploy", "c")], "b"),
        ([("deploy", "a"), ("experiment.start", "a"), ("experiment.rollback", "a"), ("deploy", "b")], "a"),
    ],
)
def test_restorable_reads_the_champions_as_a_stack(reigns: list[tuple[str, str]], expected: str | None) -> None:
    history = [(action, [{"version": ref, "weight": 100, "role": "champion"}]) for action, ref in reigns]
    assert deployment_history.restorable(history) == expected


def test_every_change_is_audited_in_its_transaction(versions: Context) -> None:
    ctx = versions
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    deployments.set_traffic(ctx, BOB, "web", [("cancer", "v1", 80), ("cancer", "v2", 20)], reason="canary")
    with ctx.db.session() as s:
        events = s.scalars(select(AuditEventRow).where(AuditEventRow.target == "web").order_by(AuditEventRow.id)).all()
        assert [(e.action, e.principal) for e in events] == [("deploy", "bob"), ("traffic.set", "bob")]
        assert events[1].details["generation"] == 2 and events[1].details["reason"] == "canary"


def test_racing_operators_get_distinct_generations(versions: Context) -> None:
    """2 threads x 50 tries with expected_generation: no lost update, no gap in history."""
    ctx = versions
    deployments.deploy(ctx, BOB, "web", "cancer", "v1")
    accepted: list[tuple[int, int]] = []  # (generation, challenger weight)
    aborted = 0
    lock = threading.Lock()

    def operator(seed: int) -> None:
        nonlocal aborted
        for i in range(50):
            current = deployment_reads.list_deployments(ctx, "web")[0].generation
            share = (seed * 50 + i) % 99 + 1
            try:
                info = deployments.set_traffic(
                    ctx,
                    BOB,
                    "web",
                    [("cancer", "v1", 100 - share), ("cancer", "v2", share)],
                    expected_generation=current,
                )
            except Conflict:
                with lock:
                    aborted += 1
                continue
            with lock:
                accepted.append((info.generation, share))

    threads = [threading.Thread(target=operator, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    generations = [g for g, _ in accepted]
    assert len(accepted) + aborted == 100
    assert len(set(generations)) == len(generations), "two accepted changes share a generation"
    history = deployment_reads.list_history(ctx, "web", limit=1000)
    assert sorted(h.generation for h in history) == list(range(1, len(accepted) + 2)), "history has gaps"
    last_generation, last_share = max(accepted)
    final = deployment_reads.list_deployments(ctx, "web")[0]
    assert final.generation == last_generation
    assert weights(final)["cancer:v2"][0] == last_share
