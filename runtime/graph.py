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


# ---- Scaler as Sub and Mul ----

_FLOAT = 1  # ONNX TensorProto.FLOAT
_ML_DOMAIN = "ai.onnx.ml"
#: Sub and Mul broadcast [rows, k] against [k] since opset 7
_MIN_OPSET = 7


def _attribute_floats(node: onnx_graph_pb2.NodeProto, name: str) -> list[float]:
    return next((list(a.floats) for a in node.attribute if a.name == name), [])


def _float_matrix_inputs(graph: onnx_graph_pb2.GraphProto) -> dict[str, int | None]:
    """The graph's float32 inputs of rank 2, by name: their fixed width (None when left open)."""
    found: dict[str, int | None] = {}
    for value in graph.input:
        tensor = value.type.tensor_type
        dims = tensor.shape.dim
        if tensor.elem_type != _FLOAT or len(dims) != 2:
            continue
        found[value.name] = dims[1].dim_value if dims[1].WhichOneof("value") == "dim_value" else None
    return found


def scalers_as_arithmetic(data: bytes) -> tuple[bytes, int]:
    """The model with each Scaler node on a float32 [rows, k] graph input replaced by a Sub and a
    Mul that compute the same numbers, and how many were replaced (0: `data` unchanged).

    onnxruntime's Scaler (ai.onnx.ml, what skl2onnx makes of a StandardScaler, so of every model
    `sluice train` exports) computes `(x - offset[j]) * scale[j]` one element at a time through a
    function call per element: 100-150 µs for 1,024 rows of 30 features, against a few µs for the
    vectorised Sub and Mul. For a float32 input both are the same two IEEE float32 operations per
    element, in the same order, with the same operands, so every result is bit for bit the same
    (no fused multiply-add is possible across two operations). Only that case is rewritten: float32
    inputs of rank 2 whose offset and scale have one value or one per column (onnxruntime's Scaler
    indexes a higher rank by its second axis, which broadcasting does not); any other Scaler, and
    any file this parser cannot read, is left as it is.
    """
    if b"Scaler" not in data:  # the op type's name is in the file of any model that has one
        return data, 0
    try:
        model = onnx_graph_pb2.ModelProto.FromString(data)
    except Exception:  # noqa: BLE001 - whatever onnxruntime accepts but this parser does not: no change
        return data, 0
    opsets = {o.domain: o.version for o in model.opset_import}
    if opsets.get("", 0) < _MIN_OPSET:
        return data, 0
    graph = model.graph
    inputs = _float_matrix_inputs(graph)
    names = {name for node in graph.node for name in (*node.input, *node.output)} | {t.name for t in graph.initializer}
    nodes: list[onnx_graph_pb2.NodeProto] = []
    replaced = 0
    for node in graph.node:
        offset, scale = _attribute_floats(node, "offset"), _attribute_floats(node, "scale")
        source = node.input[0] if len(node.input) == 1 else ""
        width = inputs.get(source, 0)
        fits = len(offset) == len(scale) and (len(scale) == 1 or (width is not None and len(scale) == width))
        if node.op_type != "Scaler" or node.domain != _ML_DOMAIN or source not in inputs or not scale or not fits:
            nodes.append(node)
            continue
        stem = f"sluice_scaler{replaced}"
        while any(name.startswith(stem) for name in names):
            stem += "_"
        for suffix, values in (("offset", offset), ("scale", scale)):
            graph.initializer.add(
                name=f"{stem}_{suffix}",
                dims=[len(values)],
                data_type=_FLOAT,
                raw_data=np.asarray(values, dtype="<f4").tobytes(),
            )
        centred = f"{stem}_centred"
        nodes.append(onnx_graph_pb2.NodeProto(input=[source, f"{stem}_offset"], output=[centred], op_type="Sub"))
        nodes.append(
            onnx_graph_pb2.NodeProto(
                input=[centred, f"{stem}_scale"], output=list(node.output), name=node.name, op_type="Mul"
            )
        )
        replaced += 1
    if not replaced:
        return data, 0
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString(), replaced
