"""The agenthub area of the control plane: serving agents connect here for their snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controlplane.server import ControlPlaneServer


def install(server: ControlPlaneServer) -> None:
    """Add the AgentHub service, the push, heartbeat and expiry loops to the server."""
    from controlplane.agenthub.hub import AgentHub
    from controlplane.agenthub.service import AgentHubService
    from protos import agent_pb2_grpc

    assert server.ctx is not None
    hub = AgentHub(server.ctx, server.executor)
    hub.startup()  # before the server takes calls (one quick query)
    agent_pb2_grpc.add_AgentHubServicer_to_server(AgentHubService(hub), server.grpc_server)
    server.spawn("agenthub-push", hub.push_loop)
    server.spawn("agenthub-heartbeat", hub.heartbeat_loop)
    server.spawn("agenthub-expiry", hub.expiry_loop)
    server.on_stop(hub.stop)
