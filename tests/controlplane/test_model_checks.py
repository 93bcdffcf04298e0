"""Registration's trial run (`prove_servable`, here in this process): a model must answer as an
agent will run it, on the baseline rows or on a row of zeros; refusals say what failed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from controlplane.model_checks import prove_servable
from controlplane.onnx_inspect import TensorSpec
from core.errors import InvalidInput
from tests.models import make_classifier_onnx, make_sum_regressor_onnx


def _save(nodes: list, inputs: list, path: Path, initializers: tuple = ()) -> Path:
    y = helper.make_tensor_value_info("value", TensorProto.FLOAT, [None, 1])
    graph = helper.make_graph(nodes, "g", inputs, [y], initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path.write_bytes(model.SerializeToString())
    return path


def _x(name: str = "input") -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, 2])


def test_a_servable_model_answers_its_baseline_rows_and_a_row_of_zeros(models_dir: Path) -> None:
    path = make_sum_regressor_onnx(models_dir)
    rows = np.array([[1.0, 2.0], [-3.0, 0.5]])
    for sample in (rows, None):
        signature = prove_servable(str(path), "m:v1", sample)
        assert signature.inputs == (TensorSpec("input", "float32", (None, 2)),) and signature.task == "regressor"
    classifier = make_classifier_onnx(models_dir)
    assert prove_servable(str(classifier), "m:v2", np.zeros((3, 30))).task == "classifier"


def test_nan_out_on_a_baseline_row_is_refused_a_row_of_zeros_is_not_judged(tmp_path: Path) -> None:
    # sqrt of the row's sum: NaN for a row that sums below 0 (agents answer such a row INTERNAL).
    axis = numpy_helper.from_array(np.array([1], np.int64), "axis1")
    nodes = [
        helper.make_node("ReduceSum", ["input", "axis1"], ["total"], keepdims=1),
        helper.make_node("Sqrt", ["total"], ["value"]),
    ]
    path = _save(nodes, [_x()], tmp_path / "sqrt.onnx", (axis,))
    with pytest.raises(InvalidInput, match=r"^m:v1 fails on its baseline rows: it answers NaN or infinity for row 1"):
        prove_servable(str(path), "m:v1", np.array([[1.0, 1.0], [-5.0, 1.0]]))
    prove_servable(str(path), "m:v1", None)  # a row of zeros is synthetic: its answer is not judged


def test_a_model_agents_cannot_serve_is_refused_with_their_reason(tmp_path: Path) -> None:
    # Its only output is text: nothing an agent can answer as a label, probabilities or a value.
    y = helper.make_tensor_value_info("value", TensorProto.STRING, [None, 2])
    graph = helper.make_graph([helper.make_node("Cast", ["input"], ["value"], to=TensorProto.STRING)], "g", [_x()], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "text.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(InvalidInput, match=r"^agents cannot serve m:v1: the model has no numeric tensor output"):
        prove_servable(str(path), "m:v1", None)


def test_a_model_that_fails_at_run_time_is_refused_naming_the_rows(tmp_path: Path) -> None:
    # Reshape to a fixed [3, 1]: loads, but fails on any batch that is not 3 values.
    shape = numpy_helper.from_array(np.array([3, 1], np.int64), "shape")
    axis = numpy_helper.from_array(np.array([1], np.int64), "axis1")
    nodes = [
        helper.make_node("ReduceSum", ["input", "axis1"], ["total"], keepdims=1),
        helper.make_node("Reshape", ["total", "shape"], ["value"]),
    ]
    path = _save(nodes, [_x()], tmp_path / "reshape.onnx", (shape, axis))
    with pytest.raises(InvalidInput, match=r"^m:v1 fails on a row of zeros shaped \[rows, 2\]: ") as zeros:
        prove_servable(str(path), "m:v1", None)
    assert "[ONNXRuntimeError]" not in zeros.value.message
    with pytest.raises(InvalidInput, match=r"^m:v1 fails on its baseline rows: "):
        prove_servable(str(path), "m:v1", np.ones((5, 2)))
