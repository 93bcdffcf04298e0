"""A holder of an agent token attacks a real control plane over a real Connect stream (issue 13).

The script speaks the agent protocol itself, as the security review did: reports with a sketch key
that overflows `gamma**key`, counters of 2**62, invented error codes, escape sequences in its Hello
and its NACK reasons, windows for routes it was never sent, and evidence made up to promote a
challenger. Each test shows the attack and the defence: the status code, the other deployments
still evaluated and rolled up, bounded Prometheus series, escaped output, refused windows counted
by reason, an experiment that does not promote. Reflection is tested as grpcurl uses it, on the
control plane and on a real agent process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from sqlalchemy import delete, select

from controlplane.config import AgentsConfig, AlertsConfig, Config, RetentionConfig, RolloutConfig
from controlplane.monitoring.summary import WindowSummary
from controlplane.server import ServerOptions
from controlplane.store.models import AgentRow, MetricWindowRow, ModelVersionRow
from core.client import SluiceClient
from core.report_limits import ERROR_CODES, MAX_COUNT
from protos import agent_pb2, common_pb2, controlplane_pb2
from tests.agent.cluster import AgentProcess
from tests.controlplane.monitoring.support import prometheus_samples
from tests.harness import REPO, SLUICE, ServerThread, unique
from tests.models import fixture_classifier, make_baseline, make_classifier_onnx
from tests.security.scripted_agent import ScriptedAgent
from tests.timing import scaled

pytestmark = pytest.mark.xdist_group("hostile-agent")

EVALUATE = 0.3
ROLLUP = 0.3
#: back-dated past the raw retention (1 h): the next rollup pass folds them into minutes
OLD = timedelta(hours=2)
ESC = "\x1b"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    root = tmp_path_factory.mktemp("hostile")
    config = Config(
        agents=AgentsConfig(heartbeat_seconds=0.5),
        alerts=AlertsConfig(evaluate_seconds=EVALUATE),
        retention=RetentionConfig(rollup_interval_seconds=ROLLUP),
        rollout=RolloutConfig(tick_seconds=0.2),
    )
    cp = ServerThread(  # /metrics on a free port (start_server turns it off)
        ServerOptions(
            listen="127.0.0.1:0",
            db_url=f"sqlite:///{root / 'sluice.db'}",
            artifacts=root / "artifacts",
            config=config,
            metrics_port=None,
        )
    )
    models = root / "models"
    with SluiceClient(cp.address, token="") as client:
        client.register_version("cancer", "v1", make_classifier_onnx(models), make_baseline(models))
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def cp(server: ServerThread) -> Iterator[SluiceClient]:
    with SluiceClient(server.address, token="") as client:
        yield client


def deploy(cp: SluiceClient) -> str:
    name = unique("dep")
    cp.deploy(name, "cancer:v1")
    return name


@pytest.fixture
def agent(server: ServerThread) -> Iterator[Any]:
    opened: list[ScriptedAgent] = []

    def connect(**hello: Any) -> ScriptedAgent:
        a = ScriptedAgent(server.address, heartbeat=0.2, **hello)
        opened.append(a)
        return a

    yield connect
    for a in opened:
        a.close()


def window(
    deployment: str,
    requests: int = 200,
    errors: dict[str, int] | None = None,
    version: str = "v1",
    role: common_pb2.Role = common_pb2.ROLE_CHAMPION,
    **kw: Any,
) -> Any:
    w = agent_pb2.VersionWindow(
        deployment=deployment,
        version=common_pb2.VersionRef(model="cancer", version=version),
        role=role,
        requests=requests,
        rows=requests,
        errors=[agent_pb2.ErrorCount(code=c, count=n) for c, n in (errors or {}).items()],
        **kw,
    )
    if "latency" not in kw:
        w.latency.CopyFrom(common_pb2.LatencySketch(relative_accuracy=0.01, keys=[100], counts=[requests]))
        w.latency.min = w.latency.max = 7.0
        w.latency.sum = 7.0 * requests
    return w


def store_raw(server: ServerThread, deployment: str, at: datetime, summary: dict[str, Any], **counters: int) -> None:
    """A raw window written straight into SQL: what an older build let in, or any row no ingest
    check covers."""
    with server.ctx.db.session() as session:
        version_id = session.scalar(
            select(ModelVersionRow.id).where(ModelVersionRow.model == "cancer", ModelVersionRow.version == "v1")
        )
        session.add(
            MetricWindowRow(
                deployment=deployment,
                version_id=version_id,
                role="champion",
                experiment="",
                resolution="raw",
                window_start=at,
                window_seconds=1.0,
                requests=counters.get("requests", 1),
                errors=counters.get("errors", 0),
                n_labeled=0,
                n_correct=0,
                summary=summary,
            )
        )


def agents_of(server: ServerThread, deployment: str) -> list[str]:
    """The agent of each stored window of the deployment."""
    with server.ctx.db.session() as session:
        return list(session.scalars(select(MetricWindowRow.agent_id).where(MetricWindowRow.deployment == deployment)))


def windows_of(server: ServerThread, deployment: str) -> list[tuple[str, int, dict[str, Any]]]:
    with server.ctx.db.session() as session:
        rows = session.execute(
            select(MetricWindowRow.resolution, MetricWindowRow.requests, MetricWindowRow.summary).where(
                MetricWindowRow.deployment == deployment
            )
        )
        return [(r, int(n), s) for r, n, s in rows]


def wait_until(predicate: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def open_alert(cp: SluiceClient, deployment: str, kind: str) -> Any:
    return next((a for a in cp.alerts(deployment=deployment) if a.kind == kind), None)


def scrape(server: ServerThread) -> dict[Any, float]:
    port = server.server.metrics_port  # type: ignore[union-attr]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return prometheus_samples(response.read().decode())


def failures(server: ServerThread, job: str, deployment: str) -> float:
    samples = scrape(server)
    return sum(
        v
        for (name, labels), v in samples.items()
        if name == "sluice_job_failures_total"
        and dict(labels).get("job") == job
        and dict(labels).get("deployment") == deployment
    )


# ---- 3. a sketch key that overflows gamma**key ----------------------------------------------------


def test_a_sketch_key_that_would_overflow_is_refused_and_every_deployment_is_still_judged(
    server: ServerThread, cp: SluiceClient, agent: Any
) -> None:
    victim, other = deploy(cp), deploy(cp)
    attacker = agent()
    hostile = window(victim, requests=5)
    hostile.latency.keys[:] = [100_000]  # gamma**100000 overflows a float
    # The other deployment really fails: 50% UNAVAILABLE, an error_rate alert is due.
    attacker.report(hostile, window(other, errors={"UNAVAILABLE": 100}))
    # The hostile window was refused on ingest (the report is ACKed: it is not resent forever).
    assert [r for r, _, _ in windows_of(server, victim)] == []
    assert [r for r, _, _ in windows_of(server, other)] == ["raw"]
    # A window with such a key stored by an older build: the sketch folds it into its last bucket.
    store_raw(
        server,
        victim,
        datetime.now(UTC),
        {
            "rows": 5,
            "latency": {
                "relative_accuracy": 0.01,
                "keys": [100_000],
                "counts": [5],
                "zero_count": 0,
                "sum": 5.0,
                "min": 1.0,
                "max": 1.0,
            },
        },
        requests=5,
    )
    alert = wait_until(lambda: open_alert(cp, other, "error_rate"), "the error_rate alert of the other deployment")
    assert alert.severity == common_pb2.HEALTH_CRITICAL
    status = {d.deployment.name: d for d in cp.status()}  # INTERNAL before the fix
    assert status[victim].versions[0].requests == 5
    assert status[other].versions[0].error_rate == pytest.approx(0.5)


# ---- 3. isolation: one deployment that cannot be judged or rolled up --------------------------


def test_a_deployment_that_cannot_be_judged_or_rolled_up_is_skipped_and_the_others_proceed(
    server: ServerThread, cp: SluiceClient, agent: Any, caplog: pytest.LogCaptureFixture
) -> None:
    broken, fine = deploy(cp), deploy(cp)
    # Rows no ingest check covers (a bug, an older build): their sketch cannot even be rebuilt.
    corrupt = {"rows": 1, "latency": {"relative_accuracy": 0.01, "keys": [1, 2], "counts": [1]}}
    store_raw(server, broken, datetime.now(UTC), corrupt)
    store_raw(server, broken, datetime.now(UTC) - OLD, corrupt)
    attacker = agent()
    attacker.report(window(fine, requests=10), ago=OLD)
    attacker.report(window(fine, errors={"INTERNAL": 100}))
    with caplog.at_level(logging.ERROR, logger="sluice.monitoring"):
        wait_until(lambda: open_alert(cp, fine, "error_rate"), "the error_rate alert of the healthy deployment")
        wait_until(
            lambda: [r for r, _, _ in windows_of(server, fine) if r == "minute"],
            "the back-dated window of the healthy deployment rolled up",
        )
        wait_until(
            lambda: failures(server, "rollup", broken) and failures(server, "health", broken), "counted failures"
        )
    assert sorted(r for r, _, _ in windows_of(server, broken)) == ["raw", "raw"]  # left as they were
    with server.ctx.db.session() as session:  # the rest of the module runs without the noise
        session.execute(delete(MetricWindowRow).where(MetricWindowRow.deployment == broken))
    logged = [r.getMessage() for r in caplog.records]
    assert any(f"evaluating the health of deployment {broken} failed" in m for m in logged)
    assert any(f"rolling up raw windows of deployment {broken} failed" in m for m in logged)


# ---- 4. counters of 2**62 -------------------------------------------------------------------------


def test_counters_are_clamped_on_ingest_and_merges_saturate_so_rollups_go_on(
    server: ServerThread, cp: SluiceClient, agent: Any
) -> None:
    huge = 2**62
    target, bystander = deploy(cp), deploy(cp)
    attacker = agent()
    w = window(target, requests=huge, errors={"INTERNAL": huge})
    w.feedback.n_labeled = w.feedback.n_correct = huge
    attacker.report(w, ago=OLD)
    attacker.report(w, ago=OLD)
    stored = [n for r, n, _ in windows_of(server, target) if r == "raw"]
    assert stored == [MAX_COUNT, MAX_COUNT] or all(n == MAX_COUNT for _, n, _ in windows_of(server, target))
    # Two rows stored by an older build, unclamped: their sum alone overflows a 64-bit integer.
    for _ in range(2):
        store_raw(
            server,
            target,
            datetime.now(UTC) - OLD,
            {"rows": huge, "errors": {"INTERNAL": huge}},
            requests=huge,
            errors=huge,
        )
    attacker.report(window(bystander, requests=3), ago=OLD)
    minutes = wait_until(
        lambda: (
            [(n, s) for r, n, s in windows_of(server, target) if r == "minute"]
            if not [r for r, _, _ in windows_of(server, target) if r == "raw"]
            else None
        ),
        "every back-dated window rolled up",
    )
    assert minutes and all(n == MAX_COUNT for n, _ in minutes)
    assert all(WindowSummary.from_row(n, 0, 0, 0, s).n_errors == MAX_COUNT for n, s in minutes)
    assert wait_until(
        lambda: [n for r, n, _ in windows_of(server, bystander) if r == "minute"], "the bystander rolled up"
    ) == [3]


# ---- 6. invented error codes ----------------------------------------------------------------------


def test_invented_error_codes_are_counted_as_unknown_and_series_stay_bounded(
    server: ServerThread, cp: SluiceClient, agent: Any
) -> None:
    target = deploy(cp)
    attacker = agent()
    for batch in range(10):
        invented = {f"E{batch}_{i}_{uuid.uuid4().hex[:6]}": 1 for i in range(63)}
        attacker.report(window(target, requests=64, errors={**invented, "DEADLINE_EXCEEDED": 1}))
    series = {
        dict(labels)["code"]: v
        for (name, labels), v in scrape(server).items()
        if name == "sluice_predictions_total" and dict(labels).get("deployment") == target
    }
    # 640 invented codes before the fix; now gRPC's names only: OK, UNKNOWN, DEADLINE_EXCEEDED.
    assert set(series) == {"OK", "UNKNOWN", "DEADLINE_EXCEEDED"}
    assert series["UNKNOWN"] == 630 and series["DEADLINE_EXCEEDED"] == 10
    assert set(series) - {"OK"} <= ERROR_CODES
    stored = {code for _, _, s in windows_of(server, target) for code in s.get("errors", {})}
    assert stored == {"UNKNOWN", "DEADLINE_EXCEEDED"}


# ---- 1. lying agents: routes never sent, counts no agent serves, evidence made up ----------------


def refused_windows(server: ServerThread, reason: str) -> float:
    return scrape(server).get(("sluice_metric_windows_refused_total", (("reason", reason),)), 0.0)


def register_constant(cp: SluiceClient) -> str:
    """A second version of "cancer" (the constant classifier: always class 1); its name."""
    version = unique("const")
    cp.register_version("cancer", version, fixture_classifier("constant"))
    return version


def test_windows_for_routes_the_agent_was_not_sent_are_refused_and_counted(
    server: ServerThread, cp: SluiceClient, agent: Any
) -> None:
    elsewhere = register_constant(cp)  # registered, deployed nowhere: in no snapshot
    target = deploy(cp)
    attacker = agent()
    before = refused_windows(server, "unknown_route")
    ack = attacker.report(window(target), window(target, version=elsewhere))
    assert dict(ack.refused) == {"unknown_route": 1}  # the report is committed and acknowledged
    assert refused_windows(server, "unknown_route") == before + 1
    assert agents_of(server, target) == [attacker.id]  # the window of its route, with its agent
    # A replay (a lost ack) changes nothing and is answered with the same refusals.
    assert dict(attacker.report(window(target), window(target, version=elsewhere), seq=attacker.seq).refused) == {
        "unknown_route": 1
    }
    assert len(agents_of(server, target)) == 1
    # Once a snapshot holding the route is sent, it may report it; the version it stopped serving
    # keeps its grace (its last windows, reports it buffered).
    generation = cp.deploy(target, f"cancer:{elsewhere}").generation
    attacker.serve(target, generation)
    assert dict(attacker.report(window(target), window(target, version=elsewhere)).refused) == {}
    assert agents_of(server, target) == [attacker.id] * 3


def labeled(deployment: str, experiment: str, version: str, role: common_pb2.Role, n: int, correct: int) -> Any:
    """A window of the experiment's: `n` requests, each labeled, `correct` of them right."""
    w = window(deployment, requests=n, version=version, role=role, experiment=experiment)
    w.feedback.n_labeled, w.feedback.n_correct = n, correct
    return w


def test_a_lying_agent_cannot_drive_a_promotion(server: ServerThread, cp: SluiceClient, agent: Any) -> None:
    """The review's attack: an agent serving nothing reported the challenger (a constant model)
    all correct and the champion half correct, and got it promoted in seconds."""
    challenger = register_constant(cp)
    target = deploy(cp)
    honest, liar = agent(name=unique("honest")), agent()
    name = unique("lied-to")
    config = controlplane_pb2.ExperimentConfig(
        deployment=target,
        challenger=common_pb2.VersionRef(model="cancer", version=challenger),
        plan=[50],
        hold_seconds=0.5,
        min_samples=50,
        auto_promote=True,
    )
    cp.start_experiment(name, config, reason="a constant challenger")
    generation = cp.get_deployment(target).generation
    for a in (honest, liar):  # both serve the step, so it goes live
        a.serve(target, generation)
    assert cp.wait_for_sync(target, generation, timeout=15).in_sync
    champion, challenger_role = common_pb2.ROLE_CHAMPION, common_pb2.ROLE_CHALLENGER

    # The lie as the review told it: a billion labels in one second. No agent serves that.
    before = refused_windows(server, "implausible")
    billion = 10**9
    ack = liar.report(
        labeled(target, name, "v1", champion, billion, billion // 2),
        labeled(target, name, challenger, challenger_role, billion, billion),
    )
    assert dict(ack.refused) == {"implausible": 2}
    assert refused_windows(server, "implausible") == before + 2
    assert agents_of(server, target) == []

    # The same lie within the bounds (40,000 labels a second), beside an honest agent's evidence:
    # both versions right 90% of the time. The engine ticks every 0.2 s and the hold is over, so
    # each report is judged as it lands: no state on the way may be one the engine acts on, or the
    # test would show the engine's verdict on half the evidence (a liar reporting alone is the only
    # evidence there is, and promotes; a loaded machine delayed the honest report that long). The
    # honest agent's champion window comes first: until its challenger window comes last, the
    # verdict without the liar has no challenger samples, and the engine waits for them.
    honest.report(labeled(target, name, "v1", champion, 300, 270))
    for _ in range(3):
        ack = liar.report(
            labeled(target, name, "v1", champion, 40_000, 20_000),
            labeled(target, name, challenger, challenger_role, 40_000, 40_000),
        )
        assert dict(ack.refused) == {}
    waiting = f"without the evidence of agent {liar.name}: waiting for samples"
    wait_until(
        lambda: waiting in cp.get_experiment(name).status_reason,
        "the engine waiting for the honest agent's challenger samples",
    )
    assert cp.get_experiment(name).state == controlplane_pb2.EXPERIMENT_RUNNING
    honest.report(labeled(target, name, challenger, challenger_role, 300, 270))

    def settled() -> controlplane_pb2.Experiment | None:
        e = cp.get_experiment(name)
        return e if e.state != controlplane_pb2.EXPERIMENT_RUNNING else None

    experiment = wait_until(settled, "the engine's verdict at the last gate")
    assert experiment.state == controlplane_pb2.EXPERIMENT_PAUSED, experiment.status_reason
    assert f"without the evidence of agent {liar.name}" in experiment.status_reason
    # Everybody's evidence says what the liar wants; without it, nothing does.
    assert experiment.analysis.decision == "challenger_wins"
    evidence = {e.agent_name: e for e in experiment.analysis.agents}
    assert evidence[liar.name].challenger_n == 120_000 and evidence[liar.name].challenger_metric == 1.0
    assert evidence[liar.name].decision_without == "no_significant_difference"
    assert evidence[honest.name].challenger_n == 300 and evidence[honest.name].decision_without == "challenger_wins"
    deployment = cp.get_deployment(target)
    assert {(s.version.version, s.role) for s in deployment.splits} == {
        ("v1", common_pb2.ROLE_CHAMPION),
        (challenger, common_pb2.ROLE_CHALLENGER),
    }
    assert not [e for e in cp.audit(target=name) if e.action == "promote"]
    shown = run_cli(server, "experiment", "status", name)  # each agent's share, for the person asked to look
    assert "DECISION WITHOUT IT" in shown
    assert any(line.startswith(liar.name) and "no_significant_difference" in line for line in shown.splitlines())


# ---- 9. terminal and log injection -------------------------------------------------------------


@pytest.mark.parametrize(
    "hello, field",
    [
        ({"host": f"web-1{ESC}[2J{ESC}[31mPWNED"}, "Hello.host"),
        ({"address": "10.0.0.1:7500\n2026-12-06 ERROR forged"}, "Hello.address"),
        ({"labels": {"zone": f"eu{ESC}]0;title\a"}}, "Hello label 'zone'"),
        ({"labels": {"a\u202eb": "x"}}, "Hello label key"),
    ],
    ids=["escape in host", "newline in address", "OSC in a label value", "bidi override in a label key"],
)
def test_a_hello_with_control_characters_is_refused_invalid_argument(
    server: ServerThread, cp: SluiceClient, agent: Any, hello: dict[str, Any], field: str
) -> None:
    attacker = agent(**hello)
    with pytest.raises(grpc.RpcError) as refused:
        attacker.next("hello_ack")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in refused.value.details() and "printable" in refused.value.details()
    assert ESC not in refused.value.details() and "\n" not in refused.value.details()
    assert attacker.id not in {a.id for a in cp.agents()}  # nothing recorded


def run_cli(server: ServerThread, *args: str) -> str:
    env = {**os.environ, "SLUICE_CONTROLPLANE": server.address, "SLUICE_TOKEN": ""}
    done = subprocess.run([*SLUICE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_nack_reasons_and_stored_text_are_escaped_in_the_log_the_cli_and_the_tui(
    server: ServerThread, cp: SluiceClient, agent: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from tui.format import cell, clip

    target = deploy(cp)
    attacker = agent()
    snapshot = attacker.next("snapshot")
    forged = f"load failed{ESC}[2J\n2026-12-06 12:00:00 ERROR sluice.controlplane admin token revoked"
    with caplog.at_level(logging.INFO, logger="sluice.agenthub"):
        attacker.send(
            agent_pb2.AgentMessage(nack=agent_pb2.SnapshotNack(snapshot_id=snapshot.snapshot_id, reason=forged))
        )
        info = wait_until(
            lambda: next((a for a in cp.agents() if a.id == attacker.id and a.last_nack), None), "the NACK recorded"
        )
        nacked = wait_until(
            lambda: [r.getMessage() for r in caplog.records if "NACKed" in r.getMessage()], "the NACK logged"
        )
    assert all("\n" not in m and ESC not in m for m in nacked)  # one line, no forged one
    assert ESC not in info.last_nack and "\n" not in info.last_nack
    assert "\\x1b[2J\\n2026-12-06" in info.last_nack  # kept, visibly escaped
    alert = wait_until(lambda: open_alert(cp, target, "snapshot_nack"), "the snapshot_nack alert")
    assert ESC not in alert.message and "\n" not in alert.message
    # Text stored by an older build, unescaped: the CLI and the TUI escape it on output.
    with server.ctx.db.session() as session:
        row = session.get(AgentRow, attacker.id)
        assert row is not None
        row.host = f"web-1{ESC}[2J\nforged-agent  192.0.2.1"
        row.last_nack = forged
    agents_out = run_cli(server, "agents")
    alerts_out = run_cli(server, "alerts")
    for out in (agents_out, alerts_out):
        assert ESC not in out
    assert "web-1\\x1b[2J\\nforged-agent" in agents_out
    assert not any(line.startswith("forged-agent") for line in agents_out.splitlines())
    assert "refused snapshot" in alerts_out
    as_json = json.loads(run_cli(server, "agents", "--json"))
    assert next(a for a in as_json if a["id"] == attacker.id)["host"].startswith(f"web-1{ESC}")  # exact, as data
    assert cell(row.host).plain == "web-1\\x1b[2J\\nforged-agent  192.0.2.1"
    assert ESC not in clip(forged, 200) and "\n" not in clip(forged, 200)


# ---- 11. reflection, as grpcurl uses it -------------------------------------------------------


@contextlib.contextmanager
def reflect(address: str) -> Iterator[tuple[list[str], Any]]:
    """The services a server lists and a descriptor pool that asks it for what it is asked."""
    with grpc.insecure_channel(address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        yield sorted(database.get_services()), descriptor_pool.DescriptorPool(database)


def garbage_to_reflection(address: str) -> grpc.RpcError:
    with grpc.insecure_channel(address) as channel:
        call = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        with pytest.raises(grpc.RpcError) as refused:
            list(call(iter([b"\xff\xff\xff"]), timeout=10))
        return refused.value


def test_reflection_lists_and_describes_the_control_planes_services(server: ServerThread) -> None:
    with reflect(server.address) as (services, pool):  # UNKNOWN ('async for' ... got generator) before
        assert services == [
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
            "sluice.v1.AgentHub",
            "sluice.v1.ControlPlane",
        ]
        deploy_method = pool.FindServiceByName("sluice.v1.ControlPlane").methods_by_name["Deploy"]
        assert deploy_method.input_type.full_name == "sluice.v1.DeployRequest"
        assert "deployment" in deploy_method.input_type.fields_by_name
        connect = pool.FindServiceByName("sluice.v1.AgentHub").methods_by_name["Connect"]
        assert connect.client_streaming and connect.server_streaming
    assert garbage_to_reflection(server.address).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_reflection_lists_and_describes_an_agents_services(server: ServerThread, tmp_path: Path) -> None:
    process = AgentProcess(server.address, unique("reflected"), tmp_path / "cache", tmp_path / "agent.log")
    try:
        with reflect(process.address) as (services, pool):
            assert {"sluice.v1.Inference", "inference.GRPCInferenceService", "grpc.health.v1.Health"} <= set(services)
            predict = pool.FindServiceByName("sluice.v1.Inference").methods_by_name["Predict"]
            assert predict.output_type.full_name == "sluice.v1.PredictResponse"
            infer = pool.FindServiceByName("inference.GRPCInferenceService").methods_by_name["ModelInfer"]
            assert infer.input_type.full_name == "inference.ModelInferRequest"
        assert garbage_to_reflection(process.address).code() == grpc.StatusCode.INVALID_ARGUMENT
        # One raw request/response, as grpcurl's `list` sends it.
        with grpc.insecure_channel(process.address) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            (answer,) = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        assert answer.WhichOneof("message_response") == "list_services_response"
    finally:
        process.stop()


# ---- prediction-log segments: record files are untrusted input ------------------------------------


def segments_received(server: ServerThread, outcome: str) -> float:
    return scrape(server).get(("sluice_log_segments_received_total", (("outcome", outcome),)), 0.0)


def test_a_hostile_log_segment_is_refused_with_its_reason_and_counted(
    server: ServerThread, cp: SluiceClient, agent: Any, tmp_path: Path
) -> None:
    """The control plane takes this release's record files (its HelloAck says so) and checks every
    record: one whose array claims an object dtype (which `np.frombuffer` must never be asked to
    make) is refused with the reason, counted `refused`, and nothing is stored; a real one from the
    agent's own writer is stored, and its resend acknowledged as a replay."""
    import numpy as np

    from agent.predlog import PredictionLog

    target = deploy(cp)
    attacker = agent()
    assert attacker.next("hello_ack").record_segments
    snapshot = attacker.snapshot_with(target, 1)
    attacker.ack(snapshot)
    log = PredictionLog(tmp_path / "log", attacker.name)
    rows = np.zeros((4, 30), dtype=np.float32)
    log.append(
        target, "cancer", "v1", "champion", "", {"input": rows}, np.zeros(4, dtype=np.int64), ("0", "1"), None,
        None, 0.001, ["a", "b", "c", "d"], "",
    )  # fmt: skip
    [info] = log.flush()
    data = info.path.read_bytes()
    before = {o: segments_received(server, o) for o in ("stored", "replay", "refused")}

    hostile = data.replace(b'"dtype":"<f4"', b'"dtype":"|O8"', 1)
    assert hostile != data
    attacker.send(info.message(hostile))
    ack = attacker.next("log_segment_ack")
    assert (ack.segment_id, ack.ok) == (info.segment_id, False)
    assert "dtype |O is not a little-endian bool, integer or float" in ack.error
    assert segments_received(server, "refused") == before["refused"] + 1

    good = info.message(data)
    good.log_segment.segment_id = info.segment_id + "1"  # the refused id is not reused
    for outcome in ("stored", "replay"):
        attacker.send(good)
        ack = attacker.next("log_segment_ack")
        assert ack.ok, ack.error
        assert segments_received(server, outcome) == before[outcome] + 1
