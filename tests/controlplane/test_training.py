"""The built-in trainer on real data: loading, training, holdout metrics, ONNX export, baselines."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.model_selection import train_test_split

from controlplane.datasets import load_dataset
from controlplane.onnx_export import export_onnx
from controlplane.onnx_inspect import inspect_onnx_file, sha256_file
from controlplane.sample_data import breast_cancer_arrays, breast_cancer_feature_names, write_breast_cancer_csv
from controlplane.training import KINDS, train_command, train_model, write_baseline
from core.errors import InvalidInput


@pytest.fixture(scope="module")
def cancer_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "breast_cancer.csv"
    write_breast_cancer_csv(path)
    return path


@pytest.fixture(scope="module")
def cancer_npy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    X, y = breast_cancer_arrays()
    path = tmp_path_factory.mktemp("data") / "breast_cancer.npy"
    np.save(path, np.column_stack([X, y]).astype(np.float32))
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- the bundled data ----


def test_breast_cancer_arrays_and_csv_round_trip(cancer_csv: Path) -> None:
    X, y = breast_cancer_arrays()
    assert (X.shape, X.dtype, y.shape, y.dtype) == ((569, 30), np.float32, (569,), np.int64)
    assert set(np.unique(y)) == {0, 1}
    X[:] = 0  # callers get copies: the next call is unaffected
    assert breast_cancer_arrays()[0].any()
    with cancer_csv.open() as handle:
        header = next(csv.reader(handle))
    assert header == [*breast_cancer_feature_names(), "label"]
    assert header[0] == "mean_radius" and all(" " not in name for name in header)
    loaded_X, loaded_y = load_dataset(cancer_csv)
    X, y = breast_cancer_arrays()
    assert loaded_X.dtype == np.float32 and np.array_equal(loaded_X, X)
    assert np.array_equal(loaded_y, y)


# ---- loading ----


def test_load_npy_and_csv_label_column(cancer_npy: Path, tmp_path: Path) -> None:
    X, y = load_dataset(cancer_npy)
    assert X.shape == (569, 30) and X.dtype == np.float32
    assert np.array_equal(y, breast_cancer_arrays()[1])
    csv_path = _write(tmp_path / "t.csv", "target,a,b\n1,0.5,2\n0,1.5,-3\n\n")
    X, y = load_dataset(csv_path, "target")
    assert X.tolist() == [[0.5, 2.0], [1.5, -3.0]] and y.tolist() == [1.0, 0.0]
    X, y = load_dataset(csv_path)  # default: the last column
    assert X.tolist() == [[1.0, 0.5], [0.0, 1.5]] and y.tolist() == [2.0, -3.0]
    # An .npy saved under another name is recognised by its magic bytes.
    renamed = tmp_path / "data.bin"
    renamed.write_bytes(cancer_npy.read_bytes())
    assert load_dataset(renamed)[0].shape == (569, 30)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("a,b,label\n", "has a header but no data rows"),
        ("label\n1\n2\n", "at least one feature column and a label"),
        ("a,b,label\n1,2,0\n1,x,0\n", r"line 3, column 'b' is 'x', not a number"),
        ("a,b,label\n1,,0\n", r"line 2, column 'b' is empty"),
        ("a,b,label\n1,2,0\n1,2\n", "line 3 has 2 cells but the header has 3 columns"),
        ("a,b,label\n1,2,0\n4,nan,1\n", r"line 3, column 'b' is nan; NaN and infinite"),
        ("a,b,label\n1,2,inf\n", r"line 2, column 'label' is inf"),
        ("a,b,label\n1,1e39,0\n", "beyond the float32 range"),
    ],
    ids=["empty", "header-only", "no-features", "text", "blank", "ragged", "nan", "inf", "huge"],
)
def test_csv_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(InvalidInput, match=message):
        load_dataset(path)


def test_missing_files_and_columns(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"nope\.csv does not exist"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(InvalidInput, match="is not a file"):
        load_dataset(tmp_path)
    path = _write(tmp_path / "d.csv", "a,b,label\n1,2,0\n")
    with pytest.raises(InvalidInput, match="no column 'target'; its columns are a, b, label"):
        load_dataset(path, "target")
    binary = tmp_path / "d.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00garbage")
    with pytest.raises(InvalidInput, match="not a UTF-8 text CSV"):
        load_dataset(binary)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.arange(5.0), r"must be a 2-D array .* got shape \[5\]"),
        (np.zeros((0, 3)), "has no rows"),
        (np.ones((4, 1)), "at least 2 columns"),
        (np.array([[1.0, 0.0], [np.inf, 1.0]]), r"row 1, column '#0' is inf"),
        (np.array([["a", "b"]]), "holds <U1 values"),
    ],
    ids=["1d", "no-rows", "one-column", "nan", "strings"],
)
def test_npy_errors(tmp_path: Path, array: np.ndarray, message: str) -> None:
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(InvalidInput, match=message):
        load_dataset(path)


def test_npy_corrupt_or_pickled(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.npy"
    corrupt.write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(InvalidInput, match=r"not a readable \.npy array"):
        load_dataset(corrupt)
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidInput, match=r"not a readable \.npy array"):
        load_dataset(pickled)
    good = tmp_path / "good.npy"
    np.save(good, np.ones((3, 3)))
    with pytest.raises(InvalidInput, match="no column names, its label is the last column"):
        load_dataset(good, "label")


# ---- training ----


def test_train_model_errors() -> None:
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    with pytest.raises(InvalidInput, match="unknown model kind 'forest'; choose one of logreg"):
        train_model(X, np.zeros(20), "forest")
    with pytest.raises(InvalidInput, match=r"needs integer class labels, but a label is 0\.5"):
        train_model(X, np.full(20, 0.5), "logreg")
    with pytest.raises(InvalidInput, match="every label is 1: a classifier needs at least two"):
        train_model(X, np.ones(20), "gbm")
    with pytest.raises(InvalidInput, match="one label per row: 20 rows"):
        train_model(X, np.zeros(19), "ridge")
    with pytest.raises(InvalidInput, match="non-empty 2-D array"):
        train_model(X[:, 0], np.zeros(20), "logreg")
    # The broken challenger accepts a single class: it answers it whatever the input.
    constant = train_model(X, np.ones(20), "constant")
    assert set(constant.predict(X * 100).tolist()) == {1}


def test_train_command_logreg_from_csv(cancer_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "models" / "cancer-v1.onnx"
    result = train_command(cancer_csv, out, None, "logreg", None, 0)
    assert (result.n_rows, result.n_features, result.kind) == (569, 30, "logreg")
    assert result.holdout_accuracy is not None and result.holdout_accuracy > 0.9
    assert result.holdout_mae is None and result.n_holdout == 114
    assert result.out == out and out.is_file()
    assert result.baseline == tmp_path / "models" / "cancer-v1.baseline.npy"
    # The same split with scikit-learn directly gives the same accuracy (the export is faithful).
    X, y = breast_cancer_arrays()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    expected = np.mean(train_model(X_train, y_train, "logreg").predict(X_test) == y_test)
    assert result.holdout_accuracy == pytest.approx(expected)
    baseline = np.load(result.baseline)
    assert baseline.dtype == np.float32 and baseline.shape == (455, 30)  # every training row
    assert {row.tobytes() for row in baseline} == {row.tobytes() for row in X_train}
    assert inspect_onnx_file(out).task == "classifier"


def test_train_command_gbm_from_npy(cancer_npy: Path, tmp_path: Path) -> None:
    baseline_out = tmp_path / "gbm-sample"  # no .npy suffix: the exact name is kept
    result = train_command(cancer_npy, tmp_path / "gbm.onnx", baseline_out, "gbm", None, 3)
    assert result.holdout_accuracy is not None and result.holdout_accuracy > 0.9
    assert result.baseline == baseline_out and baseline_out.is_file()
    assert not (tmp_path / "gbm-sample.npy").exists()


@pytest.mark.parametrize("kind", ["ridge", "gbr"])
def test_train_command_regressors(cancer_npy: Path, tmp_path: Path, kind: str) -> None:
    result = train_command(cancer_npy, tmp_path / f"{kind}.onnx", None, kind, None, 0)
    assert result.holdout_accuracy is None
    assert result.holdout_mae is not None and 0 < result.holdout_mae < 0.3
    signature = inspect_onnx_file(result.out)
    assert signature.task == "regressor" and [o.name for o in signature.outputs] == ["value"]


def test_train_command_constant_scores_the_majority_share(cancer_csv: Path, tmp_path: Path) -> None:
    result = train_command(cancer_csv, tmp_path / "broken.onnx", None, "constant", None, 0)
    _, y = breast_cancer_arrays()
    _, y_test = train_test_split(y, test_size=0.2, random_state=0, stratify=y)
    assert result.holdout_accuracy == pytest.approx(np.mean(y_test == 1))
    assert result.holdout_accuracy is not None and result.holdout_accuracy < 0.7


def test_train_command_errors(tmp_path: Path) -> None:
    few = _write(tmp_path / "few.csv", "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(9)))
    with pytest.raises(InvalidInput, match="has 9 rows; at least 10 are needed"):
        train_command(few, tmp_path / "m.onnx", None, "logreg", None, 0)
    with pytest.raises(InvalidInput, match="unknown model kind"):
        train_command(few, tmp_path / "m.onnx", None, "svm", None, 0)
    assert not (tmp_path / "m.onnx").exists()


def test_train_command_with_a_rare_class(tmp_path: Path) -> None:
    """One example of a class cannot be stratified: the split falls back to a plain shuffle."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(float)
    y[0] = 2.0
    path = tmp_path / "rare.npy"
    np.save(path, np.column_stack([X, y]))
    result = train_command(path, tmp_path / "rare.onnx", None, "logreg", None, 0)
    assert result.holdout_accuracy is not None and result.n_holdout == 8


# ---- export and baseline ----


def test_export_is_deterministic_with_the_documented_tensors(tmp_path: Path) -> None:
    X, y = breast_cancer_arrays()
    model = train_model(X, y, "logreg", 0)
    export_onnx(model, 30, tmp_path / "a.onnx")
    export_onnx(train_model(X, y, "logreg", 0), 30, tmp_path / "b.onnx")
    assert sha256_file(tmp_path / "a.onnx") == sha256_file(tmp_path / "b.onnx")
    session = ort.InferenceSession(str(tmp_path / "a.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type, i.shape) for i in session.get_inputs()] == [("input", "tensor(float)", [None, 30])]
    assert [(o.name, o.type) for o in session.get_outputs()] == [
        ("label", "tensor(int64)"),
        ("probabilities", "tensor(float)"),
    ]
    labels, probabilities = session.run(None, {"input": X[:50]})
    assert np.array_equal(labels, model.predict(X[:50]))
    assert np.allclose(probabilities, model.predict_proba(X[:50]), atol=1e-5)
    # No temporary files are left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx"]


def test_export_refuses_what_it_cannot_convert(tmp_path: Path) -> None:
    from sklearn.dummy import DummyClassifier

    X, y = breast_cancer_arrays()
    model = DummyClassifier(strategy="uniform").fit(X, y)
    with pytest.raises(InvalidInput, match=r"cannot export DummyClassifier to ONNX: .*random"):
        export_onnx(model, 30, tmp_path / "dummy.onnx")
    assert not (tmp_path / "dummy.onnx").exists()


def test_write_baseline_samples_without_replacement(tmp_path: Path) -> None:
    X = np.arange(5000, dtype=np.float64).reshape(2500, 2)
    write_baseline(X, tmp_path / "b.npy", max_rows=1000, seed=4)
    sample = np.load(tmp_path / "b.npy")
    assert sample.dtype == np.float32 and sample.shape == (1000, 2)
    assert len({row.tobytes() for row in sample}) == 1000
    assert np.all(sample[:, 1] == sample[:, 0] + 1)  # whole rows, not mixed cells
    write_baseline(X, tmp_path / "again.npy", max_rows=1000, seed=4)
    assert np.array_equal(np.load(tmp_path / "again.npy"), sample)
    with pytest.raises(InvalidInput, match="non-empty 2-D"):
        write_baseline(X[:0], tmp_path / "empty.npy")


def test_every_kind_is_listed() -> None:
    assert KINDS == ("logreg", "gbm", "constant", "ridge", "gbr")
