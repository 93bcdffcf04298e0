"""A report is committed whole or not at all: a failure part-way through an ingest (after the
receipt was written) leaves nothing behind, so the agent's resend is applied, not taken for a
replay and lost. Failures are injected at each step of the one transaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.context import Context
from controlplane.monitoring import ingest
from controlplane.monitoring.ingest import ingest_report
from tests.controlplane.monitoring.support import AgentStamp, deploy_classifier, serve
from tests.controlplane.monitoring.test_ingest import stored
from tests.models import breast_cancer_rows


class Injected(RuntimeError):
    pass


@pytest.mark.parametrize("step", ["_record_dropped", "_update_reservoir", "_after_commit"])
def test_a_failure_part_way_through_an_ingest_leaves_nothing_and_the_resend_counts(
    ctx: Context, models_dir: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    d = deploy_classifier(ctx, models_dir)
    recorder = d.recorder(ctx)
    serve(recorder, d, breast_cancer_rows(120, seed=4), batch=4)
    report = recorder.flush()
    assert report is not None
    AgentStamp("agent-x").stamp(report)

    real = getattr(ingest, step)
    calls = []

    def failing(*args: object, **kwargs: object) -> object:
        calls.append(step)
        if len(calls) == 1:
            raise Injected(f"injected failure in {step}")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, step, failing)
    with pytest.raises(Injected):
        ingest_report(ctx, "agent-x", report)
    assert calls == [step]  # the failure really was part-way through this ingest
    if step != "_after_commit":
        assert stored(ctx) == (0, 0, 0)  # no receipt, no window: nothing half-applied

    resent = ingest_report(ctx, "agent-x", report)
    receipts, windows, requests = stored(ctx)
    if step == "_after_commit":
        # Everything had committed; only the bookkeeping after it failed: the resend is a replay.
        assert not resent.new
    else:
        assert resent.new
    assert (receipts, requests) == (1, 30)  # 120 rows in batches of 4: counted once
    assert windows >= 1
    assert not ingest_report(ctx, "agent-x", report).new  # and from now on it is a replay
