"""The experiments area on the server: the rollout engine's loop and the health policy's actions."""

from __future__ import annotations

from controlplane.experiments.rollout import RolloutEngine
from controlplane.experiments.safety import act_on_health
from controlplane.host import AreaHost
from controlplane.monitoring.state import state_of


def install(server: AreaHost) -> None:
    """Spawn the rollout engine loop for the server's lifetime, and hang the health policy's
    actions on the monitoring area's evaluation (`safety.act_on_health`)."""
    assert server.ctx is not None
    state_of(server.ctx).health_hooks.append(act_on_health)
    engine = RolloutEngine(server.ctx)
    executor = server.executor

    async def loop() -> None:
        await engine.run(executor)

    server.spawn("rollout-engine", loop)
