"""The health policy's automatic action: what happens when a deployment stays critical.

After every health evaluation, `act_on_health` runs each deployment's policy clock:

- The clock starts when the versions the action is about are critical *on their own figures*
  (not merely held critical by an open alert: after a rollback the new champion must earn its own
  verdict, or the policy would roll back again and again).
- A change of the deployment by anyone (a new generation) restarts the clock: the policy never
  fights an operator, and its own action is such a change.
- It stops only after `alerts.resolve_after` evaluations in a row that are not critical
  (hysteresis: one good window in a bad stretch does not reset it).
- When it has run `action_after_seconds`, the action fires once, with the evidence (the reasons
  of the critical versions) in the history, the audit and an alert.

Actions: `alert` (nothing moves), `pause` (the running experiment), `rollback_challenger` (the
running experiment ends as rolled back; without one, the champion alone at 100%) and
`rollback_champion` (the previous champion that was not itself rolled back, at 100%).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from controlplane import deployments
from controlplane.context import Context
from controlplane.domain import Principal, Role
from controlplane.experiments import commands
from controlplane.experiments.spec import MAX_REASON
from controlplane.monitoring import alerts
from controlplane.monitoring.health import DeploymentHealth, VersionHealth
from controlplane.monitoring.policy import PolicyInfo, policy_info, policy_row
from controlplane.store.models import DeploymentPolicyRow, DeploymentRow
from core.errors import SluiceError
from core.vocabulary import ExperimentState, Health, PolicyAction, ServingRole

log = logging.getLogger("sluice.safety")

POLICY = Principal("health-policy", Role.ADMIN)
ALERT_KIND = "sustained_critical"


@dataclass(frozen=True)
class Outcome:
    deployment: str
    action: PolicyAction
    done: str  # what happened, with the evidence


def watched(action: PolicyAction, health: DeploymentHealth) -> list[VersionHealth]:
    """The versions whose health the action is about."""
    if action == PolicyAction.ROLLBACK_CHAMPION:
        return [v for v in health.versions if v.role == ServingRole.CHAMPION]
    if action in (PolicyAction.ROLLBACK_CHALLENGER, PolicyAction.PAUSE):
        return [v for v in health.versions if v.role != ServingRole.CHAMPION]
    return list(health.versions)


def act_on_health(ctx: Context, health: DeploymentHealth, now: datetime) -> Outcome | None:
    """Run the deployment's policy clock on this evaluation; act when it has run long enough."""
    dep = health.deployment
    with ctx.db.session() as session:
        row = session.get(DeploymentRow, dep.id)
        if row is None:
            return None
        prow = policy_row(session, row, lock=True)
        policy = policy_info(ctx.config, dep.name, prow)
        critical = [v for v in watched(policy.action, health) if v.state == Health.CRITICAL]
        if policy.action == PolicyAction.NONE:
            if prow is not None and prow.critical_since is not None:
                prow.critical_since, prow.calm_rounds = None, 0
            return None
        if not critical:
            if prow is not None and prow.critical_since is not None:
                prow.calm_rounds += 1
                if prow.calm_rounds >= ctx.config.alerts.resolve_after:
                    prow.critical_since, prow.calm_rounds = None, 0
            return None
        if prow is None:
            prow = DeploymentPolicyRow(deployment_id=row.id, settings={})
            session.add(prow)
        prow.calm_rounds = 0
        if prow.critical_since is None or prow.critical_generation != dep.generation:
            prow.critical_since, prow.critical_generation = now, dep.generation  # (re)start the clock
            return None
        if now - prow.critical_since < timedelta(seconds=policy.action_after_seconds):
            return None
        since = prow.critical_since
        prow.critical_since = None  # it fires once; a new stretch of critical starts a new clock
    evidence = "; ".join(f"{v.version.ref} ({v.role}): {', '.join(v.reasons)}" for v in critical)
    held = int((now - since).total_seconds())
    done = _act(ctx, policy, health, f"critical for {held} s: {evidence}")
    with ctx.db.session() as session:
        prow = session.get(DeploymentPolicyRow, dep.id)
        if prow is not None:
            prow.last_action, prow.last_action_at = done[:2000], now
    alerts.open_alert(
        ctx,
        deployment=dep.name,
        kind=ALERT_KIND,
        severity=Health.CRITICAL,
        message=f"health policy of {dep.name}: {done}",
        subject="policy",
    )
    log.warning("health policy of %s: %s", dep.name, done)
    return Outcome(dep.name, policy.action, done)


def _act(ctx: Context, policy: PolicyInfo, health: DeploymentHealth, evidence: str) -> str:
    """Do the action; say what was done (or why it could not be)."""
    dep = health.deployment
    reason = f"health policy: {evidence}"[:MAX_REASON]
    action = policy.action
    try:
        if action == PolicyAction.ALERT:
            return f"{evidence} (action alert: no traffic moved)"
        experiment = commands.get_experiment(ctx, dep.experiment, fresh=False) if dep.experiment else None
        running = experiment is not None and experiment.state in (ExperimentState.RUNNING, ExperimentState.PAUSED)
        if action == PolicyAction.PAUSE:
            if experiment is None or experiment.state != ExperimentState.RUNNING:
                return f"{evidence} (action pause: no running experiment to pause)"
            commands.pause_experiment(ctx, POLICY, experiment.name, reason=reason)
            return f"paused experiment {experiment.name}: {evidence}"
        if action == PolicyAction.ROLLBACK_CHALLENGER:
            if running and experiment is not None:
                commands.roll_back_experiment(ctx, POLICY, experiment.name, reason=reason)
                return f"rolled back experiment {experiment.name} (challenger to 0%): {evidence}"
            champion = dep.champion
            if champion is None or len(dep.splits) < 2:
                return f"{evidence} (action rollback_challenger: no challenger serves)"
            deployments.rollback(ctx, POLICY, dep.name, (champion.model, champion.version), reason=reason)
            return f"challengers to 0%, {champion.ref} alone at 100%: {evidence}"
        after = deployments.rollback(ctx, POLICY, dep.name, reason=reason)
        now_serving = after.champion.ref if after.champion else "-"
        return f"rolled back to {now_serving}: {evidence}"
    except SluiceError as exc:
        return f"{evidence} (action {action.value} refused: {exc})"
