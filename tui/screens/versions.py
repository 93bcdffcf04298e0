"""Versions: the registry. d deploys the version under the cursor, e starts it as a challenger."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable, Static

from core.client import SluiceClient
from core.sizes import byte_size
from protos import common_pb2
from tui.format import MINUTES, cell, number, vref, when
from tui.screens.base import SluiceScreen, fill_table, selected_key
from tui.screens.deploy_form import DeployForm, DeployRequest
from tui.screens.experiment_form import ExperimentForm, submit_experiment


def shape(spec: common_pb2.TensorSpec) -> str:
    return "[" + ",".join("?" if d < 0 else str(d) for d in spec.shape) + "]"


class VersionsScreen(SluiceScreen[list[common_pb2.ModelVersion]]):
    MODE = "versions"
    EVENT_KINDS = frozenset({"version"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "deploy", "Deploy it"),
        Binding("e", "experiment", "As challenger"),
    ]

    def compose_body(self) -> Iterable[Widget]:
        table: DataTable[Any] = DataTable(id="versions", cursor_type="row", zebra_stripes=True)
        table.add_column("Version", key="ref")
        table.add_column("Task", key="task")
        table.add_column("Input", key="input")
        table.add_column("Size", key="size")
        table.add_column("SHA-256", key="sha")
        table.add_column("Registered", key="created")
        yield table
        yield Static("", id="summary", classes="summary")

    def fetch(self, client: SluiceClient) -> list[common_pb2.ModelVersion]:
        return client.list_versions()

    def show(self, data: list[common_pb2.ModelVersion]) -> None:
        rows = []
        for v in data:
            inputs = ", ".join(f"{i.dtype}{shape(i)}" for i in v.inputs)
            rows.append(
                (
                    vref(v.ref),
                    [
                        cell(vref(v.ref), "bold"),
                        cell(v.task),
                        cell(inputs),
                        Text(byte_size(v.size_bytes), justify="right"),
                        cell(v.sha256[:12], "dim"),
                        cell(when(v.created_at, MINUTES)),
                    ],
                )
            )
        fill_table(self.query_one("#versions", DataTable), rows)
        self._show_summary()

    def selected(self) -> common_pb2.ModelVersion | None:
        key = selected_key(self.query_one("#versions", DataTable))
        if self.data is None or key is None:
            return None
        return next((v for v in self.data if vref(v.ref) == key), None)

    @on(DataTable.RowHighlighted, "#versions")
    def _show_summary(self) -> None:
        version = self.selected()
        text = Text()
        if version is None:
            text.append("No versions yet: `sluice version register MODEL FILE.onnx --version V`", style="dim")
        else:
            text.append(vref(version.ref), style="bold")
            text.append(f"  by {version.created_by or '-'}")
            if version.description:
                text.append(f"  {version.description}")
            if version.baseline.n_rows:
                text.append(
                    f"\nbaseline {version.baseline.n_rows} rows, {len(version.baseline.features)} features",
                    style="dim",
                )
            evaluation = version.offline_evaluation
            if evaluation.n:
                text.append(
                    f"\noffline vs {vref(evaluation.champion)} on {evaluation.deployment}: "
                    f"{evaluation.metric} {number(evaluation.challenger_metric)} vs "
                    f"{number(evaluation.champion_metric)} — {evaluation.verdict}",
                    style="green" if evaluation.challenger_wins else "yellow",
                )
        self.query_one("#summary", Static).update(text)

    def action_deploy(self) -> None:
        version = self.selected()
        if version is None:
            self.app.notify("no version selected", severity="warning")
            return
        self.app.push_screen(DeployForm(self.sluice.selected_deployment, vref(version.ref)), self._deploy)

    def _deploy(self, request: DeployRequest | None) -> None:
        if request is None:
            return
        self.sluice.perform(
            f"deploy {request.version} to {request.deployment}",
            lambda client: client.deploy(request.deployment, request.version, reason=request.reason),
            lambda d: f"{d.name}: {request.version} is the champion at 100% (generation {d.generation})",
        )

    def action_experiment(self) -> None:
        version = self.selected()
        if version is None:
            self.app.notify("no version selected", severity="warning")
            return
        form = ExperimentForm(self.sluice.selected_deployment, version.ref.model, vref(version.ref))
        self.app.push_screen(form, lambda r: submit_experiment(self.sluice, r))
