"""`sluice demo`: the whole product on this machine, telling its story.

- `session`: one run of the demo: set up, tell the story, keep it up, stop everything;
- `scenario`: the story's steps and its parameters (short clocks, plan, sample sizes);
- `cluster`: the demo's control plane and two agents as child processes, in its workdir;
- `traffic`: keyed requests with true labels from two "clinics", and what they observed;
- `text`: how the demo words status, experiments and errors;
- `supervisor`: starting, waiting for and stopping child processes (shared with `tests/harness.py`).
"""
