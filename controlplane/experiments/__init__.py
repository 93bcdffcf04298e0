"""Experiments, progressive rollouts, promotion and the offline champion/challenger gate.

`install(server)` starts the rollout engine loop: every `config.rollout.tick_seconds` it checks
the gates of running experiments (see `engine.py`). The engine keeps everything in SQL, so a
restarted control plane simply carries on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controlplane.server import ControlPlaneServer


def install(server: ControlPlaneServer) -> None:
    """Spawn the rollout engine loop for the server's lifetime."""
    from controlplane.experiments.engine import RolloutEngine

    assert server.ctx is not None
    engine = RolloutEngine(server.ctx)
    executor = server.executor

    async def loop() -> None:
        await engine.run(executor)

    server.spawn("rollout-engine", loop)
