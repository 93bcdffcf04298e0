"""Experiments, progressive rollouts, promotion and the offline champion/challenger gate.

- `spec.py`: what an experiment is (the spec, its validation, the schema checks);
- `commands.py`: what an operator does (start, stop, abort, resume, promote, get, list);
- `rollout.py`: the rollout engine, the state machine that walks running experiments through
  their steps;
- `analysis.py`: the statistics of one comparison; `offline.py`: the offline gate.

`install(server)` starts the rollout engine loop: every `config.rollout.tick_seconds` it checks
the gates of running experiments. The engine keeps everything in SQL, so a restarted control
plane simply carries on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controlplane.experiments.rollout import RolloutEngine

if TYPE_CHECKING:  # the server installs this area: a real cycle, for the annotation only
    from controlplane.server import ControlPlaneServer


def install(server: ControlPlaneServer) -> None:
    """Spawn the rollout engine loop for the server's lifetime."""
    assert server.ctx is not None
    engine = RolloutEngine(server.ctx)
    executor = server.executor

    async def loop() -> None:
        await engine.run(executor)

    server.spawn("rollout-engine", loop)
