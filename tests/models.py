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

from controlplane.training import breast_cancer_arrays, export_onnx, train_model, write_baseline

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
    return _cached(
        Path(directory) / "baseline.npy", lambda tmp: write_baseline(_breast_cancer()[0], tmp)
    )


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
