"""Reports from a real MetricsRecorder into the store: exact totals, replays, bad windows, concurrency.

Runs on SQLite and PostgreSQL (the `ctx` fixture).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from controlplane.context import Context
from controlplane.monitoring.ingest import Receipt, ingest_report
from controlplane.monitoring.query import arm_summary
from controlplane.monitoring.reservoir import RESERVOIR_ROWS, decode
from controlplane.store.models import MetricReceiptRow, MetricWindowRow, ReservoirRow, utcnow
from core.errors import InvalidInput
from protos import agent_pb2, common_pb2
from tests.controlplane.monitoring.support import AgentStamp, deploy_classifier, flush_and_ingest, serve
from tests.models import breast_cancer_rows


def stored(ctx: Context) -> tuple[int, int, int]:
    with ctx.db.session() as s:
        receipts = s.scalar(select(func.count()).select_from(MetricReceiptRow))
        windows = s.scalar(select(func.count()).select_from(MetricWindowRow))
        requests = s.scalar(select(func.coalesce(func.sum(MetricWindowRow.requests), 0)))
    return int(receipts or 0), int(windows or 0), int(requests or 0)


def test_recorder_report_ingest_round_trip(ctx: Context, models_dir: Path) -> None:
    d = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    stamp = AgentStamp("agent-a")
    since = utcnow() - timedelta(seconds=5)
    rows = breast_cancer_rows(400, seed=2)
    labels_a = serve(recorder, d, rows[:250], batch=5, latency=0.004)
    flush_and_ingest(ctx, recorder, stamp)
    ids = [f"id-{i}" for i in range(150)]
    labels_b = serve(recorder, d, rows[250:], ids=ids, latency=0.010)
    for i in range(0, 150, 3):
        recorder.feedback(d.name, ids[i], label=int(labels_b[i]) if i % 2 else 1 - int(labels_b[i]))
    recorder.record_prediction(
        d.name, d.version.model, d.version.version, "champion", None, None, None, 0.0, "INTERNAL"
    )
    flush_and_ingest(ctx, recorder, stamp)

    arm = arm_summary(ctx, d.name, d.version.id, since)
    assert arm.requests == 50 + 150 + 1
    assert arm.rows == 400
    assert arm.errors == 1
    labels = np.concatenate([labels_a, labels_b])
    assert arm.prediction_counts == np.bincount(labels, minlength=2).tolist()
    assert arm.latency.count == 200
    assert abs(arm.latency.quantile(0.5) - 0.010) <= 0.010 * 0.011
    assert abs(arm.latency.quantile(0.1) - 0.004) <= 0.004 * 0.011
    assert arm.n_labeled == 50
    assert arm.n_correct == sum(1 for i in range(0, 150, 3) if i % 2)
    with ctx.db.session() as s:
        reservoir = s.scalars(select(ReservoirRow)).one()
        assert reservoir.seen == 400 and reservoir.n_features == 30
        _times, sample = decode(reservoir.sample, 30)
    assert 0 < sample.shape[0] <= RESERVOIR_ROWS
    assert arm_summary(ctx, d.name, d.version.id, utcnow() + timedelta(seconds=10)).requests == 0


def test_a_replayed_report_changes_nothing(ctx: Context, models_dir: Path) -> None:
    d = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    stamp = AgentStamp("agent-r")
    serve(recorder, d, breast_cancer_rows(30, seed=3))
    report = flush_and_ingest(ctx, recorder, stamp)
    before = stored(ctx)
    with ctx.db.session() as s:
        seen = s.scalar(select(ReservoirRow.seen))
    assert not ingest_report(ctx, "agent-r", report).new
    assert not ingest_report(ctx, "agent-r", report).new
    assert stored(ctx) == before == (1, 1, 30)
    with ctx.db.session() as s:
        assert s.scalar(select(ReservoirRow.seen)) == seen
    # The same seq from another agent is a different report.
    assert ingest_report(ctx, "agent-s", report).new
    assert stored(ctx)[2] == 60


def test_unknown_deployments_and_malformed_windows_are_skipped_not_fatal(ctx: Context, models_dir: Path) -> None:
    d = deploy_classifier(ctx, models_dir)
    good = agent_pb2.VersionWindow(
        deployment=d.name,
        version=common_pb2.VersionRef(model=d.version.model, version=d.version.version),
        role=common_pb2.ROLE_CHAMPION,
        requests=7,
        rows=7,
    )
    unknown_dep = agent_pb2.VersionWindow(deployment="nope", version=good.version, requests=5)
    unknown_version = agent_pb2.VersionWindow(
        deployment=d.name, version=common_pb2.VersionRef(model=d.version.model, version="v999"), requests=5
    )
    malformed = agent_pb2.VersionWindow(deployment=d.name, version=good.version, requests=1)
    malformed.feedback.n_labeled = 1
    malformed.feedback.n_correct = 5  # more correct than labeled
    unknown_role = agent_pb2.VersionWindow(deployment=d.name, version=good.version, requests=2, rows=2)
    unknown_role.role = 99  # a role a newer agent knows and this control plane does not: never guessed
    report = agent_pb2.MetricReport(
        agent_id="agent-x",
        seq=1,
        window_seconds=1.0,
        windows=[unknown_dep, good, unknown_version, malformed, unknown_role],
    )
    report.window_start.GetCurrentTime()
    receipt = ingest_report(ctx, "agent-x", report)
    assert receipt == Receipt(True, {"malformed": 1, "unknown_role": 1, "unknown_version": 2})
    assert stored(ctx) == (1, 1, 7)


def test_concurrent_agents_are_counted_exactly(ctx: Context, models_dir: Path) -> None:
    d = deploy_classifier(ctx, models_dir)
    since = utcnow() - timedelta(seconds=5)
    rows = breast_cancer_rows(20, seed=4)
    reports: dict[str, list[agent_pb2.MetricReport]] = {}
    for agent in ("agent-1", "agent-2", "agent-3", "agent-4"):
        recorder = d.recorder(ctx)
        stamp = AgentStamp(agent)
        reports[agent] = []
        for _ in range(6):
            serve(recorder, d, rows, batch=4)
            report = recorder.flush()
            assert report is not None
            reports[agent].append(stamp.stamp(report))
    results: list[bool] = []
    errors: list[BaseException] = []

    def deliver(agent: str) -> None:
        try:
            for report in reports[agent]:
                results.append(ingest_report(ctx, agent, report).new)
                results.append(ingest_report(ctx, agent, report).new)  # every report arrives twice
        except BaseException as exc:  # noqa: BLE001 - re-raised by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(a,)) for a in reports]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert results.count(True) == 24 and results.count(False) == 24
    arm = arm_summary(ctx, d.name, d.version.id, since)
    assert arm.rows == 4 * 6 * 20
    assert arm.requests == 4 * 6 * 5
    with ctx.db.session() as s:
        assert s.scalar(select(ReservoirRow.seen)) == 4 * 6 * 20


def dropped_total(ctx: Context) -> float:
    from controlplane.monitoring.state import state_of

    value = state_of(ctx).metrics.registry.get_sample_value("sluice_agent_dropped_reports_total")
    return float(value or 0.0)


def overflow_alerts(ctx: Context) -> list[tuple[bool, float | None]]:
    from controlplane.monitoring import alert_views

    found = sorted(alert_views.list_alerts(ctx, include_resolved=True), key=lambda a: a.id)
    return [(a.resolved_at is None, a.value) for a in found if a.kind == "buffer_overflow"]


def test_dropped_reports_survive_a_controlplane_restart(ctx: Context, db_url: str, tmp_path: Path) -> None:
    """The counter of an agent's dropped reports lives in SQL: a restarted control plane neither
    re-opens the overflow alert nor counts the same drops again (issue 11, #7)."""
    from controlplane.artifacts import ArtifactStore
    from controlplane.config import Config
    from controlplane.events import EventBus
    from controlplane.monitoring import alerts
    from controlplane.store.db import Database

    def report(seq: int, dropped: int) -> agent_pb2.MetricReport:
        return agent_pb2.MetricReport(agent_id="agent-o", seq=seq, dropped_reports=dropped)

    assert ingest_report(ctx, "agent-o", report(1, 3)).new
    assert dropped_total(ctx) == 3 and overflow_alerts(ctx) == [(True, 3.0)]
    alerts.resolve_alert(ctx, deployment="", kind="buffer_overflow", agent_id="agent-o")  # handled

    # A second control plane on the same store (a restart: fresh process state).
    db = Database(db_url)
    restarted = Context(db=db, artifacts=ArtifactStore(tmp_path / "a2"), config=Config(), events=EventBus())
    try:
        assert ingest_report(restarted, "agent-o", report(2, 3)).new  # the same 3 drops
        assert dropped_total(restarted) == 0 and overflow_alerts(restarted) == [(False, 3.0)]
        assert ingest_report(restarted, "agent-o", report(3, 5)).new  # 2 more
        assert dropped_total(restarted) == 2 and overflow_alerts(restarted)[-1] == (True, 5.0)
        # The agent restarted (its counter too): what it reports now is new.
        alerts.resolve_alert(restarted, deployment="", kind="buffer_overflow", agent_id="agent-o")
        assert ingest_report(restarted, "agent-o", report(4, 0)).new
        assert ingest_report(restarted, "agent-o", report(5, 1)).new
        assert dropped_total(restarted) == 3 and overflow_alerts(restarted)[-1] == (True, 1.0)
    finally:
        db.dispose()


def test_dropped_log_rows_open_an_alert_once(ctx: Context) -> None:
    """Prediction-log rows an agent dropped (full segment buffer, refused segment) open the
    log_rows_dropped alert; the same count again opens nothing new (issue 16)."""
    from controlplane.monitoring import alert_views, alerts

    def log_alerts() -> list[tuple[bool, float | None]]:
        found = sorted(alert_views.list_alerts(ctx, include_resolved=True), key=lambda a: a.id)
        return [(a.resolved_at is None, a.value) for a in found if a.kind == "log_rows_dropped"]

    def report(seq: int, rows: int) -> agent_pb2.MetricReport:
        return agent_pb2.MetricReport(agent_id="agent-l", seq=seq, dropped_log_rows=rows)

    assert ingest_report(ctx, "agent-l", report(1, 0)).new and log_alerts() == []
    assert ingest_report(ctx, "agent-l", report(2, 40)).new and log_alerts() == [(True, 40.0)]
    alerts.resolve_alert(ctx, deployment="", kind="log_rows_dropped", agent_id="agent-l")
    assert ingest_report(ctx, "agent-l", report(3, 40)).new and log_alerts() == [(False, 40.0)]
    assert ingest_report(ctx, "agent-l", report(4, 45)).new and log_alerts()[-1] == (True, 45.0)
    assert overflow_alerts(ctx) == []  # dropped rows are not dropped reports


def test_a_window_from_an_agent_clock_ahead_is_stored_at_its_receipt(ctx: Context, models_dir: Path) -> None:
    """An agent clock a few seconds ahead used to pass (up to +5 s), beyond the 3 s SRM grace of a
    rollout step: windows served under the old weights counted as the new step's (issue 11)."""
    d = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    serve(recorder, d, breast_cancer_rows(10, seed=3))
    report = recorder.flush()
    assert report is not None
    report.window_start.FromDatetime(utcnow() + timedelta(seconds=4))
    report.agent_id, report.seq = "agent-ahead", 1
    assert ingest_report(ctx, "agent-ahead", report).new
    received = utcnow()
    with ctx.db.session() as s:
        (start,) = s.scalars(select(MetricWindowRow.window_start).where(MetricWindowRow.deployment == d.name)).all()
    assert start <= received


def test_windows_keep_their_agent_and_refusals_are_counted_in_the_receipt(ctx: Context, models_dir: Path) -> None:
    """Windows of routes the agent was not sent, or with counts no agent serves, are refused by
    reason; the report is committed, and its replay answers the same refusals (issue 13)."""
    d = deploy_classifier(ctx, models_dir)
    other = deploy_classifier(ctx, models_dir)
    ref = common_pb2.VersionRef(model=d.version.model, version=d.version.version)

    def w(deployment: str, requests: int, labeled: int = 0) -> agent_pb2.VersionWindow:
        window = agent_pb2.VersionWindow(deployment=deployment, version=ref, requests=requests, rows=requests)
        window.feedback.n_labeled = window.feedback.n_correct = labeled
        return window

    report = agent_pb2.MetricReport(
        agent_id="agent-l",
        seq=1,
        window_seconds=1.0,
        windows=[
            w(d.name, 7),
            w(other.name, 5),  # a version and a deployment the store knows, but not together
            w("nope", 5),
            w(d.name, 10**9, 10**9),
            w(d.name, 3, labeled=10**9),
        ],
    )
    report.window_start.GetCurrentTime()
    sent = {(d.name, d.version.model, d.version.version)}
    expected = {"implausible": 2, "unknown_route": 1, "unknown_version": 1}
    assert ingest_report(ctx, "agent-l", report, sent) == Receipt(True, expected)
    assert ingest_report(ctx, "agent-l", report, sent) == Receipt(False, expected)
    with ctx.db.session() as s:
        windows = s.execute(select(MetricWindowRow.agent_id, MetricWindowRow.requests)).all()
    assert [tuple(r) for r in windows] == [("agent-l", 7)]

    ref_other = common_pb2.VersionRef(model=other.version.model, version=other.version.version)
    elsewhere = agent_pb2.VersionWindow(deployment=other.name, version=ref_other, requests=4, rows=4)
    report = agent_pb2.MetricReport(agent_id="agent-l", seq=2, window_seconds=1.0, windows=[elsewhere])
    assert ingest_report(ctx, "agent-l", report, sent) == Receipt(True, {"unknown_route": 1})
    assert ingest_report(ctx, "agent-m", report, None).refused == {}  # no route check asked for


def test_a_window_keeps_its_agents_start_and_one_without_a_start_is_stored_at_its_receipt(
    ctx: Context, models_dir: Path
) -> None:
    d = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    starts = []
    for seq, ago in ((1, 30.0), (2, None)):
        serve(recorder, d, breast_cancer_rows(10, seed=seq))
        report = recorder.flush()
        assert report is not None
        before = utcnow()
        if ago is None:
            report.ClearField("window_start")
        else:
            report.window_start.FromDatetime(before - timedelta(seconds=ago))
        report.agent_id, report.seq = "agent-start", seq
        assert ingest_report(ctx, "agent-start", report).new
        starts.append((before, utcnow()))
    with ctx.db.session() as s:
        stored_starts = s.scalars(
            select(MetricWindowRow.window_start)
            .where(MetricWindowRow.deployment == d.name)
            .order_by(MetricWindowRow.id)
        ).all()
    (first, second) = stored_starts
    assert abs((first - (starts[0][0] - timedelta(seconds=30))).total_seconds()) < 0.001  # the agent's start
    assert starts[1][0] <= second <= starts[1][1]  # no start: the receipt's time


def test_a_window_length_out_of_range_is_clamped_not_stored_as_sent(ctx: Context, models_dir: Path) -> None:
    """A window lasts more than 0 and at most an hour (MAX_WINDOW_SECONDS); an agent's NaN is one second."""
    d = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    for seq, sent in ((1, 7200.0), (2, float("nan")), (3, 12.5), (4, 0.0)):
        serve(recorder, d, breast_cancer_rows(10, seed=seq))
        report = recorder.flush()
        assert report is not None
        report.window_seconds = sent
        for window in report.windows:
            window.experiment = "e" * 200  # an agent's text: stored cut to the column's 128 characters
        report.agent_id, report.seq = "agent-length", seq
        assert ingest_report(ctx, "agent-length", report).new
    with ctx.db.session() as s:
        lengths = s.scalars(
            select(MetricWindowRow.window_seconds)
            .where(MetricWindowRow.deployment == d.name)
            .order_by(MetricWindowRow.id)
        ).all()
    # 0 lasts the shortest length stored (a millisecond), never 0: rates are counts over it
    assert [float(x) for x in lengths] == [3600.0, 1.0, 12.5, 0.001]
    with ctx.db.session() as s:
        experiments = s.scalars(select(MetricWindowRow.experiment).where(MetricWindowRow.deployment == d.name)).all()
    assert {len(e) for e in experiments} == {128}


def test_new_dropped_log_rows_are_not_new_dropped_reports(ctx: Context) -> None:
    """The two counters are independent: dropped log rows that grow while the dropped reports
    stay where they were count no new dropped report and re-open no overflow alert."""
    from controlplane.monitoring import alerts

    def report(seq: int, dropped: int, rows: int) -> agent_pb2.MetricReport:
        return agent_pb2.MetricReport(agent_id="agent-b", seq=seq, dropped_reports=dropped, dropped_log_rows=rows)

    assert ingest_report(ctx, "agent-b", report(1, 3, 0)).new
    assert dropped_total(ctx) == 3 and overflow_alerts(ctx) == [(True, 3.0)]
    alerts.resolve_alert(ctx, deployment="", kind="buffer_overflow", agent_id="agent-b")
    assert ingest_report(ctx, "agent-b", report(2, 3, 10)).new
    assert dropped_total(ctx) == 3 and overflow_alerts(ctx) == [(False, 3.0)]


def test_a_report_seq_past_a_signed_64_bit_integer_is_refused_as_bad_input(ctx: Context) -> None:
    """The wire's seq is unsigned 64-bit, the receipts' column a signed BIGINT: 2**63 - 1 is the
    last seq stored, one more is INVALID_ARGUMENT (not a database error)."""
    last = agent_pb2.MetricReport(agent_id="agent-seq", seq=2**63 - 1)
    assert ingest_report(ctx, "agent-seq", last).new
    with pytest.raises(InvalidInput, match="out of range"):
        ingest_report(ctx, "agent-seq", agent_pb2.MetricReport(agent_id="agent-seq", seq=2**63))


def test_a_reports_unmatched_feedback_is_counted_once_whatever_its_windows(ctx: Context, models_dir: Path) -> None:
    """`unmatched_feedback` belongs to the report (labels the agent could not join), not to each
    of its windows: stored once, on one of them."""
    d = deploy_classifier(ctx, models_dir)
    ref = common_pb2.VersionRef(model=d.version.model, version=d.version.version)
    windows = [agent_pb2.VersionWindow(deployment=d.name, version=ref, requests=n, rows=n) for n in (3, 4, 5)]
    report = agent_pb2.MetricReport(agent_id="agent-u", seq=1, window_seconds=1.0, windows=windows)
    report.unmatched_feedback = 6
    report.window_start.GetCurrentTime()
    assert ingest_report(ctx, "agent-u", report).new
    with ctx.db.session() as s:
        summaries = s.scalars(select(MetricWindowRow.summary).where(MetricWindowRow.deployment == d.name)).all()
    assert len(summaries) == 3
    assert sum(int(x.get("unmatched_feedback", 0)) for x in summaries) == 6


def test_a_single_dropped_log_row_opens_the_alert(ctx: Context) -> None:
    """One row missing from the prediction log is a gap like any other."""
    from controlplane.monitoring import alert_views

    assert ingest_report(ctx, "agent-one", agent_pb2.MetricReport(agent_id="agent-one", seq=1, dropped_log_rows=1)).new
    found = [a for a in alert_views.list_alerts(ctx) if a.kind == "log_rows_dropped" and a.agent_id == "agent-one"]
    assert [(a.value, a.resolved_at) for a in found] == [(1.0, None)]
