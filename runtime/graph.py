"""What an agent reads from an ONNX file besides what onnxruntime tells: a classifier's classes.

onnxruntime names a model's inputs and outputs but not the classes behind a label output, and
the agent does not install the `onnx` package. `protos/onnx_graph.proto` declares the few fields
of ONNX's ModelProto read here (nodes and initializers); the protobuf parser skips the rest.

The classes of a label output are found where converters put them: skl2onnx's
`ArrayFeatureExtractor(classes, argmax)` (string classes: a constant tensor of the class names),
or the `classlabels_strings` / `classlabels_int64s` attribute of the ai.onnx.ml classifier
operators (LinearClassifier, TreeEnsembleClassifier, SVMClassifier...), following the label back
through the nodes that only reshape or cast it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protos import onnx_graph_pb2

# Nodes that pass a label through unchanged but for its shape or type.
_PASS_THROUGH = {"Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze", "Flatten", "CastLike"}
_LOOKUP = {"ArrayFeatureExtractor", "Gather"}
_STRING, _INT64, _INT32 = 8, 7, 6  # ONNX TensorProto data types


def _tensor_values(tensor: onnx_graph_pb2.TensorProto) -> list[str] | None:
    if tensor.data_type == _STRING:
        return [s.decode("utf-8", "replace") for s in tensor.string_data]
    if tensor.data_type == _INT64:
        values = tensor.int64_data or np.frombuffer(tensor.raw_data, dtype="<i8").tolist()
        return [str(v) for v in values]
    if tensor.data_type == _INT32:
        values = tensor.int32_data or np.frombuffer(tensor.raw_data, dtype="<i4").tolist()
        return [str(v) for v in values]
    return None


def class_names(path: Path, label_output: str) -> tuple[str, ...] | None:
    """The classes behind `label_output`, in the order of the probabilities' columns; None when
    the graph does not say (or the file cannot be read this way)."""
    try:
        model = onnx_graph_pb2.ModelProto.FromString(Path(path).read_bytes())
    except Exception:  # noqa: BLE001 - a file onnxruntime opened but this parser cannot: no names
        return None
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    constants = {t.name: t for t in graph.initializer}
    for node in graph.node:  # Constant nodes hold tensors too
        if node.op_type == "Constant" and node.output:
            for attribute in node.attribute:
                if attribute.name == "value" and attribute.HasField("t"):
                    constants[node.output[0]] = attribute.t
    name = label_output
    for _ in range(len(graph.node) + 1):
        found = producers.get(name)
        if found is None:
            return None
        node = found
        for attribute in node.attribute:
            if attribute.name == "classlabels_strings" and attribute.strings:
                return tuple(s.decode("utf-8", "replace") for s in attribute.strings)
            if attribute.name in ("classlabels_int64s", "classlabels_ints") and attribute.ints:
                return tuple(str(v) for v in attribute.ints)
        if node.op_type in _LOOKUP and node.input and node.input[0] in constants:
            values = _tensor_values(constants[node.input[0]])
            return tuple(values) if values else None
        if node.op_type not in _PASS_THROUGH or not node.input:
            return None
        name = node.input[0]
    return None
