"""The trainer, ONNX inspection and the agent's runtime, on real scikit-learn models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from controlplane.datasets import load_dataset
from controlplane.onnx_inspect import inspect_onnx_file, sha256_file
from controlplane.sample_data import breast_cancer_arrays, write_breast_cancer_csv
from controlplane.training import train_command, train_model
from core.errors import InvalidInput
from runtime.model import ModelRuntime
from tests.models import breast_cancer_rows, make_classifier_onnx, make_regressor_onnx


def test_train_command_from_csv_and_npy(tmp_path: Path) -> None:
    csv_path = tmp_path / "cancer.csv"
    write_breast_cancer_csv(csv_path)
    result = train_command(csv_path, tmp_path / "m.onnx", None, "logreg", None, 0)
    assert result.n_rows == 569 and result.n_features == 30
    assert result.holdout_accuracy is not None and result.holdout_accuracy > 0.9
    assert result.baseline.exists() and np.load(result.baseline).shape[1] == 30
    X, y = breast_cancer_arrays()
    npy = tmp_path / "cancer.npy"
    np.save(npy, np.column_stack([X, y]))
    result = train_command(npy, tmp_path / "g.onnx", tmp_path / "g.npy", "gbm", None, 0)
    assert result.holdout_accuracy is not None and result.holdout_accuracy > 0.9
    regression = train_command(npy, tmp_path / "r.onnx", None, "ridge", None, 0)
    assert regression.holdout_mae is not None
    assert inspect_onnx_file(tmp_path / "r.onnx").task == "regressor"


def test_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_dataset(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,x,0\n")
    with pytest.raises(InvalidInput, match="not a number"):
        load_dataset(bad)
    nan = tmp_path / "nan.csv"
    nan.write_text("a,label\nnan,1\n")
    with pytest.raises(InvalidInput, match="NaN"):
        load_dataset(nan)
    with pytest.raises(InvalidInput, match="no column 'target'"):
        load_dataset(bad, "target")
    with pytest.raises(InvalidInput, match="unknown model kind"):
        train_model(np.zeros((4, 2), np.float32), np.zeros(4), "forest")


def test_signature_of_classifier_and_regressor(models_dir: Path) -> None:
    classifier = inspect_onnx_file(make_classifier_onnx(models_dir))
    assert classifier.task == "classifier"
    assert classifier.inputs[0].name == "input" and classifier.inputs[0].shape == (None, 30)
    assert {(o.name, o.dtype) for o in classifier.outputs} == {("label", "int64"), ("probabilities", "float32")}
    regressor = inspect_onnx_file(make_regressor_onnx(models_dir))
    assert regressor.task == "regressor"
    assert len(sha256_file(make_regressor_onnx(models_dir))) == 64


@pytest.mark.parametrize("kind", ["logreg", "gbm"])
def test_runtime_matches_scikit_learn(kind: str, models_dir: Path) -> None:
    X, y = breast_cancer_arrays()
    model = train_model(X, y, kind, 0)
    runtime = ModelRuntime(make_classifier_onnx(models_dir, kind))
    runtime.warm_up()
    rows = breast_cancer_rows(200, seed=1)
    result = runtime.predict(runtime.validate_input(rows))
    assert result.labels is not None and result.probabilities is not None and result.values is None
    assert np.array_equal(result.labels, model.predict(rows))
    assert np.allclose(result.probabilities, model.predict_proba(rows), atol=1e-5)


def test_runtime_regressor_and_constant(models_dir: Path) -> None:
    regressor = ModelRuntime(make_regressor_onnx(models_dir))
    out = regressor.predict(breast_cancer_rows(10))
    assert out.values is not None and out.values.shape == (10,) and out.labels is None
    constant = ModelRuntime(make_classifier_onnx(models_dir, "constant"))
    labels = constant.predict(breast_cancer_rows(100)).labels
    assert labels is not None and len(set(labels.tolist())) == 1


def test_runtime_input_errors_name_the_expected_shape(models_dir: Path) -> None:
    runtime = ModelRuntime(make_classifier_onnx(models_dir))
    rows = breast_cancer_rows(2)
    with pytest.raises(ValueError, match=r"shape \[rows, 30\], got \[2, 29\]"):
        runtime.validate_input(rows[:, :29])
    with pytest.raises(ValueError, match="rank 1"):
        runtime.validate_input(rows[0])
    with pytest.raises(ValueError, match="empty"):
        runtime.validate_input(rows[:0])
    with_nan = rows.copy()
    with_nan[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        runtime.validate_input(with_nan)
    assert runtime.validate_input(rows.astype(np.float64)).dtype == np.float32
