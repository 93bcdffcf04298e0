"""The control plane as a real process: it starts, serves health, and drains on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.harness import REPO, SluiceProcess, run_cli


def test_sigterm_drains_and_exits_cleanly(tmp_path: Path) -> None:
    proc = SluiceProcess(
        [
            "controlplane",
            "--listen",
            "127.0.0.1:0",
            "--db",
            str(tmp_path / "cp.db"),
            "--artifacts",
            str(tmp_path / "artifacts"),
            "--metrics-port",
            "0",
        ],
        tmp_path / "cp.log",
        ready_pattern=r"listening on 127\.0\.0\.1:(\d+)",
    )
    assert proc.match is not None
    port = int(proc.match.group(1))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(service="sluice.v1.ControlPlane"), timeout=5)
            assert status.status == health_pb2.HealthCheckResponse.SERVING
        assert run_cli("version", "list", "--json", address=f"127.0.0.1:{port}").stdout.strip() == "[]"
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(30) == 0
        assert "shutting down" in proc.output()
        assert "Traceback" not in proc.output()
    finally:
        proc.close()


def test_wheel_ships_migrations_and_generated_code(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("sluice-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "migrations/env.py" in names and "migrations/script.py.mako" in names
    assert any(n.startswith("migrations/versions/0001_") for n in names)
    assert {"protos/controlplane_pb2.py", "protos/controlplane_pb2.pyi", "protos/oip_pb2_grpc.py"} <= names
    every_layer = {"core/client.py", "runtime/model.py", "cli/__init__.py", "cli/demo/scenario.py", "sluice/errors.py"}
    assert every_layer <= names
    assert any(n.endswith(".tcss") for n in names) or not list((REPO / "tui").glob("*.tcss"))
