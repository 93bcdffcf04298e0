"""The offline champion/challenger gate: real models scored with onnxruntime on labeled files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from controlplane import deployments, registry
from controlplane.context import Context
from controlplane.experiments import commands, offline
from controlplane.experiments.spec import ExperimentSpec
from controlplane.sample_data import breast_cancer_arrays, write_breast_cancer_csv
from core.errors import FailedPrecondition, InvalidInput
from tests.controlplane.experiments.support import ALICE, Setup, deployed_pair, register
from tests.harness import unique
from tests.models import make_classifier_onnx


@pytest.fixture(scope="module")
def csv_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("data") / "cancer.csv"
    write_breast_cancer_csv(path)
    return path.read_bytes()


def run(ctx: Context, s: Setup, data: bytes, version: str = "v2", **kw: object) -> dict[str, object]:
    request = offline.EvaluateRequest(challenger=(s.model, version), deployment=s.deployment, data=data, **kw)  # type: ignore[arg-type]
    return offline.evaluate(ctx, ALICE, request)


def test_a_better_classifier_wins_and_the_verdict_opens_the_gate(
    ctx: Context, models_dir: Path, csv_bytes: bytes
) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    result = run(ctx, s, csv_bytes, data_format="csv", label_column="label", min_improvement=0.05)
    assert result["method"] == "mcnemar" and result["metric"] == "accuracy" and result["n"] == 569
    assert result["challenger_wins"] is True
    assert float(result["challenger_metric"]) > float(result["champion_metric"]) + 0.05  # type: ignore[arg-type]
    assert float(result["p_value"]) < 1e-6  # type: ignore[arg-type]
    assert result["champion"] == f"{s.model}:v1" and result["evaluated_by"] == "alice"
    stored = registry.get_version(ctx, s.model, "v2").offline_evaluation
    assert stored == result

    exp = commands.start_experiment(
        ctx,
        ALICE,
        unique("gated"),
        ExperimentSpec(deployment=s.deployment, challenger=(s.model, "v2"), require_offline_win=True),
    )
    assert exp.state == "running"


def test_a_broken_classifier_loses_and_is_refused_by_the_gate(ctx: Context, models_dir: Path, csv_bytes: bytes) -> None:
    s = deployed_pair(ctx, models_dir, "logreg", "constant")
    result = run(ctx, s, csv_bytes)
    assert result["challenger_wins"] is False
    assert "worse" in str(result["verdict"])
    with pytest.raises(FailedPrecondition, match="did not win"):
        commands.start_experiment(
            ctx,
            ALICE,
            unique("gated"),
            ExperimentSpec(deployment=s.deployment, challenger=(s.model, "v2"), require_offline_win=True),
        )


def test_a_verdict_against_another_champion_does_not_count(ctx: Context, models_dir: Path, csv_bytes: bytes) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    assert run(ctx, s, csv_bytes)["challenger_wins"] is True
    register(ctx, s.model, "v3", make_classifier_onnx(models_dir, "logreg"))
    deployments.deploy(ctx, ALICE, s.deployment, s.model, "v3")
    with pytest.raises(FailedPrecondition, match="not with the current champion"):
        commands.start_experiment(
            ctx,
            ALICE,
            unique("gated"),
            ExperimentSpec(deployment=s.deployment, challenger=(s.model, "v2"), require_offline_win=True),
        )


def test_regressors_use_a_paired_t_test_on_npy_data(ctx: Context, models_dir: Path) -> None:
    s = deployed_pair(ctx, models_dir, "ridge", "gbr")
    X, y = breast_cancer_arrays()
    buffer = io.BytesIO()
    np.save(buffer, np.column_stack([X, y.astype(np.float32)]))
    result = run(ctx, s, buffer.getvalue(), data_format="npy")
    assert result["method"] == "paired_t" and result["metric"] == "mae"
    assert result["challenger_wins"] is True
    assert float(result["challenger_metric"]) < float(result["champion_metric"])  # type: ignore[arg-type]


def test_bad_data_is_refused_and_nothing_is_stored(ctx: Context, models_dir: Path, csv_bytes: bytes) -> None:
    s = deployed_pair(ctx, models_dir, "weak", "gbm")
    narrow = b"a,b,label\n1,2,0\n3,4,1\n"
    cases: list[tuple[bytes, dict[str, object], str]] = [
        (b"", {}, "empty"),
        (b"a,b,label\n1,x,0\n", {}, "'x', not a number"),
        (narrow, {}, r"cannot score the data file: expected a float32 tensor of shape \[rows, 30\]"),
        (csv_bytes, {"label_column": "diagnosis"}, "no column 'diagnosis'"),
        (csv_bytes, {"alpha": 1.5}, "strictly between 0 and 1"),
        (csv_bytes, {"min_improvement": -1.0}, ">= 0"),
        (csv_bytes, {"data_format": "parquet"}, "not a Parquet file"),
        (csv_bytes, {"data_format": "xlsx"}, "not supported"),
        (csv_bytes.replace(b",0\n", b",0.5\n", 1), {}, "not whole numbers"),
    ]
    for data, kw, match in cases:
        with pytest.raises(InvalidInput, match=match):
            run(ctx, s, data, **kw)
    with pytest.raises(InvalidInput, match="is the champion"):
        run(ctx, s, csv_bytes, version="v1")
    assert registry.get_version(ctx, s.model, "v2").offline_evaluation is None
