"""ONNX inspection: signatures of real exported models, and readable refusals of broken files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from controlplane.onnx_inspect import ModelSignature, TensorSpec, inspect_onnx_file, sha256_file
from core.errors import InvalidInput
from tests.models import make_classifier_onnx, make_regressor_onnx

CLASSIFIER_OUTPUTS = (
    TensorSpec("label", "int64", (None,)),
    TensorSpec("probabilities", "float32", (None, 2)),
)


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _graph_model(nodes: list[onnx.NodeProto], **graph: object) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], **graph), opset_imports=opsets)


@pytest.mark.parametrize("kind", ["logreg", "gbm", "constant"])
def test_classifier_signature(models_dir: Path, kind: str) -> None:
    signature = inspect_onnx_file(make_classifier_onnx(models_dir, kind))
    assert signature == ModelSignature(
        inputs=(TensorSpec("input", "float32", (None, 30)),),
        outputs=CLASSIFIER_OUTPUTS,
        task="classifier",
    )


def test_regressor_signature(models_dir: Path) -> None:
    signature = inspect_onnx_file(make_regressor_onnx(models_dir))
    assert signature.task == "regressor"
    assert signature.inputs == (TensorSpec("input", "float32", (None, 30)),)
    assert signature.outputs == (TensorSpec("value", "float32", (None, 1)),)


def test_hand_built_model_with_symbolic_and_fixed_dims(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("features", TensorProto.DOUBLE, ["batch", 4])
    y = helper.make_tensor_value_info("score", TensorProto.DOUBLE, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["features"], ["score"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    signature = inspect_onnx_file(_save(model, tmp_path / "relu.onnx"))
    assert signature.inputs == (TensorSpec("features", "float64", (None, 4)),)
    assert signature.outputs == (TensorSpec("score", "float64", (None, 4)),)
    assert signature.task == "regressor"


def test_sha256_file(models_dir: Path) -> None:
    path = make_classifier_onnx(models_dir)
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "content",
    [b"hello, this is a CSV file\n1,2,3\n", bytes(range(256)) * 8, b"\x00" * 100],
    ids=["text", "binary", "zeros"],
)
def test_bytes_that_are_not_onnx(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=r"^cancer:v9 is not an ONNX model: ") as caught:
        inspect_onnx_file(path, display_name="cancer:v9")
    assert str(tmp_path) not in caught.value.message


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInput, match=r"empty\.onnx is not an ONNX model: the file is empty"):
        inspect_onnx_file(empty)
    with pytest.raises(InvalidInput, match=r"nope\.onnx cannot be read"):
        inspect_onnx_file(tmp_path / "nope.onnx")


def test_truncated_onnx_file(models_dir: Path, tmp_path: Path) -> None:
    data = make_classifier_onnx(models_dir).read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match=r"truncated\.onnx is not an ONNX model"):
        inspect_onnx_file(path)


def test_checker_failure_names_the_problem(tmp_path: Path) -> None:
    node = helper.make_node("Add", ["x", "undefined_tensor"], ["y"])
    path = _save(_graph_model([node]), tmp_path / "dangling.onnx")
    with pytest.raises(InvalidInput, match=r"dangling\.onnx fails the ONNX checker: ") as caught:
        inspect_onnx_file(path)
    assert "undefined_tensor" in caught.value.message


def test_model_onnxruntime_cannot_open(tmp_path: Path) -> None:
    # The checker accepts unknown custom domains; onnxruntime has no kernel for the op.
    node = helper.make_node("FancyOp", ["x"], ["y"], domain="com.example")
    path = _save(_graph_model([node]), tmp_path / "custom.onnx")
    with pytest.raises(InvalidInput, match=r"^onnxruntime cannot open custom\.onnx: ") as caught:
        inspect_onnx_file(path)
    assert "FancyOp" in caught.value.message
    assert "[ONNXRuntimeError]" not in caught.value.message
    assert str(tmp_path) not in caught.value.message


def test_external_data_is_refused(tmp_path: Path) -> None:
    weights = numpy_helper.from_array(np.ones(3, np.float32), "w")
    model = _graph_model([helper.make_node("Add", ["x", "w"], ["y"])], initializer=[weights])
    onnx.save_model(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, size_threshold=0)
    with pytest.raises(InvalidInput, match="external data"):
        inspect_onnx_file(tmp_path / "ext.onnx")


def test_zipmap_outputs_are_refused(tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(np.int64))
    path = _save(to_onnx(model, X[:1], target_opset=17), tmp_path / "zipmap.onnx")
    # The output's name and type string are skl2onnx's and onnxruntime's; the rest of the message is ours.
    with pytest.raises(InvalidInput, match=r"not a tensor; agents serve tensor outputs only") as caught:
        inspect_onnx_file(path)
    assert "zipmap" in caught.value.message


def test_corrupted_bytes_never_escape_as_raw_exceptions(models_dir: Path, tmp_path: Path) -> None:
    """Flip bytes all over a valid model: every outcome is a signature or an InvalidInput."""
    data = bytearray(make_classifier_onnx(models_dir).read_bytes())
    rng = np.random.default_rng(7)
    refused = 0
    for i in range(40):
        corrupt = bytearray(data)
        for position in rng.integers(0, len(data), size=1 + i % 4):
            corrupt[position] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / f"corrupt-{i}.onnx"
        path.write_bytes(bytes(corrupt))
        try:
            assert isinstance(inspect_onnx_file(path), ModelSignature)
        except InvalidInput as exc:
            refused += 1
            assert exc.message.startswith(("corrupt-", "onnxruntime cannot open corrupt-"))
    assert refused > 0
