"""Experiments, progressive rollouts, promotion and the offline champion/challenger gate.

- `spec.py`: what an experiment is (the spec, its validation, the schema checks);
- `commands.py`: what an operator does (start, stop, abort, resume, promote, get, list);
- `rollout.py`: the rollout engine, the state machine that walks running experiments through
  their steps;
- `analysis.py`: the statistics of one comparison; `offline.py`: the offline gate;
- `safety.py`: the health policy's automatic action on sustained critical health.

`install.py` starts the rollout engine loop: every `config.rollout.tick_seconds` it checks
the gates of running experiments. The engine keeps everything in SQL, so a restarted control
plane simply carries on.
"""
