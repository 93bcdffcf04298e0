"""`sluice demo --headless` as a real process: the whole product story, then nothing left running.

The demo starts a control plane and two agents of its own; the test finds every process of a run
by its unique workdir (in their command lines) and kills any survivor by pid, whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from controlplane.sample_data import breast_cancer_feature_names, write_breast_cancer_csv
from controlplane.training import train_command
from core.errors import InvalidInput
from tests.harness import REPO

DEMO_TIMEOUT = 240.0  # generous: the run takes 30-50 s on a busy 2-core machine


def processes_of(workdir: Path) -> list[int]:
    """Live processes whose command line names `workdir` (the demo and the children it starts)."""
    marker = str(workdir).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    return pids


def kill_all(workdir: Path) -> None:
    for pid in processes_of(workdir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def demo_process(workdir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        # --port 0: the demo binds any free port and prints the address it got
        [sys.executable, "-m", "cli", "demo", "--workdir", str(workdir), "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        # As from a terminal: Ctrl-C enabled even when this suite runs as a background job.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "demo"
    try:
        yield path
    finally:
        kill_all(path)


def read_until(proc: subprocess.Popen[str], marker: str) -> str:
    """The demo's output up to and including the first line holding `marker`."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"the demo ended before {marker!r}:\n" + "".join(seen))


def wait_deployed(proc: subprocess.Popen[str]) -> None:
    """Until the control plane and both agents are running."""
    read_until(proc, "deployed cancer:v1")


def wait_gone(workdir: Path, timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := processes_of(workdir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.slow
@pytest.mark.xdist_group("demo")
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds processes through /proc")
def test_headless_demo_tells_the_whole_story_and_stops_everything(workdir: Path) -> None:
    proc = demo_process(workdir, "--headless", "--duration", "2")
    try:
        output, _ = proc.communicate(timeout=DEMO_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    lines = output.splitlines()
    assert all(line.startswith("[demo] ") for line in lines), output

    # Both agents answered real traffic, and the observed split follows the weights.
    observed = next(line for line in lines if line.startswith("[demo]   served by "))
    counts = {name: int(n) for name, n in re.findall(r"(demo-agent-\d): v1 (\d+)", observed)}
    assert set(counts) == {"demo-agent-1", "demo-agent-2"} and min(counts.values()) > 0, observed
    ten = next(line for line in lines if "observed at 10%: cancer:v1" in line)
    share = float(re.search(r"cancer:v2 ([\d.]+)%", ten).group(1))  # type: ignore[union-attr]
    assert 3.0 < share < 20.0, ten

    # Drift opened an alert naming the feature; status showed it.
    assert re.search(r"\[demo\] alert #\d+ (warning|critical) drift: .*mean_texture drifted", output), output
    assert re.search(r"status cancer-web: (WARNING|CRITICAL)", output), output
    # The experiments, as printed and as `sluice history` tells them.
    assert "promoted automatically" in output
    assert "rolled back automatically at its first gate (10%)" in output
    for action in ("deploy", "experiment.start", "experiment.step", "promote", "experiment.rollback"):
        assert re.search(rf"\[demo\]   \d+ .* {re.escape(action)} ", output), action
    assert "experiment v4-canary" in output and "traffic after the scenario" in output
    assert "--controlplane 127.0.0.1:" in output  # what to try next, with the address
    assert "traffic errors" not in output  # no failed Predict/Feedback, weights changing or not

    # The second story: a mixed-type model trained on generated e-mails, its traffic in the record
    # form, and an experiment segmented on a feature: only lapsed subscribers reach v2.
    assert re.search(r"\[demo\] registered email:v1 .*inputs segment string, device string, send_hour", output)
    lapsed = re.search(r"\[demo\]   lapsed subscribers: email:v1 [\d.]+%, email:v2 ([\d.]+)% of (\d+)", output)
    assert lapsed is not None and int(lapsed.group(2)) >= 10, output  # both versions answered lapsed ones
    if int(lapsed.group(2)) >= 60:  # the 50% inside the segment, when the machine let enough through
        assert 20.0 < float(lapsed.group(1)) < 80.0, lapsed.group(0)
    others = re.search(r"\[demo\]   new and active subscribers: email:v1 100\.0% of (\d+)\n", output)
    assert others is not None and int(others.group(1)) >= 10, output
    batch = re.search(r"one PredictBatch of 12 records, routed row by row: (.*)", output)
    assert batch is not None, output
    rows = [pair.split("->") for pair in batch.group(1).split()]
    assert len(rows) == 12 and {v for s, v in rows if s != "lapsed"} == {"v1"}, batch.group(0)
    assert {v for s, v in rows if s == "lapsed"} <= {"v1", "v2"} and rows[0][0] == "lapsed", batch.group(0)
    assert re.search(r"\[demo\]   status email-engagement: \w+, generation \d+, agents in sync 2/2", output)
    assert '--features \'{"segment": "lapsed"' in output  # what to try next: `sluice predict` records

    # The state it leaves behind.
    db = sqlite3.connect(workdir / "sluice.db")
    try:
        states = dict(db.execute("SELECT name, state FROM experiments"))
        alerts = db.execute("SELECT kind, message FROM alerts").fetchall()
        agents = {name for (name,) in db.execute("SELECT name FROM agents")}
        champion = db.execute(
            "SELECT v.version, s.weight FROM traffic_splits s JOIN model_versions v ON v.id = s.version_id "
            "JOIN deployments d ON d.id = s.deployment_id WHERE d.name = 'cancer-web' ORDER BY s.weight DESC"
        ).fetchall()
    finally:
        db.close()
    assert states == {
        "v2-rollout": "promoted",
        "v3-rollout": "rolled_back",
        "v4-canary": "running",
        "email-lapsed": "running",
    }
    assert any(kind == "drift" and "mean_texture" in message for kind, message in alerts), alerts
    assert any(kind == "rollout_gate_failed" and "v3-rollout" in message for kind, message in alerts), alerts
    assert agents == {"demo-agent-1", "demo-agent-2"}
    assert champion[0] == ("v2", 90), champion

    # Nothing it started is left running, and its logs are where it said.
    assert wait_gone(workdir) == []
    assert f"logs and data stay in {workdir}" in output
    assert {p.name for p in (workdir / "logs").iterdir()} >= {
        "controlplane.log",
        "demo-agent-1.log",
        "demo-agent-2.log",
    }


@pytest.mark.xdist_group("demo")
def test_without_a_terminal_the_demo_stays_up_for_other_commands(workdir: Path) -> None:
    """`make demo` from a script: no TUI, the system keeps running; the CLI reads it; SIGTERM ends it.
    The story itself is the headless test's: here `--no-story` brings the same cluster up without it."""
    proc = demo_process(workdir, "--no-story")  # no --headless; stdin and stdout are not a terminal
    try:
        output = read_until(proc, "no terminal here for the TUI")
        address = re.search(r"--controlplane (127\.0\.0\.1:\d+)", output).group(1)  # type: ignore[union-attr]
        listed = subprocess.run(
            [sys.executable, "-m", "cli", "--controlplane", address, "version", "list", "--json"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        versions = {f"{v['ref']['model']}:{v['ref']['version']}": v for v in json.loads(listed.stdout)}
        assert {"cancer:v1", "cancer:v2"} <= set(versions), versions
        for ref in ("cancer:v1", "cancer:v2"):
            assert re.fullmatch(r"[0-9a-f]{64}", versions[ref]["sha256"]), versions[ref]
            assert versions[ref]["inputs"][0]["shape"] == [-1, 30], versions[ref]  # [?, 30] floats
        assert proc.poll() is None  # still up after the CLI call
        os.killpg(proc.pid, signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in rest
    assert wait_gone(workdir) == []


@pytest.mark.xdist_group("demo")
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds processes through /proc")
def test_ctrl_c_stops_every_process_the_demo_started(workdir: Path) -> None:
    proc = demo_process(workdir, "--headless")
    try:
        wait_deployed(proc)
        assert len(processes_of(workdir)) >= 4  # the demo, the control plane, two agents
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, rest
    assert "interrupted" in rest and "Traceback" not in rest
    assert wait_gone(workdir) == []


def test_a_foreign_workdir_is_refused_in_one_line(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    result = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--headless", "--workdir", str(precious)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "was not made by `sluice demo`" in result.stderr, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_a_model_on_two_features_keeps_the_full_input_schema(tmp_path: Path) -> None:
    """The demo's weak first release: only two columns matter, all 30 are still its input."""
    data = tmp_path / "cancer.csv"
    write_breast_cancer_csv(data)
    names = breast_cancer_feature_names()
    keep = [names.index("mean_radius"), names.index("mean_texture")]
    weak = train_command(data, tmp_path / "weak.onnx", None, "logreg", only_features=keep)
    strong = train_command(data, tmp_path / "strong.onnx", None, "logreg")
    assert weak.n_features == strong.n_features == 30
    assert weak.holdout_accuracy is not None and strong.holdout_accuracy is not None
    assert weak.holdout_accuracy + 0.05 < strong.holdout_accuracy  # a gap the demo's gates see fast
    # The baseline holds the real rows (drift is judged on every column), not the masked ones.
    assert np.load(weak.baseline).std(axis=0).min() > 0

    session = ort.InferenceSession(str(weak.out), providers=["CPUExecutionProvider"])
    rows = np.load(weak.baseline)[:50]
    changed = rows.copy()
    others = [i for i in range(30) if i not in keep]
    changed[:, others] *= 3.0  # columns the model must ignore
    labels = session.run(["label"], {"input": rows})[0]
    assert (session.run(["label"], {"input": changed})[0] == labels).all()

    with pytest.raises(InvalidInput, match=r"only_features must name columns 0\.\.29"):
        train_command(data, tmp_path / "bad.onnx", None, "logreg", only_features=[30])


@pytest.mark.xdist_group("demo")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_sigkilled_demo_leaves_no_process_behind(workdir: Path) -> None:
    """SIGKILL gives the demo no chance to stop its children: the kernel does (PR_SET_PDEATHSIG,
    set by the launcher each child starts through), so no control plane or agent keeps its ports."""
    proc = demo_process(workdir, "--headless")
    try:
        wait_deployed(proc)
        children = [pid for pid in processes_of(workdir) if pid != proc.pid]
        assert len(children) >= 3  # the control plane, two agents
        proc.kill()  # the demo only, not its process group
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert wait_gone(workdir) == []
