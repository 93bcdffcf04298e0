"""What the panels print for given messages: bars, badges, numbers and the experiment panel."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from textual.app import App, ComposeResult
from textual.widgets import Label, Sparkline

from core.sizes import byte_size
from protos import common_pb2, controlplane_pb2
from tui import format as fmt
from tui.screens.actions import promote_dialog
from tui.screens.detail import drift_lines, health_reasons, labeled_lines, policy_line
from tui.widgets.experiment import render_experiment
from tui.widgets.metrics import MetricsPanel


def plain(renderable: object, width: int = 78) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_bars_badges_and_numbers() -> None:
    assert fmt.bar(100, 10).plain == "█" * 10
    assert fmt.bar(0, 10).plain == "░" * 10
    assert fmt.bar(1, 10).plain == "█" + "░" * 9  # a live arm never looks empty
    assert fmt.bar(50, 10).plain == "█" * 5 + "░" * 5
    assert fmt.bar(250, 4).plain == "████"
    split = common_pb2.TrafficSplit(
        version=common_pb2.VersionRef(model="m", version="v2"), weight=10, role=common_pb2.ROLE_CHALLENGER
    )
    assert fmt.weight_cell(split).plain == "m:v2 █░░░░  10"
    assert fmt.weight_cell(None).plain == "-"
    assert fmt.health_badge(common_pb2.HEALTH_CRITICAL).plain == "✖ critical"
    assert fmt.health_badge(common_pb2.HEALTH_HEALTHY, "short").plain == "● ok"
    assert fmt.health_badge(99, "glyph").plain == "?"
    assert fmt.percent(0.0523) == "5.2%"
    assert fmt.percent(0.012, signed=True) == "+1.2%"
    assert fmt.percent(math.nan) == "-"
    assert fmt.p_value(0.0001) == "<0.001"
    assert fmt.duration(42) == "42s"
    assert fmt.duration(150) == "2m 30s"
    assert fmt.duration(3 * 3600) == "3.0h"
    assert byte_size(660) == "660 B"
    assert byte_size(3 * 1024 * 1024) == "3.0 MiB" and byte_size(5 << 30) == "5.0 GiB"
    assert fmt.clip("a  b\nc", 80) == "a b c"
    assert fmt.clip("x" * 100, 10) == "x" * 9 + "…"


def experiment(**analysis: object) -> controlplane_pb2.Experiment:
    v1 = common_pb2.VersionRef(model="cancer", version="v1")
    v2 = common_pb2.VersionRef(model="cancer", version="v2")
    return controlplane_pb2.Experiment(
        name="cancer-web-v2",
        state=controlplane_pb2.EXPERIMENT_RUNNING,
        config=controlplane_pb2.ExperimentConfig(
            deployment="cancer-web", challenger=v2, metric="accuracy", plan=[5, 25, 50, 100], sequential=True
        ),
        step_index=1,
        current_percent=25,
        hold_remaining_seconds=95,
        analysis=controlplane_pb2.ExperimentAnalysis(
            metric="accuracy",
            arms=[
                controlplane_pb2.ArmSummary(
                    version=v1,
                    role=common_pb2.ROLE_CHAMPION,
                    requests=3000,
                    rows=3400,
                    n=1200,
                    metric=0.951,
                    ci_low=0.939,
                    ci_high=0.963,
                ),
                controlplane_pb2.ArmSummary(
                    version=v2,
                    role=common_pb2.ROLE_CHALLENGER,
                    requests=1000,
                    rows=1100,
                    n=400,
                    metric=0.968,
                    ci_low=0.950,
                    ci_high=0.986,
                ),
            ],
            relative_lift=0.018,
            relative_lift_ci_low=-0.004,
            relative_lift_ci_high=0.040,
            p_value=0.21,
            guardrails=[
                controlplane_pb2.GuardrailResult(metric="p95_latency", passed=True, ready=True, max_degradation=0.25),
                controlplane_pb2.GuardrailResult(metric="error_rate", passed=True, ready=False, max_degradation=0.01),
            ],
            **analysis,  # type: ignore[arg-type]
        ),
    )


def test_experiment_panel_shows_arms_interval_lift_decision_and_step() -> None:
    text = plain(
        render_experiment(experiment(srm_detected=False, srm_p_value=0.6, decision="no_significant_difference"))
    )
    assert "cancer-web-v2  running  step 2/4 at 25%" in text
    assert "hold 95s left" in text
    assert "plan 5→25→50→100 · sequential" in text
    assert "champion" in text and "1200" in text and "95.1%" in text and "[93.9%, 96.3%]" in text
    assert "challenger" in text and "400" in text and "96.8%" in text and "[95.0%, 98.6%]" in text
    # Predictions are rows scored, whatever the calls (a batch call of many rows is one request).
    assert "predictions" in text and "3400" in text and "1100" in text and "3000" not in text
    assert "lift +1.8% [-0.4%, +4.0%]" in text
    assert "p 0.210" in text and "no significant difference" in text
    assert "SRM ok" in text
    # A guardrail shows its allowance; one that cannot be judged yet is not drawn as passed.
    assert "p95_latency ≤25% worse ✓" in text
    assert "error_rate ≤1% worse … waiting for data" in text


def test_experiment_panel_shows_the_predictions_waiting_for_delayed_labels() -> None:
    exp = experiment(decision="not_enough_data", label_source="joined", label_delay_seconds=7200)
    exp.config.label_source, exp.config.label_delay_seconds = "joined", 7200
    champion, challenger = exp.analysis.arms
    champion.logged, champion.labels_not_due, champion.labels_overdue = 3400, 2000, 200
    challenger.logged = 400  # every one judged
    text = plain(render_experiment(exp), width=120)
    assert "labels joined, delay 2.0h" in text
    assert "waiting for labels champion 2200/3400 (2000 not due, 200 overdue)" in text
    assert "challenger 0/400 (0 not due, 0 overdue)" in text
    # An experiment on live feedback says nothing of it.
    assert "waiting for labels" not in plain(render_experiment(experiment(decision="not_enough_data")), width=120)


def test_experiment_panel_shows_the_segment_rules() -> None:
    exp = experiment(decision="not_enough_data")
    exp.config.segment_rules.add(attribute="feature.country", values=["de", "fr"])
    exp.config.segment_rules.add(attribute="age", has_range=True, min=18, max=30.5)
    text = plain(render_experiment(exp), width=160)
    assert "segment feature.country=de,fr, age=18..30.5" in text
    assert "segment" not in plain(render_experiment(experiment(decision="not_enough_data")), width=160)


def test_experiment_panel_flags_a_sample_ratio_mismatch() -> None:
    text = plain(render_experiment(experiment(srm_detected=True, srm_p_value=0.00001, decision="srm_detected")))
    assert "SRM MISMATCH (p <0.001)" in text
    assert "srm detected" in text


def test_the_promote_dialog_says_whether_the_analysis_supports_it() -> None:
    deployment = controlplane_pb2.Deployment(
        name="web",
        splits=[
            common_pb2.TrafficSplit(
                version=common_pb2.VersionRef(model="m", version="v1"), weight=50, role=common_pb2.ROLE_CHAMPION
            ),
            common_pb2.TrafficSplit(
                version=common_pb2.VersionRef(model="m", version="v2"), weight=50, role=common_pb2.ROLE_CHALLENGER
            ),
        ],
    )

    def experiment(decision: str, *guardrails: tuple[str, bool]) -> controlplane_pb2.Experiment:
        return controlplane_pb2.Experiment(
            config=controlplane_pb2.ExperimentConfig(plan=[10, 50, 100]),
            step_index=1,
            analysis=controlplane_pb2.ExperimentAnalysis(
                metric="accuracy",
                decision=decision,
                p_value=0.0004,
                guardrails=[controlplane_pb2.GuardrailResult(metric=m, passed=ok) for m, ok in guardrails],
            ),
        )

    supported = experiment("challenger_wins", ("p95_latency", True))
    title, question, yes, variant = promote_dialog(deployment, "exp", supported)
    assert (title, yes, variant) == ("Promote?", "Promote", "success")
    assert "make m:v2 the champion of web at 100%" in question
    assert "supports it at step 2/3: accuracy: challenger wins (p <0.001)" in question

    guarded = experiment("challenger_wins", ("error_rate", False))
    title, question, yes, variant = promote_dialog(deployment, "exp", guarded)
    assert (title, yes, variant) == ("Promote against the analysis?", "Promote anyway", "error")
    assert "guardrails failing: error_rate" in question

    title, question, _, _ = promote_dialog(deployment, "exp", experiment("no_significant_difference"))
    assert title == "Promote against the analysis?"
    assert "does NOT support promoting at step 2/3: accuracy: no significant difference" in question

    title, question, _, variant = promote_dialog(deployment, "exp", None)
    assert (title, variant) == ("Promote?", "warning") and "could not be read" in question


def test_the_detail_screen_says_why_a_deployment_is_not_healthy_and_what_drifted() -> None:
    v1 = common_pb2.VersionRef(model="m", version="v1")
    v2 = common_pb2.VersionRef(model="m", version="v2")
    status = controlplane_pb2.DeploymentStatus(
        deployment=controlplane_pb2.Deployment(name="web"),
        health=common_pb2.HEALTH_CRITICAL,
        versions=[
            controlplane_pb2.VersionStatus(
                version=v1,
                role=common_pb2.ROLE_CHAMPION,
                health=common_pb2.HEALTH_WARNING,
                reasons=["feature mean_texture drifted: PSI 0.140 >= 0.1"],
                drift=[
                    controlplane_pb2.FeatureDrift(feature="mean_texture", psi=0.14, ks_p_value=0.0002, drifted=True),
                    controlplane_pb2.FeatureDrift(feature="mean_radius", psi=0.01, ks_p_value=0.6, drifted=False),
                ],
            ),
            controlplane_pb2.VersionStatus(
                version=v2,
                role=common_pb2.ROLE_CHALLENGER,
                health=common_pb2.HEALTH_CRITICAL,
                reasons=["p95 latency 312.0 ms > 200 ms", "error rate 6.0% > 5.0%"],
            ),
        ],
    )
    assert health_reasons(status).plain == (
        "✖ m:v2 (challenger): p95 latency 312.0 ms > 200 ms; error rate 6.0% > 5.0%\n"
        "▲ m:v1 (champion): feature mean_texture drifted: PSI 0.140 >= 0.1"
    )
    healthy = controlplane_pb2.DeploymentStatus(health=common_pb2.HEALTH_HEALTHY, versions=status.versions)
    assert health_reasons(healthy).plain == "" and health_reasons(None).plain == ""

    now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    opened = Timestamp()
    opened.FromDatetime(now - timedelta(minutes=14))
    drift_alert = controlplane_pb2.Alert(kind="drift", subject="mean_texture", opened_at=opened)
    assert drift_lines(status, [drift_alert], now).plain == (
        f"{'mean_texture':<24} m:v1 (champion)  PSI 0.140  KS p <0.001  since {fmt.ago(opened, now)}"
    )
    assert drift_lines(healthy, [], now).plain.startswith("mean_texture")
    calm = controlplane_pb2.DeploymentStatus(versions=[status.versions[0]])
    del calm.versions[0].drift[0]
    assert drift_lines(calm, [], now).plain == "no feature drifted (1 checked)"


async def test_the_sparklines_leave_out_the_bucket_still_filling() -> None:
    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield MetricsPanel()

    points = [controlplane_pb2.MetricPoint(requests_per_second=r, accuracy=math.nan) for r in (10.0, 12.0, 11.0, 1.5)]
    app = One()
    async with app.run_test() as pilot:
        panel = app.query_one(MetricsPanel)
        panel.show(points)
        await pilot.pause()
        assert list(app.query_one("#spark-rps", Sparkline).data or []) == [10.0, 12.0, 11.0]
        assert str(app.query_one("#last-rps", Label).render()) == fmt.rate(11.0)
        assert str(app.query_one("#last-accuracy", Label).render()) == "-"


def test_the_detail_screen_shows_the_policy_its_pending_action_and_what_it_did() -> None:
    now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

    def ts(seconds_ago: float) -> Timestamp:
        stamp = Timestamp()
        stamp.FromDatetime(now - timedelta(seconds=seconds_ago))
        return stamp

    policy = controlplane_pb2.Policy(
        action=controlplane_pb2.POLICY_ROLLBACK_CHAMPION,
        action_after_seconds=300,
        critical_since=ts(130),
        acts_at=ts(130 - 300),
        last_action="rolled back to m:v1: critical for 301 s: m:v2 (champion): error_rate 0.4 > 0.05",
        last_action_at=ts(3600),
    )
    text = policy_line(policy, now).plain
    assert text.startswith("policy rollback champion after 5m 00s critical")
    assert f"critical since {fmt.ago(ts(130), now)}: acts in 2m 50s" in text
    assert "rolled back to m:v1" in text
    calm = controlplane_pb2.Policy(action=controlplane_pb2.POLICY_NONE)
    assert policy_line(calm, now).plain == "policy no automatic action"


def test_the_detail_screen_shows_label_joined_figures_per_version_with_coverage() -> None:
    def version(name: str, **figures: float) -> controlplane_pb2.VersionStatus:
        return controlplane_pb2.VersionStatus(
            version=common_pb2.VersionRef(model="m", version=name),
            role=common_pb2.ROLE_CHAMPION,
            labeled=controlplane_pb2.LabeledFigures(**figures),  # type: ignore[arg-type]
        )

    status = controlplane_pb2.DeploymentStatus(
        versions=[
            version("v1", predictions=1000, labeled=750, waiting=250, accuracy=0.912),
            version("v2", predictions=10, labeled=10, waiting=0, mae=0.5, rmse=0.75),
            controlplane_pb2.VersionStatus(version=common_pb2.VersionRef(model="m", version="v3")),
        ]
    )
    assert labeled_lines(status).plain == (
        "m:v1 (champion)  accuracy 0.9120  750/1000 labeled (75%)  250 waiting for a label\n"
        "m:v2 (champion)  MAE 0.5  RMSE 0.75  10/10 labeled (100%)"
    )
    # Nothing logged: no line, so the section stays hidden.
    assert labeled_lines(controlplane_pb2.DeploymentStatus(versions=[status.versions[2]])).plain == ""
