"""Wires each area's services and background loops into the control-plane server.

Each area exposes `install(server)` (its `install.py`; the AgentHub's is beside its servicer,
`api/agenthub_service.py`): it may add gRPC services to
`server.grpc_server`, start loops with `server.spawn(name, coroutine_fn)` and register cleanup
with `server.on_stop(fn)`; what it may use of the server is `controlplane.host.AreaHost`.
"""

from __future__ import annotations

from controlplane.api.agenthub_service import install as install_agenthub
from controlplane.experiments.install import install as install_experiments
from controlplane.host import AreaHost
from controlplane.monitoring.install import install as install_monitoring


def install(server: AreaHost) -> None:
    install_agenthub(server)
    install_monitoring(server)
    install_experiments(server)
