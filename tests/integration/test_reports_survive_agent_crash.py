"""An agent SIGKILLed while the control plane is down loses no metric and no logged prediction
(issue 16, item 6 and its done-when: "the request count and the logged rows are exact").

Tried on 2026-12-06 before the report spool: control plane down, 500 predictions on an agent, the
agent SIGKILLed and restarted, the control plane back -> it counted 300 of 800 (the buffered
reports and the open window lived in the agent's memory). Now every report is in the agent's
spool from the moment it is built until its ack, and the window open at the kill is in its
journal; the restarted agent sends both, with the control plane's receipts keeping each report
exactly-once. The prediction log's rows waiting for their flush (up to 2 s) were lost the same way
(the count said 800 and the log fewer); they are journaled now (`agent/logjournal.py`) and written
as segments by the restarted agent. Real processes throughout: a control plane on a SQLite file,
one agent, SIGKILL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agent.logjournal import MAGIC as JOURNAL_MAGIC
from agent.logpending import segment_files
from core.client import SluiceClient
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import SluiceProcess, bound_address, start_controlplane_process, unique
from tests.integration.test_metrics_no_loss import reported_requests
from tests.models import breast_cancer_rows, make_baseline, make_classifier_onnx

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reports-survive-agent-crash")]

BEFORE, DURING = 300, 500


def predict(agent: AgentProcess, deployment: str, rows: np.ndarray, first: int) -> None:
    for i in range(rows.shape[0]):
        agent.predict(deployment, rows[i][None, :], key=f"user-{first + i}")


def logged_rows(address: str, deployment: str) -> int:
    """The predictions in the control plane's prediction log (its recorded segments)."""
    with SluiceClient(address, token="") as client:
        [status] = client.status(deployment)
    return sum(v.labeled.predictions for v in status.versions)


def nothing_left_to_send(cache: Path) -> bool:
    """Every report acknowledged: the spool holds no segment any more."""
    return not list((cache / "reports").glob("*.seg"))


def nothing_left_to_ship(cache: Path) -> bool:
    """Every prediction-log segment acknowledged and no journal of the killed run left."""
    return not segment_files(cache / "log" / "pending") and not any(
        p.stat().st_size > len(JOURNAL_MAGIC) for p in (cache / "log" / "journal").glob("*.wal")
    )


def test_an_agent_killed_while_the_controlplane_is_down_loses_no_metric(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    rows = breast_cancer_rows(BEFORE + DURING, seed=7).astype(np.float32)
    cp: SluiceProcess | None = start_controlplane_process(tmp_path, "127.0.0.1:0", "cp-1.log")
    address = bound_address(cp)
    agent: AgentProcess | None = None
    try:
        model, dep = unique("m"), unique("d")
        with SluiceClient(address, token="") as client:
            client.register_version(model, "v1", make_classifier_onnx(models), make_baseline(models))
            client.deploy(dep, f"{model}:v1")
        name = unique("agent")
        cache = tmp_path / name
        agent = AgentProcess(address, name, cache, tmp_path / f"{name}.log")
        with SluiceClient(address, token="") as client:
            wait_for_agents(client, dep, [name])

        predict(agent, dep, rows[:BEFORE], 0)
        wait_until(lambda: reported_requests(address, dep) == BEFORE, timeout=30, what=f"{BEFORE} requests stored")

        assert cp is not None
        cp.terminate()  # the control plane is stopped...
        cp.close()
        cp = None
        predict(agent, dep, rows[BEFORE:], BEFORE)  # ...the agent answers from its snapshot...
        # The count of an answer is recorded just after it is sent (off the request path): one
        # more round trip to the agent's event loop runs after that bookkeeping.
        assert agent.channel is not None
        health = health_pb2_grpc.HealthStub(agent.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        agent.stop(crash=True)  # ...and is SIGKILLed right after the last answer

        agent.log = agent.log.with_name(f"{name}-2.log")
        agent.start()  # the same cache: it serves from it and holds the spool and the journal
        cp = start_controlplane_process(tmp_path, address, "cp-2.log")  # the same store and port

        wait_until(lambda: nothing_left_to_send(cache), timeout=60, what="every spooled report acknowledged")
        assert reported_requests(address, dep) == BEFORE + DURING  # 800 of 800
        wait_until(
            lambda: logged_rows(address, dep) >= BEFORE + DURING and nothing_left_to_ship(cache),
            timeout=60,
            what="every prediction logged and no segment left to ship",
        )
        assert logged_rows(address, dep) == BEFORE + DURING  # 800 of 800 in the prediction log too
    finally:
        if agent is not None:
            agent.stop()
        if cp is not None:
            cp.terminate()
            cp.close()

