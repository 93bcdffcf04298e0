"""The Prometheus `/metrics` HTTP endpoint, shared by the control plane (7401) and agents (7501)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, start_http_server


class MetricsEndpoint:
    """Serves one registry over HTTP on a daemon thread until `close()`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._http: Any = None

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP server; returns the port it listens on (port 0 picks one)."""
        self._http, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._http.server_port)

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
