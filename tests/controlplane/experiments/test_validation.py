"""Bad input to experiments: the right error, a message a person can act on, nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from controlplane import deployment_reads, deployments
from controlplane.context import Context
from controlplane.experiments import commands
from controlplane.experiments.spec import ExperimentSpec
from controlplane.store.models import AuditEventRow, ExperimentRow
from core.errors import AlreadyExists, FailedPrecondition, InvalidInput, NotFound, SluiceError
from core.vocabulary import MetricSource
from tests.controlplane.experiments.support import ALICE, Setup, deployed_pair, make_narrow_classifier_onnx, register
from tests.harness import unique
from tests.models import make_regressor_onnx


def spec(s: Setup, version: str = "v2", **kw: Any) -> ExperimentSpec:
    return ExperimentSpec(deployment=s.deployment, challenger=(s.model, version), **kw)


def unchanged(ctx: Context, s: Setup, call: Callable[[], object], error: type[SluiceError], match: str) -> None:
    """The call fails with `error` and leaves generation, experiments and audit as they were."""

    def state() -> tuple[int, int, int]:
        with ctx.db.session() as session:
            experiments = session.scalar(select(func.count()).select_from(ExperimentRow))
            events = session.scalar(select(func.count()).select_from(AuditEventRow))
        generation = deployment_reads.list_deployments(ctx, s.deployment)[0].generation
        return generation, int(experiments or 0), int(events or 0)

    before = state()
    with pytest.raises(error, match=match):
        call()
    assert state() == before


@pytest.fixture
def setup(ctx: Context, models_dir: Path) -> Setup:
    return deployed_pair(ctx, models_dir)


def test_bad_specs_are_refused_before_anything_changes(ctx: Context, setup: Setup) -> None:
    s = setup
    cases: list[tuple[dict[str, Any], str]] = [
        ({"plan": [10, 5, 50]}, "not increasing"),
        ({"plan": [10, 10]}, "not increasing"),
        ({"plan": [50, 150]}, "outside 1..100"),
        ({"plan": [0, 50]}, "outside 1..100"),
        ({"alpha": 0.0}, "strictly between 0 and 1"),
        ({"alpha": 1.0}, "strictly between 0 and 1"),
        ({"alpha": -0.1}, "strictly between 0 and 1"),
        ({"alpha": float("nan")}, "finite"),
        ({"traffic_percent": 100}, "1 to 99"),
        ({"traffic_percent": 0}, "1 to 99"),
        ({"metric": "f1"}, "unknown metric 'f1'"),
        ({"guardrails": [("latency", 0.1)]}, "unknown guardrail metric"),
        ({"guardrails": [("error_rate", -1.0)]}, "negative"),
        ({"min_samples": 0}, "min samples"),
        ({"min_improvement": -0.1}, "must not be negative"),
        ({"hold_seconds": -5.0}, "hold"),
        ({"segment_rules": [{"attribute": "country"}]}, "needs values"),
        ({"segment_rules": [{"attribute": "age", "has_range": True, "min": 65, "max": 18}]}, "empty"),
        ({"metric": "mae"}, "mae needs a regressor"),
        ({"label_delay_seconds": 60.0}, "needs --labels joined"),
        ({"label_source": "eventually"}, "unknown label source"),
        ({"label_source": MetricSource.JOINED, "metric": "error_rate"}, "not error_rate"),
        ({"label_source": MetricSource.JOINED, "metric": "p95_latency"}, "not p95_latency"),
        ({"label_source": MetricSource.JOINED, "shadow": True}, "drop --shadow"),
        ({"label_source": MetricSource.JOINED, "label_delay_seconds": -1.0}, "0 to"),
        ({"label_source": MetricSource.JOINED, "label_delay_seconds": float("inf")}, "finite"),
    ]
    for kw, match in cases:
        unchanged(
            ctx,
            s,
            lambda kw=kw: commands.start_experiment(ctx, ALICE, unique("bad"), spec(s, **kw)),  # type: ignore[misc]
            InvalidInput,
            match,
        )


def test_challenger_equal_to_the_champion(ctx: Context, setup: Setup) -> None:
    unchanged(
        ctx,
        setup,
        lambda: commands.start_experiment(ctx, ALICE, unique("e"), spec(setup, "v1")),
        InvalidInput,
        "already the champion",
    )


def test_challenger_with_another_input_schema_names_the_mismatch(ctx: Context, setup: Setup, models_dir: Path) -> None:
    register(ctx, setup.model, "narrow", make_narrow_classifier_onnx(models_dir))
    unchanged(
        ctx,
        setup,
        lambda: commands.start_experiment(ctx, ALICE, unique("e"), spec(setup, "narrow")),
        InvalidInput,
        r"input schema mismatch: .*:narrow input 'input' has shape \[\?, 10\], the champion .* has shape \[\?, 30\]",
    )


def test_challenger_of_another_task_is_refused(ctx: Context, setup: Setup, models_dir: Path) -> None:
    register(ctx, setup.model, "ridge", make_regressor_onnx(models_dir))  # same 30 float inputs
    unchanged(
        ctx,
        setup,
        lambda: commands.start_experiment(ctx, ALICE, unique("e"), spec(setup, "ridge")),
        InvalidInput,
        r".*:ridge is a regressor but .*:v1 is a classifier",
    )


def test_second_experiment_on_a_deployment_and_duplicate_names(ctx: Context, setup: Setup) -> None:
    first = commands.start_experiment(ctx, ALICE, unique("first"), spec(setup))
    unchanged(
        ctx,
        setup,
        lambda: commands.start_experiment(ctx, ALICE, unique("second"), spec(setup)),
        FailedPrecondition,
        f"already has experiment '{first.name}'",
    )
    unchanged(
        ctx, setup, lambda: commands.start_experiment(ctx, ALICE, first.name, spec(setup)), AlreadyExists, "already"
    )


def test_unknown_names(ctx: Context, setup: Setup) -> None:
    missing_dep = ExperimentSpec(deployment="nowhere", challenger=(setup.model, "v2"))
    unchanged(ctx, setup, lambda: commands.start_experiment(ctx, ALICE, "e1", missing_dep), NotFound, "no deployment")
    unchanged(
        ctx, setup, lambda: commands.start_experiment(ctx, ALICE, "e1", spec(setup, "v9")), NotFound, "no version 'v9'"
    )
    for action in (commands.stop_experiment, commands.abort_experiment, commands.resume_experiment, commands.promote):
        unchanged(ctx, setup, lambda action=action: action(ctx, ALICE, "ghost"), NotFound, "no experiment named")
    with pytest.raises(NotFound):
        commands.get_experiment(ctx, "ghost")
    with pytest.raises(InvalidInput):
        commands.get_experiment(ctx, "bad name!")


def test_promoting_a_stopped_experiment_and_resuming_a_running_one(ctx: Context, setup: Setup) -> None:
    exp = commands.start_experiment(ctx, ALICE, unique("e"), spec(setup))
    unchanged(
        ctx, setup, lambda: commands.resume_experiment(ctx, ALICE, exp.name), FailedPrecondition, "running, not paused"
    )
    stopped = commands.stop_experiment(ctx, ALICE, exp.name, reason="enough")
    assert stopped.state == "stopped" and stopped.analysis is not None
    unchanged(ctx, setup, lambda: commands.promote(ctx, ALICE, exp.name), FailedPrecondition, "is stopped")
    unchanged(ctx, setup, lambda: commands.stop_experiment(ctx, ALICE, exp.name), FailedPrecondition, "stopped")


def test_require_offline_win_refuses_a_challenger_without_a_winning_verdict(ctx: Context, setup: Setup) -> None:
    unchanged(
        ctx,
        setup,
        lambda: commands.start_experiment(ctx, ALICE, unique("e"), spec(setup, require_offline_win=True)),
        FailedPrecondition,
        "no offline evaluation",
    )


def test_segment_rules_reach_the_deployment_snapshot(ctx: Context, setup: Setup) -> None:
    rules = [
        {"attribute": "country", "values": ["de", "fr"]},
        {"attribute": "age", "has_range": True, "min": 18, "max": 65},
    ]
    exp = commands.start_experiment(ctx, ALICE, unique("e"), spec(setup, segment_rules=rules))
    info = deployment_reads.list_deployments(ctx, setup.deployment)[0]
    assert info.experiment == exp.name and info.routing_salt == exp.salt != info.salt
    assert info.segment_rules == [
        {"attribute": "country", "values": ["de", "fr"], "has_range": False, "min": 0.0, "max": 0.0},
        {"attribute": "age", "values": [], "has_range": True, "min": 18.0, "max": 65.0},
    ]


def test_segment_rules_on_features_are_checked_against_the_input_schema(ctx: Context, setup: Setup) -> None:
    """The models here take one input `input` of shape [?, 30]: no feature a rule could test."""
    cases = [
        ({"attribute": "feature.age", "values": ["1"]}, "has no input feature 'age' \\(its inputs: 'input'\\)"),
        ({"attribute": "feature.input", "has_range": True, "min": 1, "max": 2}, "shape \\[\\?, 30\\]"),
        # no prefix and the name of an input: refused too, saying how to name the attribute instead
        ({"attribute": "input", "values": ["x"]}, "write attribute.input=..."),
        ({"attribute": "feature.", "values": ["x"]}, "names no feature"),
    ]
    for rule, match in cases:
        unchanged(
            ctx,
            setup,
            lambda rule=rule: commands.start_experiment(ctx, ALICE, unique("e"), spec(setup, segment_rules=[rule])),
            InvalidInput,
            match,
        )
    # `attribute.` pins the request attribute, and an unprefixed name no input has is one
    rules = [{"attribute": "attribute.input", "values": ["x"]}, {"attribute": "age", "has_range": True, "max": 9}]
    commands.start_experiment(ctx, ALICE, unique("e"), spec(setup, segment_rules=rules))
    info = deployment_reads.list_deployments(ctx, setup.deployment)[0]
    assert [r["attribute"] for r in info.segment_rules] == ["attribute.input", "age"]

def test_a_joined_experiment_on_a_regressor_judges_mae_not_accuracy(ctx: Context, models_dir: Path) -> None:
    model, deployment = unique("score"), unique("dep")
    champion = register(ctx, model, "v1", make_regressor_onnx(models_dir))
    challenger = register(ctx, model, "v2", make_regressor_onnx(models_dir, seed=1))
    deployments.deploy(ctx, ALICE, deployment, model, "v1")
    s = Setup(deployment, model, champion, challenger)
    joined = {"label_source": MetricSource.JOINED, "label_delay_seconds": 3600.0}
    unchanged(
        ctx,
        s,
        lambda: commands.start_experiment(ctx, ALICE, unique("bad"), spec(s, metric="accuracy", **joined)),
        InvalidInput,
        "use --metric mae",
    )
    info = commands.start_experiment(ctx, ALICE, unique("ok"), spec(s, metric="mae", **joined))
    assert info.config["label_source"] == "joined" and info.config["label_delay_seconds"] == 3600.0
