"""In-memory monitoring state of one control plane (keyed by its event bus).

Domain functions take a `Context`; what monitoring keeps beside SQL — Prometheus counters, the
webhook sender, the last health verdicts — hangs off the context's EventBus, so several control
planes in one test process never share it, and tests that build a bare Context still work.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from controlplane.monitoring.prometheus import ControlPlaneMetrics
from core.vocabulary import Health

if TYPE_CHECKING:
    from controlplane.context import Context
    from controlplane.events import EventBus
    from controlplane.monitoring.health import DeploymentHealth
    from controlplane.monitoring.webhooks import WebhookSender

METRICS_EVENT_SECONDS = 1.0


@dataclass(eq=False)
class MonitoringState:
    metrics: ControlPlaneMetrics = field(default_factory=ControlPlaneMetrics)
    webhooks: WebhookSender | None = None
    #: deployment -> its health after the last evaluation
    deployment_health: dict[str, Health] = field(default_factory=dict)
    #: called with (ctx, health, now) after each deployment's evaluation, isolated like it (the
    #: experiments area registers the health policy's actions here)
    health_hooks: list[Callable[[Context, DeploymentHealth, datetime], object]] = field(default_factory=list)
    _last_event: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def should_publish(self, deployment: str) -> bool:
        """At most one "metrics" event per deployment per second (watchers only re-read)."""
        now = time.monotonic()
        with self.lock:
            last = self._last_event.get(deployment, 0.0)
            if now - last < METRICS_EVENT_SECONDS:
                return False
            self._last_event[deployment] = now
            return True


_states: weakref.WeakKeyDictionary[EventBus, MonitoringState] = weakref.WeakKeyDictionary()
_states_lock = threading.Lock()


def state_of(ctx: Context) -> MonitoringState:
    with _states_lock:
        state = _states.get(ctx.events)
        if state is None:
            state = _states[ctx.events] = MonitoringState()
        return state
