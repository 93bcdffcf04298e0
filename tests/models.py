"""Small real models for tests: trained with scikit-learn, exported with skl2onnx, cached on disk.

Every helper writes into the directory it is given (usually the session-scoped `models_dir`
fixture) and reuses a file that is already there, so a test session trains each model once.
Writes go to a temporary name and are renamed, so threads and xdist workers sharing a directory
never see half a file.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from controlplane.onnx_export import export_onnx
from controlplane.sample_data import breast_cancer_arrays
from controlplane.training import train_model, write_baseline

_lock = threading.Lock()


@functools.cache
def _breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    X, y = breast_cancer_arrays()
    X.setflags(write=False)  # shared by every caller: a test must not edit it in place
    y.setflags(write=False)
    return X, y


def _cached(path: Path, write: Callable[[Path], None]) -> Path:
    with _lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}{path.suffix}")
            try:
                write(tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
    return path


def make_classifier_onnx(directory: Path, kind: str = "logreg", seed: int = 0) -> Path:
    """A breast-cancer classifier trained on all 569 rows with `train_model(X, y, kind, seed)`.

    Input `input` float32 [N, 30]; outputs `label` int64 [N] and `probabilities` float32 [N, 2].
    kind: 'logreg', 'gbm' (50 trees) or 'constant' (always the majority class, 1).
    """

    def write(tmp: Path) -> None:
        X, y = _breast_cancer()
        export_onnx(train_model(X, y, kind, seed), X.shape[1], tmp)

    return _cached(Path(directory) / f"classifier-{kind}-{seed}.onnx", write)


FIXTURES = Path(__file__).parent / "fixtures"


def fixture_classifier(kind: str) -> Path:
    """A committed breast-cancer classifier ('logreg' or 'constant'), fixed bytes whatever the
    installed scikit-learn/skl2onnx/onnx: for tests that show or compare a model's sha256 or size.
    Same inputs and outputs as `make_classifier_onnx` (regenerate: `python -m tests.fixtures.make`).
    """
    path = FIXTURES / f"classifier-{kind}.onnx"
    if not path.exists():
        raise FileNotFoundError(f"no committed fixture {path.name}; kinds: logreg, constant")
    return path


def regression_target() -> np.ndarray:
    """The regressor's target: the benign label as a score in [0, 1] (MAE around 0.2)."""
    return _breast_cancer()[1].astype(np.float64)


def make_regressor_onnx(directory: Path, seed: int = 0) -> Path:
    """A ridge regressor on the same 30 features: input `input` [N, 30], output `value` [N, 1]."""

    def write(tmp: Path) -> None:
        X, _ = _breast_cancer()
        export_onnx(train_model(X, regression_target(), "ridge", seed), X.shape[1], tmp)

    return _cached(Path(directory) / f"regressor-{seed}.onnx", write)


def make_baseline(directory: Path) -> Path:
    """A baseline sample (.npy float32 [569, 30]) of the breast-cancer features."""
    return _cached(Path(directory) / "baseline.npy", lambda tmp: write_baseline(_breast_cancer()[0], tmp))


def breast_cancer_rows(n: int, seed: int = 0) -> np.ndarray:
    """n rows drawn from the breast-cancer features (float32, C-contiguous, a fresh copy).

    With replacement only when n exceeds the 569 rows available.
    """
    X, _ = _breast_cancer()
    rows = np.random.default_rng(seed).choice(X.shape[0], size=n, replace=n > X.shape[0])
    return X[rows]


# ---- hand-built models: a harmless one and hostile ones (issue 13, item 7) ----
# Input `input` float32 [N, features], output `value` float32 [N, 1]: regressors as agents serve them.


def _regressor_graph(nodes: list[Any], initializers: list[Any], features: int) -> Any:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, features])
    y = helper.make_tensor_value_info("value", TensorProto.FLOAT, [None, 1])
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _axis_one() -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.array([1], np.int64), "axis1")


def _write_model(path: Path, model: Any) -> Path:
    return _cached(path, lambda tmp: tmp.write_bytes(model.SerializeToString()))


def make_sum_regressor_onnx(directory: Path, features: int = 2, scale: float = 1.0) -> Path:
    """A harmless regressor: `value` = scale * the sum of the row's features."""
    from onnx import helper, numpy_helper

    nodes = [
        helper.make_node("ReduceSum", ["input", "axis1"], ["total"], keepdims=1),
        helper.make_node("Mul", ["total", "scale"], ["value"]),
    ]
    scale_tensor = numpy_helper.from_array(np.array(scale, np.float32), "scale")
    model = _regressor_graph(nodes, [_axis_one(), scale_tensor], features)
    return _write_model(Path(directory) / f"sum-{features}-{scale:g}.onnx", model)


def make_tile_bomb_onnx(directory: Path, features: int = 2, elements: int = 1 << 30) -> Path:
    """A few hundred bytes that make onnxruntime fill `elements` float32s (4 GiB by default):
    a Tile of a one-element constant, summed into every answer."""
    from onnx import helper, numpy_helper

    nodes = [
        helper.make_node("Tile", ["one", "repeats"], ["big"]),
        helper.make_node("ReduceSum", ["big"], ["big_total"], keepdims=0),
        helper.make_node("ReduceSum", ["input", "axis1"], ["total"], keepdims=1),
        helper.make_node("Add", ["total", "big_total"], ["value"]),
    ]
    initializers = [
        numpy_helper.from_array(np.ones(1, np.float32), "one"),
        numpy_helper.from_array(np.array([elements], np.int64), "repeats"),
        _axis_one(),
    ]
    model = _regressor_graph(nodes, initializers, features)
    return _write_model(Path(directory) / f"tile-bomb-{features}-{elements}.onnx", model)


def make_endless_loop_onnx(directory: Path, features: int = 2, data_dependent: bool = False) -> Path:
    """A Loop of 10**12 iterations that never finishes; with `data_dependent`, 10**12 times the sum
    of the batch's absolute values, so a row of zeros runs it 0 times and real rows forever."""
    from onnx import TensorProto, helper, numpy_helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [None, features]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [None, features]),
        ],
    )
    initializers = [numpy_helper.from_array(np.array(True), "keep_going"), _axis_one()]
    nodes = []
    if data_dependent:
        initializers.append(numpy_helper.from_array(np.array(1e12, np.float32), "scale"))
        nodes += [
            helper.make_node("Abs", ["input"], ["magnitude"]),
            helper.make_node("ReduceSum", ["magnitude"], ["mass"], keepdims=0),
            helper.make_node("Mul", ["mass", "scale"], ["trips_float"]),
            helper.make_node("Cast", ["trips_float"], ["trips"], to=TensorProto.INT64),
        ]
    else:
        initializers.append(numpy_helper.from_array(np.array(10**12, np.int64), "trips"))
    nodes += [
        helper.make_node("Loop", ["trips", "keep_going", "input"], ["looped"], body=body),
        helper.make_node("ReduceSum", ["looped", "axis1"], ["value"], keepdims=1),
    ]
    name = f"endless-loop-{features}{'-data' if data_dependent else ''}.onnx"
    return _write_model(Path(directory) / name, _regressor_graph(nodes, initializers, features))


def make_slow_loop_onnx(directory: Path, features: int = 2) -> Path:
    """A regressor that loops once per unit of its rows' summed absolute values (a Loop of
    Identity steps), then answers that sum: a row [0, 0] is instant, a row [200000, 0] takes a
    noticeable time. A model slower than a caller's deadline on the inputs the test chooses."""
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [None, features]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [None, features]),
        ],
    )
    from onnx import numpy_helper

    initializers = [numpy_helper.from_array(np.array(True), "keep_going"), _axis_one()]
    nodes = [
        helper.make_node("Abs", ["input"], ["magnitude"]),
        helper.make_node("ReduceSum", ["magnitude"], ["mass"], keepdims=0),
        helper.make_node("Cast", ["mass"], ["trips"], to=TensorProto.INT64),
        helper.make_node("Loop", ["trips", "keep_going", "input"], ["looped"], body=body),
        helper.make_node("ReduceSum", ["looped", "axis1"], ["value"], keepdims=1),
    ]
    model = _regressor_graph(nodes, initializers, features)
    return _write_model(Path(directory) / f"slow-loop-{features}.onnx", model)


# ---- a mixed-type tabular pipeline (issue 14) ----

#: the mixed model's inputs: three float64 columns with missing values, then two string columns
MIXED_NUMBERS = ("age", "income", "visits")
MIXED_STRINGS = ("plan", "country")
MIXED_CLASSES = ("churn", "stay")


@functools.cache
def _mixed_table(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n rows [age, income, visits, plan, country] (object) with about 10% missing numbers, and
    their string class ("churn"/"stay"), from a fixed rule plus noise."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, n).round(1)
    income = rng.normal(50, 15, n).round(2)
    visits = rng.poisson(5, n).astype(np.float64)
    plan = rng.choice(["free", "pro", "team"], n)
    country = rng.choice(["de", "fr", "us"], n)
    score = 0.08 * (age - 40) - 0.05 * (income - 50) + 0.3 * (visits - 5) + 1.5 * (plan == "free")
    score += 0.7 * (country == "us") + rng.normal(0, 0.8, n)
    y = np.where(score > 0.5, "churn", "stay")
    for column in (age, income, visits):
        column[rng.random(n) < 0.1] = np.nan
    table = np.empty((n, 5), dtype=object)
    for i, column in enumerate((age, income, visits, plan, country)):
        table[:, i] = column.tolist()
    table.setflags(write=False)
    return table, y


def mixed_rows(n: int, seed: int = 0) -> np.ndarray:
    """n rows of the mixed model's table (object [n, 5]: age, income, visits, plan, country)."""
    return _mixed_table(n, seed)[0].copy()


@functools.cache
def mixed_pipeline() -> Any:
    """Pipeline(ColumnTransformer(OneHotEncoder on plan and country, SimpleImputer + StandardScaler
    on age, income and visits), LogisticRegression), trained on 600 rows with string classes."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = _mixed_table(600, 0)
    columns = ColumnTransformer(
        [
            ("numbers", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), [0, 1, 2]),
            ("categories", OneHotEncoder(handle_unknown="ignore"), [3, 4]),
        ]
    )
    return Pipeline([("columns", columns), ("model", LogisticRegression())]).fit(X, y)


def _double_inputs(model: Any, names: tuple[str, ...]) -> Any:
    """The graph with these float inputs taken as float64 and cast to float32 inside.

    onnxruntime has no float64 kernel for the Imputer operator skl2onnx writes for a
    SimpleImputer, so the pipeline is exported with float32 columns; a client then sends FP64,
    as a model exported for float64 clients takes them.
    """
    from onnx import TensorProto, helper

    graph = model.graph
    casts = []
    for value in graph.input:
        if value.name in names:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
            inner = f"{value.name}_float32"
            casts.append(helper.make_node("Cast", [value.name], [inner], to=TensorProto.FLOAT))
            for node in graph.node:
                node.input[:] = [inner if i == value.name else i for i in node.input]
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def make_mixed_onnx(directory: Path) -> Path:
    """`mixed_pipeline()` exported by skl2onnx: inputs age, income, visits (float64 [N, 1]) and
    plan, country (string [N, 1]); outputs `label` (string [N]) and `probabilities` (float32 [N, 2])."""

    def write(tmp: Path) -> None:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType

        from controlplane.onnx_export import TARGET_OPSET

        pipeline = mixed_pipeline()
        types = [(name, FloatTensorType([None, 1])) for name in MIXED_NUMBERS]
        types += [(name, StringTensorType([None, 1])) for name in MIXED_STRINGS]
        onx = convert_sklearn(
            pipeline, initial_types=types, options={id(pipeline): {"zipmap": False}}, target_opset=TARGET_OPSET
        )
        tmp.write_bytes(_double_inputs(onx, MIXED_NUMBERS).SerializeToString())

    return _cached(Path(directory) / "mixed-pipeline.onnx", write)


def mixed_records(rows: np.ndarray) -> list[dict[str, Any]]:
    """The rows as records: {"age": 41.5, "income": None, "visits": 3.0, "plan": "pro", ...}."""
    names = MIXED_NUMBERS + MIXED_STRINGS
    return [
        {name: (None if isinstance(v, float) and np.isnan(v) else v) for name, v in zip(names, row, strict=True)}
        for row in rows.tolist()
    ]


def mixed_columns(rows: np.ndarray) -> dict[str, np.ndarray]:
    """The rows as typed columns by input name: float64 [n, 1] numbers, str [n, 1] strings."""
    out = {name: rows[:, [i]].astype(np.float64) for i, name in enumerate(MIXED_NUMBERS)}
    for j, name in enumerate(MIXED_STRINGS):
        out[name] = rows[:, [len(MIXED_NUMBERS) + j]].astype(str).astype(object)
    return out


#: what the int64 echo model subtracts from its input before answering it as a float
ECHO_OFFSET = 2**40


def make_int64_echo_onnx(directory: Path) -> Path:
    """A tiny graph built with onnx.helper: int64 input `n` [N, 1]; outputs `value` = n - 2^40 as
    float64 [N, 1] (exact in int64, then small enough that the float32 answer shows whether n
    arrived unchanged: 2^40 + 1 answers 1, rounded through float32 it would answer 0) and `echo`
    (n itself, int64 [N, 1])."""

    def write(tmp: Path) -> None:
        from onnx import TensorProto, helper

        n = helper.make_tensor_value_info("n", TensorProto.INT64, [None, 1])
        value = helper.make_tensor_value_info("value", TensorProto.DOUBLE, [None, 1])
        echo = helper.make_tensor_value_info("echo", TensorProto.INT64, [None, 1])
        offset = helper.make_tensor("offset", TensorProto.INT64, [1], [ECHO_OFFSET])
        graph = helper.make_graph(
            [
                helper.make_node("Sub", ["n", "offset"], ["shifted"]),
                helper.make_node("Cast", ["shifted"], ["value"], to=TensorProto.DOUBLE),
                helper.make_node("Identity", ["n"], ["echo"]),
            ],
            "int64-echo",
            [n],
            [value, echo],
            initializer=[offset],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        tmp.write_bytes(model.SerializeToString())

    return _cached(Path(directory) / "int64-echo.onnx", write)


# ---- a generated mixed-type table for `sluice train` (issue 14 item 6) ----

TABLE_STRINGS = ("plan", "device")
TABLE_NUMBERS = ("age", "income", "visits")
TABLE_PLANS = ("free", "pro", "team")


def mixed_table_rows(
    n: int, seed: int = 0, plans: tuple[float, float, float] = (0.5, 0.3, 0.2)
) -> list[dict[str, Any]]:
    """n deterministic rows: plan and device (text), age, income and visits (numbers, about 10%
    missing: None), and `label` "churn"/"stay" that depends on all of them."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(TABLE_PLANS, n, p=list(plans))
    device = rng.choice(["ios", "android", "web"], n)
    age = np.round(rng.normal(40, 10, n), 2)
    income = np.round(rng.normal(50, 15, n), 2)
    visits = rng.poisson(5, n).astype(np.float64)
    score = (plan == "pro") * 1.5 - (plan == "team") + (device == "web") * 0.7 + (age - 40) / 8 + rng.normal(0, 0.7, n)
    label = np.where(score > 0.3, "churn", "stay")
    for column in (age, income, visits):
        column[rng.random(n) < 0.1] = np.nan
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"plan": str(plan[i]), "device": str(device[i])}
        for name, column in zip(TABLE_NUMBERS, (age, income, visits), strict=True):
            row[name] = None if np.isnan(column[i]) else float(column[i])
        row["label"] = str(label[i])
        rows.append(row)
    return rows


def write_mixed_table(path: Path, rows: list[dict[str, Any]]) -> Path:
    """The rows as CSV (empty cell = missing) or, for a .parquet path, Parquet (null = missing)."""
    path = Path(path)
    names = list(rows[0])
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({name: [r[name] for r in rows] for name in names}), path)
        return path
    lines = [",".join(names)]
    lines += [",".join("" if r[n] is None else str(r[n]) for n in names) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path
