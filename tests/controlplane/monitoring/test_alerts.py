"""Alerts: one per key, escalation, acknowledgement, hysteresis — on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from controlplane.agenthub import agents
from controlplane.context import Context
from controlplane.domain import Principal, Role
from controlplane.monitoring import alert_views, alerts
from controlplane.store.models import AlertRow, AuditEventRow
from core.errors import FailedPrecondition, InvalidInput, NotFound
from tests.controlplane.monitoring.support import deploy_classifier

BOB = Principal("bob", Role.OPERATOR)


def active(ctx: Context) -> list[alert_views.AlertInfo]:
    return alert_views.list_alerts(ctx)


def test_one_alert_per_key_updated_and_escalated(ctx: Context, models_dir: Path) -> None:
    d = deploy_classifier(ctx, models_dir)
    key = {"deployment": d.name, "kind": "accuracy", "version_id": d.version.id}
    alerts.open_alert(ctx, severity="warning", message="accuracy 0.78 < 0.80", value=0.78, **key)
    alerts.open_alert(ctx, severity="warning", message="accuracy 0.77 < 0.80", value=0.77, **key)
    [alert] = active(ctx)
    assert (alert.severity, alert.state, alert.occurrences, alert.value) == ("warning", "open", 2, 0.77)
    assert (alert.model, alert.version) == (d.version.model, d.version.version)
    alerts.open_alert(ctx, severity="critical", message="accuracy 0.70 < 0.75", value=0.70, **key)
    alerts.open_alert(ctx, severity="warning", message="accuracy 0.78 < 0.80", value=0.78, **key)
    [alert] = active(ctx)
    assert alert.severity == "critical"  # escalated, never back down while it lasts
    assert alert.occurrences == 4 and alert.message == "accuracy 0.78 < 0.80"
    # Another kind, another version or another agent is another alert.
    alerts.open_alert(
        ctx, deployment=d.name, kind="drift", severity="warning", message="drift", version_id=d.version.id
    )
    alerts.open_alert(ctx, deployment="", kind="agent_lost", severity="warning", message="a", agent_id="agent-1")
    alerts.open_alert(ctx, deployment="", kind="agent_lost", severity="warning", message="b", agent_id="agent-2")
    assert len(active(ctx)) == 4
    alerts.resolve_alert(ctx, deployment="", kind="agent_lost", agent_id="agent-1")
    alerts.resolve_alert(ctx, deployment="", kind="agent_lost", agent_id="agent-9")  # nothing to resolve
    assert sorted(a.agent_id for a in active(ctx) if a.kind == "agent_lost") == ["agent-2"]
    everything = alert_views.list_alerts(ctx, include_resolved=True)
    assert len(everything) == 4 and [a.state for a in everything if a.agent_id == "agent-1"] == ["resolved"]
    # After resolution the same condition opens a fresh alert.
    alerts.open_alert(ctx, deployment="", kind="agent_lost", severity="warning", message="again", agent_id="agent-1")
    assert len(alert_views.list_alerts(ctx, include_resolved=True)) == 5


def test_acknowledge_and_its_bad_inputs(ctx: Context, models_dir: Path) -> None:
    d = deploy_classifier(ctx, models_dir)
    alerts.open_alert(ctx, deployment=d.name, kind="error_rate", severity="warning", message="errors 2%")
    [alert] = active(ctx)
    acked = alerts.acknowledge(ctx, BOB, alert.id)
    assert (acked.state, acked.acknowledged_by) == ("acknowledged", "bob")
    assert alerts.acknowledge(ctx, BOB, alert.id).state == "acknowledged"  # idempotent
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEventRow).where(AuditEventRow.action == "alert.ack")) == 1
    # Still active: updates go to it, and escalation re-opens it for the operator.
    alerts.open_alert(ctx, deployment=d.name, kind="error_rate", severity="warning", message="errors 3%")
    assert [(a.state, a.occurrences) for a in active(ctx)] == [("acknowledged", 2)]
    alerts.open_alert(ctx, deployment=d.name, kind="error_rate", severity="critical", message="errors 9%")
    assert [(a.state, a.severity, a.acknowledged_by) for a in active(ctx)] == [("open", "critical", "")]
    with pytest.raises(NotFound, match="no alert with id 999999"):
        alerts.acknowledge(ctx, BOB, 999999)
    with pytest.raises(InvalidInput):
        alerts.acknowledge(ctx, BOB, 0)
    alerts.resolve_alert(ctx, deployment=d.name, kind="error_rate")
    with pytest.raises(FailedPrecondition, match="already resolved"):
        alerts.acknowledge(ctx, BOB, alert.id)
    with pytest.raises(InvalidInput, match="severity"):
        alerts.open_alert(ctx, deployment=d.name, kind="error_rate", severity="panic", message="x")


def test_hysteresis_needs_consecutive_healthy_evaluations(ctx: Context, models_dir: Path) -> None:
    d = deploy_classifier(ctx, models_dir)
    key = {"deployment": d.name, "kind": "latency_p95", "version_id": d.version.id}
    alerts.open_alert(ctx, severity="warning", message="slow", **key)
    assert not alerts.observe_healthy(ctx, resolve_after=3, **key)
    assert not alerts.observe_healthy(ctx, resolve_after=3, **key)
    alerts.open_alert(ctx, severity="warning", message="slow again", **key)  # resets the streak
    assert not alerts.observe_healthy(ctx, resolve_after=3, **key)
    assert not alerts.observe_healthy(ctx, resolve_after=3, **key)
    assert alerts.observe_healthy(ctx, resolve_after=3, **key)
    assert active(ctx) == []
    assert not alerts.observe_healthy(ctx, resolve_after=3, **key)  # nothing left to resolve


def test_concurrent_openers_make_one_alert(ctx: Context, models_dir: Path) -> None:
    d = deploy_classifier(ctx, models_dir)
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            for _ in range(5):
                alerts.open_alert(
                    ctx, deployment=d.name, kind="drift", severity="warning", message="m", version_id=d.version.id
                )
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with ctx.db.session() as s:
        rows = s.scalars(select(AlertRow)).all()
        assert len(rows) == 1 and rows[0].occurrences == 30


def test_a_deployments_alerts_include_its_lost_agents(ctx: Context, models_dir: Path) -> None:
    """Issue 18 #8: an agent that served the deployment went silent; its agent_lost alert (which
    belongs to no deployment) is among the deployment's alerts, and not among another's."""
    served = deploy_classifier(ctx, models_dir)
    other = deploy_classifier(ctx, models_dir)
    for agent_id in ("agent-served", "agent-idle"):
        hello = agents.validate_hello(agent_id, agent_id, "host", "127.0.0.1:7500", {}, {})
        agents.agent_connected(ctx, hello)
    agents.record_applied(ctx, "agent-served", {served.name: 1})
    for agent_id in ("agent-served", "agent-idle"):
        alerts.open_alert(
            ctx, deployment="", kind=alert_views.AGENT_LOST, severity="warning", message="silent", agent_id=agent_id
        )
    alerts.open_alert(ctx, deployment=served.name, kind="error_rate", severity="warning", message="errors 2%")
    assert sorted((a.kind, a.agent_id) for a in alert_views.list_alerts(ctx, deployment=served.name)) == [
        ("agent_lost", "agent-served"),
        ("error_rate", ""),
    ]
    assert alert_views.list_alerts(ctx, deployment=other.name) == []
