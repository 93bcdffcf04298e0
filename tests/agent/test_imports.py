"""The agent stands alone: it never imports the control plane, the TUI, or scipy and scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.harness import REPO

FORBIDDEN = ("controlplane", "tui", "sqlalchemy", "alembic", "textual", "scipy", "sklearn", "skl2onnx")


def test_agent_import_graph() -> None:
    code = "import sys, json; import agent.server, agent.services, agent.link; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    loaded = json.loads(out.stdout)
    assert [m for m in loaded if m.startswith(FORBIDDEN)] == []


def test_pyarrow_waits_for_the_first_logged_rows() -> None:
    """pyarrow (about 35 MB) is imported by the prediction log's thread when it first writes, so
    an agent that logs nothing never loads it and every agent starts as fast as before."""
    code = "import sys, json; import agent.server, agent.services, agent.link; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert [m for m in json.loads(out.stdout) if m.startswith("pyarrow")] == []
