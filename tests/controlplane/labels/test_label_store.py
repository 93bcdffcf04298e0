"""The label store's unit of work on SQLite and PostgreSQL: idempotent retries, replacements,
duplicates, unknown request ids, late labels, and rows of the wrong type refused by number."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from controlplane import audit
from controlplane.context import Context
from controlplane.labels.feedback import feedback_import_id, store_feedback
from controlplane.labels.incoming import LabelInput, PendingImport
from controlplane.labels.store import begin_import, current_labels, labels_root, list_imports
from controlplane.store.models import utcnow
from core.errors import Conflict, InvalidInput, NotFound, ResourceExhausted
from core.vocabulary import LabelSource
from tests.controlplane.labels.support import deployed, import_labels, labels, write_log_segment


def _current(ctx: Context, deployment: str) -> dict[str, str | float]:
    table = current_labels(ctx, deployment).to_pylist()
    return {r["request_id"]: r["label"] if r["label"] is not None else r["value"] for r in table}


def _files(ctx: Context) -> list[Path]:
    return sorted(labels_root(ctx).rglob("*.parquet"))


def test_an_import_is_stored_once_and_a_retry_answers_its_summary(ctx: Context, models_dir: Path) -> None:
    deployment = deployed(ctx, models_dir)
    now = utcnow()
    write_log_segment(ctx, deployment, {f"r{i}": now - timedelta(minutes=5) for i in range(10)})
    rows = labels(*((f"r{i}", str(i % 2)) for i in range(5)), ("never-predicted", "1"))

    first = import_labels(ctx, deployment, "import-1", rows)
    assert (first.rows, first.accepted, first.duplicates, first.replaced) == (6, 6, 0, 0)
    assert (first.unknown_ids, first.late, first.refused, first.replayed) == (1, 0, 0, False)
    assert first.source == LabelSource.IMPORT and first.principal == "alice"
    (path,) = _files(ctx)
    assert path.name == "import-1.parquet" and path.parent.name == f"deployment={deployment}"
    written = path.stat().st_mtime_ns

    again = import_labels(ctx, deployment, "import-1", rows)
    assert again.replayed and (again.rows, again.accepted, again.unknown_ids) == (6, 6, 1)
    assert _files(ctx) == [path] and path.stat().st_mtime_ns == written
    assert _current(ctx, deployment) == {"r0": "0", "r1": "1", "r2": "0", "r3": "1", "r4": "0", "never-predicted": "1"}
    (only,) = list_imports(ctx, deployment)
    assert only.import_id == "import-1" and only.accepted == 6
    (event,) = [e for e in audit.list_audit(ctx.db, target=deployment) if e.action == "labels.import"]
    assert event.principal == "alice" and event.details["import_id"] == "import-1"
    assert event.details["accepted"] == 6 and event.details["unknown_ids"] == 1


def test_a_later_label_replaces_an_earlier_one_and_an_equal_one_is_a_duplicate(ctx: Context, models_dir: Path) -> None:
    deployment = deployed(ctx, models_dir)
    import_labels(ctx, deployment, "first", labels(("a", "1"), ("b", "0")))
    second = import_labels(ctx, deployment, "second", labels(("a", "1"), ("b", "1"), ("c", "0")))
    assert (second.rows, second.accepted, second.duplicates, second.replaced) == (3, 2, 1, 1)
    assert _current(ctx, deployment) == {"a": "1", "b": "1", "c": "0"}
    # Only what changed was written again: the second file holds b and c.
    assert [p.name for p in _files(ctx)] == ["first.parquet", "second.parquet"]
    # Within one import rows apply in order: the last row of a request is its label.
    third = import_labels(ctx, deployment, "third", labels(("c", "1"), ("c", "1"), ("c", "0"), ("d", "1")))
    assert (third.accepted, third.duplicates, third.replaced) == (3, 1, 2)
    assert _current(ctx, deployment) == {"a": "1", "b": "1", "c": "0", "d": "1"}
    # An import of nothing new stores no file.
    fourth = import_labels(ctx, deployment, "fourth", labels(("a", "1"), ("d", "1")))
    assert (fourth.accepted, fourth.duplicates) == (0, 2) and len(_files(ctx)) == 3


def test_a_regressor_takes_numbers_and_refuses_a_label_by_row_number(ctx: Context, models_dir: Path) -> None:
    deployment = deployed(ctx, models_dir, "ridge")
    rows = [LabelInput("x1", value=0.5), LabelInput("x2", value=1.5), LabelInput("x3", label="high")]
    refused = r"row 3 \(request id 'x3'\): the deployment is a regressor.*nothing of import atomic was stored"
    with pytest.raises(InvalidInput, match=refused):
        import_labels(ctx, deployment, "atomic", rows, batch=2)
    assert _files(ctx) == [] and list_imports(ctx, deployment) == []
    # Not recorded: the same import id may be sent again once the file is fixed.
    summary = import_labels(ctx, deployment, "atomic", rows[:2])
    assert summary.accepted == 2 and not summary.replayed

    relaxed = [LabelInput("y1", value=2.0), LabelInput("y2", value=float("nan")), LabelInput("y3", label="7")]
    summary = import_labels(ctx, deployment, "relaxed", relaxed, atomic=False)
    assert (summary.rows, summary.accepted, summary.refused) == (3, 1, 2)
    assert summary.refusals[0].startswith("row 2 (request id 'y2'): the value nan is not a finite number")
    assert summary.refusals[1].startswith("row 3 (request id 'y3'): the deployment is a regressor")
    assert _current(ctx, deployment) == {"x1": 0.5, "x2": 1.5, "y1": 2.0}


def test_a_classifier_refuses_a_number_an_empty_label_and_a_bad_request_id(ctx: Context, models_dir: Path) -> None:
    deployment = deployed(ctx, models_dir)
    cases = [
        (LabelInput("a", value=1.0), "a classifier: its truth is a class"),
        (LabelInput("a", label=""), "no label"),
        (LabelInput("", label="1"), "the request id is empty"),
        (LabelInput("x" * 257, label="1"), "the request id is 257 characters; the limit is 256"),
    ]
    for n, (row, message) in enumerate(cases):
        with pytest.raises(InvalidInput, match=f"row 2 .*{message}"):
            import_labels(ctx, deployment, f"bad-{n}", [LabelInput("ok", label="1"), row])
    assert _files(ctx) == [] and list_imports(ctx, deployment) == []


def test_a_label_long_after_its_prediction_is_late_and_kept(ctx: Context, models_dir: Path) -> None:
    deployment = deployed(ctx, models_dir)
    now = utcnow()
    long_ago = now - timedelta(days=10)  # beyond the default horizon of 7 days
    write_log_segment(ctx, deployment, {"old": long_ago, "old-event": long_ago, "fresh": now - timedelta(hours=1)})
    rows = [
        LabelInput("old", label="1"),  # received 10 days after its prediction
        LabelInput("old-event", label="1", event_time=long_ago + timedelta(days=1)),  # happened a day after
        LabelInput("fresh", label="0"),
        LabelInput("unknown", label="0"),  # no prediction: unknown, never late
    ]
    summary = import_labels(ctx, deployment, "late", rows)
    assert (summary.accepted, summary.late, summary.unknown_ids) == (4, 1, 1)
    assert set(_current(ctx, deployment)) == {"old", "old-event", "fresh", "unknown"}
    stored = {r["request_id"]: r["event_time"] for r in current_labels(ctx, deployment).to_pylist()}
    assert stored["old-event"] == long_ago + timedelta(days=1) and stored["old"] is None


def test_unknown_deployments_foreign_import_ids_and_oversized_batches_are_refused(
    ctx: Context, models_dir: Path
) -> None:
    deployment = deployed(ctx, models_dir)
    other = deployed(ctx, models_dir)
    with pytest.raises(NotFound, match="no deployment named 'nowhere'"):
        begin_import(ctx, "nowhere", "x", atomic=True)
    import_labels(ctx, deployment, "shared-id", labels(("a", "1")))
    with pytest.raises(Conflict, match=f"already used for deployment '{deployment}'"):
        begin_import(ctx, other, "shared-id", atomic=True)
    for bad in ("", "../escape", "a/b", "x" * 65):
        with pytest.raises(InvalidInput, match="import id"):
            begin_import(ctx, deployment, bad, atomic=True)
    pending = begin_import(ctx, deployment, "big", atomic=True)
    assert isinstance(pending, PendingImport)
    with pytest.raises(ResourceExhausted, match="the limit is 10000 per message"):
        pending.add(labels(*((f"r{i}", "1") for i in range(10_001))))


def test_an_agents_feedback_batch_is_stored_once_and_refused_for_a_deployment_it_was_not_sent(
    ctx: Context, models_dir: Path
) -> None:
    deployment = deployed(ctx, models_dir)
    rows = labels(("a", "1"), ("b", "0"))
    assert store_feedback(ctx, "agent-1", "edge", "batch-1", deployment, rows, {deployment}) == ""
    assert store_feedback(ctx, "agent-1", "edge", "batch-1", deployment, rows, {deployment}) == ""  # a resend
    (only,) = list_imports(ctx, deployment)
    assert (only.source, only.principal, only.rows, only.accepted) == (LabelSource.FEEDBACK, "agent:edge", 2, 2)
    assert only.import_id == feedback_import_id("agent-1", "batch-1")
    assert "was not sent to agent edge" in store_feedback(ctx, "agent-1", "edge", "batch-2", deployment, rows, set())
    assert "import id" in store_feedback(ctx, "agent-1", "edge", "../x", deployment, rows, {deployment})
    # Not atomic: a bad row is counted, the others are stored.
    mixed = [LabelInput("c", label="1"), LabelInput("d", value=2.0)]
    assert store_feedback(ctx, "agent-1", "edge", "batch-3", deployment, mixed, {deployment}) == ""
    assert list_imports(ctx, deployment)[0].refused == 1
    assert _current(ctx, deployment) == {"a": "1", "b": "0", "c": "1"}
    # No audit entry per batch: an agent's feedback is listed, not audited.
    assert [e for e in audit.list_audit(ctx.db, target=deployment) if e.action == "labels.import"] == []
