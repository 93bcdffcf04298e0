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
from controlplane.datafiles import storage
from controlplane.labels.incoming import LabelInput
from controlplane.predlog.export import DatasetQuery, export_dataset
from controlplane.predlog.joined import joined_metrics
from controlplane.predlog.purge import PurgeSpec, purge
from controlplane.predlog.retention import retention_once
from controlplane.predlog.segments import Segment, receive_segment
from core.errors import InvalidInput
from runtime.logsegment import read_table, write_arrow
from tests.controlplane.experiments.support import ALICE
from tests.controlplane.labels.support import deployed, import_labels
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
    table = read_table(info.path.read_bytes(), "agent-a")  # the agent's record file, as a table
    import pyarrow as pa

    table = table.set_column(table.schema.get_field_index("ts"), "ts", pa.array([at] * n, pa.timestamp("us", tz="UTC")))
    with open(info.path, "wb") as handle:  # a pending segment (an earlier release's format: ts set here)
        write_arrow(table, handle)
    info = dataclasses.replace(info, date=at.date().isoformat(), size=info.path.stat().st_size)
    uri, size = S3Sink(S3Location(BUCKET, "p"), AGENT, endpoint).upload(info, "agent-a")
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


def cached_bytes(ctx: Context) -> int:
    """What the S3 cache directory holds on disk (downloads in flight are dot-files)."""
    root = storage.cache_dir(ctx)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_the_s3_cache_is_bounded_least_recently_used_out_and_still_answers(
    ctx: Context, models_dir: Path, tmp_path: Path, s3: str
) -> None:
    """Eight segments, a cache bound of about three: recording, joining, relabelling and
    exporting them all still count every row, the cache ends within its bound, and the copy of
    the segment read last is the one still there."""
    ctx.config.log.s3_endpoint = s3
    deployment = deployed(ctx, models_dir)
    now = datetime.now(UTC)
    segments = [
        uploaded(ctx, tmp_path, s3, deployment, [f"s{s}-r{i}" for i in range(40)], ["k"] * 40, now)
        for s in range(8)
    ]
    ctx.config.log.s3_cache_max_bytes = 3 * max(s.size for s in segments)
    for segment in segments:
        assert receive_segment(ctx, segment).new  # each is fetched to be checked, then cached
    assert cached_bytes(ctx) <= ctx.config.log.s3_cache_max_bytes
    assert storage.cache(ctx).stats().evicted_files >= 5

    [figures] = joined_metrics(ctx, deployment)  # needs all eight at once: none evicted mid-query
    assert (figures.predictions, figures.labeled) == (320, 0)
    assert cached_bytes(ctx) <= ctx.config.log.s3_cache_max_bytes  # cut back once the query is done

    labelled = [LabelInput(f"s{s}-r{i}", label="1" if i % 4 else "0") for s in range(8) for i in range(10)]
    import_labels(ctx, deployment, "truth", labelled)  # judged against every segment, refetched
    [figures] = joined_metrics(ctx, deployment)
    assert (figures.predictions, figures.labeled, figures.waiting) == (320, 80, 240)
    right = sum(1 for label in labelled if label.label == "1")  # every logged prediction is "1"
    assert figures.accuracy == pytest.approx(right / len(labelled))
    assert cached_bytes(ctx) <= ctx.config.log.s3_cache_max_bytes

    exported = export_dataset(ctx, DatasetQuery(deployment, labeled_only=True))
    try:
        assert exported.rows == 80
    finally:
        exported.path.unlink()
    assert cached_bytes(ctx) <= ctx.config.log.s3_cache_max_bytes
    # Least recently used out: with room for exactly segments 5, 6 and 7, reading them leaves only
    # them; reading 5 again makes 6 the least recent, so fetching 1 evicts 6 and keeps 5.
    ctx.config.log.s3_cache_max_bytes = sum(segments[n].size for n in (5, 6, 7))
    copy = {n: storage.local(ctx, segments[n].uri) for n in (5, 6, 7)}
    assert cached_bytes(ctx) == ctx.config.log.s3_cache_max_bytes
    storage.local(ctx, segments[5].uri)
    copy[1] = storage.local(ctx, segments[1].uri)
    assert not copy[6].exists() and copy[5].exists() and copy[1].exists()
    assert pq.read_table(copy[5]).num_rows == 40  # a copy kept is whole


def test_delayed_label_slices_read_s3_segments_through_the_cache(
    ctx: Context, models_dir: Path, tmp_path: Path, s3: str
) -> None:
    """What experiments and health judged on delayed labels read (they once joined the s3://
    URI onto the log directory and found no file)."""
    from controlplane.predlog.delayed import slice_figures

    ctx.config.log.s3_endpoint = s3
    deployment = deployed(ctx, models_dir)
    now = datetime.now(UTC)
    for s in range(2):
        ids = [f"slice{s}-{i}" for i in range(6)]
        assert receive_segment(ctx, uploaded(ctx, tmp_path, s3, deployment, ids, ["k"] * 6, now)).new
    import_labels(ctx, deployment, "truth", [LabelInput(f"slice0-{i}", label="1") for i in range(4)])
    [figures] = slice_figures(ctx, deployment, since=now - timedelta(hours=1), cutoff=now + timedelta(hours=1))
    assert (figures.predictions, figures.labeled, figures.overdue, figures.agent) == (12, 4, 8, AGENT)


def test_an_s3_cache_bound_below_zero_is_refused(tmp_path: Path) -> None:
    from controlplane.config import load_config

    bad = tmp_path / "bad.toml"
    bad.write_text("[log]\ns3_cache_max_bytes = -1\n")
    with pytest.raises(InvalidInput, match=r"log\.s3_cache_max_bytes"):
        load_config(bad)
    good = tmp_path / "good.toml"
    good.write_text("[log]\ns3_cache_max_bytes = 5_000_000\n")
    assert load_config(good).log.s3_cache_max_bytes == 5_000_000
