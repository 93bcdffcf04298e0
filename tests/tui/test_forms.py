"""The checks forms make before anything is sent to the control plane."""

from __future__ import annotations

import pytest

from protos import controlplane_pb2
from tui.screens.experiment_form import parse_guardrails, parse_plan
from tui.screens.form import FormError, decimal, version_ref, whole
from tui.screens.policy_form import delay_text, parse_delay, policy_request


def test_plans_are_increasing_whole_percents() -> None:
    assert parse_plan("5,25,50,100") == [5, 25, 50, 100]
    assert parse_plan(" 10 50  100 ") == [10, 50, 100]
    assert parse_plan("") == []
    with pytest.raises(FormError, match="must increase"):
        parse_plan("50,25")
    with pytest.raises(FormError, match="between 1 and 100"):
        parse_plan("5,150")
    with pytest.raises(FormError, match="whole number"):
        parse_plan("5,x")


def test_guardrails_name_a_metric_and_a_degradation() -> None:
    # The CLI's syntax (--guardrail error_rate:0.1), and `=` as the form once asked for.
    for text in ("error_rate:0.1, p95_latency:0.25", "error_rate=0.1 p95_latency:0.25"):
        rails = parse_guardrails(text)
        assert [(g.metric, g.max_degradation) for g in rails] == [("error_rate", 0.1), ("p95_latency", 0.25)]
    assert parse_guardrails("") == []
    with pytest.raises(FormError, match="METRIC:MAX_DEGRADATION"):
        parse_guardrails("latency")
    with pytest.raises(FormError, match="METRIC:MAX_DEGRADATION"):
        parse_guardrails("speed:0.1")
    with pytest.raises(FormError, match="must be a number"):
        parse_guardrails("mae=lots")


def test_versions_and_numbers() -> None:
    assert version_ref(" cancer:v2 ") == "cancer:v2"
    with pytest.raises(FormError, match="empty"):
        version_ref("")
    with pytest.raises(FormError, match="MODEL:VERSION"):
        version_ref("cancer")
    with pytest.raises(FormError, match="may only contain"):
        version_ref("can cer:v1")
    assert whole("", "traffic", 1, 100, 10) == 10
    with pytest.raises(FormError, match="between 1 and 100"):
        whole("0", "traffic", 1, 100)
    assert decimal("", "alpha", 0, 0.5, 0.05) == 0.05
    with pytest.raises(FormError, match="between"):
        decimal("0.9", "alpha", 0, 0.5)


# ---- the health policy form ----


def typed(current: controlplane_pb2.Policy, **changes: str) -> dict[str, str]:
    """The fields as the form opens them on `current`, with `changes` typed over."""
    t = current.thresholds
    values = {
        "action": "alert",
        "after": f"{current.action_after_seconds:g}",
        "fallback": "off",
        "source": current.accuracy_source or "live",
        "delay": delay_text(current.label_delay_seconds),
        "error-rate": f"{t.error_rate_warning:g},{t.error_rate_critical:g}",
        "p95": f"{t.p95_latency_ms_warning:g},{t.p95_latency_ms_critical:g}",
        "accuracy": f"{t.accuracy_warning:g},{t.accuracy_critical:g}",
        "psi": f"{t.psi_warning:g},{t.psi_critical:g}",
        "prediction-psi": f"{t.prediction_psi_warning:g},{t.prediction_psi_critical:g}",
        "mae": f"{t.mae_warning:g},{t.mae_critical:g}",
        "rmse": f"{t.rmse_warning:g},{t.rmse_critical:g}",
    }
    values.update(changes)
    return values


CURRENT = controlplane_pb2.Policy(
    deployment="d",
    action=controlplane_pb2.POLICY_ALERT,
    action_after_seconds=300,
    thresholds=controlplane_pb2.PolicyThresholds(
        error_rate_warning=0.01, error_rate_critical=0.05, rmse_warning=2.0, rmse_critical=4.0
    ),
    accuracy_source="joined",
    label_delay_seconds=5400,
)


def test_the_form_as_opened_changes_nothing() -> None:
    assert policy_request("d", CURRENT, typed(CURRENT), "") is None


def test_only_what_was_typed_over_is_sent() -> None:
    request = policy_request("d", CURRENT, typed(CURRENT, rmse="2,3", source="live", delay="2h"), "why")
    assert request is not None
    assert [f.name for f, _ in request.thresholds.ListFields()] == ["rmse_critical"]
    assert request.thresholds.rmse_critical == 3.0
    assert request.accuracy_source == "live" and request.label_delay_seconds == 7200
    assert not request.HasField("fallback") and not request.HasField("action_after_seconds")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, ""), (5400.0, "90m"), (21600.0, "6h"), (86400.0, "1d"), (1209600.0, "2w"), (45.5, "45.5s")],
)
def test_a_delay_is_shown_as_it_is_typed_back(seconds: float, text: str) -> None:
    assert delay_text(seconds) == text
    assert parse_delay(text) == seconds


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("source", "labels", "accuracy from 'labels': write live or joined"),
        ("delay", "soon", "label delay: 'soon' is not a duration"),
        ("mae", "1", "MAE (0 off): write WARNING,CRITICAL"),
    ],
)
def test_a_bad_value_names_its_field(field: str, value: str, message: str) -> None:
    with pytest.raises(FormError, match=message.replace("(", r"\(").replace(")", r"\)")):
        policy_request("d", CURRENT, typed(CURRENT, **{field: value}), "")
