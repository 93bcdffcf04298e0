"""The Prometheus `/metrics` HTTP endpoint, shared by the control plane (7401) and agents (7501)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

#: a connection that sends no complete request for this long is closed: each connection holds a
#: thread, so idle ones must not pile up (issue 13: they were kept for ever)
IDLE_TIMEOUT_SECONDS = 10.0


class MetricsEndpoint:
    """Serves one registry over HTTP on a daemon thread until `close()`."""

    def __init__(self, registry: CollectorRegistry, idle_timeout: float = IDLE_TIMEOUT_SECONDS) -> None:
        self.registry = registry
        self.idle_timeout = idle_timeout
        self._http: Any = None

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP server; returns the port it listens on (port 0 picks one)."""
        self._http, _thread = start_http_server(port, addr=host, registry=self.registry)
        # The library's handler waits for a request line with no timeout; a subclass of it with a
        # socket timeout (StreamRequestHandler.timeout) ends a silent connection and its thread.
        handler = self._http.RequestHandlerClass
        self._http.RequestHandlerClass = type("IdleTimeoutHandler", (handler,), {"timeout": self.idle_timeout})
        return int(self._http.server_port)

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
