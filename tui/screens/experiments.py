"""Experiments: running and ended ones with their outcome; the one under the cursor in full below.

z pauses, g resumes, x aborts and s stops the experiment under the cursor (each asks first, with
the same dialogs as the deployment screens).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Static

from core.client import SluiceClient
from protos import controlplane_pb2
from tui.format import MINUTES, cell, decision, experiment_state, vref, when
from tui.screens.actions import EXPERIMENT_METHODS, experiment_dialog
from tui.screens.base import SluiceScreen, fill_table, selected_key
from tui.screens.confirm import ConfirmScreen
from tui.widgets.experiment import render_experiment

ACTIVE = (controlplane_pb2.EXPERIMENT_RUNNING, controlplane_pb2.EXPERIMENT_PAUSED)


@dataclass
class ExperimentsData:
    experiments: list[controlplane_pb2.Experiment]
    deployments: dict[str, controlplane_pb2.Deployment] = field(default_factory=dict)


def outcome(exp: controlplane_pb2.Experiment) -> Text:
    """What came of it: the decision while it runs, how it ended once it has."""
    if exp.state in ACTIVE:
        return decision(exp.analysis.decision)
    text = experiment_state(exp.state)
    if exp.analysis.decision:
        text.append(" · ")
        text.append_text(decision(exp.analysis.decision))
    return text


class ExperimentsScreen(SluiceScreen[ExperimentsData]):
    MODE = "experiments"
    EVENT_KINDS = frozenset({"experiment", "deployment", "traffic"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("z", "act('pause')", "Pause"),
        Binding("g", "act('resume')", "Resume"),
        Binding("x", "act('abort')", "Abort"),
        Binding("s", "act('stop')", "Stop"),
    ]

    def compose_body(self) -> Iterable[Widget]:
        table: DataTable[Any] = DataTable(id="experiments", cursor_type="row", zebra_stripes=True)
        table.add_column("Experiment", key="name")
        table.add_column("Deployment", key="deployment")
        table.add_column("Challenger", key="challenger")
        table.add_column("Step", key="step")
        table.add_column("Outcome", key="outcome")
        table.add_column("Started", key="started")
        yield table
        with VerticalScroll(id="experiment-detail"):
            yield Static("", id="summary", classes="summary")

    def fetch(self, client: SluiceClient) -> ExperimentsData:
        experiments = client.list_experiments(include_finished=True)
        # Running and paused first, then the most recent.
        experiments.sort(key=lambda e: (e.state not in ACTIVE, -e.created_at.seconds))
        deployments = {d.name: d for d in client.list_deployments()}
        return ExperimentsData(experiments, deployments)

    def show(self, data: ExperimentsData) -> None:
        rows = []
        for e in data.experiments:
            plan = list(e.config.plan)
            step = f"{e.step_index + 1}/{len(plan)} at {e.current_percent}%" if plan else f"{e.current_percent}%"
            rows.append(
                (
                    e.name,
                    [
                        cell(e.name, "bold"),
                        cell(e.config.deployment),
                        cell(vref(e.config.challenger)),
                        cell(step),
                        outcome(e),
                        cell(when(e.created_at, MINUTES)),
                    ],
                )
            )
        fill_table(self.query_one("#experiments", DataTable), rows)
        self._show_selected()

    def selected(self) -> controlplane_pb2.Experiment | None:
        key = selected_key(self.query_one("#experiments", DataTable))
        if self.data is None or key is None:
            return None
        return next((e for e in self.data.experiments if e.name == key), None)

    @on(DataTable.RowHighlighted, "#experiments")
    def _show_selected(self) -> None:
        found = self.selected()
        summary = self.query_one("#summary", Static)
        if found is None:
            summary.update(Text("No experiments yet: press e on a deployment to start one", style="dim"))
        else:
            summary.update(render_experiment(found))

    def action_act(self, verb: str) -> None:
        found = self.selected()
        if found is None or self.data is None:
            self.app.notify("no experiment selected", severity="warning")
            return
        if found.state not in ACTIVE:
            self.app.notify(f"experiment {found.name} has ended; nothing to {verb}", severity="warning")
            return
        deployment = self.data.deployments.get(found.config.deployment)
        if deployment is None:
            self.app.notify(f"deployment {found.config.deployment} is gone", severity="warning")
            return
        title, question, yes, variant = experiment_dialog(verb, deployment, found.name)
        name = found.name
        dialog = ConfirmScreen(title, question, yes=yes, variant=variant, ask_reason=True)
        method = EXPERIMENT_METHODS[verb]

        def answered(confirmed: bool | None) -> None:
            if not confirmed:
                return
            reason = dialog.reason or f"{verb} from the TUI"
            self.sluice.perform(
                f"{verb} experiment {name}",
                lambda client: client.experiment_action(method, name, reason=reason),
                lambda e: f"experiment {name}: {e.status_reason or verb + ' done'}",
            )

        self.app.push_screen(dialog, answered)
