"""TLS and mutual TLS on every gRPC surface, with real processes and certificates from openssl.

One control plane requires client certificates (mTLS) and tokens; an agent connects to it with
its own certificate and serves Predict over TLS, requiring client certificates too. Then the
refusals: plaintext clients, agents without a certificate or with one from another CA, clients
that do not trust the server's CA, and unreadable files that stop a process with one line.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest

from controlplane.config import token_digest
from protos import controlplane_pb2, controlplane_pb2_grpc, inference_pb2, inference_pb2_grpc
from tests.agent.cluster import AgentProcess, wait_until
from tests.harness import CP_READY, OPENSSL, Cert, Pki, ServerThread, SluiceProcess, run_cli, unique
from tests.models import breast_cancer_rows, make_classifier_onnx

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("tls"),
    pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed: cannot make test certificates"),
]

ADMIN_TOKEN = "admin-secret-for-tls-tests"
AGENT_TOKEN = "agent-secret-for-tls-tests"


@dataclass
class Secured:
    root: Path
    pki: Pki
    server: Cert  # the control plane's certificate
    agent: Cert  # an agent's identity (server and client)
    operator: Cert  # a person's or script's client certificate
    rogue: Cert  # valid-looking, signed by another CA
    other_ca: Path
    cp: SluiceProcess
    address: str
    model: str

    def cli_env(self, cert: Cert | None = None, ca: Path | None = None, token: str = ADMIN_TOKEN) -> dict[str, str]:
        cert = self.operator if cert is None else cert
        return {
            "SLUICE_TLS_CA": str(ca or self.pki.ca.cert),
            "SLUICE_TLS_CERT": str(cert.cert),
            "SLUICE_TLS_KEY": str(cert.key),
            "SLUICE_TOKEN": token,
        }

    def cli(self, *args: str, **env_kw: object) -> str:
        result = run_cli(*args, address=self.address, env=self.cli_env(**env_kw))  # type: ignore[arg-type]
        assert result.returncode == 0, f"sluice {' '.join(args)}: {result.stderr}"
        return result.stdout


def no_tls_env() -> dict[str, str]:
    """A child environment without any TLS variable (the test runner's own might set them)."""
    return {"SLUICE_TLS_CA": "", "SLUICE_TLS_CERT": "", "SLUICE_TLS_KEY": "", "SLUICE_TLS_CLIENT_CA": ""}


def one_line_error(stderr: str, *fragments: str) -> None:
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in last, f"{fragment!r} not in {last!r}"


def write_config(path: Path, server: Cert, client_ca: Path | None, extra: str = "") -> Path:
    tls = f'[tls]\ncert_file = "{server.cert}"\nkey_file = "{server.key}"\n'
    if client_ca is not None:
        tls += f'client_ca_file = "{client_ca}"\n'
    path.write_text(
        "[[tokens]]\n"
        f'name = "admin-1"\nrole = "admin"\nsha256 = "{token_digest(ADMIN_TOKEN)}"\n'
        "[[tokens]]\n"
        f'name = "agent-1"\nrole = "agent"\nsha256 = "{token_digest(AGENT_TOKEN)}"\n'
        "[agents]\nheartbeat_seconds = 0.5\n" + tls + extra
    )
    return path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("tls")
    pki = Pki(root / "pki")
    server, agent, operator = pki.issue("controlplane"), pki.issue("agent"), pki.issue("operator")
    other = Pki(root / "other", name="other-ca")
    rogue = other.issue("rogue")
    config = write_config(root / "sluice.toml", server, client_ca=pki.ca.cert)
    cp = SluiceProcess(
        [
            "controlplane",
            "--listen",
            "127.0.0.1:0",
            "--db",
            f"sqlite:///{root / 'sluice.db'}",
            "--artifacts",
            str(root / "artifacts"),
            "--config",
            str(config),
            "--metrics-port",
            "0",
        ],
        root / "controlplane.log",
        env=no_tls_env(),
        ready_pattern=CP_READY,
    )
    try:
        assert cp.match is not None
        secured = Secured(root, pki, server, agent, operator, rogue, other.ca.cert, cp, cp.match.group(1), "")
        # The CLI over mTLS, with a token: the first case of the issue, and the setup of the others.
        secured.model = unique("cancer")
        models = root / "models"
        models.mkdir()
        out = secured.cli("version", "register", secured.model, str(make_classifier_onnx(models)), "--version", "v1")
        assert "registered" in out
        yield secured
    finally:
        cp.close()


def agent_args(cert: Cert | None, ca: Path | None, client_ca: Path | None = None) -> list[str]:
    args: list[str] = []
    if cert is not None:
        args += ["--tls-cert", str(cert.cert), "--tls-key", str(cert.key)]
    if ca is not None:
        args += ["--tls-ca", str(ca)]
    if client_ca is not None:
        args += ["--tls-client-ca", str(client_ca)]
    return args


def test_cli_over_tls(secured: Secured) -> None:
    versions = json.loads(secured.cli("version", "list", secured.model, "--json"))
    assert [v["ref"]["version"] for v in versions] == ["v1"]
    assert "operator" not in secured.cli("agents")  # reachable, listing works


def test_agent_with_mtls_gets_its_snapshot_and_serves_predict_over_tls(secured: Secured) -> None:
    name, dep = unique("tls-agent"), unique("tls-web")
    ca = secured.pki.ca.cert
    operator = grpc.ssl_channel_credentials(
        ca.read_bytes(), secured.operator.key.read_bytes(), secured.operator.cert.read_bytes()
    )
    agent = AgentProcess(
        secured.address,
        name,
        secured.root / name,
        secured.root / f"{name}.log",
        extra=agent_args(secured.agent, ca, client_ca=ca),
        env={**no_tls_env(), "SLUICE_TOKEN": AGENT_TOKEN},
        credentials=operator,
    )
    try:
        wait_until(lambda: name in secured.cli("agents"), 30, "the agent connected over mTLS")
        secured.cli("deploy", dep, f"{secured.model}:v1")
        row = breast_cancer_rows(1, seed=3)
        response = wait_until(lambda: agent.predict(dep, row), 30, "a prediction over TLS")
        assert response.served_by.version == "v1" and response.agent == name

        # `sluice predict --agent` speaks TLS to the agent with SLUICE_TLS_CA (+ client cert: mTLS agent).
        result = run_cli(
            "predict", dep, "--agent", agent.address, "--input", json.dumps(row[0].tolist()), "--json",
            env=secured.cli_env(),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["served_by"] == f"{secured.model}:v1"

        # The agent requires client certificates: TLS without one is refused at the handshake.
        anonymous = grpc.ssl_channel_credentials(ca.read_bytes())
        assert predict_status(agent.address, dep, row, anonymous) == grpc.StatusCode.UNAVAILABLE
        # A plaintext client gets nothing from the TLS agent.
        assert predict_status(agent.address, dep, row, None) == grpc.StatusCode.UNAVAILABLE
        result = run_cli(
            "predict", dep, "--agent", agent.address, "--input", json.dumps(row[0].tolist()), env=no_tls_env()
        )
        assert result.returncode != 0
        one_line_error(result.stderr, "UNAVAILABLE")
    finally:
        agent.stop()


def predict_status(
    address: str, dep: str, rows: np.ndarray, credentials: grpc.ChannelCredentials | None
) -> grpc.StatusCode:
    channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    try:
        request = inference_pb2.PredictRequest(
            deployment=dep, input=inference_pb2.Tensor(shape=list(rows.shape), values=rows.ravel().tolist())
        )
        inference_pb2_grpc.InferenceStub(channel).Predict(request, timeout=5)
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        return exc.code()
    finally:
        channel.close()


def controlplane_status(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    try:
        controlplane_pb2_grpc.ControlPlaneStub(channel).ListVersions(
            controlplane_pb2.ListVersionsRequest(), metadata=[("authorization", f"Bearer {ADMIN_TOKEN}")], timeout=5
        )
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        return exc.code()
    finally:
        channel.close()


def test_plaintext_client_refused_by_the_tls_controlplane(secured: Secured) -> None:
    assert controlplane_status(secured.address, None) == grpc.StatusCode.UNAVAILABLE
    result = run_cli("version", "list", address=secured.address, env={**no_tls_env(), "SLUICE_TOKEN": ADMIN_TOKEN})
    assert result.returncode == 3
    # Not "is `sluice controlplane` running?": it is, and it speaks TLS. The CLI says what to set.
    one_line_error(result.stderr, "UNAVAILABLE", "closed the connection: if it serves TLS, set SLUICE_TLS_CA")
    assert "running?" not in result.stderr
    # With the right certificates the very same call works: the refusal was the transport.
    ca, op = secured.pki.ca.cert, secured.operator
    mtls = grpc.ssl_channel_credentials(ca.read_bytes(), op.key.read_bytes(), op.cert.read_bytes())
    assert controlplane_status(secured.address, mtls) == grpc.StatusCode.OK


def test_cert_signed_by_another_ca_refused(secured: Secured) -> None:
    ca = secured.pki.ca.cert
    # The control plane refuses a client certificate from another CA...
    rogue_cert = secured.rogue
    rogue = grpc.ssl_channel_credentials(ca.read_bytes(), rogue_cert.key.read_bytes(), rogue_cert.cert.read_bytes())
    assert controlplane_status(secured.address, rogue) == grpc.StatusCode.UNAVAILABLE
    result = run_cli("version", "list", address=secured.address, env=secured.cli_env(cert=secured.rogue))
    assert result.returncode == 3
    one_line_error(
        result.stderr,
        "UNAVAILABLE",
        f"refused the TLS handshake: is the client certificate in SLUICE_TLS_CERT ({secured.rogue.cert}) signed by",
    )
    # ...and a client that trusts only the other CA refuses the control plane's certificate.
    result = run_cli("version", "list", address=secured.address, env=secured.cli_env(ca=secured.other_ca))
    assert result.returncode == 3
    one_line_error(
        result.stderr,
        "UNAVAILABLE",
        f"the control plane's certificate is not signed by the CA in SLUICE_TLS_CA ({secured.other_ca})",
        "CERTIFICATE_VERIFY_FAILED",
    )
    assert "Tls handshake failed (TSI_PROTOCOL_FAILURE)" not in result.stderr


def test_cli_without_the_client_certificate_mtls_requires_is_told_to_set_it(secured: Secured) -> None:
    env = {**no_tls_env(), "SLUICE_TLS_CA": str(secured.pki.ca.cert), "SLUICE_TOKEN": ADMIN_TOKEN}
    result = run_cli("version", "list", address=secured.address, env=env)
    assert result.returncode == 3
    one_line_error(
        result.stderr, "UNAVAILABLE", "may require a client certificate; set SLUICE_TLS_CERT and SLUICE_TLS_KEY"
    )


def test_tls_cli_against_a_plaintext_controlplane_is_told_to_unset_the_ca(
    secured: Secured, shared_server: ServerThread
) -> None:
    env = {**no_tls_env(), "SLUICE_TLS_CA": str(secured.pki.ca.cert)}
    result = run_cli("version", "list", address=shared_server.address, env=env)
    assert result.returncode == 3
    one_line_error(result.stderr, "does not speak TLS: unset SLUICE_TLS_CA")


@pytest.mark.parametrize("identity", ["no client certificate", "certificate from another CA"])
def test_agent_refused_by_the_mtls_controlplane_leaves_no_trace(secured: Secured, identity: str) -> None:
    name = unique("refused")
    cert = None if identity == "no client certificate" else secured.rogue
    agent = AgentProcess(
        secured.address,
        name,
        secured.root / name,
        secured.root / f"{name}.log",
        extra=agent_args(cert, secured.pki.ca.cert),
        env={**no_tls_env(), "SLUICE_TOKEN": AGENT_TOKEN},  # the token is right: TLS alone refuses it
    )
    try:
        assert agent.process is not None
        # The agent says why it is not connected (first failure logged), and keeps running.
        agent.process.wait_for(r"control plane \S+: UNAVAILABLE.*TLS handshake failed", 30)
        assert agent.process.proc.poll() is None
        assert "connected to the control plane" not in agent.process.output()
        # Nothing half-done at the control plane: no agent row, no log line naming the agent.
        listed = json.loads(secured.cli("agents", "--json"))
        assert name not in [a["name"] for a in listed]
        assert name not in secured.cp.output()
        assert not re.search(r"Traceback", secured.cp.output())
    finally:
        agent.stop()


def test_unreadable_or_mismatched_tls_files_stop_with_one_line(secured: Secured, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    agent_cmd = ["agent", "--controlplane", secured.address, "--listen", "127.0.0.1:0", "--metrics-port", "0"]
    agent, wrong_key = secured.agent, Cert(secured.agent.cert, secured.operator.key)
    encrypted = tmp_path / "encrypted.key"  # OpenSSL would prompt for its passphrase: refused instead
    assert OPENSSL is not None
    subprocess.run(
        [OPENSSL, "ec", "-in", str(agent.key), "-aes256", "-passout", "pass:secret", "-out", str(encrypted)],
        check=True,
        capture_output=True,
    )
    cases: list[tuple[list[str], dict[str, str], tuple[str, ...]]] = [
        (
            [*agent_cmd, "--cache", str(tmp_path / "a1"), "--tls-cert", str(missing), "--tls-key", str(agent.key)],
            {},
            ("cannot read the TLS certificate", str(missing)),
        ),
        (
            [*agent_cmd, "--cache", str(tmp_path / "a2"), "--tls-cert", str(agent.cert)],
            {},
            ("--tls-cert and --tls-key go together",),
        ),
        (  # the key of another certificate
            [*agent_cmd, "--cache", str(tmp_path / "a3"), *agent_args(wrong_key, None)],
            {},
            ("do not go together", str(agent.cert)),
        ),
        ([*agent_cmd, "--cache", str(tmp_path / "a4"), "--tls-ca", str(not_pem)], {}, ("not a PEM file", str(not_pem))),
        (
            [*agent_cmd, "--cache", str(tmp_path / "a5"), *agent_args(Cert(agent.cert, encrypted), None)],
            {},
            ("is encrypted", str(encrypted)),
        ),
        (["version", "list"], {"SLUICE_TLS_CA": str(missing)}, ("cannot read the TLS CA", str(missing))),
        (
            ["version", "list"],
            {"SLUICE_TLS_CA": str(secured.pki.ca.cert), "SLUICE_TLS_CERT": str(secured.operator.cert)},
            ("go together",),
        ),
    ]
    for args, env, fragments in cases:
        result = run_cli(*args, address=secured.address, env={**no_tls_env(), **env}, timeout=60)
        assert result.returncode != 0, args
        one_line_error(result.stderr, *fragments)

    # The control plane too: a config naming a missing key stops it before it listens.
    config = write_config(tmp_path / "bad.toml", Cert(secured.server.cert, missing), client_ca=None)
    result = run_cli(
        "controlplane", "--listen", "127.0.0.1:0", "--db", f"sqlite:///{tmp_path / 'x.db'}",
        "--artifacts", str(tmp_path / "art"), "--config", str(config), "--metrics-port", "0",
        env=no_tls_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    one_line_error(result.stderr, "cannot read the TLS key", str(missing))
