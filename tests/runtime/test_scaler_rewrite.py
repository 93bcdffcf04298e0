"""Scaler nodes run as the Sub and Mul they compute (runtime.graph.scalers_as_arithmetic).

The agent changes the graph it runs, never what it answers: every output must be the same bits
as the file's own graph gives, for every float32 input (NaN, infinities, subnormals, the largest
values), and every Scaler the rewrite cannot reproduce exactly is left alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from onnx import TensorProto, helper

from runtime.graph import scalers_as_arithmetic
from runtime.model import ModelRuntime
from tests.models import breast_cancer_rows, make_classifier_onnx, make_regressor_onnx

FLOAT32 = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)


def _as_written(path: Path) -> ort.InferenceSession:
    """The file's own graph, with the session settings ModelRuntime uses."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _same_bits(runtime: ModelRuntime, original: ort.InferenceSession, x: np.ndarray) -> None:
    name = runtime.input_name
    for ours, theirs in zip(runtime.session.run(None, {name: x}), original.run(None, {name: x}), strict=True):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert ours.tobytes() == theirs.tobytes()


def _scaler_model(path: Path, offset: list[float], scale: list[float], shape: list[int | None], elem: int) -> Path:
    """input -> Scaler(offset, scale) -> value: a regressor as agents serve them."""
    x = helper.make_tensor_value_info("input", elem, shape)
    y = helper.make_tensor_value_info("value", TensorProto.FLOAT, shape)
    node = helper.make_node("Scaler", ["input"], ["value"], domain="ai.onnx.ml", offset=offset, scale=scale)
    graph = helper.make_graph([node], "g", [x], [y])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)], ir_version=8
    )
    model.producer_name = "sluice-tests"
    model.metadata_props.add(key="kept", value="yes")
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("make", [make_classifier_onnx, make_regressor_onnx], ids=["logreg", "ridge"])
def test_trained_models_run_their_scaler_as_sub_and_mul(models_dir: Path, make: object) -> None:
    path = make(models_dir)  # type: ignore[operator]
    runtime = ModelRuntime(path)
    assert runtime.scalers_replaced == 1  # StandardScaler -> Scaler, in every model `sluice train` exports
    _same_bits(runtime, _as_written(path), breast_cancer_rows(1024, seed=3))


@settings(max_examples=60, deadline=None)
@given(rows=arrays(np.float32, st.tuples(st.integers(1, 64), st.just(30)), elements=FLOAT32))
def test_the_classifier_answers_the_same_bits_for_any_float32_rows(models_dir: Path, rows: np.ndarray) -> None:
    path = make_classifier_onnx(models_dir)
    _same_bits(_runtime(path), _original(path), rows)


_SESSIONS: dict[Path, tuple[ModelRuntime, ort.InferenceSession]] = {}


def _runtime(path: Path) -> ModelRuntime:
    if path not in _SESSIONS:
        _SESSIONS[path] = (ModelRuntime(path), _as_written(path))
    return _SESSIONS[path][0]


def _original(path: Path) -> ort.InferenceSession:
    _runtime(path)
    return _SESSIONS[path][1]


@pytest.mark.parametrize(
    ("offset", "scale"),
    [([1.5, -2.0, 3e38], [0.5, 1e-30, -7.0]), ([0.25], [3.0])],
    ids=["per-column", "one-value"],
)
def test_a_hand_built_scaler_gives_the_same_bits_and_the_file_keeps_its_other_fields(
    tmp_path: Path, offset: list[float], scale: list[float]
) -> None:
    path = _scaler_model(tmp_path / "scaler.onnx", offset, scale, [None, 3], TensorProto.FLOAT)
    runtime = ModelRuntime(path)
    assert runtime.scalers_replaced == 1
    extremes = np.array(
        [[np.nan, np.inf, -np.inf], [3.4028235e38, -3.4028235e38, 1e-45], [0.0, -0.0, 1.0], [-1e-38, 7.5, 3e38]],
        dtype=np.float32,
    )
    rng = np.random.default_rng(11)
    noise = (rng.standard_normal((500, 3)) * 10.0 ** rng.integers(-45, 38, (500, 3))).astype(np.float32)
    _same_bits(runtime, _as_written(path), np.concatenate([extremes, noise]))
    changed, replaced = scalers_as_arithmetic(path.read_bytes())
    model = onnx.load_from_string(changed)
    onnx.checker.check_model(model)
    assert replaced == 1 and [n.op_type for n in model.graph.node] == ["Sub", "Mul"]
    assert model.producer_name == "sluice-tests" and model.metadata_props[0].value == "yes"


@pytest.mark.parametrize(
    ("shape", "elem", "offset", "scale"),
    [
        ([None, 3], TensorProto.DOUBLE, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),  # computed in double, then rounded
        ([None, 3], TensorProto.INT64, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
        ([None, 3, 1], TensorProto.FLOAT, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),  # Scaler indexes axis 1, not the last
        ([None, None], TensorProto.FLOAT, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),  # a width only known per call
    ],
    ids=["double", "int64", "rank-3", "open-width"],
)
def test_scalers_it_cannot_reproduce_exactly_are_left_alone(
    tmp_path: Path, shape: list[int | None], elem: int, offset: list[float], scale: list[float]
) -> None:
    path = _scaler_model(tmp_path / "scaler.onnx", offset, scale, shape, elem)
    data = path.read_bytes()
    assert scalers_as_arithmetic(data) == (data, 0)
    if len(shape) == 3:
        return  # an output of rank 3 is no model an agent serves; the reading above is the point
    runtime = ModelRuntime(path)
    assert runtime.scalers_replaced == 0
    x = np.arange(12).reshape(4, 3).astype(helper.tensor_dtype_to_np_dtype(elem))
    _same_bits(runtime, _as_written(path), x)


def test_a_file_the_reader_cannot_parse_is_left_as_it_is() -> None:
    assert scalers_as_arithmetic(b"\xff\xff not an onnx file") == (b"\xff\xff not an onnx file", 0)
