"""The agent's onnxruntime wrapper against the scikit-learn models it was exported from."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from controlplane.sample_data import breast_cancer_arrays
from controlplane.training import train_model
from runtime.model import ModelRuntime, PredictionResult
from tests.models import (
    breast_cancer_rows,
    make_classifier_onnx,
    make_regressor_onnx,
    regression_target,
)


@pytest.fixture(scope="module")
def classifier(models_dir: Path) -> ModelRuntime:
    runtime = ModelRuntime(make_classifier_onnx(models_dir))
    runtime.warm_up()
    return runtime


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("kind", ["logreg", "gbm", "constant"])
def test_classifier_matches_scikit_learn(models_dir: Path, kind: str) -> None:
    X, y = breast_cancer_arrays()
    model = train_model(X, y, kind, 0)  # what make_classifier_onnx exported
    runtime = ModelRuntime(make_classifier_onnx(models_dir, kind))
    runtime.warm_up()
    assert (runtime.task, runtime.input_name, runtime.n_features) == ("classifier", "input", 30)
    assert (runtime.label_output, runtime.probabilities_output) == ("label", "probabilities")
    result = runtime.predict(runtime.validate_input(X))
    assert result.values is None and result.labels is not None and result.probabilities is not None
    assert result.labels.dtype == np.int64 and result.labels.shape == (569,)
    assert result.probabilities.dtype == np.float32 and result.probabilities.shape == (569, 2)
    assert np.array_equal(result.labels, model.predict(X))
    np.testing.assert_allclose(result.probabilities, model.predict_proba(X), atol=1e-5)


def test_regressor_matches_scikit_learn(models_dir: Path) -> None:
    X, _ = breast_cancer_arrays()
    model = train_model(X, regression_target(), "ridge", 0)
    runtime = ModelRuntime(make_regressor_onnx(models_dir))
    runtime.warm_up()
    assert (runtime.task, runtime.value_output, runtime.label_output) == (
        "regressor",
        "value",
        None,
    )
    result = runtime.predict(X[:100])
    assert result.labels is None and result.probabilities is None and result.values is not None
    assert result.values.dtype == np.float32 and result.values.shape == (100,)
    np.testing.assert_allclose(result.values, model.predict(X[:100]), atol=1e-4)


def test_constant_model_answers_one_class_whatever_the_input(models_dir: Path) -> None:
    runtime = ModelRuntime(make_classifier_onnx(models_dir, "constant"))
    noise = np.random.default_rng(5).normal(0, 1000, size=(300, 30)).astype(np.float32)
    for x in (breast_cancer_rows(200, seed=2), noise, breast_cancer_rows(1)):
        result = runtime.predict(x)
        assert result.labels is not None and result.probabilities is not None
        assert set(result.labels.tolist()) == {1}  # benign, the majority class
        assert np.array_equal(result.probabilities, np.tile([0.0, 1.0], (len(x), 1)))


def test_shape_errors_name_the_expected_shape(classifier: ModelRuntime) -> None:
    rows = breast_cancer_rows(2)
    with pytest.raises(ValueError, match=r"^expected a float32 tensor of shape \[rows, 30\], got \[2, 29\]$"):
        classifier.validate_input(rows[:, :29])
    with pytest.raises(ValueError, match=r"shape \[rows, 30\], got \[30\] \(rank 1\)"):
        classifier.validate_input(rows[0])
    with pytest.raises(ValueError, match=r"shape \[rows, 30\], got \[1, 2, 30\] \(rank 3\)"):
        classifier.validate_input(rows[None])
    with pytest.raises(ValueError, match=r"the batch is empty: expected .* \[rows, 30\]"):
        classifier.validate_input(rows[:0])
    with pytest.raises(ValueError, match=r"got <U3 values"):
        classifier.validate_input(np.full((1, 30), "abc"))


def test_non_finite_values_are_refused_with_their_position(classifier: ModelRuntime) -> None:
    rows = breast_cancer_rows(3)
    rows[2, 7] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity \(row 2, feature 7 is nan\)"):
        classifier.validate_input(rows)
    rows[2, 7] = -np.inf
    with pytest.raises(ValueError, match=r"row 2, feature 7 is -inf"):
        classifier.validate_input(rows)
    too_big = breast_cancer_rows(1).astype(np.float64)
    too_big[0, 0] = 1e300  # finite in float64, infinite once cast to the model's float32
    with pytest.raises(ValueError, match=r"row 0, feature 0 is inf"):
        classifier.validate_input(too_big)


def test_validate_input_copies_only_when_it_must(classifier: ModelRuntime) -> None:
    rows = breast_cancer_rows(4)
    assert classifier.validate_input(rows) is rows  # the hot path: no copy
    converted = classifier.validate_input(rows.astype(np.float64))
    assert converted.dtype == np.float32 and np.array_equal(converted, rows)
    fortran = classifier.validate_input(np.asfortranarray(rows))
    assert fortran.flags.c_contiguous and np.array_equal(fortran, rows)
    strided = classifier.validate_input(breast_cancer_rows(8)[::2])
    assert strided.flags.c_contiguous
    from_list = classifier.validate_input(rows.tolist())
    assert from_list.dtype == np.float32 and np.array_equal(from_list, rows)
    ints = classifier.validate_input(np.ones((2, 30), dtype=np.int64))
    assert ints.dtype == np.float32


def test_predict_on_one_row_and_on_non_contiguous_batches(classifier: ModelRuntime) -> None:
    batch = breast_cancer_rows(16, seed=9)
    whole = classifier.predict(batch)
    one = classifier.predict(batch[3:4])
    assert one.labels is not None and whole.labels is not None
    assert one.labels.shape == (1,) and one.labels[0] == whole.labels[3]
    strided = classifier.predict(batch[::2])  # predict makes it contiguous itself
    assert strided.labels is not None and np.array_equal(strided.labels, whole.labels[::2])


def test_run_raw_returns_every_output(classifier: ModelRuntime) -> None:
    rows = breast_cancer_rows(5)
    outputs = classifier.run_raw({"input": rows})
    assert list(outputs) == ["label", "probabilities"] == classifier.output_names
    result = classifier.predict(rows)
    assert np.array_equal(outputs["label"], result.labels)
    assert np.array_equal(outputs["probabilities"], result.probabilities)
    with pytest.raises(ValueError, match=r"one input named 'input', got \['x'\]"):
        classifier.run_raw({"x": rows})
    with pytest.raises(ValueError, match=r"got \[5, 3\]"):
        classifier.run_raw({"input": rows[:, :3]})


def test_concurrent_predictions_from_many_threads(models_dir: Path) -> None:
    runtime = ModelRuntime(make_classifier_onnx(models_dir, "gbm"), intra_op_threads=2)
    batches = [breast_cancer_rows(1 + i % 7, seed=i) for i in range(64)]
    expected = [runtime.predict(b) for b in batches]

    def run(index: int) -> PredictionResult:
        return runtime.predict(runtime.validate_input(batches[index]))

    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            for got, want in zip(pool.map(run, range(len(batches))), expected, strict=True):
                assert np.array_equal(got.labels, want.labels)
                assert np.array_equal(got.probabilities, want.probabilities)


def test_hand_built_model_takes_its_own_dtype_and_width(tmp_path: Path) -> None:
    """A float64 input of width 3 with a [N, 1] output: a regressor served as float32 values."""
    x = helper.make_tensor_value_info("features", TensorProto.DOUBLE, ["batch", 3])
    y = helper.make_tensor_value_info("score", TensorProto.DOUBLE, ["batch", 1])
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["features"], ["score"], keepdims=1, axes=[1])],
        "sum",
        [x],
        [y],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    runtime = ModelRuntime(_save(model, tmp_path / "sum.onnx"))
    runtime.warm_up()
    assert (runtime.task, runtime.n_features, runtime.expected_shape()) == (
        "regressor",
        3,
        "[rows, 3]",
    )
    with pytest.raises(ValueError, match=r"expected a float64 tensor of shape \[rows, 3\], got \[1, 4\]"):
        runtime.validate_input(np.ones((1, 4)))
    x_in = runtime.validate_input(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32))
    assert x_in.dtype == np.float64
    result = runtime.predict(x_in)
    assert result.values is not None and result.values.dtype == np.float32
    assert result.values.tolist() == [6.0, 15.0]


def test_models_the_agent_cannot_serve_are_refused_at_load(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ValueError) as caught:
        ModelRuntime(garbage)
    # The reason is onnxruntime's own wording; ours is only its tidying: one line, without the error-code prefix.
    message = str(caught.value)
    assert message.strip() and "\n" not in message
    assert "[ONNXRuntimeError]" not in message

    # Several inputs and string classes are served (tests/runtime/test_typed_inputs.py); a model
    # with nothing numeric to answer is not.
    text = helper.make_tensor_value_info("text", TensorProto.STRING, [None, 1])
    echo = helper.make_tensor_value_info("echo", TensorProto.STRING, [None, 1])
    strings_only = helper.make_model(
        helper.make_graph([helper.make_node("Identity", ["text"], ["echo"])], "g", [text], [echo]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    with pytest.raises(ValueError, match=r"no numeric tensor output to serve \(echo tensor\(string\)\)"):
        ModelRuntime(_save(strings_only, tmp_path / "strings-only.onnx"))


def test_the_runtime_does_not_import_the_control_plane() -> None:
    code = (
        "import sys, runtime.model; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('controlplane', 'sklearn', "
        "'skl2onnx', 'onnx', 'sqlalchemy')); "
        "assert not bad, bad"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)
