"""The prediction log's S3 sink end to end: a real control plane, a real `sluice agent` process with
`--log-sink s3://... --s3-endpoint`, and an S3-compatible server (moto's, on loopback, started
and stopped by the test). Segments land in the bucket in the hive layout and are recorded by the
control plane with their URIs; with the S3 server down the agent keeps them on disk and retries;
once it is back every row arrives exactly once. Joined metrics and purges read the objects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pyarrow import fs
from sqlalchemy import select

from controlplane.config import Config, LogConfig
from controlplane.store.models import LogSegmentRow
from core.client import SluiceClient, batch_request
from protos import common_pb2
from tests.agent.cluster import AgentProcess, wait_for_agents, wait_until
from tests.harness import ServerThread, free_port, run_cli, start_server, unique
from tests.integration.test_prediction_log import pending_ids
from tests.models import breast_cancer_rows, make_classifier_onnx

moto_server = pytest.importorskip("moto.server")

pytestmark = pytest.mark.xdist_group("prediction-log")

BUCKET = "sluice-log"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class S3Server:
    """moto's S3-compatible server on a fixed loopback port, so it can be stopped and started
    again at the same address (its buckets live in this process and survive a restart)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: object | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self.server = server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()  # type: ignore[attr-defined]
            self.server = None

    def filesystem(self) -> fs.S3FileSystem:
        return fs.S3FileSystem(
            access_key="testing",
            secret_key="testing",
            region="us-east-1",
            endpoint_override=f"127.0.0.1:{self.port}",
            scheme="http",
            allow_bucket_creation=True,
            allow_bucket_deletion=True,
        )


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    for key, value in CREDENTIALS.items():  # the in-process control plane's S3 client reads them
        monkeypatch.setenv(key, value)
    server = S3Server()
    server.start()
    try:
        server.filesystem().create_dir(BUCKET)
        yield server
    finally:
        server.stop()


def objects(s3: S3Server, deployment: str) -> dict[str, list[str]]:
    """Every .parquet object of the deployment in the bucket -> its request ids (moto's buckets
    live in this process: other tests' objects may be there too)."""
    client = s3.filesystem()
    found: dict[str, list[str]] = {}
    for info in client.get_file_info(fs.FileSelector(BUCKET, recursive=True)):
        if info.type == fs.FileType.File and f"/deployment={deployment}/" in info.path:
            found[info.path] = pq.read_table(info.path, filesystem=client).column("request_id").to_pylist()
    return found


def deployed(server: ServerThread, tmp_path: Path) -> str:
    """A fresh model registered and deployed to a fresh deployment; the deployment's name."""
    model, dep = unique("m"), unique("d")
    with SluiceClient(server.address, token="") as client:
        client.register_version(model, "1", make_classifier_onnx(tmp_path))
        client.deploy(dep, f"{model}:1")
    return dep


def sink_args(s3: S3Server, prefix: str) -> list[str]:
    """`sluice agent` arguments that log to s3://BUCKET/PREFIX on the test's S3 server."""
    return ["--log-sink", f"s3://{BUCKET}/{prefix}", "--s3-endpoint", s3.endpoint, "--s3-region", "us-east-1"]


def test_segments_go_to_the_bucket_and_survive_an_s3_outage(s3: S3Server, tmp_path: Path) -> None:
    server: ServerThread = start_server(tmp_path / "cp", config=Config(log=LogConfig(s3_endpoint=s3.endpoint)))
    agent: AgentProcess | None = None
    try:
        dep = deployed(server, tmp_path)
        sink = sink_args(s3, "preds")
        agent = AgentProcess(
            server.address, unique("agent"), tmp_path / "agent", tmp_path / "agent.log", extra=sink, env=CREDENTIALS
        )
        rows = breast_cancer_rows(60, seed=8).astype(np.float32)
        ids = [f"s3-{i}" for i in range(60)]
        keys = ["erin" if i % 4 == 0 else f"k{i}" for i in range(60)]
        with SluiceClient(server.address, token="") as client:
            wait_for_agents(client, dep, [agent.name])
            assert agent.stub is not None

            def recorded_rows() -> int:
                [status] = client.status(dep)
                return status.log_usage.rows if status.HasField("log_usage") else 0

            agent.stub.PredictBatch(batch_request(dep, rows[:30], keys[:30], ids[:30]), timeout=30)
            wait_until(lambda: recorded_rows() == 30, timeout=60, what="30 rows recorded from the bucket")

            s3.stop()  # the sink is down: segments wait on the agent's disk
            agent.stub.PredictBatch(batch_request(dep, rows[30:], keys[30:], ids[30:]), timeout=30)
            wait_until(lambda: sorted(pending_ids(agent.cache)) == sorted(ids[30:]), timeout=30, what="rows on disk")
            wait_until(
                lambda: "could not upload log segment" in agent.log.read_text(), timeout=30, what="a failed upload"
            )
            assert recorded_rows() == 30
            s3.start()  # back: the agent's retry uploads them, once
            wait_until(lambda: recorded_rows() == 60, timeout=90, what="60 rows recorded after the outage")
            wait_until(lambda: not pending_ids(agent.cache), timeout=30, what="the local copies deleted")

            in_bucket = objects(s3, dep)
            assert in_bucket and all(key.startswith(f"{BUCKET}/preds/deployment={dep}/date=") for key in in_bucket)
            every_id = [i for values in in_bucket.values() for i in values]
            assert sorted(every_id) == sorted(ids)  # each row exactly once
            with server.ctx.db.session() as session:
                paths = list(session.scalars(select(LogSegmentRow.path).where(LogSegmentRow.deployment == dep)))
            assert sorted(paths) == sorted(f"s3://{key}" for key in in_bucket)

            # Readers read the objects: joined metrics over labels, and a purge by routing key.
            client.submit_labels(dep, "truth", [[common_pb2.LabelRow(request_id=i, label="1") for i in ids]])
            [status] = client.status(dep)
            [version] = status.versions
            assert (version.labeled.predictions, version.labeled.labeled) == (60, 60)
        purged = run_cli("log", "purge", dep, "--routing-key", "erin", address=server.address)
        assert purged.returncode == 0, purged.stderr
        assert "15 rows removed" in purged.stdout
        remaining = [i for values in objects(s3, dep).values() for i in values]
        assert sorted(remaining) == sorted(i for i, k in zip(ids, keys, strict=True) if k != "erin")
        assert "testing" not in agent.log.read_text()  # the credentials are never printed
    finally:
        if agent is not None:
            agent.stop()
        server.stop()


def test_a_malformed_sink_is_refused_in_one_line() -> None:
    for bad in (["--log-sink", "http://bucket/x"], ["--log-sink", "s3://"], ["--s3-endpoint", "ftp://x"]):
        result = run_cli("agent", "--controlplane", "127.0.0.1:1", *bad, timeout=60)
        assert result.returncode != 0
        err = result.stderr.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1, err


def iam_key(s3: S3Server) -> dict[str, str]:
    """An access key of a new IAM user of moto's allowed every S3 action: the agent's own."""
    import json

    import boto3

    iam = boto3.client("iam", endpoint_url=s3.endpoint, region_name="us-east-1")
    user = unique("agent")
    iam.create_user(UserName=user)
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    policy = iam.create_policy(PolicyName=unique("s3"), PolicyDocument=json.dumps(document))
    iam.attach_user_policy(UserName=user, PolicyArn=policy["Policy"]["Arn"])
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {**CREDENTIALS, "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def agent_metrics(port: int) -> dict[str, float]:
    """The agent's /metrics samples without labels, by name."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def test_a_control_plane_without_the_buckets_credentials_defers_once_then_records_every_row(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The agent writes with its own key; the control plane's ("testing") is refused by the bucket
    (moto checks signatures from here on). Before: no ack, the URI announced again every 30 s and a
    traceback each time, for ever. Now: one line on each side, the announcements deferred with a
    backoff and counted, the segments kept; once the bucket lets the control plane read (its
    policy fixed), every row is recorded exactly once."""
    from moto import settings as moto_settings

    from controlplane.monitoring.state import state_of
    from controlplane.predlog import s3backoff

    monkeypatch.setattr(s3backoff, "FIRST_BACKOFF", 0.5)  # the backoff's steps, short for the test
    monkeypatch.setattr(s3backoff, "MAX_BACKOFF", 2.0)
    agent_env = iam_key(s3)
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # signatures checked from now on
    server: ServerThread = start_server(tmp_path / "cp", config=Config(log=LogConfig(s3_endpoint=s3.endpoint)))
    agent: AgentProcess | None = None
    try:
        dep = deployed(server, tmp_path)
        sink = sink_args(s3, "denied")
        metrics_port = free_port()
        agent = AgentProcess(
            server.address,
            unique("agent"),
            tmp_path / "agent",
            tmp_path / "agent.log",
            extra=sink,
            env=agent_env,
            metrics_port=str(metrics_port),
        )
        rows = breast_cancer_rows(30, seed=9).astype(np.float32)
        ids = [f"denied-{i}" for i in range(30)]
        metrics = state_of(server.ctx).metrics

        def deferred() -> float:
            value = metrics.registry.get_sample_value("sluice_log_segments_deferred_total", {"bucket": BUCKET})
            return value or 0.0

        with SluiceClient(server.address, token="") as client:
            wait_for_agents(client, dep, [agent.name])
            assert agent.stub is not None

            def recorded_rows() -> int:
                [status] = client.status(dep)
                return status.log_usage.rows if status.HasField("log_usage") else 0

            agent.stub.PredictBatch(batch_request(dep, rows, ["k"] * 30, ids), timeout=30)
            wait_until(lambda: deferred() >= 4, timeout=90, what="announcements deferred again and again")
            assert recorded_rows() == 0
            assert sorted(pending_ids(agent.cache)) == sorted(ids)  # kept on the agent's disk
            said = agent.log.read_text()
            assert said.count("the control plane does not record the log segments") == 1, said
            assert "cannot read s3://" in said and "ACCESS_DENIED" in said
            scraped = agent_metrics(metrics_port)
            assert scraped["sluice_agent_log_segments_deferred_total"] >= 1
            assert scraped["sluice_agent_log_segments_waiting"] >= 1
            control_plane = [r.getMessage() for r in caplog.records]
            assert sum("are not recorded yet" in m for m in control_plane) == 1, control_plane
            assert not any("could not store log segment" in m for m in control_plane)  # no traceback loop

            monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))  # policy fixed
            wait_until(lambda: recorded_rows() == 30, timeout=60, what="30 rows recorded once readable")
            wait_until(lambda: not pending_ids(agent.cache), timeout=30, what="the local copies deleted")
            wait_until(lambda: "records the log segments of" in agent.log.read_text(), timeout=30, what="recovery")
            assert agent_metrics(metrics_port)["sluice_agent_log_segments_waiting"] == 0
        in_bucket = [i for values in objects(s3, dep).values() for i in values]
        assert sorted(in_bucket) == sorted(ids)  # uploaded once, recorded once
        with server.ctx.db.session() as session:
            assert sum(session.scalars(select(LogSegmentRow.rows).where(LogSegmentRow.deployment == dep))) == 30
    finally:
        if agent is not None:
            agent.stop()
        server.stop()
