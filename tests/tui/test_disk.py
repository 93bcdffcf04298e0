"""The deployment detail shows the prediction log's and the label store's disk use (what
`sluice status` prints), read from a real control plane: a segment stored by its segment store
from the agent's own log writer, labels submitted over gRPC; the line follows a new import."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from controlplane.datafiles.files import labels_dir
from controlplane.predlog.segments import log_dir
from core.client import SluiceClient
from core.sizes import byte_size
from protos import common_pb2, controlplane_pb2
from tests.controlplane.predlog.test_joined import serving
from tests.controlplane.predlog.test_purge_retention import log_rows
from tests.harness import ServerThread, unique
from tests.tui.conftest import Registered
from tests.tui.helpers import make_app, open_detail, until
from tui.screens.detail import disk_line


def on_disk(root: Path, deployment: str) -> tuple[int, int]:
    """(files, bytes) of the deployment's Parquet files under root."""
    found = [p for p in (root / f"deployment={deployment}").rglob("*.parquet")]
    return len(found), sum(p.stat().st_size for p in found)


def test_the_disk_line_reads_like_status_and_is_empty_without_a_record() -> None:
    usage = controlplane_pb2.LogUsage(segments=12, rows=3400, bytes=3 * 1024 * 1024, label_files=3, label_bytes=660)
    status = controlplane_pb2.DeploymentStatus(log_usage=usage)
    assert disk_line(status).plain == "prediction log 12 segments, 3400 rows, 3.0 MiB  labels 3 files, 660 B"
    assert disk_line(controlplane_pb2.DeploymentStatus()).plain == ""
    assert disk_line(None).plain == ""


async def test_the_detail_shows_the_logs_disk_use_and_follows_an_import(
    shared_server: ServerThread, client: SluiceClient, registered: Registered, tmp_path: Path
) -> None:
    ctx = shared_server.ctx
    name = unique("tui-disk")
    client.deploy(name, registered.v1)
    ids = [f"d{i}" for i in range(25)]
    log_rows(ctx, tmp_path, name, serving(ctx, name), ids, ["k"] * len(ids))
    segments, segment_bytes = on_disk(log_dir(ctx), name)
    assert segments == 1

    app = make_app(shared_server.address)
    async with app.run_test(size=(100, 60)) as pilot:
        await until(pilot, lambda: app.connection == "connected", "the event stream")
        detail = await open_detail(pilot, name)
        disk = detail.query_one("#disk", Static)

        def shown() -> str:
            return str(disk.render()) if disk.display else ""

        before = f"prediction log 1 segments, 25 rows, {byte_size(segment_bytes)}  labels 0 files, 0 B"
        await until(pilot, lambda: shown() == before, f"{before!r} (shows {shown()!r})")
        assert detail.query_one("#disk-title", Static).display

        rows = [common_pb2.LabelRow(request_id=i, label="1") for i in ids[:10]]
        summary = client.submit_labels(name, unique("imp"), [rows])
        assert summary.accepted == 10
        files, label_bytes = on_disk(labels_dir(ctx.config, ctx.artifacts.root), name)
        assert files == 1
        after = before.replace("labels 0 files, 0 B", f"labels 1 files, {byte_size(label_bytes)}")
        await until(pilot, lambda: shown() == after, f"{after!r} after the import (shows {shown()!r})")


async def test_a_deployment_that_recorded_nothing_shows_no_disk_section(
    shared_server: ServerThread, client: SluiceClient, registered: Registered
) -> None:
    name = unique("tui-nodisk")
    client.deploy(name, registered.v1)
    app = make_app(shared_server.address)
    async with app.run_test(size=(100, 60)) as pilot:
        detail = await open_detail(pilot, name)
        await until(pilot, lambda: detail.data is not None and detail.data.status is not None, "the status")
        assert not detail.query_one("#disk", Static).display
        assert not detail.query_one("#disk-title", Static).display
