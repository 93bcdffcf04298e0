"""Experiments, progressive rollouts, promotion and the offline champion/challenger gate.

- `spec.py`: what an experiment is (the spec, its validation, the schema checks);
- `commands.py`: what an operator does (start, stop, abort, resume, promote, get, list);
- `rollout.py`: the rollout engine, the state machine that walks running experiments through
  their steps;
- `analysis.py`: the statistics of one comparison; `offline.py`: the offline gate;
- `safety.py`: the health policy's automatic action on sustained critical health.

`install(server)` starts the rollout engine loop: every `config.rollout.tick_seconds` it checks
the gates of running experiments. The engine keeps everything in SQL, so a restarted control
plane simply carries on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controlplane.experiments.rollout import RolloutEngine
from controlplane.experiments.safety import act_on_health
from controlplane.monitoring.state import state_of

if TYPE_CHECKING:  # the server installs this area: a real cycle, for the annotation only
    from controlplane.server import ControlPlaneServer


def install(server: ControlPlaneServer) -> None:
    """Spawn the rollout engine loop for the server's lifetime, and hang the health policy's
    actions on the monitoring area's evaluation (`safety.act_on_health`)."""
    assert server.ctx is not None
    state_of(server.ctx).health_hooks.append(act_on_health)
    engine = RolloutEngine(server.ctx)
    executor = server.executor

    async def loop() -> None:
        await engine.run(executor)

    server.spawn("rollout-engine", loop)
