"""Labels given to an agent's Feedback RPC reach the control plane's label store: forwarded over
AgentHub, acknowledged after the store has them, kept on the agent's disk while the control plane
is down and through an agent crash, and stored once (real control plane, real agent process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.config import Config
from controlplane.labels.store import current_labels, list_imports
from controlplane.server import ServerOptions
from core.client import SluiceClient
from core.vocabulary import LabelSource
from protos import inference_pb2
from tests.agent.cluster import AgentProcess, wait_until
from tests.harness import ServerThread, unique
from tests.models import breast_cancer_rows, make_classifier_onnx

pytestmark = pytest.mark.slow


def controlplane(root: Path, port: int = 0) -> ServerThread:
    """A control plane on `port` (0: any free one, read back from its address) and a fixed store,
    so that it can be started again as itself."""
    return ServerThread(
        ServerOptions(
            listen=f"127.0.0.1:{port}",
            db_url=f"sqlite:///{root / 'sluice.db'}",
            artifacts=root / "artifacts",
            config=Config(),
            metrics_port=0,
        )
    )


def feedback(agent: AgentProcess, deployment: str, request_id: str, label: int) -> bool:
    assert agent.stub is not None
    request = inference_pb2.FeedbackRequest(deployment=deployment, request_id=request_id, label=label)
    return agent.stub.Feedback(request, timeout=30).matched


def test_feedback_labels_reach_the_label_store_through_an_outage_and_an_agent_crash(
    tmp_path: Path, models_dir: Path
) -> None:
    cp: ServerThread | None = controlplane(tmp_path / "cp")
    port = int(cp.address.rsplit(":", 1)[1])
    agent: AgentProcess | None = None
    deployment = unique("fb")
    try:
        with SluiceClient(cp.address, token="") as client:
            client.register_version("cancer", "v1", make_classifier_onnx(models_dir))
            client.deploy(deployment, "cancer:v1")
        agent = AgentProcess(cp.address, unique("agent"), tmp_path / "agent-cache", tmp_path / "agent.log")
        rows = breast_cancer_rows(3, seed=5)
        ids = [wait_until(lambda i=i: agent.predict(deployment, rows[i : i + 1]).request_id) for i in range(3)]
        assert all(feedback(agent, deployment, request_id, 1) for request_id in ids)
        assert not feedback(agent, deployment, "from-elsewhere", 0)  # unknown to the agent: kept all the same

        def stored() -> dict[str, str]:
            assert cp is not None
            table = current_labels(cp.ctx, deployment).to_pylist()
            return {r["request_id"]: r["label"] for r in table}

        wait_until(lambda: len(stored()) == 4, what="the agent's labels in the label store")
        assert stored() == {ids[0]: "1", ids[1]: "1", ids[2]: "1", "from-elsewhere": "0"}
        assert {i.source for i in list_imports(cp.ctx, deployment)} == {LabelSource.FEEDBACK}

        # The control plane goes away; the agent keeps the next labels on disk, then crashes.
        cp.stop()
        cp = None
        feedback(agent, deployment, ids[0], 0)  # a relabel (the agent joined the first): replaces it
        feedback(agent, deployment, "late-one", 1)
        agent.stop(crash=True)
        agent.log = tmp_path / "agent-2.log"
        agent.start()  # serves from its cache; its unacked label batches are still on disk

        cp = controlplane(tmp_path / "cp", port)
        wait_until(lambda: len(stored()) == 5 and stored()[ids[0]] == "0", what="the spooled labels after restarts")
        assert stored() == {ids[0]: "0", ids[1]: "1", ids[2]: "1", "from-elsewhere": "0", "late-one": "1"}
        imports = list_imports(cp.ctx, deployment)
        assert sum(i.rows for i in imports) == 6 and sum(i.accepted for i in imports) == 6  # none stored twice
        # The relabel shows in what is read (above); an agent's batches are stored without judging
        # them against stored labels (docs/PREDICTION_LOG.md), so no import counts it as replaced.
        assert sum(i.replaced for i in imports) == 0
        wait_until(lambda: not list((tmp_path / "agent-cache" / "labels").glob("*.pb")), what="acked batches gone")
    finally:
        if agent is not None:
            agent.stop()
        if cp is not None:
            cp.stop()
