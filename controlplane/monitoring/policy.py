"""A deployment's health policy: its thresholds and its action on sustained critical health.

What a deployment does not set comes from the configuration (`[health]` thresholds, `[policy]`
action and delay), so changing the file changes every deployment that kept the default. The
policy's row also holds the clock of a pending action (`experiments.safety` runs it); this module
only reads and writes settings and knows nothing of traffic.

Two settings are acted on by agents and travel in the deployment's snapshot: `fallback` (off
unless set: a challenger's model failure is answered by the champion) and `tolerance` (what
regression feedback counts as within). Changing either bumps the deployment's generation (with a
history entry), so every agent applies it like a traffic change.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane import audit
from controlplane.config import THRESHOLDS, Config, HealthConfig, check_thresholds
from controlplane.context import Context
from controlplane.deployment_reads import FALLBACK_SETTING, find_deployment
from controlplane.deployments import bump_generation
from controlplane.domain import Principal
from controlplane.store.models import DeploymentPolicyRow, DeploymentRow, utcnow
from core.errors import InvalidInput
from core.vocabulary import MetricSource, PolicyAction

ACTION = "action"
ACTION_AFTER = "action_after_seconds"
FALLBACK = FALLBACK_SETTING
#: where health reads accuracy / MAE / RMSE (MetricSource) and the label delay it waits for
ACCURACY_SOURCE = "accuracy_source"
LABEL_DELAY = "label_delay_seconds"
RESETTABLE = (*THRESHOLDS, ACTION, ACTION_AFTER, FALLBACK, ACCURACY_SOURCE, LABEL_DELAY)
MAX_ACTION_AFTER_SECONDS = 7 * 86400.0
MAX_LABEL_DELAY_SECONDS = 366 * 86400.0


@dataclass(frozen=True)
class PolicyInfo:
    deployment: str
    health: HealthConfig  # the thresholds in force
    overridden: tuple[str, ...]  # what this deployment sets (the rest is the configuration's)
    action: PolicyAction
    action_after_seconds: float
    fallback: bool = False
    critical_since: datetime | None = None
    last_action: str = ""
    last_action_at: datetime | None = None
    updated_by: str = ""
    updated_at: datetime | None = None

    @property
    def acts_at(self) -> datetime | None:
        """When the pending action fires if health stays critical; None when nothing is pending."""
        if self.critical_since is None or self.action == PolicyAction.NONE:
            return None
        return self.critical_since + timedelta(seconds=self.action_after_seconds)


@dataclass(frozen=True)
class PolicyChange:
    thresholds: dict[str, float] = dataclasses.field(default_factory=dict)
    action: PolicyAction | None = None
    action_after_seconds: float | None = None
    reset: tuple[str, ...] = ()  # names back to the configuration's values; "all" for everything
    reason: str = ""
    fallback: bool | None = None
    accuracy_source: MetricSource | None = None
    label_delay_seconds: float | None = None


def effective(config: Config, deployment: str, settings: dict[str, Any]) -> PolicyInfo:
    """The policy in force: the configuration's, overridden by what the deployment sets."""
    health = dataclasses.replace(config.health)  # a copy: the configuration's stays as it is
    for name, value in settings.items():
        if name in THRESHOLDS or name == LABEL_DELAY:
            setattr(health, name, float(value))
        elif name == ACCURACY_SOURCE:
            health.accuracy_source = MetricSource(value).value
    action = PolicyAction(settings.get(ACTION, config.policy.action))
    after = float(settings.get(ACTION_AFTER, config.policy.action_after_seconds))
    overridden = tuple(k for k in RESETTABLE if k in settings)
    return PolicyInfo(deployment, health, overridden, action, after, fallback_of(settings))


def fallback_of(settings: dict[str, Any] | None) -> bool:
    """Whether a deployment's stored policy settings turn fallback on (off by default)."""
    return bool((settings or {}).get(FALLBACK, False))


def policy_info(config: Config, deployment: str, row: DeploymentPolicyRow | None) -> PolicyInfo:
    if row is None:
        return effective(config, deployment, {})
    base = effective(config, deployment, dict(row.settings or {}))
    return dataclasses.replace(
        base,
        critical_since=row.critical_since,
        last_action=row.last_action or "",
        last_action_at=row.last_action_at,
        updated_by=row.updated_by or "",
        updated_at=row.updated_at,
    )


def policy_row(session: Session, deployment: DeploymentRow, *, lock: bool = False) -> DeploymentPolicyRow | None:
    query = select(DeploymentPolicyRow).where(DeploymentPolicyRow.deployment_id == deployment.id)
    return session.scalar(query.with_for_update() if lock else query)


def get_policy(ctx: Context, deployment: str) -> PolicyInfo:
    with ctx.db.session() as session:
        row = find_deployment(session, deployment)
        return policy_info(ctx.config, row.name, policy_row(session, row))


def thresholds_for(ctx: Context, deployment: str) -> HealthConfig:
    """The thresholds a deployment is judged by (the configuration's where it sets none)."""
    with ctx.db.session() as session:
        settings = session.scalar(
            select(DeploymentPolicyRow.settings)
            .join(DeploymentRow, DeploymentRow.id == DeploymentPolicyRow.deployment_id)
            .where(DeploymentRow.name == deployment)
        )
    return effective(ctx.config, deployment, dict(settings or {})).health


def _validated(settings: dict[str, Any], change: PolicyChange) -> dict[str, Any]:
    """The settings after `change`, or InvalidInput naming what is wrong (nothing is stored)."""
    unknown = [name for name in change.reset if name not in (*RESETTABLE, "all")]
    if unknown:
        raise InvalidInput(f"cannot reset {', '.join(unknown)}: choose among all, {', '.join(RESETTABLE)}")
    updated = {} if "all" in change.reset else {k: v for k, v in settings.items() if k not in change.reset}
    for name, value in change.thresholds.items():
        if name not in THRESHOLDS:
            raise InvalidInput(f"unknown threshold {name!r}; choose among {', '.join(THRESHOLDS)}")
        if not math.isfinite(value):
            raise InvalidInput(f"{name} must be a finite number, got {value!r}")
        updated[name] = float(value)
    if change.action is not None:
        updated[ACTION] = change.action.value
    if change.action_after_seconds is not None:
        after = change.action_after_seconds
        if not (math.isfinite(after) and 0 < after <= MAX_ACTION_AFTER_SECONDS):
            raise InvalidInput(
                f"action_after_seconds must be more than 0 and at most {MAX_ACTION_AFTER_SECONDS:.0f} "
                f"(7 days), got {after!r}"
            )
        updated[ACTION_AFTER] = float(after)
    if change.fallback is not None:
        updated[FALLBACK] = bool(change.fallback)
    if change.accuracy_source is not None:
        updated[ACCURACY_SOURCE] = MetricSource(change.accuracy_source).value
    if change.label_delay_seconds is not None:
        delay = change.label_delay_seconds
        if not (math.isfinite(delay) and 0 <= delay <= MAX_LABEL_DELAY_SECONDS):
            raise InvalidInput(
                f"label_delay_seconds must be 0 to {MAX_LABEL_DELAY_SECONDS:.0f} (366 days), got {delay!r}"
            )
        updated[LABEL_DELAY] = float(delay)
    return updated


def set_policy(ctx: Context, principal: Principal, deployment: str, change: PolicyChange) -> PolicyInfo:
    """Change what the deployment sets; the thresholds in force must still make sense together
    (critical beyond warning, shares within 0..1). Audited in the same transaction."""
    with ctx.db.session() as session:
        dep = find_deployment(session, deployment, lock=True)
        row = policy_row(session, dep, lock=True)
        before = dict(row.settings or {}) if row else {}
        settings = _validated(before, change)
        check_thresholds(effective(ctx.config, dep.name, settings).health, f"policy of {dep.name}: ")
        if row is None:
            row = DeploymentPolicyRow(deployment_id=dep.id, settings={})
            session.add(row)
        row.settings = settings
        row.updated_by = principal.name
        row.updated_at = utcnow()
        old, new = effective(ctx.config, dep.name, before), effective(ctx.config, dep.name, settings)
        carried = [
            text
            for changed, text in (
                (old.fallback != new.fallback, f"fallback {'on' if new.fallback else 'off'}"),
                (old.health.tolerance != new.health.tolerance, f"tolerance {new.health.tolerance:g}"),
            )
            if changed
        ]
        if carried:  # agents act on these: a new generation carries them in the snapshot
            bump_generation(session, principal, dep, "policy.set", ", ".join(carried))
        audit.record(
            session,
            principal,
            "policy.set",
            dep.name,
            before=before,
            after=settings,
            reason=change.reason,
        )
        session.flush()
        info = policy_info(ctx.config, dep.name, row)
    ctx.events.publish("deployment", deployment, f"policy: {describe(info)}")
    return info


def describe(info: PolicyInfo) -> str:
    """One line: the action and its delay, then what the deployment sets."""
    if info.action == PolicyAction.NONE:
        text = "no automatic action"
    else:
        text = f"{info.action.value.replace('_', ' ')} after {info.action_after_seconds:g} s critical"
    if info.fallback:
        text += "; fallback on"
    if info.health.accuracy_source == MetricSource.JOINED:
        text += f"; accuracy from joined labels, {info.health.label_delay_seconds:g} s delay"
    own = [f"{name}={getattr(info.health, name):g}" for name in info.overridden if name in THRESHOLDS]
    if own:
        text += "; sets " + ", ".join(own)
    return text
