"""The checks forms make before anything is sent to the control plane."""

from __future__ import annotations

import pytest

from tui.screens.experiment_form import parse_guardrails, parse_plan
from tui.screens.form import FormError, decimal, version_ref, whole


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
