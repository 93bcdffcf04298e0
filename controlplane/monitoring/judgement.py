"""A judgement: one figure against its WARNING and CRITICAL thresholds, and the worst of several.

Shared by the live health of `controlplane.monitoring.health`, the drift and data-quality checks of
`controlplane.monitoring.drift_judgement` and the label-joined figures of
`controlplane.monitoring.joined_health`.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.vocabulary import Health


def worst(states: list[Health]) -> Health:
    return max(states, key=lambda s: s.rank, default=Health.UNKNOWN)


@dataclass(frozen=True)
class Judgement:
    # the alert kind too: accuracy | mae | rmse | within_tolerance | latency_p95 | error_rate |
    # drift | prediction_drift
    name: str
    value: float
    state: Health
    reason: str = ""


def high_is_bad(name: str, value: float, warning: float, critical: float, unit: str = "") -> Judgement:
    if critical > 0 and value > critical:
        return Judgement(name, value, Health.CRITICAL, f"{name} {value:.4g}{unit} > {critical:.4g}{unit} (critical)")
    if warning > 0 and value > warning:
        return Judgement(name, value, Health.WARNING, f"{name} {value:.4g}{unit} > {warning:.4g}{unit} (warning)")
    return Judgement(name, value, Health.HEALTHY)


def low_is_bad(name: str, value: float, warning: float, critical: float) -> Judgement:
    if critical > 0 and value < critical:
        return Judgement(name, value, Health.CRITICAL, f"{name} {value:.4g} < {critical:.4g} (critical)")
    if warning > 0 and value < warning:
        return Judgement(name, value, Health.WARNING, f"{name} {value:.4g} < {warning:.4g} (warning)")
    return Judgement(name, value, Health.HEALTHY)
