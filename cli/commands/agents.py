"""`sluice agent` (run a serving agent), `sluice agents` (list them), `sluice predict`."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
from pathlib import Path
from typing import Any

from cli.commands.common import add_json, client_from, positive_seconds, whole_number
from cli.output import CliError, ago, print_json, print_table
from core.client import DEFAULT_ADDRESS
from core.errors import InvalidInput
from core.names import validate_name
from core.vocabulary import ServingRole, word_of

DEFAULT_AGENT = "127.0.0.1:7500"


def register(sub: argparse._SubParsersAction) -> None:
    agent = sub.add_parser("agent", help="run a serving agent (connects to the control plane)")
    # Also accepted after the subcommand: `sluice agent --controlplane ADDR`.
    agent.add_argument(
        "--controlplane",
        dest="agent_controlplane",
        default=None,
        metavar="ADDR",
        help=f"control-plane address to connect to (env SLUICE_CONTROLPLANE, default {DEFAULT_ADDRESS}); "
        "also accepted before `agent`",
    )
    agent.add_argument(
        "--listen",
        default=os.environ.get("SLUICE_AGENT_LISTEN", "127.0.0.1:7500"),
        help="gRPC address for predictions (default %(default)s; port 0 picks a free one)",
    )
    agent.add_argument("--name", default="", help="agent name (default HOSTNAME-PORT)")
    agent.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="cache dir: id, artifacts, last snapshot (default sluice-data/agent-NAME)",
    )
    agent.add_argument(
        "--metrics-port",
        type=whole_number(0, 65535),
        default=None,
        help="Prometheus /metrics port, 0 disables (default: the --listen port + 1, so 7501 for 7500)",
    )
    agent.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="a label (repeatable)")
    agent.add_argument(
        "--max-message-bytes",
        type=int,
        default=16 * 1024 * 1024,
        help="largest request accepted (default %(default)s)",
    )
    agent.add_argument(
        "--report-buffer",
        type=int,
        default=3600,
        help="metric reports kept until acknowledged (default %(default)s)",
    )
    agent.add_argument(
        "--label-batches",
        type=int,
        default=10_000,
        help="Feedback label batches kept on disk until the label store acknowledges them; beyond it new "
        "labels are dropped and counted (default %(default)s)",
    )
    agent.add_argument(
        "--log-buffer-mb",
        type=int,
        default=1024,
        metavar="MB",
        help="disk kept for prediction-log segments not yet acknowledged by the control plane; when "
        "full, new rows are dropped and counted; 0 turns the prediction log off (default %(default)s)",
    )
    agent.add_argument(
        "--keep-freed-memory-mb",
        type=int,
        default=0,
        metavar="MB",
        help="keep up to MB of freed memory for reuse instead of returning it to the system (glibc): "
        "fewer page faults on large batches for more resident memory; 0 keeps the C library's "
        "defaults (default %(default)s)",
    )
    agent.add_argument(
        "--log-sink",
        default="",
        metavar="s3://BUCKET/PREFIX",
        help="write prediction-log segments to this S3 bucket (credentials: AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY in the environment) instead of shipping them to the control plane",
    )
    agent.add_argument(
        "--s3-endpoint", default="", metavar="URL", help="an S3-compatible endpoint, e.g. http://minio:9000"
    )
    agent.add_argument("--s3-region", default="", metavar="REGION", help="the bucket's region")
    agent.add_argument(
        "--reconnect-max-seconds",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="longest wait between reconnects to the control plane, and (at least 1 s) for one connect "
        "attempt: how soon the agent is back after a network cut heals (default %(default)s)",
    )
    sandbox = agent.add_argument_group("the sandbox that loads and warms up each new model first (NACK beyond it)")
    sandbox.add_argument(
        "--model-timeout",
        type=positive_seconds,
        default=os.environ.get("SLUICE_MODEL_TIMEOUT", "30"),
        metavar="SECONDS",
        help="longest a new model may take to load and warm up (env SLUICE_MODEL_TIMEOUT, default %(default)s)",
    )
    sandbox.add_argument(
        "--model-memory-mb",
        type=whole_number(1, 1 << 30),
        default=os.environ.get("SLUICE_MODEL_MEMORY_MB", "2048"),
        metavar="MB",
        help="memory a new model may take to load and warm up (env SLUICE_MODEL_MEMORY_MB, default %(default)s)",
    )
    tls = agent.add_argument_group("TLS (the same env vars as the CLI client)")
    tls.add_argument(
        "--tls-cert",
        default=os.environ.get("SLUICE_TLS_CERT", ""),
        metavar="PEM",
        help="this agent's certificate: served on --listen, shown to the control plane (env SLUICE_TLS_CERT)",
    )
    tls.add_argument(
        "--tls-key", default=os.environ.get("SLUICE_TLS_KEY", ""), metavar="PEM", help="its key (env SLUICE_TLS_KEY)"
    )
    tls.add_argument(
        "--tls-ca",
        default=os.environ.get("SLUICE_TLS_CA", ""),
        metavar="PEM",
        help="CA of the control plane's certificate; set, the link uses TLS (env SLUICE_TLS_CA)",
    )
    tls.add_argument(
        "--tls-client-ca",
        default=os.environ.get("SLUICE_TLS_CLIENT_CA", ""),
        metavar="PEM",
        help="require callers to present a certificate signed by this CA (env SLUICE_TLS_CLIENT_CA)",
    )
    agent.set_defaults(handler=cmd_agent)

    listing = sub.add_parser("agents", help="list serving agents and whether they are in sync")
    add_json(listing)
    listing.set_defaults(handler=cmd_agents)

    predict = sub.add_parser("predict", help="ask an agent for a prediction")
    predict.add_argument("deployment")
    predict.add_argument(
        "--agent",
        default=os.environ.get("SLUICE_AGENT", DEFAULT_AGENT),
        help=f"agent address (env SLUICE_AGENT, default {DEFAULT_AGENT})",
    )
    rows = predict.add_mutually_exclusive_group(required=True)
    rows.add_argument(
        "--input", metavar="JSON", help="one row [1.0, 2.0, ...] or rows [[...], [...]] (a model with one input)"
    )
    rows.add_argument(
        "--features",
        metavar="JSON",
        help='named feature values of one row {"plan": "pro", "age": 42, "income": null}, or a list of them',
    )
    predict.add_argument("--key", default="", metavar="ROUTING_KEY", help="sticky routing key")
    predict.add_argument("--request-id", default="", help="request id (default: the agent makes one)")
    predict.add_argument("--timeout", type=positive_seconds, default=30.0, help="seconds (default %(default)s)")
    add_json(predict)
    predict.set_defaults(handler=cmd_predict)


def parse_labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--label {item!r} must be KEY=VALUE")
        labels[key] = value
    return labels


def cmd_agent(args: argparse.Namespace) -> int:
    from agent.options import AgentOptions, AgentStartError
    from agent.server import serve

    if args.max_message_bytes < 1024:
        raise CliError("--max-message-bytes must be at least 1024")
    if args.report_buffer < 1:
        raise CliError("--report-buffer must be at least 1")
    if args.label_batches < 1:
        raise CliError("--label-batches must be at least 1")
    if args.keep_freed_memory_mb < 0:
        raise CliError("--keep-freed-memory-mb must be 0 (the C library's defaults) or more")
    if args.log_buffer_mb < 0:
        raise CliError("--log-buffer-mb must be 0 (log off) or more")
    if args.log_sink or args.s3_endpoint:
        from agent.logsink import check_endpoint, parse_sink

        try:
            if args.log_sink:
                parse_sink(args.log_sink)
            if args.s3_endpoint:
                check_endpoint(args.s3_endpoint)
        except InvalidInput as exc:
            raise CliError(str(exc)) from None
        if args.s3_endpoint and not args.log_sink:
            raise CliError("--s3-endpoint needs --log-sink s3://BUCKET/PREFIX")
    if not 0.1 <= args.reconnect_max_seconds <= 3600:
        raise CliError("--reconnect-max-seconds must be between 0.1 and 3600")
    if args.name:
        validate_name("agent", args.name)
    options = AgentOptions(
        controlplane=args.agent_controlplane or args.controlplane,
        listen=args.listen,
        name=args.name,
        cache=args.cache,
        metrics_port=args.metrics_port,
        labels=parse_labels(args.label),
        max_message_bytes=args.max_message_bytes,
        report_buffer=args.report_buffer,
        label_batches=args.label_batches,
        log_buffer_mb=args.log_buffer_mb,
        log_sink=args.log_sink,
        keep_freed_memory_mb=args.keep_freed_memory_mb,
        s3_endpoint=args.s3_endpoint,
        s3_region=args.s3_region,
        reconnect_max_seconds=args.reconnect_max_seconds,
        model_timeout_seconds=args.model_timeout,
        model_memory_mb=args.model_memory_mb,
        token=os.environ.get("SLUICE_TOKEN") or None,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca=args.tls_ca,
        tls_client_ca=args.tls_client_ca,
    )

    def ready(agent: Any) -> None:
        metrics = f" (/metrics on port {agent.metrics_port})" if agent.metrics_port else ""
        print(f"sluice agent {agent.name} listening on {agent.address}{metrics}", flush=True)

    try:
        asyncio.run(serve(options, ready))
    except AgentStartError as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        agents = client.agents()
    if args.json:
        print_json(agents)
        return 0
    rows = []
    for a in agents:
        deployments = " ".join(
            f"{d.deployment}@{d.applied_generation}{'✓' if d.in_sync else f'✗(want {d.desired_generation})'}"
            for d in a.deployments
        )
        rows.append([a.name, a.host, a.address, a.state, ago(a.last_seen), deployments or "-"])
    print_table(["name", "host", "address", "state", "last seen", "applied (in sync ✓)"], rows, "(no agents)")
    return 0


FLOAT32_MAX = 3.4028234663852886e38


def parse_rows(text: str) -> list[list[float]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--input is not JSON: {exc}") from None
    if isinstance(data, list) and data and all(isinstance(v, int | float) and not isinstance(v, bool) for v in data):
        data = [data]
    if (
        not isinstance(data, list)
        or not data
        or not all(isinstance(row, list) and row for row in data)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for row in data for v in row)
    ):
        raise CliError("--input must be a list of numbers (one row) or a list of such lists (rows)")
    width = len(data[0])
    if any(len(row) != width for row in data):
        raise CliError("--input rows must all have the same number of features")
    try:
        rows = [[float(v) for v in row] for row in data]
    except OverflowError:  # an integer beyond any float
        raise CliError("--input has a number too large for a float32 feature (at most ±3.4e38)") from None
    if not all(math.isfinite(v) for row in rows for v in row):
        raise CliError("--input must not contain NaN or infinity")
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if abs(v) > FLOAT32_MAX:  # the wire carries float32: it would arrive as infinity
                raise CliError(f"--input row {i} feature {j} is {v:g}, beyond float32's range (at most ±3.4e38)")
    return rows


def parse_records(text: str) -> list[dict[str, Any]]:
    """--features: one object of named feature values, or a non-empty list of them."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--features is not JSON: {exc}") from None
    records = [data] if isinstance(data, dict) else data
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise CliError('--features must be an object {"name": value, ...} (one row) or a list of such objects')
    for i, record in enumerate(records):
        if not record:
            raise CliError(f"--features row {i} is empty: give the model's features by name")
    return records


def cmd_predict(args: argparse.Namespace) -> int:
    import grpc

    from core.client import client_error, open_channel, predict_request, tensor_array, with_default_port
    from core.errors import InvalidInput
    from protos import inference_pb2, inference_pb2_grpc

    validate_name("deployment", args.deployment)
    agent = with_default_port(args.agent, 7500)
    if args.features is not None:
        records = parse_records(args.features)
        try:
            request = predict_request(
                args.deployment, records=records, routing_key=args.key, request_id=args.request_id
            )
        except InvalidInput as exc:
            raise CliError(f"--features: {exc}") from None
        count = len(records)
    else:
        rows = parse_rows(args.input)
        request = inference_pb2.PredictRequest(
            deployment=args.deployment,
            input=inference_pb2.Tensor(shape=[len(rows), len(rows[0])], values=[v for row in rows for v in row]),
            routing_key=args.key,
            request_id=args.request_id,
        )
        count = len(rows)
    with open_channel(agent) as channel:  # TLS agents: SLUICE_TLS_CA (+ SLUICE_TLS_CERT/KEY for mTLS)
        try:
            response = inference_pb2_grpc.InferenceStub(channel).Predict(request, timeout=args.timeout)
        except grpc.RpcError as exc:
            raise client_error(exc, agent, "agent") from None
    result: dict[str, Any] = {
        "request_id": response.request_id,
        "served_by": f"{response.served_by.model}:{response.served_by.version}",
        "role": word_of(ServingRole, response.role),
        "agent": response.agent,
    }
    if response.labels:
        result["labels"] = list(response.labels)
    if response.class_labels:
        result["class_labels"] = list(response.class_labels)
    if response.classes:
        result["classes"] = list(response.classes)
    probabilities = tensor_array(response.probabilities)
    if probabilities is not None:
        result["probabilities"] = probabilities.tolist()
    if response.values:
        values = list(response.values)
        if len(response.values_shape) == 2:
            width = int(response.values_shape[1])
            result["values"] = [values[i * width : (i + 1) * width] for i in range(len(values) // width)]
        else:
            result["values"] = values
    if args.json:
        print_json(result)
        return 0
    print(f"{result['served_by']} ({result['role']}) on {result['agent']}, request {result['request_id']}")
    names = result.get("classes")
    for i in range(count):
        parts = []
        if "class_labels" in result:
            parts.append(f"label={result['class_labels'][i]}")
        elif "labels" in result:
            parts.append(f"label={result['labels'][i]}")
        if "probabilities" in result:
            row = result["probabilities"][i]
            shown = [f"{names[j]} {p:.4f}" if names and j < len(names) else f"{p:.4f}" for j, p in enumerate(row)]
            parts.append("probabilities=[" + ", ".join(shown) + "]")
        if "values" in result:
            value = result["values"][i]
            text = ", ".join(f"{v:.6g}" for v in value) if isinstance(value, list) else f"{value:.6g}"
            parts.append(f"value={text}")
        print(f"  row {i}: " + " ".join(parts))
    return 0
