"""Mutation testing of the modules where a silent bug costs most (`make mutate`; not part of `make test`).

For each target module, every mutant is one small change a person could plausibly make by mistake
(a comparison flipped or loosened, `and` for `or`, a `not` dropped, a number off by one, True for
False, a return value replaced by None), applied to a copy of the repository; the target's fast
tests run against that copy (agents and CLIs the tests start import the copy too). A mutant the
tests fail on is killed; one they pass survives and is listed with its line, to be killed by a new
test or explained in docs/TESTING.md.

    python tools/mutate.py                    # every target
    python tools/mutate.py --target router --max 20 --seed 1
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COPIED = ("protos", "core", "runtime", "controlplane", "agent", "tui", "sluice", "cli", "migrations", "tests")


@dataclass(frozen=True)
class Target:
    name: str
    module: str  # path in the repository
    tests: tuple[str, ...]  # fast tests that should notice a bug in it


TARGETS = (
    Target("permissions", "controlplane/api/auth.py", ("tests/security/test_roles.py",)),
    Target("router", "agent/router.py", ("tests/agent/test_router.py",)),
    Target("snapshot", "controlplane/agenthub/snapshot.py", ("tests/agent/test_hub.py", "tests/agent/test_router.py")),
    Target(
        "rollout",
        "controlplane/experiments/rollout.py",
        ("tests/controlplane/experiments/test_engine.py", "tests/controlplane/experiments/test_gates.py"),
    ),
    Target(
        "ingest",
        "controlplane/monitoring/ingest.py",
        ("tests/controlplane/monitoring/test_ingest.py", "tests/controlplane/monitoring/test_ingest_atomic.py"),
    ),
    Target(
        "health",
        "controlplane/monitoring/health.py",
        ("tests/controlplane/monitoring/test_health.py", "tests/controlplane/monitoring/test_alert_conditions.py"),
    ),
    Target(
        "registry",
        "controlplane/registry.py",
        ("tests/controlplane/store/test_registry.py", "tests/controlplane/store/test_registry_atomic.py"),
    ),
    Target("ack", "agent/serving.py", ("tests/agent/test_link_ack_order.py",)),
    Target("safety", "controlplane/experiments/safety.py", ("tests/controlplane/experiments/test_safety.py",)),
)

SWAPS: dict[type[ast.AST], type[ast.AST]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.And: ast.Or,
    ast.Or: ast.And,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
}


@dataclass(frozen=True)
class Mutant:
    line: int
    description: str
    source: str


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """Ids of string constants that are docstrings (mutating them proves nothing)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def mutants(source: str) -> Iterator[Mutant]:
    """Every single-point mutant of `source` (each parsed afresh, so they never stack)."""
    count = len(list(ast.walk(ast.parse(source))))
    for index in range(count):
        tree = ast.parse(source)
        skip = _docstring_nodes(tree)
        node = list(ast.walk(tree))[index]
        change = _mutate(node, skip)
        if change is None:
            continue
        line = getattr(node, "lineno", 0)
        try:
            yield Mutant(line, change, ast.unparse(tree))
        except Exception:  # noqa: BLE001 - an unparseable mutant is no mutant
            continue


def _mutate(node: ast.AST, skip: set[int]) -> str | None:
    """Change `node` in place; say what was changed (None: nothing to change here)."""
    if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAPS:
        old = type(node.ops[0])
        node.ops[0] = SWAPS[old]()
        return f"{old.__name__} -> {SWAPS[old].__name__}"
    if isinstance(node, ast.BoolOp) and type(node.op) in SWAPS:
        old = type(node.op)
        node.op = SWAPS[old]()
        return f"{old.__name__} -> {SWAPS[old].__name__}"
    if isinstance(node, ast.BinOp) and type(node.op) in (ast.Add, ast.Sub):
        old = type(node.op)
        node.op = SWAPS[old]()
        return f"{old.__name__} -> {SWAPS[old].__name__}"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        node.op = ast.UAdd()  # `+x`: truthiness no longer inverted (unparse gives `+x`, still valid)
        return "not x -> x"
    if isinstance(node, ast.Constant) and id(node) not in skip:
        if node.value is True or node.value is False:
            node.value = not node.value
            return f"{not node.value} -> {node.value}"
        if type(node.value) in (int, float) and not isinstance(node.value, bool):
            node.value = node.value + 1
            return f"{node.value - 1} -> {node.value}"
    if isinstance(node, ast.Return) and node.value is not None and not (
        isinstance(node.value, ast.Constant) and node.value.value is None
    ):
        node.value = ast.Constant(None)
        return "return x -> return None"
    return None


def run_tests(workdir: Path, tests: tuple[str, ...], timeout: float) -> str:
    """'killed' (a test failed or the run hung), 'survived' (every test passed)."""
    env = {**os.environ, "PYTHONPATH": str(workdir), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *tests]
    try:
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed"  # a mutant that hangs the tests is caught by their timeouts in CI too
    if done.returncode == 0:
        return "survived"
    if done.returncode in (1, 3):  # failures, or an internal error the mutant caused
        return "killed"
    raise RuntimeError(f"pytest could not run ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", choices=[t.name for t in TARGETS], help="default: all")
    parser.add_argument("--max", type=int, default=0, help="at most this many mutants per target (a seeded sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per test run")
    args = parser.parse_args()
    chosen = [t for t in TARGETS if not args.target or t.name in args.target]
    totals: list[tuple[str, int, int]] = []
    with tempfile.TemporaryDirectory(prefix="sluice-mutate-") as tmp:
        work = Path(tmp)
        for name in COPIED:
            shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for extra in ("pyproject.toml", ".importlinter"):
            shutil.copy2(REPO / extra, work / extra)
        for target in chosen:
            path = work / target.module
            original = path.read_text()
            found = list(mutants(original))
            if args.max and len(found) > args.max:
                found = sorted(random.Random(args.seed).sample(found, args.max), key=lambda m: m.line)
            baseline = run_tests(work, target.tests, args.timeout)
            if baseline != "survived":
                print(f"{target.name}: the tests fail without any mutant; fix them first", file=sys.stderr)
                return 2
            killed, survivors = 0, []
            started = time.monotonic()
            for i, mutant in enumerate(found, 1):
                path.write_text(mutant.source)
                try:
                    outcome = run_tests(work, target.tests, args.timeout)
                finally:
                    path.write_text(original)
                if outcome == "killed":
                    killed += 1
                else:
                    survivors.append(mutant)
                where = f"{target.name} {i}/{len(found)} line {mutant.line}"
                print(f"  {where}: {mutant.description}: {outcome}", flush=True)
            took = time.monotonic() - started
            totals.append((target.name, killed, len(found)))
            share = killed / len(found) if found else 1.0
            print(f"{target.name} ({target.module}): {killed}/{len(found)} killed ({share:.0%}) in {took:.0f} s")
            for mutant in survivors:
                print(f"  SURVIVED {target.module}:{mutant.line}: {mutant.description}")
    print("\nmodule        killed / mutants")
    for name, killed, total in totals:
        print(f"{name:<13} {killed:>6} / {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
