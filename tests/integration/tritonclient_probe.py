"""Run tritonclient against an agent in a process of its own and print what it saw as JSON.

tritonclient registers its own `inference.*` protobuf messages in the default descriptor pool,
and so does protos.oip_pb2 (the same names, another file): the two cannot be imported into one
process. The test suite imports protos.oip_pb2, so tritonclient runs here, in a child:

    python -m tests.integration.tritonclient_probe AGENT_ADDRESS DEPLOYMENT ROWS.npy
"""

from __future__ import annotations

import json
import sys
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException


def refusal(call: Any) -> dict[str, str]:
    try:
        call()
    except InferenceServerException as exc:
        return {"status": str(exc.status()), "message": str(exc.message())}
    return {"status": "OK", "message": ""}


def probe(address: str, deployment: str, rows: np.ndarray) -> dict[str, Any]:
    client = triton.InferenceServerClient(url=address)
    try:
        metadata = client.get_model_metadata(deployment)
        tensor = triton.InferInput("input", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows)
        result = client.infer(deployment, [tensor])
        only = client.infer(deployment, [tensor], outputs=[triton.InferRequestedOutput("label")])
        with grpc.insecure_channel(address) as channel:  # fp32_contents instead of raw bytes
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            request = service_pb2.ModelInferRequest(model_name=deployment)
            request.inputs.add(name="input", datatype="FP32", shape=list(rows.shape)).contents.fp32_contents.extend(
                rows.ravel().tolist()
            )
            response = stub.ModelInfer(request, timeout=10)

        def short_rows() -> None:
            bad = triton.InferInput("input", [2, 29], "FP32")
            bad.set_data_from_numpy(rows[:2, :29])
            client.infer(deployment, [bad])

        def ints() -> None:
            tensor_ints = triton.InferInput("input", [1, 30], "INT32")
            tensor_ints.set_data_from_numpy(np.zeros((1, 30), dtype=np.int32))
            client.infer(deployment, [tensor_ints])

        only_probabilities = only.as_numpy("probabilities")
        return {
            "live": client.is_server_live(),
            "ready": client.is_server_ready(),
            "model_ready": client.is_model_ready(deployment),
            "unknown_model_ready": client.is_model_ready(deployment + "-nope"),
            "metadata": {
                "name": metadata.name,
                "datatype": metadata.inputs[0].datatype,
                "shape": list(metadata.inputs[0].shape),
            },
            "labels": result.as_numpy("label").tolist(),
            "probabilities": result.as_numpy("probabilities").tolist(),
            "model_version": result.get_response().model_version,
            "only_label": only.as_numpy("label").tolist(),
            "only_has_probabilities": only_probabilities is not None,
            "contents_labels": np.frombuffer(response.raw_output_contents[0], dtype="<i8").tolist(),
            "short_rows": refusal(short_rows),
            "ints": refusal(ints),
            "unknown_output": refusal(
                lambda: client.infer(deployment, [tensor], outputs=[triton.InferRequestedOutput("embedding")])
            ),
            "unknown_model": refusal(lambda: client.infer(deployment + "-missing", [tensor])),
        }
    finally:
        client.close()


if __name__ == "__main__":
    address, deployment, rows_path = sys.argv[1:4]
    print(json.dumps(probe(address, deployment, np.load(rows_path).astype(np.float32))))
