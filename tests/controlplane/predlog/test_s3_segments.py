"""Segments an agent put in its S3 bucket, as the control plane records, reads, purges and expires
them (moto's S3-compatible server on loopback; the segment store, purge and retention are the
real ones)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pyarrow import fs

from agent.logsink import S3Location, S3Sink
from agent.predlog import PredictionLog
from controlplane.context import Context
from controlplane.predlog.joined import joined_metrics
from controlplane.predlog.purge import PurgeSpec, purge
from controlplane.predlog.retention import retention_once
from controlplane.predlog.segments import Segment, receive_segment
from core.errors import InvalidInput
from runtime.logsegment import read_table, write_arrow
from tests.controlplane.experiments.support import ALICE
from tests.controlplane.labels.support import deployed
from tests.controlplane.predlog.test_joined import serving
from tests.harness import free_port

moto_server = pytest.importorskip("moto.server")

AGENT = "0123456789abcdef"
BUCKET = "segments"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = fs.S3FileSystem(
            endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1", allow_bucket_creation=True
        )
        client.create_dir(BUCKET)
        yield endpoint
    finally:
        server.stop()


def uploaded(
    ctx: Context, tmp_path: Path, endpoint: str, deployment: str, ids: list[str], keys: list[str], at: datetime
) -> Segment:
    """A segment written by the agent's log and uploaded by its S3 sink: the message it sends."""
    model, version = serving(ctx, deployment)
    log = PredictionLog(tmp_path / f"agent-{random.randrange(10**9)}", "agent-a")
    n = len(ids)
    feeds = {"x": np.arange(n * 2, dtype=np.float32).reshape(n, 2)}
    log.append(
        deployment, model, version, "champion", "", feeds, np.array(["1"] * n), None, None, None, 0.001, ids, keys
    )
    [info] = log.flush()
    table = read_table(info.path.read_bytes())  # the agent's Arrow file
    import pyarrow as pa

    table = table.set_column(table.schema.get_field_index("ts"), "ts", pa.array([at] * n, pa.timestamp("us", tz="UTC")))
    with open(info.path, "wb") as handle:  # as the agent writes it
        write_arrow(table, handle)
    info = dataclasses.replace(info, date=at.date().isoformat(), size=info.path.stat().st_size)
    uri, size = S3Sink(S3Location(BUCKET, "p"), AGENT, endpoint).upload(info)
    return Segment(AGENT, info.segment_id, deployment, model, version, info.date, n, b"", uri=uri, size=size)


def bucket_ids(endpoint: str, deployment: str) -> list[str]:
    """The request ids in the deployment's objects (moto's buckets live in this process: other
    tests' objects may be there too)."""
    client = fs.S3FileSystem(endpoint_override=endpoint.removeprefix("http://"), scheme="http", region="us-east-1")
    ids: list[str] = []
    for info in client.get_file_info(fs.FileSelector(BUCKET, recursive=True)):
        if info.type == fs.FileType.File and f"/deployment={deployment}/" in info.path:
            ids += pq.read_table(info.path, filesystem=client).column("request_id").to_pylist()
    return ids


def test_s3_segments_are_checked_recorded_read_purged_and_expired(
    ctx: Context, models_dir: Path, tmp_path: Path, s3: str
) -> None:
    ctx.config.log.s3_endpoint = s3
    deployment = deployed(ctx, models_dir)
    now = datetime.now(UTC)
    old = uploaded(ctx, tmp_path, s3, deployment, ["o1", "o2"], ["x", "y"], now - timedelta(days=50))
    new = uploaded(ctx, tmp_path, s3, deployment, ["n1", "n2", "n3"], ["x", "y", "y"], now)
    # What the agent claims must be what is in the bucket, at this segment's place in the layout.
    for bad, says in (
        (dataclasses.replace(new, uri=new.uri.replace("/p/", "/p/../")), "'..'"),
        (dataclasses.replace(new, uri=new.uri.replace(deployment, "other")), "is not s3://"),
        (dataclasses.replace(new, uri=new.uri.replace(BUCKET, "nobucket")), "no object"),
        (dataclasses.replace(new, size=new.size + 1), "bytes, not"),
        (dataclasses.replace(new, rows=9), "holds 3"),
    ):
        with pytest.raises(InvalidInput, match=says):
            receive_segment(ctx, bad)
    assert receive_segment(ctx, old).new and receive_segment(ctx, new).new
    assert not receive_segment(ctx, new).new  # a resend: recorded once
    [figures] = joined_metrics(ctx, deployment)  # DuckDB over the cached copies
    assert figures.predictions == 5

    summary = purge(ctx, ALICE, PurgeSpec(deployment, routing_key="x"))
    assert (summary.rows_removed, summary.segments_rewritten) == (2, 2)
    assert sorted(bucket_ids(s3, deployment)) == ["n2", "n3", "o2"]  # gone from the bucket, not hidden

    ctx.config.log.retention_days = 30
    result = retention_once(ctx, now)
    assert (result.segments_by_age, result.rows) == (1, 1)
    assert sorted(bucket_ids(s3, deployment)) == ["n2", "n3"]
    [figures] = joined_metrics(ctx, deployment)
    assert figures.predictions == 2
