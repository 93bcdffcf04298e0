"""The /metrics endpoint (control plane and agents): idle connections do not hold a thread for ever."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from core.metrics_http import MetricsEndpoint


def test_a_silent_connection_is_closed_and_its_thread_ends_while_scrapes_still_answer() -> None:
    registry = CollectorRegistry()
    Counter("sluice_probe_total", "a counter to scrape", registry=registry).inc()
    endpoint = MetricsEndpoint(registry, idle_timeout=0.3)
    port = endpoint.serve("127.0.0.1", 0)
    idle: list[socket.socket] = []
    try:
        before = set(threading.enumerate())
        for _ in range(20):  # 20 connections that never send a request
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
            assert b"sluice_probe_total 1.0" in page.read()
        for sock in idle:  # the server hangs up on each: recv sees the end of the stream
            assert sock.recv(1) == b""
        def handlers() -> list[threading.Thread]:
            """The connection threads this endpoint started (other tests' threads may come and go
            in this process meanwhile)."""
            return [t for t in threading.enumerate() if t not in before and "process_request" in t.name]

        deadline = time.monotonic() + 10
        while handlers() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert handlers() == []
    finally:
        for sock in idle:
            sock.close()
        endpoint.close()
