"""Bad input to ControlPlane: the label store (SubmitLabels, ListLabelImports), the datasets
joined with it (ExportDataset) and the log's purge (PurgeLog). Each is refused
with its status and one line, and nothing is recorded (the database snapshot is unchanged)."""

from __future__ import annotations

from typing import Any

import pytest

from protos import common_pb2, controlplane_pb2
from tests.security.bad_input.support import EXHAUSTED, INVALID, NOT_FOUND, TRAVERSAL, Case, Env, check_case

pytestmark = pytest.mark.xdist_group("bad-input")


def head(deployment: str = "web", import_id: str = "bad-input", atomic: bool = True) -> Any:
    header = controlplane_pb2.LabelImportHeader(deployment=deployment, import_id=import_id, atomic=atomic)
    return controlplane_pb2.SubmitLabelsRequest(header=header)


def rows(*labels: common_pb2.LabelRow) -> Any:
    return controlplane_pb2.SubmitLabelsRequest(batch=controlplane_pb2.LabelRows(rows=labels))


def row(request_id: str = "r1", **truth: Any) -> common_pb2.LabelRow:
    return common_pb2.LabelRow(request_id=request_id, **(truth or {"label": "1"}))


def export(deployment: str = "web", since: int = 0, until: int = 0) -> controlplane_pb2.ExportDatasetRequest:
    request = controlplane_pb2.ExportDatasetRequest(deployment=deployment)
    if since:
        request.since.FromSeconds(since)
    if until:
        request.until.FromSeconds(until)
    return request


def purge(deployment: str = "web", older_than: float = 0.0, key: str = "") -> controlplane_pb2.PurgeLogRequest:
    return controlplane_pb2.PurgeLogRequest(deployment=deployment, older_than_seconds=older_than, routing_key=key)


def end(n: int) -> Any:
    return controlplane_pb2.SubmitLabelsRequest(end=controlplane_pb2.LabelImportEnd(rows=n))


CASES = [
    Case("labels-empty-stream", "cp", "SubmitLabels", [], INVALID, "no header was sent"),
    Case("labels-rows-before-header", "cp", "SubmitLabels", [rows(row())], INVALID, "must start with a header"),
    Case("labels-two-headers", "cp", "SubmitLabels", [head(), head()], INVALID, "two headers"),
    Case("labels-cut-off", "cp", "SubmitLabels", [head(), rows(row())], INVALID, "cut off after 1 rows"),
    Case("labels-end-miscounts", "cp", "SubmitLabels", [head(), rows(row()), end(2)], INVALID, "counts 2 rows"),
    Case(
        "labels-after-the-end", "cp", "SubmitLabels", [head(), end(0), rows(row())], INVALID, "after the import's end"
    ),
    Case("labels-end-without-header", "cp", "SubmitLabels", [end(0)], INVALID, "must start with a header"),
    Case("labels-unknown-deployment", "cp", "SubmitLabels", [head("nowhere"), rows(row())], NOT_FOUND, "no deployment"),
    Case("labels-traversal-deployment", "cp", "SubmitLabels", [head(TRAVERSAL)], INVALID, "may only contain"),
    Case("labels-traversal-import-id", "cp", "SubmitLabels", [head(import_id=TRAVERSAL)], INVALID, "import id"),
    Case("labels-empty-import-id", "cp", "SubmitLabels", [head(import_id="")], INVALID, "import id is empty"),
    Case(
        "labels-number-for-a-classifier",
        "cp",
        "SubmitLabels",
        [head(), rows(row(), row("r2", value=1.0))],
        INVALID,
        "row 2 (request id 'r2'): the deployment is a classifier",
    ),
    Case(
        "labels-huge-request-id",
        "cp",
        "SubmitLabels",
        [head(), rows(row("x" * 5000))],
        INVALID,
        "the limit is 256",
    ),
    Case(
        "labels-too-many-rows-in-a-message",
        "cp",
        "SubmitLabels",
        [head(), rows(*(row(f"r{i}") for i in range(10_001)))],
        EXHAUSTED,
        "10000 per message",
    ),
    Case(
        "label-imports-empty-name",
        "cp",
        "ListLabelImports",
        controlplane_pb2.ListLabelImportsRequest(),
        INVALID,
        "deployment name is empty",
    ),
    Case(
        "label-imports-unknown",
        "cp",
        "ListLabelImports",
        controlplane_pb2.ListLabelImportsRequest(deployment="nowhere"),
        NOT_FOUND,
        "no deployment named",
    ),
    Case("dataset-unknown-deployment", "cp", "ExportDataset", export("nowhere"), NOT_FOUND, "no deployment named"),
    Case("dataset-traversal-deployment", "cp", "ExportDataset", export(TRAVERSAL), INVALID, "may only contain"),
    Case(
        "dataset-since-after-until",
        "cp",
        "ExportDataset",
        export(since=1_800_000_000, until=1_700_000_000),
        INVALID,
        "must be before until",
    ),
    Case("purge-unknown-deployment", "cp", "PurgeLog", purge("nowhere", key="k"), NOT_FOUND, "no deployment named"),
    Case("purge-traversal-deployment", "cp", "PurgeLog", purge(TRAVERSAL, key="k"), INVALID, "may only contain"),
    Case("purge-neither", "cp", "PurgeLog", purge(), INVALID, "exactly one of"),
    Case("purge-both", "cp", "PurgeLog", purge(older_than=60, key="k"), INVALID, "exactly one of"),
    Case("purge-negative-age", "cp", "PurgeLog", purge(older_than=-60), INVALID, "positive duration"),
    Case("purge-nan-age", "cp", "PurgeLog", purge(older_than=float("nan")), INVALID, "positive duration"),
    Case("purge-long-key", "cp", "PurgeLog", purge(key="k" * 300), INVALID, "the limit is 256"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(env: Env, case: Case) -> None:
    check_case(env, case)
