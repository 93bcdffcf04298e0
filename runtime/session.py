"""A model's onnxruntime session, opened with the agent's settings, and onnxruntime's errors on
one line.

A model whose graph has Scaler nodes on a float32 input is opened with them rewritten as the Sub
and Mul they compute (runtime.graph.scalers_as_arithmetic: the same numbers, faster); the file is
searched for the word through a read-only mapping, so a large tree model is never read for it.
"""

from __future__ import annotations

import mmap
import re
from pathlib import Path

import onnxruntime as ort

from runtime.graph import scalers_as_arithmetic

_MAX_REASON = 300
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
# "/onnxruntime_src/x.cc:86 ns::Class::Method(const T&) reason": keep the reason.
_ORT_SOURCE = re.compile(r"/onnxruntime_src/\S+:\d+ [^(]*\([^)]*\)\s*")


def ort_reason(exc: BaseException) -> str:
    """onnxruntime's message on one line, without the '[ONNXRuntimeError] : 2 : ...' noise."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = _ORT_SOURCE.sub("", _ORT_PREFIX.sub("", text))
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _bytes_if_scaler(path: Path) -> bytes:
    """The file's bytes when the word "Scaler" is in it, else b"" (a large tree model is searched
    through a read-only mapping, not read into memory); b"" too when it cannot be read (onnxruntime
    then says why)."""
    try:
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return mapped[:] if mapped.find(b"Scaler") >= 0 else b""
    except (OSError, ValueError):  # ValueError: an empty file cannot be mapped
        return b""


def open_session(path: Path, intra_op_threads: int = 1) -> tuple[ort.InferenceSession, int]:
    """The session and the number of Scalers replaced, or ValueError with onnxruntime's reason.

    The session runs on the model with its Scalers as Sub and Mul when it has any; on the file as
    it is when there are none or the changed graph does not load (a file this agent's reading of
    ONNX does not fit).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(int(intra_op_threads), 1)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors surface as exceptions; keep stderr quiet
    # Worker threads that spin between runs would steal CPU from the gRPC threads.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    try:
        data = _bytes_if_scaler(path)
        changed, replaced = scalers_as_arithmetic(data) if data else (data, 0)
        if replaced:
            try:
                return ort.InferenceSession(changed, options, providers=providers), replaced
            except Exception:  # noqa: BLE001 - the file as it is decides, below
                pass
        return ort.InferenceSession(str(path), options, providers=providers), 0
    except Exception as exc:  # onnxruntime's pybind exceptions share no useful base
        raise ValueError(ort_reason(exc)) from exc
