"""Wires each area's services and background loops into the control-plane server.

Each area exposes `install(server)`: it may add gRPC services to `server.grpc_server`, start
loops with `server.spawn(name, coroutine_fn)` and register cleanup with `server.on_stop(fn)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controlplane.server import ControlPlaneServer


def install(server: ControlPlaneServer) -> None:
    from controlplane import agenthub, experiments, monitoring

    agenthub.install(server)
    monitoring.install(server)
    experiments.install(server)
