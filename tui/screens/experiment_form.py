"""Start an experiment: a challenger beside the champion, with its test and rollout plan."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from textual.containers import Horizontal
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Checkbox, Input

from core.client import ref
from core.errors import InvalidInput
from core.names import validate_name
from protos import controlplane_pb2
from tui.format import vref
from tui.host import SluiceHost
from tui.screens.form import FormError, FormScreen, decimal, entry, field, version_ref, whole

METRICS = ("accuracy", "error_rate", "mae", "p95_latency")


@dataclass(frozen=True)
class ExperimentRequest:
    name: str
    config: controlplane_pb2.ExperimentConfig
    reason: str


def submit_experiment(app: SluiceHost, request: ExperimentRequest | None) -> None:
    """Start the experiment an ExperimentForm returned (None: the form was cancelled)."""
    if request is None:
        return
    app.perform(
        f"start experiment {request.name}",
        lambda client: client.start_experiment(request.name, request.config, request.reason),
        lambda e: f"experiment {e.name} started: {vref(e.config.challenger)} at {e.current_percent}%",
    )


def parse_guardrails(text: str) -> list[controlplane_pb2.Guardrail]:
    """`error_rate:0.1, p95_latency:0.25` (the CLI's --guardrail syntax; `=` is accepted too): each
    metric may be that much worse, relative to the champion."""
    guardrails: list[controlplane_pb2.Guardrail] = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        found = re.fullmatch(r"([^:=]+)[:=](.*)", part)
        metric, value = found.groups() if found else ("", "")
        if metric not in METRICS:
            raise FormError(f"guardrail {part!r}: write METRIC:MAX_DEGRADATION, METRIC one of {', '.join(METRICS)}")
        guardrails.append(
            controlplane_pb2.Guardrail(
                metric=metric, max_degradation=decimal(value, f"the {metric} guardrail", 0.0, 10.0)
            )
        )
    return guardrails


def parse_plan(text: str) -> list[int]:
    text = text.strip()
    if not text:
        return []
    steps: list[int] = []
    for part in re.split(r"[,\s]+", text):
        if not part:
            continue
        step = whole(part, "each plan step", 1, 100)
        if steps and step <= steps[-1]:
            raise FormError(f"plan steps must increase: {step} comes after {steps[-1]}")
        steps.append(step)
    return steps


class ExperimentForm(FormScreen[ExperimentRequest]):
    SUBMIT_LABEL = "Start"

    def __init__(self, deployment: str, model: str = "", challenger: str = "") -> None:
        super().__init__()
        self.deployment = deployment
        self.model = model
        self.challenger = challenger

    def title_text(self) -> str:
        return f"Start an experiment on {self.deployment}" if self.deployment else "Start an experiment"

    def fields(self) -> Iterable[Widget]:
        if not self.deployment:
            yield field("deployment", entry(placeholder="the deployment to experiment on", id="deployment"))
        yield field("challenger", entry(self.challenger, placeholder="MODEL:VERSION", id="challenger"))
        yield field("name", entry(placeholder="blank: DEPLOYMENT-VERSION-TIME", id="name"))
        yield field("traffic %", entry(placeholder="10", type="integer", id="traffic"))
        yield field(
            "metric",
            entry(
                placeholder="accuracy | error_rate | mae | p95_latency",
                id="metric",
                suggester=SuggestFromList(METRICS),
            ),
        )
        yield field("min samples", entry(placeholder="server default", type="integer", id="min-samples"))
        yield field("alpha", entry(placeholder="0.05", type="number", id="alpha"))
        yield field(
            "min improvement",
            entry(placeholder="0 (metric units: 0.01 = 1 accuracy point)", type="number", id="min-improvement"),
        )
        yield field("plan", entry(placeholder="e.g. 5,25,50,100 (blank: fixed share)", id="plan"))
        yield field("hold seconds", entry(placeholder="per plan step, e.g. 60", type="number", id="hold"))
        yield field("guardrails", entry(placeholder="e.g. error_rate:0.1, p95_latency:0.25", id="guardrails"))
        yield Horizontal(
            Checkbox("sequential", id="sequential", compact=True),
            Checkbox("auto-promote", id="auto-promote", compact=True),
            Checkbox("shadow", id="shadow", compact=True),
            Checkbox("offline win first", id="offline-win", compact=True),
            classes="field checks",
        )
        yield field("reason", entry(placeholder="optional, for the audit log", id="reason"))

    def on_mount(self) -> None:
        self.suggest_versions("challenger", model=self.model)
        self.query_one("#challenger" if self.deployment else "#deployment", Input).focus()

    def _text(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def result(self) -> ExperimentRequest:
        deployment = self.deployment or self._text("deployment")
        challenger = version_ref(self._text("challenger"), "challenger")
        # The time keeps the default unique when the same challenger is tried again later.
        default = f"{deployment}-{challenger.split(':', 1)[1]}-{time.strftime('%m%d%H%M%S')}"
        name = self._text("name") or re.sub(r"[^A-Za-z0-9._-]", "-", default)
        try:
            validate_name("deployment", deployment)
            validate_name("experiment", name)
        except InvalidInput as exc:
            raise FormError(str(exc)) from None
        metric = self._text("metric") or "accuracy"
        if metric not in METRICS:
            raise FormError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
        plan = parse_plan(self._text("plan"))
        traffic = whole(self._text("traffic"), "traffic %", 1, 100, plan[0] if plan else 10)
        config = controlplane_pb2.ExperimentConfig(
            deployment=deployment,
            challenger=ref(challenger),
            traffic_percent=traffic,
            metric=metric,
            min_samples=whole(self._text("min-samples"), "min samples", 0, 10**9, 0),
            alpha=decimal(self._text("alpha"), "alpha", 0.0, 0.5, 0.0),
            min_improvement=decimal(self._text("min-improvement"), "min improvement", 0.0, 10.0, 0.0),
            sequential=self.query_one("#sequential", Checkbox).value,
            plan=plan,
            hold_seconds=decimal(self._text("hold"), "hold seconds", 0.0, 30 * 86400.0, 0.0),
            auto_promote=self.query_one("#auto-promote", Checkbox).value,
            shadow=self.query_one("#shadow", Checkbox).value,
            require_offline_win=self.query_one("#offline-win", Checkbox).value,
            guardrails=parse_guardrails(self._text("guardrails")),
        )
        return ExperimentRequest(name, config, self._text("reason"))
