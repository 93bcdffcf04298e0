"""A fitted scikit-learn model as an ONNX file, the way every Sluice model is exported.

A fixed opset (so the same model gives the same graph), named inputs and outputs the agents read
(`input`, `label`, `probabilities`, `value`), no ZipMap, and a converter for the constant
classifier (skl2onnx has none). Written next to the target and renamed, so no reader ever sees
half a model. Mixed-type tables (one input per column) are exported by `training.py` on the same
converters.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidInput

# Pinned so that the same model always exports to the same bytes (and sha256), whatever the
# installed skl2onnx's newest opset; every supported onnxruntime runs opset 17.
TARGET_OPSET: dict[str, int] = {"": 17, "ai.onnx.ml": 3}
INPUT_NAME = "input"
LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
VALUE_OUTPUT = "value"


def _convert_dummy_classifier(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx ships no DummyClassifier converter: constant rows broadcast to the batch size."""
    from onnx import TensorProto

    model = operator.raw_operator
    if model.strategy not in ("most_frequent", "prior", "constant"):
        raise NotImplementedError(f"DummyClassifier(strategy={model.strategy!r}) answers at random: not exportable")
    if not np.issubdtype(np.asarray(model.classes_).dtype, np.integer):
        raise NotImplementedError("DummyClassifier with non-integer classes")
    probe = np.zeros((1, max(int(getattr(model, "n_features_in_", 1)), 1)))
    row = np.asarray(model.predict_proba(probe), dtype=np.float32)
    label = np.asarray(model.predict(probe), dtype=np.int64)

    def name(hint: str) -> str:
        return str(scope.get_unique_variable_name(hint))

    def node(op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        container.add_node(op, inputs, outputs, name=scope.get_unique_operator_name(op), **attrs)

    zero, one, row_c, label_c = name("zero"), name("one"), name("proba_row"), name("label_row")
    shape, rows, rows_by_one = name("shape"), name("rows"), name("rows_by_one")
    container.add_initializer(zero, TensorProto.INT64, [1], [0])
    container.add_initializer(one, TensorProto.INT64, [1], [1])
    container.add_initializer(row_c, TensorProto.FLOAT, list(row.shape), row.ravel().tolist())
    container.add_initializer(label_c, TensorProto.INT64, [1], label.tolist())
    node("Shape", [operator.inputs[0].full_name], [shape])
    node("Gather", [shape, zero], [rows], axis=0)
    node("Concat", [rows, one], [rows_by_one], axis=0)
    node("Expand", [label_c, rows], [operator.outputs[0].full_name])
    node("Expand", [row_c, rows_by_one], [operator.outputs[1].full_name])


@functools.cache
def register_converters() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from sklearn.dummy import DummyClassifier

    update_registered_converter(
        DummyClassifier,
        "SluiceDummyClassifier",
        calculate_linear_classifier_output_shapes,
        _convert_dummy_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
    )


def atomic_write(out_path: Path, data: bytes) -> None:
    """Write next to the target and rename, so a reader never sees half a model."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)


def export_onnx(model: Any, n_features: int, out_path: Path) -> None:
    """Export with a fixed opset: input `input` float32 [N, n_features].

    Classifiers output `label` int64 [N] and `probabilities` float32 [N, classes] (no ZipMap);
    regressors output `value` float32 [N, 1].
    """
    from skl2onnx.common.data_types import FloatTensorType

    inputs = [(INPUT_NAME, FloatTensorType([None, int(n_features)]))]
    export_with_inputs(model, inputs, out_path, type(model).__name__)


def export_with_inputs(model: Any, initial_types: list[tuple[str, Any]], out_path: Path, what: str) -> None:
    """The export every model goes through, on the given ONNX inputs: fixed opset, the outputs
    `export_onnx` names, written atomically; `what` names the model in the error."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.base import is_classifier

    register_converters()
    kwargs: dict[str, Any] = {}
    if is_classifier(model):
        kwargs["options"] = {id(model): {"zipmap": False}}
    else:
        kwargs["final_types"] = [(VALUE_OUTPUT, FloatTensorType([None, 1]))]
    try:
        onx = to_onnx(model, initial_types=initial_types, target_opset=TARGET_OPSET, **kwargs)
    except Exception as exc:  # skl2onnx raises RuntimeError, NotImplementedError, ...
        raise InvalidInput(f"cannot export {what} to ONNX: {exc}") from exc
    atomic_write(Path(out_path), onx.SerializeToString())
