"""The import rules in `.importlinter` (run by `make lint`) catch what they are there for.

`make lint` shows the rules hold for the tree as it is; this shows they would fail: on a copy of
the packages, an agent module that imports the control plane and a control-plane package that
imports back a package above it (an import cycle) break the layers, the agent's own contract and
the one against cycles, and nothing else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.harness import REPO

PACKAGES = ("protos", "core", "runtime", "controlplane", "agent", "tui", "sluice", "cli")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_contracts_fail_on_an_agent_importing_the_controlplane_and_on_a_cycle(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    # An agent module reaching into the control plane (lazily, inside a function: it still counts).
    (tmp_path / "agent" / "planted.py").write_text("def f() -> None:\n    import controlplane.server\n")
    # datafiles sits below predlog (predlog reads its storage); importing predlog back closes a cycle.
    (tmp_path / "controlplane" / "datafiles" / "planted.py").write_text("from controlplane.predlog import segments\n")

    out = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = " ".join(out.stdout.split())  # contract names wrap at the terminal's width
    assert out.returncode != 0, report
    assert "An agent never imports the control plane, the TUI, or what only they need BROKEN" in report
    assert "agent.planted -> controlplane.server" in report
    assert "No import cycles" in report and "No cycles are allowed in controlplane" in report
    assert ".datafiles -> .predlog" in report or ".predlog -> .datafiles" in report
    assert "the three processes (independent), runtime, core, protos BROKEN" in report  # the layers
    assert "Contracts: 4 kept, 3 broken." in report
