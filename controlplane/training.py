"""The built-in trainer behind `sluice train`, retraining runs and the demo.

scikit-learn model -> ONNX file (+ a baseline sample of training rows for drift bins). It runs
locally, with no control plane, so every failure a user can cause is an `InvalidInput` that says
what to fix. Reading the labeled file is `datasets.py`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from controlplane.datasets import NPY_MAGIC, load_dataset
from controlplane.onnx_export import (
    INPUT_NAME,
    LABEL_OUTPUT,
    export_onnx,
    export_with_inputs,
)
from controlplane.tables import NUMERIC, PARQUET_MAGIC, Table, read_table_file, split_label, write_parquet
from core.errors import InvalidInput

CLASSIFIERS = ("logreg", "gbm", "constant")
REGRESSORS = ("ridge", "gbr")
KINDS = CLASSIFIERS + REGRESSORS
MIN_TRAINING_ROWS = 10
HOLDOUT_FRACTION = 0.2
GBM_ESTIMATORS = 50


@dataclass(frozen=True)
class TrainResult:
    """What `sluice train` reports; exactly one of the two holdout metrics is set."""

    n_rows: int
    n_features: int
    kind: str
    out: Path
    baseline: Path
    holdout_accuracy: float | None = None
    holdout_mae: float | None = None
    n_holdout: int = 0
    #: mixed data: the model's inputs, one per column, {name: "numeric" | "categorical"}; empty
    #: for the classic single float input [rows, features]
    columns: dict[str, str] = field(default_factory=dict)


# ---- training ----


def _classes(y: np.ndarray, kind: str) -> np.ndarray:
    """Classifier labels as int64; refuse fractional labels rather than truncating them."""
    y = np.asarray(y)
    if y.dtype.kind in "iub":
        return y.astype(np.int64)
    if y.dtype.kind != "f":
        raise InvalidInput(f"labels must be numeric class ids for kind {kind!r}, got {y.dtype}")
    fractional = y != np.round(y)
    if fractional.any():
        example = y[np.argmax(fractional)]
        raise InvalidInput(
            f"kind {kind!r} is a classifier and needs integer class labels, but a label is "
            f"{example:g}; for a numeric target use a regressor ({', '.join(REGRESSORS)})"
        )
    if np.abs(y).max(initial=0.0) > 2**53:
        raise InvalidInput("class labels must be integers below 2**53")
    return y.astype(np.int64)


def train_model(X: np.ndarray, y: np.ndarray, kind: str = "logreg", seed: int = 0) -> Any:
    """Fit one of the built-in kinds; the task (classification or regression) follows the kind."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind not in KINDS:
        raise InvalidInput(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise InvalidInput(f"training features must be a non-empty 2-D array, got shape {list(X.shape)}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise InvalidInput(f"need one label per row: {X.shape[0]} rows, labels of shape {list(y.shape)}")
    if kind in REGRESSORS:
        target = y.astype(np.float64)
        if kind == "ridge":
            return make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(X, target)
        gbr = GradientBoostingRegressor(n_estimators=GBM_ESTIMATORS, max_depth=3, random_state=seed)
        return gbr.fit(X, target)
    classes = _classes(y, kind)
    if kind == "constant":
        # Answers the most frequent class whatever the input: a deliberately broken challenger.
        return DummyClassifier(strategy="most_frequent").fit(X, classes)
    if np.unique(classes).size < 2:
        raise InvalidInput(f"every label is {classes[0]}: a classifier needs at least two classes")
    if kind == "logreg":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    else:
        model = GradientBoostingClassifier(n_estimators=GBM_ESTIMATORS, max_depth=3, random_state=seed)
    return model.fit(X, classes)


def write_baseline(X: np.ndarray, out_path: Path, max_rows: int = 1000, seed: int = 0) -> None:
    """Save a random sample of training rows (float32 .npy): the control plane bins drift on it."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise InvalidInput(f"a baseline needs a non-empty 2-D array, got shape {list(X.shape)}")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(X.shape[0], size=min(max_rows, X.shape[0]), replace=False))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:  # a handle: np.save would append ".npy" to a bare path
            np.save(handle, np.ascontiguousarray(X[rows], dtype=np.float32))
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)


def _onnx_predictions(path: Path, X: np.ndarray) -> np.ndarray:
    """Predictions of the exported file itself, so the reported metric is that of what ships."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    wanted = LABEL_OUTPUT if LABEL_OUTPUT in names else names[0]
    (out,) = session.run([wanted], {INPUT_NAME: np.ascontiguousarray(X, dtype=np.float32)})
    return np.asarray(out).reshape(-1)


def _only(X: np.ndarray, features: Sequence[int] | None) -> np.ndarray:
    """X with every column outside `features` set to 0 (None: X itself)."""
    if features is None:
        return X
    keep = sorted({int(i) for i in features})
    if not keep or keep[0] < 0 or keep[-1] >= X.shape[1]:
        raise InvalidInput(f"only_features must name columns 0..{X.shape[1] - 1}, got {list(features)}")
    masked = np.zeros_like(X)
    masked[:, keep] = X[:, keep]
    return masked


# ---- mixed-type tables: one ONNX input per column ----


def _table_classes(labels: np.ndarray, kind: str) -> np.ndarray:
    """Class labels of a table: text classes as they are (str), numbers as int64 class ids."""
    if labels.dtype.kind == "O":
        return labels.astype(str)
    return _classes(labels, kind)


def fit_table(features: Table, labels: np.ndarray, kind: str = "logreg", seed: int = 0) -> Any:
    """A Pipeline(ColumnTransformer(imputer + scaler on numbers, one-hot on strings), estimator).

    The imputer fills a missing number with the column's median; the one-hot encoder ignores a
    category it never saw (a live row with a new plan still gets an answer). `labels` must already
    be class labels for a classifier (`_table_classes`) or float64 for a regressor.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if kind not in KINDS:
        raise InvalidInput(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    parts: list[tuple[str, Any, list[str]]] = []
    if features.numeric():
        numbers = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
        parts.append(("numeric", numbers, features.numeric()))
    if features.categorical():
        parts.append(("categorical", OneHotEncoder(handle_unknown="ignore"), features.categorical()))
    estimator: Any
    if kind == "logreg":
        estimator = LogisticRegression(max_iter=1000)
    elif kind == "gbm":
        estimator = GradientBoostingClassifier(n_estimators=GBM_ESTIMATORS, max_depth=3, random_state=seed)
    elif kind == "constant":
        estimator = DummyClassifier(strategy="most_frequent")
    elif kind == "ridge":
        estimator = Ridge(alpha=1.0)
    else:
        estimator = GradientBoostingRegressor(n_estimators=GBM_ESTIMATORS, max_depth=3, random_state=seed)
    if kind in CLASSIFIERS and kind != "constant" and np.unique(labels).size < 2:
        raise InvalidInput(f"every label is {labels[0]}: a classifier needs at least two classes")
    pipeline = Pipeline([("columns", ColumnTransformer(parts)), ("model", estimator)])
    return pipeline.fit(features.to_arrow(), labels)


def table_input_types(features: Table) -> list[tuple[str, Any]]:
    """One ONNX input per column, [rows, 1]: float32 for numbers (onnxruntime has no float64
    Imputer kernel), string for categories."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    return [
        (name, FloatTensorType([None, 1]) if features.kind(name) == NUMERIC else StringTensorType([None, 1]))
        for name in features.names
    ]


def table_feeds(features: Table) -> dict[str, np.ndarray]:
    """The table as onnxruntime feeds of `table_input_types`' model (missing numbers stay NaN)."""
    feeds: dict[str, np.ndarray] = {}
    for name in features.names:
        column = features.columns[name]
        if features.kind(name) == NUMERIC:
            feeds[name] = column.astype(np.float32).reshape(-1, 1)
        else:
            feeds[name] = column.astype(object).reshape(-1, 1)
    return feeds


def export_table_onnx(model: Any, features: Table, out_path: Path) -> None:
    """Export a `fit_table` pipeline: inputs by column name, outputs as `export_onnx`'s (a
    classifier with text classes answers `label` as tensor(string))."""
    what = f"{type(model[-1]).__name__} on mixed columns"
    export_with_inputs(model, table_input_types(features), out_path, what)


def _table_predictions(path: Path, features: Table) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    wanted = LABEL_OUTPUT if LABEL_OUTPUT in names else names[0]
    (out,) = session.run([wanted], table_feeds(features))
    return np.asarray(out).reshape(-1)


def _as_float32_values(features: Table) -> Table:
    """Numbers rounded to float32, as the model will receive them, so that scikit-learn fits on
    exactly the values onnxruntime later sees."""
    columns = {
        n: (c.astype(np.float32).astype(np.float64) if features.kind(n) == NUMERIC else c)
        for n, c in features.columns.items()
    }
    return Table(features.names, columns)


def _train_table(
    data: Path, features: Table, labels: np.ndarray, out: Path, baseline_out: Path | None, kind: str, seed: int
) -> TrainResult:
    """The mixed-type path of `train_command`: one input per column, a Parquet baseline."""
    if baseline_out is not None and Path(baseline_out).suffix != ".parquet":
        raise InvalidInput(
            f"{data} has text or missing cells: its baseline is a Parquet table; name it .parquet, not {baseline_out}"
        )
    if features.rows < MIN_TRAINING_ROWS:
        raise InvalidInput(f"{data} has {features.rows} rows; at least {MIN_TRAINING_ROWS} are needed to train")
    features = _as_float32_values(features)
    stratify = None
    if kind in CLASSIFIERS:
        y = _table_classes(labels, kind)
        _, counts = np.unique(y, return_counts=True)
        if counts.size > 1 and counts.min() >= 2 and math.ceil(HOLDOUT_FRACTION * len(y)) >= counts.size:
            stratify = y
    elif labels.dtype.kind != "f":
        raise InvalidInput(f"kind {kind!r} is a regressor: its label column must hold numbers, not text")
    else:
        y = labels.astype(np.float64)
    from sklearn.model_selection import train_test_split

    train_rows, test_rows = train_test_split(
        np.arange(features.rows), test_size=HOLDOUT_FRACTION, random_state=seed, stratify=stratify
    )
    train_rows, test_rows = np.sort(train_rows), np.sort(test_rows)
    model = fit_table(features.take(train_rows), y[train_rows], kind, seed)
    out = Path(out)
    baseline = out.with_name(out.stem + ".baseline.parquet") if baseline_out is None else Path(baseline_out)
    export_table_onnx(model, features, out)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(train_rows, size=min(1000, train_rows.size), replace=False))
    write_parquet(features.take(sample), baseline)
    predicted = _table_predictions(out, features.take(test_rows))
    truth = y[test_rows]
    result = TrainResult(
        n_rows=features.rows,
        n_features=len(features.names),
        kind=kind,
        out=out,
        baseline=baseline,
        n_holdout=len(truth),
        columns={n: features.kind(n) for n in features.names},
    )
    if kind in CLASSIFIERS:
        return replace(result, holdout_accuracy=float(np.mean(predicted.astype(truth.dtype) == truth)))
    return replace(result, holdout_mae=float(np.mean(np.abs(predicted.astype(np.float64) - truth))))


def _read_training_table(data: Path, label_column: str | None) -> tuple[Table, np.ndarray] | None:
    """The file as (features, labels) when it is a CSV or Parquet table that needs the mixed path
    (text or missing cells, or text labels); None for a .npy or a complete numeric table."""
    path = Path(data)
    try:
        with path.open("rb") as handle:
            magic = handle.read(6)
    except OSError:
        return None  # load_dataset says what is wrong with the path
    if magic == NPY_MAGIC or path.suffix.lower() == ".npy" or not magic:
        return None
    table = read_table_file(path)
    features, labels = split_label(table, label_column, str(path))
    if features.complete_numeric() and labels.dtype.kind == "f" and not magic.startswith(PARQUET_MAGIC):
        return None  # the classic path: one float input [rows, features], with its exact checks
    return features, labels


def train_command(
    data: Path,
    out: Path,
    baseline_out: Path | None,
    kind: str = "logreg",
    label_column: str | None = None,
    seed: int = 0,
    *,
    only_features: Sequence[int] | None = None,
) -> TrainResult:
    """Split 80/20 (seeded), train, export, score the holdout on the ONNX file, write a baseline.

    The baseline defaults to `<out stem>.baseline.npy` next to the model. The metric is computed
    with onnxruntime on the exported file, so it is the metric of what ships.

    `only_features` (column indices) trains a model that looks at those columns only: the others
    are zero during fitting, so their weights stay 0, while the model keeps the full input schema
    (a challenger on every column can then run beside it). The holdout and the baseline use the
    real rows, since those are what the model will be sent.
    """
    if kind not in KINDS:
        raise InvalidInput(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    mixed = _read_training_table(data, label_column)
    if mixed is not None:
        features, labels = mixed
        if features.complete_numeric() and labels.dtype.kind == "f":
            X, y = features.matrix().astype(np.float32), labels  # a numeric Parquet file: the classic path
        elif only_features is not None:
            raise InvalidInput("only_features applies to numeric [rows, features] data, not to mixed columns")
        else:
            return _train_table(data, features, labels, out, baseline_out, kind, seed)
    else:
        X, y = load_dataset(data, label_column)
    if X.shape[0] < MIN_TRAINING_ROWS:
        raise InvalidInput(f"{data} has {X.shape[0]} rows; at least {MIN_TRAINING_ROWS} are needed to train")
    stratify = None
    if kind in CLASSIFIERS:
        y = _classes(y, kind)
        _, counts = np.unique(y, return_counts=True)
        n_test = math.ceil(HOLDOUT_FRACTION * len(y))
        if counts.size > 1 and counts.min() >= 2 and n_test >= counts.size:
            stratify = y  # keeps rare classes on both sides of the split
    # scikit-learn takes seconds to import: only once the data has proven usable, so a bad file
    # or option is refused at once.
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=HOLDOUT_FRACTION, random_state=seed, stratify=stratify
    )
    model = train_model(_only(X_train, only_features), y_train, kind, seed)
    out = Path(out)
    default_baseline = out.with_name(out.stem + ".baseline.npy")
    baseline = default_baseline if baseline_out is None else Path(baseline_out)
    export_onnx(model, X.shape[1], out)
    write_baseline(X_train, baseline, seed=seed)
    predicted = _onnx_predictions(out, X_test)
    result = TrainResult(
        n_rows=int(X.shape[0]),
        n_features=int(X.shape[1]),
        kind=kind,
        out=out,
        baseline=baseline,
        n_holdout=len(y_test),
    )
    if kind in CLASSIFIERS:
        return replace(result, holdout_accuracy=float(np.mean(predicted == y_test)))
    errors = np.abs(predicted.astype(np.float64) - y_test)
    return replace(result, holdout_mae=float(np.mean(errors)))
