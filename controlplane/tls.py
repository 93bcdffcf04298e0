"""TLS credentials for the gRPC servers (control plane and agents)."""

from __future__ import annotations

from pathlib import Path

import grpc

from controlplane.config import TlsConfig
from controlplane.errors import InvalidInput


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read the TLS {what} {path}: {exc.strerror}") from exc


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """Server TLS; with `client_ca_file`, clients must present a certificate that CA signed (mTLS)."""
    key = _read(tls.key_file, "key")
    cert = _read(tls.cert_file, "certificate")
    if tls.client_ca_file:
        return grpc.ssl_server_credentials(
            [(key, cert)],
            root_certificates=_read(tls.client_ca_file, "client CA"),
            require_client_auth=True,
        )
    return grpc.ssl_server_credentials([(key, cert)])
