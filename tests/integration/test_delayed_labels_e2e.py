"""Issue 16's done-when at its own scale: labels that arrive after the agents' windows closed.

One control plane (a real `sluice controlplane` process on a SQLite file, so a test may SIGKILL it
and start it again on the same data dir) and two real `sluice agent` processes, shared by the
tests of this module; each test has its own deployment with two versions (logistic regression
and gradient boosting, 50/50 by routing key), so the tests stay independent.

Each test sends 20,000 predictions, most of them in PredictBatch calls with request ids (cheap on
CPU), some as single Predicts, spread over the two agents, and keeps what each agent answered: the
version that served each request and its class. The issue imports the labels "30 s later, the
agents' windows long closed". Here the agents close a metric window every second (the control
plane's `report_seconds`, 1 s) and flush the prediction log every 2 s, so instead of sleeping 30 s
the test waits for the condition itself: every request counted in the control plane's metrics
(each window holding one is closed and stored) and every prediction logged there (each segment
shipped and recorded). Only then are the labels of 15,000 requests written to a CSV file and
imported with `sluice labels import`; `sluice status --json` must then give each version's
accuracy over its labelled requests exactly as the test counts it from the agents' answers, and
5,000 waiting; `sluice dataset export` must give back the 20,000 rows sent.

Then the issue's faults on the same cluster: the control plane SIGKILLed while segments ship (no
row lost, none doubled), and a full disk on an agent (it serves on; the rows it cannot log are
counted and alerted). One module over 400 lines: the tests share its control plane and agents.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from agent.logpending import segment_files
from controlplane.sample_data import breast_cancer_arrays
from core.client import SluiceClient, batch_request, batch_results, predict_request
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import SluiceProcess, bound_address, run_cli, start_controlplane_process, unique
from tests.models import make_baseline, make_classifier_onnx

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("delayed-labels-e2e")]

PREDICTIONS = 20_000
SINGLE = 200  # of them, sent one by one with Predict; the others in PredictBatch calls
BATCH = 1_000
LABELED = 15_000
WAITING = PREDICTIONS - LABELED


class Cluster:
    """The module's control plane (restartable on the same data dir and port) and two agents."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.address = "127.0.0.1:0"  # the first start binds a free port; restarts reuse it
        self.runs = 0
        self.cp: SluiceProcess | None = None
        self.agents: list[AgentProcess] = []
        self.start_controlplane()

    def start_controlplane(self) -> None:
        self.runs += 1
        self.cp = start_controlplane_process(self.root, self.address, f"cp-{self.runs}.log")
        self.address = bound_address(self.cp)

    def kill_controlplane(self) -> None:
        assert self.cp is not None
        self.cp.kill()
        self.cp.close()
        self.cp = None

    def client(self) -> SluiceClient:
        return SluiceClient(self.address, token="")

    def close(self) -> None:
        for agent in self.agents:
            agent.stop()
        if self.cp is not None:
            self.cp.terminate()
            self.cp.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("delayed-labels")
    models = root / "models"
    models.mkdir()
    cluster = Cluster(root)
    try:
        with cluster.client() as client:
            client.register_version("cancer", "lr", make_classifier_onnx(models), make_baseline(models))
            client.register_version("cancer", "gbm", make_classifier_onnx(models, "gbm"), make_baseline(models))
        for i in range(2):
            name = f"agent{i}-{unique('a')}"
            cluster.agents.append(AgentProcess(cluster.address, name, root / name, root / f"{name}.log"))
        yield cluster
    finally:
        cluster.close()


@dataclass
class Sent:
    """What the test sent and what the agents answered, by request id."""

    deployment: str
    index: np.ndarray  # the dataset row of each request
    rows: np.ndarray
    ids: list[str]
    version: dict[str, str] = field(default_factory=dict)  # request id -> version that answered
    label: dict[str, str] = field(default_factory=dict)  # request id -> the class it answered
    #: the calls each version answered (what the metrics count as requests: a PredictBatch whose
    #: rows two versions answered is one request of each)
    calls: Counter[str] = field(default_factory=Counter)

    def per_version(self) -> Counter[str]:
        return Counter(self.version.values())


def new_deployment(cluster: Cluster) -> str:
    deployment = unique("delayed")
    with cluster.client() as client:
        client.deploy(deployment, "cancer:lr")
        client.set_traffic(deployment, {"cancer:lr": 50, "cancer:gbm": 50})
        wait_for_agents(client, deployment, [a.name for a in cluster.agents])
    return deployment


def send(cluster: Cluster, deployment: str, seed: int) -> Sent:
    """PREDICTIONS requests over both agents (alternating), each with its id and routing key."""
    X, _ = breast_cancer_arrays()
    index = np.random.default_rng(seed).choice(X.shape[0], size=PREDICTIONS)
    rows = X[index].astype(np.float32)
    sent = Sent(deployment, index, rows, [f"{deployment}-{i}" for i in range(PREDICTIONS)])
    for n, start in enumerate(range(0, PREDICTIONS - SINGLE, BATCH)):
        agent = cluster.agents[n % 2]
        assert agent.stub is not None
        stop = min(start + BATCH, PREDICTIONS - SINGLE)
        ids = sent.ids[start:stop]
        request = batch_request(deployment, rows[start:stop], [f"user-{i}" for i in range(start, stop)], ids)
        answer = batch_results(agent.stub.PredictBatch(request, timeout=60))
        assert answer.labels is not None and answer.request_ids == ids
        versions = [v.split(":")[1] for v in answer.row_versions()]
        for rid, version, label in zip(ids, versions, answer.labels.tolist(), strict=True):
            sent.version[rid], sent.label[rid] = version, str(label)
        sent.calls.update(set(versions))
    for i in range(PREDICTIONS - SINGLE, PREDICTIONS):
        agent = cluster.agents[i % 2]
        assert agent.stub is not None
        request = predict_request(deployment, rows[i : i + 1], routing_key=f"user-{i}", request_id=sent.ids[i])
        response = agent.stub.Predict(request, timeout=30)
        sent.version[sent.ids[i]], sent.label[sent.ids[i]] = response.served_by.version, str(response.labels[0])
        sent.calls[response.served_by.version] += 1
    assert len(sent.version) == PREDICTIONS and set(sent.per_version()) == {"lr", "gbm"}
    return sent


def counted(cluster: Cluster, deployment: str) -> dict[str, tuple[int, int]]:
    """Per version: (requests in the stored metric windows, predictions in the recorded log)."""
    with cluster.client() as client:
        [status] = client.status(deployment, window_seconds=3600)
    return {v.version.version: (v.requests, v.labeled.predictions) for v in status.versions}


def wait_for_closed_windows(cluster: Cluster, sent: Sent) -> None:
    """The issue's "30 s later, the agents' windows long closed", as a condition: every request
    is in a stored metric window and every prediction in a recorded log segment."""
    expected = {v: (sent.calls[v], n) for v, n in sent.per_version().items()}
    last: list[dict[str, tuple[int, int]]] = []

    def done() -> bool:
        last.append(counted(cluster, sent.deployment))
        return last[-1] == expected

    try:
        wait_until(done, timeout=120, what=f"every request counted and logged ({expected})")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; (requests, logged) per version last seen: {last[-1:]}") from None


def truth_of(sent: Sent, seed: int) -> dict[str, str]:
    """The labels of LABELED requests picked at random: the dataset's own class, every 9th one
    flipped (so neither version is simply right everywhere)."""
    _, y = breast_cancer_arrays()
    picked = np.random.default_rng(seed).choice(PREDICTIONS, size=LABELED, replace=False)
    truth: dict[str, str] = {}
    for k, i in enumerate(picked.tolist()):
        cls = int(y[sent.index[i]])
        truth[sent.ids[i]] = str(1 - cls if k % 9 == 0 else cls)
    return truth


def import_labels(cluster: Cluster, deployment: str, truth: dict[str, str], path: Path, unknown: int = 0) -> None:
    """`sluice labels import --atomic` of the truth, plus `unknown` labels for request ids nobody
    sent (counted as unknown ids, not an error: they might match a segment that arrives later)."""
    lines = [f"{rid},{label}\n" for rid, label in truth.items()] + [f"nobody-{i},1\n" for i in range(unknown)]
    path.write_text("request_id,label\n" + "".join(lines))
    result = run_cli("labels", "import", deployment, str(path), "--atomic", "--json", address=cluster.address)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["accepted"], summary["unknown_ids"], summary["duplicates"]) == (
        LABELED + unknown, LABELED + unknown, unknown, 0
    )  # fmt: skip


def check_status(cluster: Cluster, sent: Sent, truth: dict[str, str]) -> None:
    """`sluice status --json`: per version, the requests and the label-joined figures exactly as
    the test counts them from what the agents answered."""
    result = run_cli("status", sent.deployment, "--window", "3600", "--json", address=cluster.address)
    assert result.returncode == 0, result.stderr
    [status] = json.loads(result.stdout)
    shown = {v["version"]["version"]: v for v in status["versions"]}
    assert set(shown) == {"lr", "gbm"}
    total_waiting = 0
    for version, predictions in sent.per_version().items():
        labeled = [rid for rid in truth if sent.version[rid] == version]
        correct = sum(sent.label[rid] == truth[rid] for rid in labeled)
        assert int(shown[version]["requests"]) == sent.calls[version]
        assert shown[version]["labeled"] == {
            "predictions": predictions,
            "labeled": len(labeled),
            "waiting": predictions - len(labeled),
            "accuracy": pytest.approx(correct / len(labeled), abs=1e-12),
        }
        total_waiting += predictions - len(labeled)
    assert total_waiting == WAITING


def test_labels_imported_after_the_windows_closed_give_each_versions_exact_accuracy(
    cluster: Cluster, tmp_path: Path
) -> None:
    deployment = new_deployment(cluster)
    sent = send(cluster, deployment, seed=16)
    wait_for_closed_windows(cluster, sent)
    truth = truth_of(sent, seed=61)
    import_labels(cluster, deployment, truth, tmp_path / "labels.csv")
    check_status(cluster, sent, truth)

    # The dataset: every row sent, once, with what its agent answered and the truth imported.
    out = tmp_path / "dataset.parquet"
    exported = run_cli("dataset", "export", deployment, "--out", str(out), address=cluster.address)
    assert exported.returncode == 0, exported.stderr
    table = pq.read_table(out, columns=["request_id", "version", "label", "true_label", "agent"])
    assert table.num_rows == PREDICTIONS
    ids = table.column("request_id").to_pylist()
    assert sorted(ids) == sorted(sent.ids)
    assert dict(zip(ids, table.column("label").to_pylist(), strict=True)) == sent.label
    assert dict(zip(ids, table.column("version").to_pylist(), strict=True)) == sent.version
    true_labels = dict(zip(ids, table.column("true_label").to_pylist(), strict=True))
    assert {rid: true_labels[rid] for rid in truth} == truth
    assert sum(v is None for v in true_labels.values()) == WAITING
    assert set(table.column("agent").to_pylist()) == {a.name for a in cluster.agents}
    # The features of a sample of rows, as sent (float32 both ways: compared exactly).
    sample = np.random.default_rng(5).choice(PREDICTIONS, size=50, replace=False).tolist()
    wanted = {sent.ids[i]: i for i in sample}
    features = pq.read_table(out, columns=["request_id", "in_input"]).to_pylist()
    got = {r["request_id"]: r["in_input"] for r in features if r["request_id"] in wanted}
    assert len(got) == len(wanted)
    for rid, i in wanted.items():
        assert np.array_equal(np.asarray(got[rid], dtype=np.float32), sent.rows[i])


def test_a_controlplane_sigkilled_between_predictions_and_labels_loses_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    deployment = new_deployment(cluster)
    sent = send(cluster, deployment, seed=17)
    wait_for_closed_windows(cluster, sent)
    cluster.kill_controlplane()
    cluster.start_controlplane()  # the same data dir, database and port
    truth = truth_of(sent, seed=71)
    import_labels(cluster, deployment, truth, tmp_path / "labels.csv", unknown=25)
    check_status(cluster, sent, truth)


# ---- faults: the control plane killed while segments ship, a full disk on an agent ----


class Traffic(threading.Thread):
    """PredictBatch calls of 200 rows with ids, alternating agents, until stopped."""

    def __init__(self, agents: list[AgentProcess], deployment: str) -> None:
        super().__init__(name="traffic", daemon=True)
        self.agents, self.deployment = agents, deployment
        self.rows = breast_cancer_arrays()[0][:200]
        self.sent: list[str] = []
        self.errors: list[BaseException] = []
        self._halt = threading.Event()
        self.start()

    def run(self) -> None:
        n = 0
        while not self._halt.is_set():
            agent = self.agents[n % len(self.agents)]
            ids = [f"{self.deployment}-{n}-{i}" for i in range(200)]
            try:
                assert agent.stub is not None
                agent.stub.PredictBatch(batch_request(self.deployment, self.rows, request_ids=ids), timeout=30)
                self.sent += ids
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(exc)
            n += 1
            self._halt.wait(0.2)

    def finish(self) -> list[str]:
        self._halt.set()
        self.join(60)
        return self.sent


def pending_segments(agent: AgentProcess) -> list[Path]:
    return segment_files(agent.cache / "log" / "pending")


def logged(cluster: Cluster, deployment: str) -> int:
    return sum(n for _, n in counted(cluster, deployment).values())


def exported_ids(cluster: Cluster, deployment: str, out: Path) -> list[str]:
    done = run_cli("dataset", "export", deployment, "--out", str(out), address=cluster.address)
    assert done.returncode == 0, done.stderr
    return pq.read_table(out, columns=["request_id"]).column("request_id").to_pylist()


def test_a_controlplane_sigkilled_while_segments_ship_loses_none_and_doubles_none(
    cluster: Cluster, tmp_path: Path
) -> None:
    deployment = new_deployment(cluster)
    traffic: Traffic | None = Traffic(cluster.agents, deployment)
    try:
        wait_until(lambda: logged(cluster, deployment) > 0, timeout=60, what="the first segments recorded")
        # Kill it the moment a segment waits for its ack on either agent (written, being shipped).
        deadline = time.monotonic() + 30
        while not any(pending_segments(a) for a in cluster.agents) and time.monotonic() < deadline:
            time.sleep(0.005)
        cluster.kill_controlplane()
        cluster.start_controlplane()  # the agents kept serving and logging meanwhile
        with cluster.client() as client:
            wait_for_agents(client, deployment, [a.name for a in cluster.agents], timeout=60)
        assert traffic is not None
        sent, errors = traffic.finish(), traffic.errors
        traffic = None
        assert not errors, errors[:3]
        wait_until(
            lambda: logged(cluster, deployment) >= len(sent) and not any(pending_segments(a) for a in cluster.agents),
            timeout=120,
            what=f"{len(sent)} rows logged and nothing left to ship",
        )
        assert logged(cluster, deployment) == len(sent)  # none lost, none doubled
        ids = exported_ids(cluster, deployment, tmp_path / "all.parquet")
        assert len(ids) == len(set(ids)) == len(sent) and set(ids) == set(sent)
    finally:
        if traffic is not None:
            traffic.finish()


def fill(disk: Path) -> None:
    """Take every free byte of the file system at `disk`."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                continue
    finally:
        os.close(fd)


def test_a_full_disk_on_an_agent_keeps_it_serving_and_counts_and_alerts_the_dropped_rows(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The agent's cache on a small tmpfs, filled to the last byte: every request is answered,
    the rows its log cannot write are counted and reach the control plane as an alert whose count
    plus the rows logged is what was sent; once there is room again, new rows are logged."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    agent: AgentProcess | None = None
    try:
        deployment = new_deployment(cluster)
        name = unique("full-disk")
        agent = AgentProcess(cluster.address, name, disk / name, tmp_path / f"{name}.log")
        with cluster.client() as client:
            wait_for_agents(client, deployment, [agent.name])
            agent_id = next(a.id for a in client.agents() if a.name == name)
        fill(disk)
        assert agent.stub is not None
        rows = breast_cancer_arrays()[0][:500]
        sent = 0
        for n in range(8):
            ids = [f"full-{n}-{i}" for i in range(500)]
            answer = batch_results(
                agent.stub.PredictBatch(batch_request(deployment, rows, request_ids=ids), timeout=30)
            )
            assert len(answer) == 500
            sent += 500
        for i in range(20):
            agent.stub.Predict(predict_request(deployment, rows[i : i + 1], request_id=f"single-{i}"), timeout=30)
            sent += 1

        def dropped() -> float:
            with cluster.client() as client:
                found = [a for a in client.alerts() if a.kind == "log_rows_dropped" and a.agent in (agent_id, name)]
            return found[0].value if found else 0.0

        wait_until(
            lambda: dropped() > 0 and dropped() + logged(cluster, deployment) == sent,
            timeout=60,
            what=f"the {sent} rows sent logged or counted as dropped",
        )
        (disk / "filler").unlink()  # room again: the log writes new rows
        before = logged(cluster, deployment)
        ids = [f"after-{i}" for i in range(500)]
        agent.stub.PredictBatch(batch_request(deployment, rows, request_ids=ids), timeout=30)
        wait_until(lambda: logged(cluster, deployment) == before + 500, timeout=60, what="new rows logged")
    finally:
        if agent is not None:
            agent.stop()
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
