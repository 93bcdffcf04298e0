"""Rollups raw -> minute -> hour keep every total; retention deletes what is old enough."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from controlplane.context import Context
from controlplane.monitoring.ingest import ingest_report
from controlplane.monitoring.query import arm_summary, merged_summary, metric_series, summaries_by_agent
from controlplane.monitoring.rollup import rollup_once
from controlplane.store.models import MetricReceiptRow, MetricWindowRow, utcnow
from tests.controlplane.monitoring.support import AgentStamp, deploy_classifier, serve
from tests.models import breast_cancer_rows


def by_resolution(ctx: Context) -> dict[str, int]:
    with ctx.db.session() as s:
        rows = s.execute(select(MetricWindowRow.resolution, func.count()).group_by(MetricWindowRow.resolution))
        return {r: int(n) for r, n in rows}


def test_rollups_preserve_totals_and_retention_expires_old_rows(ctx: Context, models_dir: Path) -> None:
    d = deploy_classifier(ctx, models_dir)
    ctx.config.retention.raw_seconds = 3600
    ctx.config.retention.minute_seconds = 3 * 3600
    ctx.config.retention.hour_seconds = 30 * 86400
    now = utcnow()
    recorder = d.recorder(ctx)
    stamp = AgentStamp("agent-old")
    rng = np.random.default_rng(5)
    # 40 windows over the last five hours, several per minute in places, a few recent ones.
    offsets = sorted([*rng.uniform(0, 5 * 3600, 36).tolist(), 5.0, 20.0, 35.0, 50.0], reverse=True)
    for k, offset in enumerate(offsets):
        rows = breast_cancer_rows(5 + k % 4, seed=k)
        ids = [f"w{k}-{i}" for i in range(rows.shape[0])]
        labels = serve(recorder, d, rows, ids=ids, latency=0.001 * (1 + k % 9))
        recorder.feedback(d.name, ids[0], label=int(labels[0]))
        report = recorder.flush()
        assert report is not None
        report.window_start.FromDatetime(now - timedelta(seconds=offset))
        assert ingest_report(ctx, stamp.agent_id, stamp.stamp(report)).new
    since = now - timedelta(days=1)
    before = merged_summary(ctx, d.name, d.version.id, since)
    series_before = metric_series(ctx, d.name, None, 8 * 3600, 3600, now=now)
    assert by_resolution(ctx) == {"raw": 40}

    result = rollup_once(ctx, now)
    after = merged_summary(ctx, d.name, d.version.id, since)
    counts = by_resolution(ctx)
    assert result.folded["raw"] == sum(1 for o in offsets if o > 3600)
    assert counts["raw"] == sum(1 for o in offsets if o <= 3600)
    assert counts.get("hour", 0) >= 1 and counts.get("minute", 0) >= 1
    assert sum(counts.values()) < 40
    for field in ("requests", "rows", "n_labeled", "n_correct", "prediction_counts", "features", "out_of_range"):
        assert getattr(after, field) == getattr(before, field), field
    assert after.latency.count == before.latency.count == before.requests
    for q in (0.5, 0.95, 0.99):
        assert after.latency.quantile(q) == before.latency.quantile(q)
    arm = arm_summary(ctx, d.name, d.version.id, since)
    assert arm.requests == before.requests and arm.n_labeled == 40
    series_after = metric_series(ctx, d.name, None, 8 * 3600, 3600, now=now)
    assert sum(p.requests_per_second for p in series_after) * 3600 == before.requests
    assert [round(p.requests_per_second * 3600) for p in series_before][-1] == [
        round(p.requests_per_second * 3600) for p in series_after
    ][-1]

    assert rollup_once(ctx, now).folded == {"raw": 0, "minute": 0}  # idempotent

    # Far in the future: everything has become hours, then expires; receipts too.
    later = now + timedelta(days=31)
    expired = rollup_once(ctx, later)
    assert by_resolution(ctx) == {}
    assert expired.deleted_hours >= 1 and expired.deleted_receipts == 40
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(MetricReceiptRow)) == 0


def test_rollups_keep_each_agents_windows_apart(ctx: Context, models_dir: Path) -> None:
    """An experiment weighs its evidence per agent, also once raw windows have become minutes."""
    d = deploy_classifier(ctx, models_dir)
    now = utcnow()
    old = now - timedelta(seconds=ctx.config.retention.raw_seconds + 120)
    for agent, n in (("agent-a", 3), ("agent-b", 5), ("agent-a", 4)):
        recorder = d.recorder(ctx)
        serve(recorder, d, breast_cancer_rows(n, seed=n))
        report = recorder.flush()
        assert report is not None
        report.window_start.FromDatetime(old)
        stamp = AgentStamp(agent)
        stamp.seq = n  # distinct seqs for agent-a's two reports
        assert ingest_report(ctx, agent, stamp.stamp(report)).new
    since = now - timedelta(days=1)
    before = {a: s.requests for a, s in summaries_by_agent(ctx, d.name, d.version.id, since).items()}
    assert before == {"agent-a": 7, "agent-b": 5}
    assert rollup_once(ctx, now).folded["raw"] == 3
    assert by_resolution(ctx) == {"minute": 2}  # one row per agent
    after = {a: s.requests for a, s in summaries_by_agent(ctx, d.name, d.version.id, since).items()}
    assert after == before
