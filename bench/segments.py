"""Segment rules on the agent's hot path, in process (no gRPC): what routing on features costs.

    .venv/bin/python bench/segments.py [--calls N] [--rounds N]

Trains the demo's e-mail engagement model (cli/demo/mixed.py: two text and two numeric inputs),
loads it as champion and challenger of one deployment in a real `AgentCore`, and times
`AgentCore.predict` on one record and `AgentCore.predict_batch` on 1,024 records with no segment
rules, with a rule on a request attribute, and with a rule on a feature (`feature.segment=lapsed`,
each batch row routed on its own). Median of the rounds; each round interleaves the cases so
background load hits them alike. The bookkeeping (metrics, prediction log) runs as in the agent,
deferred, here inline after the call and outside the timed span.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.cache import AgentCache  # noqa: E402
from agent.core import AgentCore  # noqa: E402
from agent.prometheus import AgentPrometheus  # noqa: E402
from agent.recorder import MetricsRecorder  # noqa: E402
from agent.records import RecordRows  # noqa: E402
from agent.serving import SnapshotApplier  # noqa: E402
from cli.demo.mixed import EMAIL_FEATURES, email_rows, write_email_csv  # noqa: E402
from core.tensors import encode_record  # noqa: E402
from protos import agent_pb2, common_pb2  # noqa: E402

RULES: dict[str, list[common_pb2.SegmentRule]] = {
    "no segment rules": [],
    "rule on a request attribute": [common_pb2.SegmentRule(attribute="attribute.tier", values=["gold"])],
    "rule on a feature": [common_pb2.SegmentRule(attribute="feature.segment", values=["lapsed"])],
}


def _core(model: Path, workdir: Path) -> AgentCore:
    data = model.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    cache = AgentCache(workdir / "cache")
    cache.put(data, sha)

    def route(version: str, weight: int, role: Any) -> agent_pb2.Route:
        ref = common_pb2.VersionRef(model="email", version=version)
        return agent_pb2.Route(version=ref, sha256=sha, weight=weight, role=role, task="classifier")

    snapshot = agent_pb2.Snapshot(
        snapshot_id=1,
        deployments=[
            agent_pb2.DeploymentSnapshot(
                name=name,
                generation=1,
                salt="s",
                routes=[route("v2", 50, common_pb2.ROLE_CHALLENGER), route("v1", 50, common_pb2.ROLE_CHAMPION)],
                segment_rules=rules,
                log_sample_rate=0.0,
            )
            for name, rules in RULES.items()
        ],
    )
    table, failed = asyncio.run(SnapshotApplier(cache, None).apply(snapshot, None, None))
    assert not failed, failed
    recorder = MetricsRecorder()
    recorder.configure(snapshot)
    core = AgentCore("bench", "0123456789abcdef", recorder, AgentPrometheus())
    core.table = table
    return core


def _timed(calls: int, call: Callable[[], Any], after: Callable[[], Any]) -> float:
    """Microseconds per call, median over the calls; `after` (the deferred bookkeeping) runs
    between calls, outside the timing."""
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
        after()
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="single-row calls per case and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from controlplane.training import train_command

    with tempfile.TemporaryDirectory(prefix="sluice-bench-segments-") as tmp:
        workdir = Path(tmp)
        data = write_email_csv(workdir / "email.csv", email_rows(1200, 2026))
        model = train_command(data, workdir / "email.onnx", None, "logreg").out
        core = _core(model, workdir)
        pending: list[tuple[Any, ...]] = []
        core.defer = lambda fn, *a: pending.append((fn, *a))

        def drain() -> None:
            while pending:
                fn, *rest = pending.pop()
                fn(*rest)

        rows = email_rows(1024, 7)
        records = [encode_record({k: r[k] for k in EMAIL_FEATURES}) for r in rows]
        one = RecordRows(records[:1])
        batch = RecordRows(records)
        single: dict[str, list[float]] = {name: [] for name in RULES}
        many: dict[str, list[float]] = {name: [] for name in RULES}
        for _ in range(args.rounds):
            for name in RULES:
                dep = core.deployment(name)

                def predict(dep: Any = dep) -> None:
                    core.predict(dep, one, key="subscriber-1", attributes={"tier": "gold"})

                def predict_batch(dep: Any = dep) -> None:
                    core.predict_batch(dep, batch, [], [])

                single[name].append(_timed(args.calls, predict, drain))
                many[name].append(_timed(max(args.calls // 100, 10), predict_batch, drain))
        print("| deployment | Predict, 1 record (µs, median of rounds) | PredictBatch, 1,024 records (µs) |")
        print("| --- | ---: | ---: |")
        for name in RULES:
            print(f"| {name} | {statistics.median(single[name]):.1f} | {statistics.median(many[name]):.0f} |")
        core.close()


if __name__ == "__main__":
    main()
