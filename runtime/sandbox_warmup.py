"""Imported only by the sandbox's forkserver (`runtime.sandbox`): onnxruntime's start-up, once.

onnxruntime sets up its environment, allocators and kernel registry on the first session a
process opens. Done here, in the forkserver, every child is forked with that work behind it; done
in each child it cost about 20 ms a job. The session is closed again before any fork, and with one
intra-op thread it never started a thread.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

#: a one-node model (Identity, input "x" and output "y", float [N, 1], opset 17) as onnx wrote it
IDENTITY_MODEL = bytes.fromhex(
    "080812003a3b0a100a017812017922084964656e746974791201675a110a0178120c0a0a08011206"
    "0a000a02080162110a0179120c0a0a080112060a000a02080142040a001011"
)


def warm_up() -> None:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4
    session = ort.InferenceSession(IDENTITY_MODEL, options, providers=["CPUExecutionProvider"])
    session.run(None, {"x": np.zeros((1, 1), np.float32)})
    del session


warm_up()
