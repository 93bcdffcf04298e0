"""Ports: an agent's and the control plane's /metrics follow their gRPC port by default."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import pytest

from core.client import SluiceClient
from core.lifecycle import metrics_port_for
from tests.agent.cluster import AgentProcess
from tests.harness import ServerThread, free_port, one_line_error, run_cli

pytestmark = pytest.mark.slow


def test_the_metrics_port_follows_the_grpc_port_unless_given() -> None:
    assert metrics_port_for(7500, None) == 7501
    assert metrics_port_for(7510, None) == 7511
    assert metrics_port_for(7400, None) == 7401
    assert metrics_port_for(0, None) == 0  # any free gRPC port: any free metrics port
    assert metrics_port_for(7500, 9100) == 9100
    assert metrics_port_for(7500, 0) is None  # 0 turns /metrics off
    with pytest.raises(ValueError, match="give --metrics-port"):
        metrics_port_for(65535, None)


def free_pair() -> int:
    """A free port whose next port is free too."""
    for _ in range(100):
        port = free_port()
        if port < 65535:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise AssertionError("no two free neighbouring ports")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        return page.read().decode()


def test_two_agents_that_differ_only_in_listen_both_serve(shared_server: ServerThread, tmp_path: Path) -> None:
    ports = [free_pair(), free_pair()]
    while ports[1] in (ports[0] - 1, ports[0] + 1):
        ports[1] = free_pair()
    names = [f"ports-{port}" for port in ports]
    agents: list[AgentProcess] = []
    try:
        for name, port in zip(names, ports, strict=True):
            agents.append(
                AgentProcess(
                    shared_server.address,
                    name,
                    tmp_path / name,
                    tmp_path / f"{name}.log",
                    listen=f"127.0.0.1:{port}",
                    metrics_port=None,
                )
            )
        for agent, port in zip(agents, ports, strict=True):
            assert agent.process is not None
            assert f"(/metrics on port {port + 1})" in agent.process.output()
            assert "sluice_agent_connected" in scrape(port + 1)
        with SluiceClient(shared_server.address, token="") as client:
            deadline = time.monotonic() + 30
            while {a.name for a in client.agents() if a.state == "connected"} < set(names):
                assert time.monotonic() < deadline, [(a.name, a.state) for a in client.agents()]
                time.sleep(0.1)
    finally:
        for agent in agents:
            agent.stop()


def test_a_taken_metrics_port_is_refused_in_one_line(shared_server: ServerThread, tmp_path: Path) -> None:
    port = free_pair()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        agent = run_cli(
            "agent",
            "--controlplane",
            shared_server.address,
            "--listen",
            f"127.0.0.1:{port}",
            "--cache",
            str(tmp_path / "cache"),
            timeout=60,
        )
        err = one_line_error(agent)
        assert f"cannot serve /metrics on port {port + 1}" in err and "--metrics-port" in err
        controlplane = run_cli(
            "controlplane",
            "--listen",
            f"127.0.0.1:{port}",
            "--db",
            str(tmp_path / "cp.db"),
            "--artifacts",
            str(tmp_path / "artifacts"),
            timeout=60,
        )
        err = one_line_error(controlplane)
        assert f"cannot serve /metrics on 127.0.0.1:{port + 1}" in err and "--metrics-port" in err
    # Nothing was left listening on the gRPC port by either refused start.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
