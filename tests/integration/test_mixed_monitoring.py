"""Monitoring a mixed-type model end to end (issue 14 items 5 and 6), with real processes.

A control plane (in this process, judging every 0.3 s) and one real `sluice agent` process. The
model is what `sluice train` builds from a generated CSV (2 text columns, 3 numeric with missing
cells) and its Parquet baseline is registered with it; `sluice evaluate` scores the same CSV.
Records with a shifted plan mix, an unseen plan and many missing ages then raise a drift alert
naming `plan` (PSI + chi-square on its category frequencies), an unseen-category alert on `plan`
and a missing-values alert on `age`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.config import Config
from controlplane.training import train_command
from core.client import ClientError, SluiceClient, batch_request
from protos import common_pb2, controlplane_pb2
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import ServerThread, start_server, unique
from tests.models import mixed_table_rows, write_mixed_table


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    config = Config()
    config.alerts.evaluate_seconds = 0.3
    config.health.window_seconds = 20
    config.health.min_drift_samples = 100
    started = start_server(tmp_path_factory.mktemp("cp"), config=config)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """v1 (logreg) and v2 (gbm) trained on one generated CSV, with v1's Parquet baseline."""
    root = tmp_path_factory.mktemp("trained")
    data = write_mixed_table(root / "table.csv", mixed_table_rows(300, seed=2))
    v1 = train_command(data, root / "v1.onnx", None, "logreg")
    v2 = train_command(data, root / "v2.onnx", None, "gbm")
    return {"data": data, "v1": v1.out, "v2": v2.out, "baseline": v1.baseline}


def _alert(client: SluiceClient, deployment: str, kind: str, subject: str) -> controlplane_pb2.Alert | None:
    found = [a for a in client.alerts(deployment=deployment) if (a.kind, a.subject) == (kind, subject)]
    return found[0] if found else None


def _records(seed: int) -> list[dict[str, Any]]:
    """50 rows: most plans are "team" (the baseline's rarest), a tenth "enterprise" (never seen),
    and 60% of the ages missing (the baseline has 10%)."""
    rows = mixed_table_rows(50, seed=1000 + seed, plans=(0.05, 0.05, 0.9))
    for i, row in enumerate(rows):
        del row["label"]
        if i % 10 == 0:
            row["plan"] = "enterprise"
        if i % 5 < 3:
            row["age"] = None
    return rows


def test_a_shifted_category_mix_raises_alerts_that_name_the_features(
    server: ServerThread, trained: dict[str, Path], tmp_path: Path
) -> None:
    model, dep = unique("mixed"), unique("dep")
    stop = threading.Event()
    sender: threading.Thread | None = None
    agent: AgentProcess | None = None
    with SluiceClient(server.address, token="") as client:
        version = client.register_version(model, "v1", trained["v1"], trained["baseline"])
        assert [c.name for c in version.baseline.categories] == ["plan", "device"]
        assert [f.name for f in version.baseline.features] == ["age", "income", "visits"]
        plan = version.baseline.categories[0]
        assert set(plan.categories) == {"free", "pro", "team"} and plan.counts[-1] == 0  # nothing "other"
        assert version.baseline.features[0].missing > 0  # the baseline's own missing ages
        client.register_version(model, "v2", trained["v2"], trained["baseline"])
        client.deploy(dep, f"{model}:v1")

        verdict = client.evaluate(f"{model}:v2", dep, trained["data"])
        assert verdict.metric == "accuracy" and verdict.n == 300 and verdict.verdict

        try:
            agent = AgentProcess(server.address, "mixed-agent", tmp_path / "cache", tmp_path / "agent.log")
            wait_for_agents(client, dep, ["mixed-agent"])
            running = agent

            def send() -> None:
                seed = 0
                while not stop.is_set():
                    assert running.stub is not None
                    running.stub.PredictBatch(batch_request(dep, records=_records(seed)), timeout=60)
                    seed += 1
                    stop.wait(0.05)

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            drift = wait_until(lambda: _alert(client, dep, "drift", "plan"), 60, "a drift alert on plan")
            assert "feature plan drifted" in drift.message and "chi-square p=" in drift.message
            unseen = wait_until(lambda: _alert(client, dep, "unseen", "plan"), 30, "an unseen-category alert")
            assert "categories the baseline never had" in unseen.message
            missing = wait_until(lambda: _alert(client, dep, "missing", "age"), 30, "a missing-values alert")
            assert "feature age" in missing.message and missing.severity == common_pb2.HEALTH_CRITICAL
            # a number whose missing share did not move raises no missing-values alert
            assert _alert(client, dep, "missing", "income") is None
        finally:
            stop.set()
            if sender is not None:
                sender.join(10)
            if agent is not None:
                agent.stop()


def test_a_baseline_that_does_not_fit_the_model_is_refused_with_the_reason(
    server: ServerThread, trained: dict[str, Path], tmp_path: Path
) -> None:
    rows = mixed_table_rows(20, seed=5)
    for row in rows:
        del row["device"]
    lacking = write_mixed_table(tmp_path / "lacking.csv", rows)
    numbers = write_mixed_table(
        tmp_path / "numbers.csv", [{**r, "plan": float(i)} for i, r in enumerate(mixed_table_rows(20, seed=5))]
    )
    with SluiceClient(server.address, token="") as client:
        for baseline, text in [(lacking, "it has no column 'device'"), (numbers, "column 'plan' holds numbers")]:
            with pytest.raises(ClientError, match=text) as caught:
                client.register_version(unique("bad"), "v1", trained["v1"], baseline)
            assert "\n" not in str(caught.value)
