"""A deployment's prediction-log sample rate: `sluice log set DEPLOYMENT --sample-rate R|off`.

Stored on the deployment, audited in the same transaction, and carried in its snapshot (the
agents sample by a hash of the request id). Not a traffic change: the generation stays, the
snapshot's content (and digest) changes, and the agents apply it like any other change.
"""

from __future__ import annotations

import math

from controlplane import audit
from controlplane.context import Context
from controlplane.deployment_reads import deployment_info, find_deployment
from controlplane.domain import DeploymentInfo, Principal
from core.errors import InvalidInput


def check_rate(rate: float) -> float:
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise InvalidInput(f"the sample rate must be between 0 (off) and 1 (every request), got {rate!r}")
    return float(rate)


def set_log_sample_rate(
    ctx: Context, principal: Principal, deployment: str, rate: float, reason: str = ""
) -> DeploymentInfo:
    rate = check_rate(rate)
    with ctx.db.session() as session:
        row = find_deployment(session, deployment, lock=True)
        before = float(row.log_sample_rate)
        if before != rate:
            row.log_sample_rate = rate
            audit.record(session, principal, "log.set", row.name, before=before, after=rate, reason=reason)
            session.flush()
        info = deployment_info(session, row)
    if before != rate:
        shown = "off" if rate == 0 else f"{rate:g}"
        ctx.events.publish("deployment", deployment, f"prediction log sample rate {shown}")
    return info
