"""Imported only by the sandbox's forkserver in the control plane: the ONNX checker's start-up, once.

`onnx.checker` builds its operator schema registry on its first call (about 20 ms); done here,
every registration's child is forked with it done. See `runtime.sandbox_warmup` for onnxruntime's.
"""

from __future__ import annotations

import onnx
import onnx.checker

from runtime.sandbox_warmup import IDENTITY_MODEL

onnx.checker.check_model(onnx.load_model_from_string(IDENTITY_MODEL))
