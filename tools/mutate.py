"""Mutation testing of the modules where a silent bug costs most (`make mutate`; not part of `make test`).

For each target module, every mutant (tools/mutants.py: a comparison flipped or loosened, `and`
for `or`, a `not` dropped, a number off by one, True for False, a return value replaced by None) is
applied to a copy of the repository and the target's fast tests run against that copy (agents and
CLIs the tests start import the copy too). A mutant the tests fail on is killed; one they pass
survives and is listed with its line, to be killed by a new test or explained in docs/TESTING.md.

What keeps a mutant cheap on a loaded 2-core machine:

- one pytest per mutant, forked from a parent that has already imported the third-party libraries
  (grpc, SQLAlchemy, onnxruntime, scikit-learn ...): a child pays only for the project's modules;
- the baseline run records which test executes which line of the module (a trace confined to
  that file) and how long each test takes; a mutant first runs only the tests that execute its
  lines, fastest first, with -x. Only if they all pass do the other tests of the target run, so
  a survivor has always passed the target's whole selection (lines run only in a child process,
  which the trace does not see, get the whole selection at once);
- a run that exceeds its timeout (default: 3 x the baseline's time, at least 60 s) is a kill
  (a hang the suite's own timeouts would catch), and every process it started is ended.

    python tools/mutate.py                    # every target, every mutant
    python tools/mutate.py --target router --max 20 --seed 1 --report mutate-report.md
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import select
import shutil
import signal
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mutants import Mutant, mutants
from planted import PLANTED, plant

REPO = Path(__file__).resolve().parent.parent
COPIED = ("protos", "core", "runtime", "controlplane", "agent", "tui", "sluice", "cli", "migrations", "tests")
# Third-party modules the parent imports once, so that no child pays for them. Never a project
# module: those must be imported afresh, from the mutated copy, in each child.
PRELOAD = (
    "pytest", "_pytest.python", "pytest_asyncio", "pytest_timeout", "hypothesis", "grpc", "grpc.aio",
    "grpc_health.v1.health_pb2", "google.protobuf.message", "sqlalchemy", "sqlalchemy.orm", "alembic",
    "alembic.command", "psycopg", "numpy", "scipy.stats", "onnx", "onnxruntime", "sklearn.linear_model",
    "sklearn.ensemble", "skl2onnx", "pyarrow", "pyarrow.parquet", "duckdb", "prometheus_client",
)  # fmt: skip


@dataclass(frozen=True)
class Target:
    name: str
    module: str  # path in the repository
    tests: tuple[str, ...]  # fast tests that should notice a bug in it


TARGETS = (
    Target(
        "permissions",
        "controlplane/api/auth.py",
        (
            "tests/security/test_auth_check.py",
            "tests/security/test_roles.py",
            "tests/security/test_limits.py::test_default_deadline_bounds_calls_without_one",
            "tests/security/test_limits.py::test_self_bounded_methods_are_not_cut_by_the_default_deadline",
            "tests/security/test_tokens.py::test_tokens_are_compared_in_constant_time_without_early_exit",
            "tests/security/test_tokens.py::test_plain_and_hashed_config_entries_are_equivalent",
        ),
    ),
    Target("router", "agent/router.py", ("tests/agent/test_router.py",)),
    Target(
        "snapshot",
        "controlplane/agenthub/snapshot.py",
        ("tests/controlplane/agenthub/test_snapshot.py", "tests/agent/test_hub.py", "tests/agent/test_router.py"),
    ),
    Target(
        "rollout",
        "controlplane/experiments/rollout.py",
        (
            "tests/controlplane/experiments/test_engine_edges.py",
            "tests/controlplane/experiments/test_agent_evidence.py",
            "tests/controlplane/experiments/test_engine.py",
            "tests/controlplane/experiments/test_gates.py",
        ),
    ),
    Target(
        "ingest",
        "controlplane/monitoring/ingest.py",
        ("tests/controlplane/monitoring/test_ingest.py", "tests/controlplane/monitoring/test_ingest_atomic.py"),
    ),
    Target(
        "health",
        "controlplane/monitoring/health.py",
        (
            "tests/controlplane/monitoring/test_prediction_drift.py",
            "tests/controlplane/monitoring/test_health_judgements.py",
            "tests/controlplane/monitoring/test_health.py",
            "tests/controlplane/monitoring/test_health_two_deployments.py",
            "tests/controlplane/monitoring/test_alert_conditions.py",
        ),
    ),
    Target(
        "drift",
        "controlplane/monitoring/drift_judgement.py",
        (
            "tests/controlplane/monitoring/test_prediction_drift.py",
            "tests/controlplane/monitoring/test_health_judgements.py",
            "tests/controlplane/monitoring/test_health.py",
            "tests/controlplane/monitoring/test_alert_conditions.py",
        ),
    ),
    Target(
        "registry",
        "controlplane/registry.py",
        (
            "tests/controlplane/store/test_registry_baselines.py",
            "tests/controlplane/store/test_registry.py",
            "tests/controlplane/store/test_registry_atomic.py",
        ),
    ),
    Target(
        "ack",
        "agent/serving.py",
        ("tests/agent/test_model_probe.py", "tests/agent/test_link_ack_order.py", "tests/agent/test_core.py"),
    ),
    Target("safety", "controlplane/experiments/safety.py", ("tests/controlplane/experiments/test_safety.py",)),
)


class _Recorder:
    """A pytest plugin: which test ran which line of one file, each test's time, the first failure."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.current = "(collection)"
        self.lines: dict[int, set[str]] = defaultdict(set)
        self.seconds: dict[str, float] = defaultdict(float)
        self.failed = ""

    def _local(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            self.lines[frame.f_lineno].add(self.current)
        return self._local

    def _global(self, frame: Any, event: str, arg: Any) -> Any:
        return self._local if frame.f_code.co_filename == self.path else None

    def start(self) -> None:
        if self.path:
            import threading

            threading.settrace(self._global)
            sys.settrace(self._global)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.current = nodeid

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.seconds[report.nodeid] += report.duration
        if report.failed and not self.failed:
            self.failed = report.nodeid


def _pytest_in_child(workdir: Path, args: list[str], out: Path, trace: str | None) -> None:
    """The body of a forked child: run pytest on the copy and write what it saw to `out`."""
    os.setsid()  # its own process group: a timeout ends everything it started
    log = os.open(out.with_suffix(".log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.chdir(workdir)
    sys.path.insert(0, str(workdir))
    os.environ["PYTHONPATH"] = str(workdir)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    import pytest

    recorder = _Recorder(trace)
    recorder.start()
    code = int(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args], plugins=[recorder]))
    sys.settrace(None)
    lines = {str(k): sorted(v) for k, v in recorder.lines.items()}
    out.write_text(json.dumps({"code": code, "failed": recorder.failed, "seconds": recorder.seconds, "lines": lines}))
    sys.stdout.flush()
    os._exit(0)


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        parent = stack.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                children = [int(c) for c in task.read_text().split()]
            except OSError:
                continue
            found.extend(children)
            stack.extend(children)
    return found


def run_pytest(workdir: Path, args: list[str], timeout: float, trace: str | None = None) -> dict[str, Any]:
    """Fork a child that runs pytest with `args`; {"code", "failed", "seconds", "lines"} or
    {"code": "timeout"} when it ran past `timeout` (the child and all it started are killed)."""
    out = Path(tempfile.mkstemp(prefix="mutate-", suffix=".json", dir=workdir.parent)[1])
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            _pytest_in_child(workdir, args, out, trace)
        finally:
            os._exit(70)
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        if not ready:
            for victim in [pid, *_descendants(pid)]:
                try:
                    os.kill(victim, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os.waitpid(pid, 0)
            return {"code": "timeout", "failed": f"(over {timeout:.0f} s)", "seconds": {}, "lines": {}}
        os.waitpid(pid, 0)
    finally:
        os.close(pidfd)
    for leftover in _descendants(pid):  # normally none: tests end what they start
        try:
            os.kill(leftover, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        return dict(json.loads(out.read_text()))
    except (OSError, ValueError):
        tail = out.with_suffix(".log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"pytest died without a result:\n{tail}") from None
    finally:
        out.unlink(missing_ok=True)


@dataclass
class Result:
    target: Target
    total: int = 0
    killed: int = 0
    seconds: float = 0.0
    survivors: list[Mutant] = field(default_factory=list)
    kills: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def mutate_target(
    work: Path, target: Target, found: list[Mutant], timeout: float | None, confirm: bool = False
) -> Result:
    """Run `found` against the target's tests; with `confirm`, a kill's failing test must fail a
    second time on the same mutant (a test that fails only once is flaky under load, not a kill)."""
    path = work / target.module
    original = path.read_text()
    started = time.monotonic()
    baseline = run_pytest(work, list(target.tests), 1800.0, trace=str(path))
    if baseline["code"] != 0:
        raise SystemExit(f"{target.name}: the tests fail without any mutant ({baseline['failed']}); fix them first")
    took = time.monotonic() - started
    limit = timeout or max(60.0, 3 * took)
    durations: dict[str, float] = baseline["seconds"]
    every = sorted(durations, key=lambda t: durations[t])
    lines = {int(k): set(v) for k, v in baseline["lines"].items()}
    print(f"{target.name}: baseline {len(every)} tests in {took:.0f} s; timeout per mutant {limit:.0f} s", flush=True)
    result = Result(target, total=len(found))
    started = time.monotonic()
    for i, mutant in enumerate(found, 1):
        covering = set().union(*(lines.get(n, set()) for n in range(mutant.line, mutant.end_line + 1)))
        first = [t for t in every if t in covering]
        rest = [t for t in every if t not in covering]
        path.write_text(mutant.source)
        try:
            outcome, by = "survived", ""
            for stage in (first, rest):
                if not stage:
                    continue
                run = run_pytest(work, ["-x", *stage], limit)
                if run["code"] != 0:
                    outcome, by = "killed", run["failed"] or f"pytest exit {run['code']}"
                    if confirm and run["failed"] and run_pytest(work, [run["failed"]], limit)["code"] == 0:
                        outcome, by = "survived", f"{by} failed once, then passed (a flaky test, not a kill)"
                    break
        finally:
            path.write_text(original)
        if outcome == "killed":
            result.killed += 1
            result.kills[by.split("[")[0]] += 1
        else:
            result.survivors.append(mutant)
        note = f" by {by}" if outcome == "killed" else f" ({len(first)} tests ran its line) {by}"
        print(f"  {target.name} {i}/{len(found)} line {mutant.line}: {mutant.description}: {outcome}{note}", flush=True)
    result.seconds = time.monotonic() - started
    return result


def report(results: list[Result], args: argparse.Namespace) -> str:
    """Markdown: per-module figures, then every survivor with its line, to act on."""
    out = [
        f"# make mutate: seed {args.seed}, at most {args.max or 'all'} mutants per module"
        + (f", the survivors of {args.recheck}" if args.recheck else ""),
        "",
        "| module | killed / mutants | share | seconds | s per mutant |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        share = r.killed / r.total if r.total else 1.0
        per = r.seconds / r.total if r.total else 0.0
        out.append(f"| `{r.target.module}` | {r.killed} / {r.total} | {share:.0%} | {r.seconds:.0f} | {per:.1f} |")
    killed, total = sum(r.killed for r in results), sum(r.total for r in results)
    out.append(f"| all | {killed} / {total} | {killed / total if total else 1.0:.0%} | | |")
    for r in results:
        if not r.survivors:
            continue
        out += ["", f"## Survivors in `{r.target.module}` (tests: {', '.join(r.target.tests)})", ""]
        text = (REPO / r.target.module).read_text().splitlines()
        for m in r.survivors:
            code = text[m.line - 1].strip() if 0 < m.line <= len(text) else ""
            out.append(f"- `{r.target.module}:{m.line}`: {m.description}: `{code}`")
    return "\n".join(out) + "\n"


def run_planted(work: Path, timeout: float) -> list[str]:
    """Plant each of issue 19's bugs in turn; the report's lines (a survivor says SURVIVED)."""
    lines = ["", "## The planted bugs of issue 19 (`--planted`)", ""]
    for bug in PLANTED:
        path = work / bug.module
        original = path.read_text()
        path.write_text(plant(original, bug))
        try:
            run = run_pytest(work, ["-x", *bug.tests], timeout)
        finally:
            path.write_text(original)
        by = run["failed"] or f"pytest exit {run['code']}"
        outcome = f"killed by `{by}`" if run["code"] != 0 else f"SURVIVED {', '.join(bug.tests)}"
        lines.append(f"- {bug.name} (`{bug.module}`): {outcome}")
        print(lines[-1], flush=True)
    return lines


def survivors_in(text: str, module: str) -> set[tuple[int, str]]:
    """(line, mutation) of each survivor of `module` listed in a report written by `report`."""
    out = set()
    for line in text.splitlines():
        if line.startswith(f"- `{module}:"):
            where, description = line[2:].split(": ", 2)[:2]
            out.add((int(where.strip("`").rsplit(":", 1)[1]), description.split(" (column")[0]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", choices=[t.name for t in TARGETS], help="default: all")
    parser.add_argument("--max", type=int, default=0, help="at most this many mutants per target (a seeded sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=0.0, help="seconds per test run (default: 3 x baseline)")
    parser.add_argument("--report", type=Path, help="also write the report (markdown) to this file")
    parser.add_argument("--confirm", action="store_true", help="a kill's failing test must fail twice (load, flakes)")
    parser.add_argument("--list", action="store_true", help="only list the mutants of the chosen targets")
    parser.add_argument("--planted", action="store_true", help="plant issue 19's six bugs (tools/planted.py) first")
    parser.add_argument(
        "--recheck", type=Path, help="run only the survivors listed in this earlier report (after new tests)"
    )
    args = parser.parse_args()
    chosen = [t for t in TARGETS if not args.target or t.name in args.target]
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    results: list[Result] = []
    planted: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sluice-mutate-") as tmp:
        work = Path(tmp) / "repo"
        for name in COPIED:
            shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for extra in ("pyproject.toml", ".importlinter"):
            shutil.copy2(REPO / extra, work / extra)
        if args.planted:
            planted = run_planted(work, args.timeout or 600.0)
            if not args.target:
                chosen = []  # `--planted` alone plants the bugs only
        for target in chosen:
            found = list(mutants((work / target.module).read_text()))
            if args.recheck:
                wanted = survivors_in(args.recheck.read_text(), target.module)
                found = [m for m in found if any(m.line == n and m.description.startswith(d) for n, d in wanted)]
            elif args.max and len(found) > args.max:
                found = random.Random(args.seed).sample(found, args.max)
            found.sort(key=lambda m: m.line)
            if args.list:
                for m in found:
                    print(f"{target.module}:{m.line}: {m.description}")
                continue
            results.append(mutate_target(work, target, found, args.timeout or None, args.confirm))
    text = report(results, args) + "\n".join(planted) + ("\n" if planted else "")
    print("\n" + text)
    if args.report:
        args.report.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
