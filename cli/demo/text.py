"""How the demo words what it sees: status, experiments, metrics and errors as `[demo]` text.

Pure functions over protobuf messages; the words for roles, states and health come from
`core.vocabulary`.
"""

from __future__ import annotations

import math

import grpc

from core.client import ClientError
from core.vocabulary import ExperimentState, Health, ServingRole, word_of
from protos import controlplane_pb2


def health_word(value: int) -> str:
    """'healthy', or 'WARNING' / 'CRITICAL' in capitals so that they stand out."""
    health = Health.from_wire(value)
    return health.upper() if health in (Health.WARNING, Health.CRITICAL) else str(health)


def experiment_word(state: int) -> str:
    """'rolled back'; the number itself for a state this build does not know."""
    try:
        return ExperimentState.from_wire(state).replace("_", " ")
    except ValueError:
        return str(state)


def metric(value: float, digits: int = 3) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def status_lines(deployment: str, status: controlplane_pb2.DeploymentStatus) -> list[str]:
    """The deployment's health, sync and load, then one line per version (and its reasons)."""
    lines = [
        f"status {deployment}: {health_word(status.health)}, generation {status.deployment.generation}, "
        f"agents in sync {status.agents_in_sync}/{status.agents_total}, "
        f"{status.requests_per_second:.0f} req/s, open alerts {status.open_alerts}"
    ]
    for v in status.versions:
        top = max(v.drift, key=lambda d: d.psi, default=None)
        drift = f", top drift psi {top.psi:.2f} {top.feature}" if top is not None else ""
        lines.append(
            f"  {v.version.model}:{v.version.version} {word_of(ServingRole, v.role, '-')} {v.weight}% "
            f"{health_word(v.health)}: accuracy {metric(v.accuracy)} (n={v.n_labeled}), "
            f"p95 {metric(v.latency_p95_ms, 1)} ms{drift}"
        )
        lines.extend(f"    {reason}" for reason in v.reasons)
    return lines


def previous_percent(e: controlplane_pb2.Experiment, step_index: int) -> int:
    plan = list(e.config.plan) or [e.config.traffic_percent]
    return plan[min(step_index, len(plan) - 1)]


def arms_text(e: controlplane_pb2.Experiment) -> str:
    """'accuracy v1 0.870 (n=40) vs v2 0.980 (n=41), p=0.003'."""
    parts = [f"{a.version.version} {metric(a.metric)} (n={a.n})" for a in e.analysis.arms]
    text = f"{e.analysis.metric or 'accuracy'} " + " vs ".join(parts)
    if not math.isnan(e.analysis.p_value) and e.analysis.arms:
        text += f", p={e.analysis.p_value:.2g}"
    return text


def describe(exc: BaseException) -> str:
    """One line for an unexpected error (its traceback goes to the log)."""
    if isinstance(exc, ClientError):
        return f"control plane call failed: {exc.message} ({exc.code.name})"
    if isinstance(exc, grpc.RpcError):
        return f"gRPC call failed: {exc}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
