"""The ControlPlane servicer: one mixin per area, all behind one error mapping."""

from __future__ import annotations

from controlplane.api.agents_api import AgentsApi
from controlplane.api.deployment_api import DeploymentApi
from controlplane.api.errors import map_errors
from controlplane.api.experiments_api import ExperimentsApi
from controlplane.api.labels_api import LabelsApi
from controlplane.api.monitoring_api import MonitoringApi
from controlplane.api.policy_api import PolicyApi
from controlplane.api.predlog_api import PredictionLogApi
from controlplane.api.registry_api import RegistryApi
from controlplane.api.trail_api import TrailApi
from protos import controlplane_pb2_grpc


@map_errors
class ControlPlaneService(
    RegistryApi,
    DeploymentApi,
    AgentsApi,
    ExperimentsApi,
    MonitoringApi,
    PolicyApi,
    LabelsApi,
    PredictionLogApi,
    TrailApi,
    controlplane_pb2_grpc.ControlPlaneServicer,
):
    """RPCs not implemented by a mixin answer UNIMPLEMENTED (the generated base class)."""
