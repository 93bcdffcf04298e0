"""Models with several typed inputs, strings, missing values and string classes (issue 14), run by
the agent's onnxruntime wrapper against the scikit-learn pipeline they were exported from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from runtime.model import ModelRuntime
from tests.models import (
    MIXED_CLASSES,
    MIXED_NUMBERS,
    MIXED_STRINGS,
    breast_cancer_rows,
    make_classifier_onnx,
    make_int64_echo_onnx,
    make_mixed_onnx,
    mixed_columns,
    mixed_pipeline,
    mixed_rows,
)


@pytest.fixture(scope="module")
def mixed(models_dir: Path) -> ModelRuntime:
    return ModelRuntime(make_mixed_onnx(models_dir))


def _save(model: object, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())  # type: ignore[attr-defined]
    return path


def test_the_mixed_pipeline_answers_what_scikit_learn_answers(mixed: ModelRuntime) -> None:
    assert [(s.name, s.type_text(), s.shape_text()) for s in mixed.inputs] == [
        *((name, "float64", "[rows, 1]") for name in MIXED_NUMBERS),
        *((name, "string", "[rows, 1]") for name in MIXED_STRINGS),
    ]
    assert mixed.task == "classifier" and mixed.string_labels and mixed.classes == MIXED_CLASSES
    rows = mixed_rows(200, seed=5)
    assert sum(isinstance(v, float) and np.isnan(v) for v in rows[:, :3].ravel()) > 20  # missing values
    result = mixed.predict(mixed.prepare(mixed_columns(rows)))
    pipeline = mixed_pipeline()
    assert result.class_labels is not None and result.labels is not None and result.probabilities is not None
    assert result.class_labels.tolist() == pipeline.predict(rows).tolist()
    assert [MIXED_CLASSES[i] for i in result.labels] == result.class_labels.tolist()
    np.testing.assert_allclose(result.probabilities, pipeline.predict_proba(rows), atol=1e-5)
    # numbers sent as float32 or integers fit the float64 inputs; a column may come as [rows]
    columns = mixed_columns(rows[:3])
    columns["visits"] = np.array([1, 2, 3])
    columns["age"] = columns["age"].astype(np.float32).ravel()
    assert mixed.prepare(columns)["visits"].dtype == np.float64


def test_nan_is_accepted_only_where_the_graph_handles_it(mixed: ModelRuntime, models_dir: Path) -> None:
    # The imputer covers the numbers; the strings are not floats at all.
    assert {s.name: s.accepts_missing for s in mixed.inputs} == {
        "age": True,
        "income": True,
        "visits": True,
        "plan": False,
        "country": False,
    }
    columns = mixed_columns(mixed_rows(2))
    columns["income"] = np.array([[np.nan], [np.inf]])
    with pytest.raises(ValueError, match=r"input 'income': .*row 1 is inf"):
        mixed.prepare(columns)
    # A logistic regression without an imputer answers NaN for NaN: refused, naming the place.
    plain = ModelRuntime(make_classifier_onnx(models_dir))
    assert not plain.accepts_missing
    rows = breast_cancer_rows(2)
    rows[1, 4] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity \(row 1, feature 4 is nan\).*no imputer"):
        plain.validate_input(rows)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"age": np.array([["41"], ["42"]])}, r"input 'age': .*a string where a number is expected"),
        ({"plan": np.array([[1.0], [2.0]])}, r"input 'plan': .*a number where a string is expected"),
        ({"plan": np.array([["pro"]], dtype=object)}, r"input 'plan' has 1 rows but input 'age' has 2"),
        ({"plan": np.array([["pro", "free"], ["a", "b"]], dtype=object)}, r"input 'plan': expected .*\[rows, 1\]"),
        ({"plan": np.array([[b"pro"], [b"free"]], dtype=object)}, r"input 'plan': .*element 0 is not a string"),
    ],
)
def test_mistyped_and_misshaped_inputs_are_refused_by_name(mixed: ModelRuntime, change: dict, says: str) -> None:
    columns = mixed_columns(mixed_rows(2)) | change
    with pytest.raises(ValueError, match=says):
        mixed.prepare(columns)


def test_missing_and_unknown_inputs_are_named(mixed: ModelRuntime) -> None:
    columns = mixed_columns(mixed_rows(1))
    del columns["country"]
    columns["colour"] = np.array([["red"]], dtype=object)
    with pytest.raises(ValueError, match=r"got no 'country' and unknown 'colour'"):
        mixed.prepare(columns)
    with pytest.raises(ValueError, match=r"takes 5 inputs .*one tensor per input by name"):
        mixed.prepare(np.zeros((1, 5), dtype=np.float32))


def test_an_int64_of_2_to_the_40_plus_1_reaches_the_model_unchanged(models_dir: Path) -> None:
    echo = ModelRuntime(make_int64_echo_onnx(models_dir))
    big = 2**40 + 1  # float32 would make it 2**40
    assert echo.inputs[0].dtype == np.int64 and echo.task == "regressor"
    outputs = echo.run_raw({"n": np.array([[big], [-big]])})
    assert outputs["echo"].tolist() == [[big], [-big]]
    values = echo.predict(echo.validate_input(np.array([[big]]))).values
    assert values is not None and values.tolist() == [1.0]  # n - 2**40: float32 would have made it 0
    # Integral floats fit an integer input; fractions and values out of range do not.
    assert echo.validate_input(np.array([[3.0]])).dtype == np.int64
    with pytest.raises(ValueError, match=r"is 2\.5, not an integer"):
        echo.validate_input(np.array([[2.5]]))
    with pytest.raises(ValueError, match="cannot hold a missing"):
        echo.validate_input(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="outside its range"):
        echo.validate_input(np.array([[2**64 - 1]], dtype=np.uint64))


def test_bool_inputs_and_several_inputs_of_one_graph(tmp_path: Path) -> None:
    flag = helper.make_tensor_value_info("flag", TensorProto.BOOL, [None, 2])
    weight = helper.make_tensor_value_info("weight", TensorProto.FLOAT, [None, 2])
    out = helper.make_tensor_value_info("score", TensorProto.FLOAT, [None, 1])
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["flag"], ["as_float"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["as_float", "weight"], ["product"]),
            helper.make_node("ReduceSum", ["product"], ["score"], keepdims=1, axes=[1]),
        ],
        "flags",
        [flag, weight],
        [out],
    )
    path = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)]), tmp_path / "flags.onnx")
    runtime = ModelRuntime(path)
    runtime.warm_up()
    feeds = runtime.prepare({"flag": np.array([[1, 0], [1, 1]]), "weight": np.array([[2.0, 3.0], [4.0, 5.0]])})
    assert feeds["flag"].dtype == np.bool_
    values = runtime.predict(feeds).values
    assert values is not None and values.tolist() == [2.0, 9.0]
    with pytest.raises(ValueError, match=r"input 'flag': .*true/false or 0/1.*is 2"):
        runtime.prepare({"flag": np.array([[2, 0]]), "weight": np.array([[1.0, 1.0]])})


def test_a_multi_output_regressor_answers_a_row_of_values(tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LinearRegression

    X = np.random.default_rng(0).normal(size=(50, 3))
    Y = np.column_stack([X @ [1.0, 2.0, 3.0], X @ [-1.0, 0.5, 0.0]])
    model = LinearRegression().fit(X, Y)
    onx = to_onnx(model, initial_types=[("input", FloatTensorType([None, 3]))], target_opset={"": 17})
    runtime = ModelRuntime(_save(onx, tmp_path / "two.onnx"))
    result = runtime.predict(runtime.validate_input(X[:4]))
    assert result.values is not None and result.values.shape == (4, 2)
    np.testing.assert_allclose(result.values, model.predict(X[:4]), atol=1e-4)


def test_integer_classes_are_named_from_the_graph(models_dir: Path) -> None:
    runtime = ModelRuntime(make_classifier_onnx(models_dir))
    assert runtime.classes == ("0", "1") and not runtime.string_labels
    assert runtime.named_classes is None  # the column index is the class: answers leave them out
    result = runtime.predict(breast_cancer_rows(3))
    assert result.class_labels is None and result.labels is not None and result.labels.dtype == np.int64
