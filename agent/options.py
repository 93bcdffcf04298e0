"""What `sluice agent` is started with (`AgentOptions`), and what is derived from it before
anything listens: the agent's default name, its listen address split, its TLS credentials.
A bad option is an `AgentStartError`: one clear line for the operator.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from agent.label_spool import DEFAULT_MAX_BATCHES
from agent.link import BACKOFF_CAP
from agent.predlog import DEFAULT_BUFFER_MB
from agent.reports import DEFAULT_CAPACITY
from agent.serving import DEFAULT_PROBE_LIMITS
from core.lifecycle import split_listen_address
from core.tls import TlsError, channel_credentials_from, server_credentials_from

DEFAULT_LISTEN = "127.0.0.1:7500"
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class AgentStartError(Exception):
    """The agent cannot start (bad address, port in use...)."""


@dataclass
class AgentOptions:
    controlplane: str
    listen: str = DEFAULT_LISTEN
    name: str = ""
    cache: Path | None = None
    metrics_port: int | None = None  # None: the --listen port + 1 (7500 -> 7501); 0: off
    labels: dict[str, str] = field(default_factory=dict)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    report_buffer: int = DEFAULT_CAPACITY
    #: Feedback label batches kept on disk for the control plane; beyond it new labels are dropped
    label_batches: int = DEFAULT_MAX_BATCHES
    # Disk for prediction-log segments waiting for the control plane's ack; 0: no prediction log.
    log_buffer_mb: int = DEFAULT_BUFFER_MB
    # The prediction log's sink: "" ships segments to the control plane; s3://BUCKET/PREFIX uploads
    # them there (agent/logsink.py; credentials from the AWS environment variables).
    log_sink: str = ""
    #: freed memory kept for reuse (MB; 0: the C library's defaults). Fewer page faults on large
    #: batches, more resident memory: off by default (core/memory.py, docs/PERFORMANCE.md)
    keep_freed_memory_mb: int = 0
    s3_endpoint: str = ""
    s3_region: str = ""
    reconnect_max_seconds: float = BACKOFF_CAP
    token: str | None = None
    host: str = ""
    # TLS. tls_cert/tls_key: this agent's certificate, served on its gRPC port and presented to
    # the control plane as a client certificate (mTLS). tls_ca: the CA that signed the control
    # plane's certificate (set: the link uses TLS). tls_client_ca: callers of this agent must
    # present a certificate signed by it.
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    tls_client_ca: str = ""
    # The sandbox that loads and warms up each new model before the agent does (NACK beyond it).
    model_timeout_seconds: float = DEFAULT_PROBE_LIMITS.timeout_seconds
    model_memory_mb: int = DEFAULT_PROBE_LIMITS.memory_mb


def default_name(port: int) -> str:
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-.") or "agent"
    return f"{host}-{port}"


def split_host(address: str) -> tuple[str, int]:
    try:
        return split_listen_address(address)
    except ValueError as exc:
        raise AgentStartError(str(exc)) from None


def tls_credentials(options: AgentOptions) -> tuple[grpc.ServerCredentials | None, grpc.ChannelCredentials | None]:
    """(credentials of the agent's own server, credentials of its link to the control plane)."""
    if bool(options.tls_cert) != bool(options.tls_key):
        raise AgentStartError("--tls-cert and --tls-key go together")
    if options.tls_client_ca and not options.tls_cert:
        raise AgentStartError("--tls-client-ca needs --tls-cert and --tls-key (a TLS server)")
    try:
        server = (
            server_credentials_from(options.tls_cert, options.tls_key, options.tls_client_ca)
            if options.tls_cert
            else None
        )
        link = channel_credentials_from(options.tls_ca, options.tls_cert, options.tls_key) if options.tls_ca else None
    except TlsError as exc:
        raise AgentStartError(str(exc)) from None
    return server, link
