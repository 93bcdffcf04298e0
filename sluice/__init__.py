"""Sluice for scripts: `import sluice`.

    with sluice.ControlPlane("127.0.0.1:7400") as cp:
        cp.deploy("fraud-web", "fraud:v3")
    with sluice.Predictor("127.0.0.1:7500") as agent:
        prediction = agent.predict("fraud-web", [[0.1, 2.0, 3.5]])

Results are frozen dataclasses (`sluice.results`); every failure is a `sluice.Error` subclass
named after its gRPC status (`sluice.NotFound`, `sluice.InvalidArgument`, ...) whose text is the
line the CLI prints. Needs only the base install (grpcio, protobuf, numpy).
"""

from core.vocabulary import AgentState, AlertState, ExperimentState, Health, ServingRole
from sluice.controlplane import ControlPlane
from sluice.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    Error,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from sluice.predictor import Predictor
from sluice.results import (
    Agent,
    Alert,
    BatchPrediction,
    Deployment,
    Experiment,
    Prediction,
    Split,
    Status,
    Sync,
    Version,
)

__all__ = [
    "Aborted",
    "Agent",
    "AgentState",
    "Alert",
    "AlertState",
    "AlreadyExists",
    "BatchPrediction",
    "ControlPlane",
    "DeadlineExceeded",
    "Deployment",
    "Error",
    "Experiment",
    "ExperimentState",
    "FailedPrecondition",
    "Health",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "Prediction",
    "Predictor",
    "ResourceExhausted",
    "ServingRole",
    "Split",
    "Status",
    "Sync",
    "Unauthenticated",
    "Unavailable",
    "Version",
]
