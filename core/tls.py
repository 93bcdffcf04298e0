"""TLS for every gRPC surface: PEM files read with one-line errors, server and channel credentials.

Pure (grpc + the standard library, no server or store): the control plane, the CLI client and the
agent all import it. Files are checked when a process starts, so a missing, unreadable or
mismatched certificate stops it with one line naming the file instead of failing every handshake
later. The stdlib `ssl` module does the checking; no `cryptography` dependency.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path

import grpc

from core.errors import InvalidInput

# The client side's environment (CLI, TUI, scripts, agents): the same names everywhere.
ENV_CA = "SLUICE_TLS_CA"
ENV_CERT = "SLUICE_TLS_CERT"
ENV_KEY = "SLUICE_TLS_KEY"


class TlsError(InvalidInput):
    """A TLS file is missing, unreadable or not what it should be."""


def read_pem(path: str | Path, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise TlsError(f"the TLS {what} {path} is not a PEM file (no '-----BEGIN' line)")
    return data


def _check_pair(cert_file: str | Path, key_file: str | Path) -> None:
    """The key must belong to the certificate; grpc would only notice at the first handshake."""

    def no_passphrase() -> bytes:
        # Without this, OpenSSL would prompt on the terminal; gRPC cannot use encrypted keys anyway.
        raise TlsError(
            f"the TLS key {key_file} is encrypted; gRPC needs an unencrypted PEM key (protect it with permissions)"
        )

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert_file), str(key_file), password=no_passphrase)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise TlsError(
            f"the TLS certificate {cert_file} and key {key_file} do not go together or are invalid: {reason}"
        ) from None


def _check_ca(ca_file: str | Path, what: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except ssl.SSLError as exc:
        raise TlsError(f"the TLS {what} {ca_file} is not a valid certificate bundle: {exc.reason or exc}") from None


def server_credentials_from(cert_file: str, key_file: str, client_ca_file: str = "") -> grpc.ServerCredentials:
    """Server TLS; with `client_ca_file`, clients must present a certificate that CA signed (mTLS)."""
    if not cert_file or not key_file:
        raise TlsError("a TLS server needs both a certificate and a key")
    cert = read_pem(cert_file, "certificate")
    key = read_pem(key_file, "key")
    _check_pair(cert_file, key_file)
    if client_ca_file:
        client_ca = read_pem(client_ca_file, "client CA")
        _check_ca(client_ca_file, "client CA")
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca, require_client_auth=True)
    return grpc.ssl_server_credentials([(key, cert)])


def channel_credentials_from(ca_file: str, cert_file: str = "", key_file: str = "") -> grpc.ChannelCredentials:
    """Client TLS that trusts `ca_file`; with cert+key the client also proves who it is (mTLS)."""
    if bool(cert_file) != bool(key_file):
        raise TlsError(
            f"a TLS client certificate needs its key and the other way round ({ENV_CERT} and {ENV_KEY} go together)"
        )
    ca = read_pem(ca_file, "CA")
    _check_ca(ca_file, "CA")
    cert = key = None
    if cert_file:
        cert = read_pem(cert_file, "client certificate")
        key = read_pem(key_file, "client key")
        _check_pair(cert_file, key_file)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def env_channel_credentials(
    ca_file: str | None = None, environ: Mapping[str, str] | None = None
) -> grpc.ChannelCredentials | None:
    """TLS when SLUICE_TLS_CA (or `ca_file`) names a CA bundle, plaintext otherwise.

    SLUICE_TLS_CERT and SLUICE_TLS_KEY add a client certificate for servers that require one.
    """
    env = os.environ if environ is None else environ
    ca_file = ca_file or env.get(ENV_CA, "")
    if not ca_file:
        return None
    return channel_credentials_from(ca_file, env.get(ENV_CERT, ""), env.get(ENV_KEY, ""))
