"""Key bindings that act on one deployment, shared by the Deployments list and the detail screen."""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual.binding import Binding, BindingType

from core.client import SluiceClient
from protos import controlplane_pb2
from tui.format import champion_first, split_roles, vref
from tui.screens.base import SluiceScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.deploy_form import DeployForm, DeployRequest
from tui.screens.experiment_form import ExperimentForm, submit_experiment
from tui.screens.rollback_form import RollbackForm, RollbackRequest
from tui.screens.traffic_form import TrafficForm, TrafficRequest

T = TypeVar("T")


class DeploymentActionsScreen(SluiceScreen[T]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "deploy", "Deploy"),
        Binding("t", "traffic", "Traffic"),
        Binding("e", "experiment", "Exp"),
        Binding("p", "promote", "Promote"),
        Binding("b", "rollback", "Rollback"),
        Binding("s", "stop_experiment", "Stop"),
    ]

    def target(self) -> controlplane_pb2.Deployment | None:
        """The deployment the keys act on (under the cursor, or the one shown)."""
        raise NotImplementedError

    def _require(self) -> controlplane_pb2.Deployment | None:
        deployment = self.target()
        if deployment is None:
            self.sluice.notify("no deployment selected: press d to deploy a version", severity="warning")
        return deployment

    def _require_experiment(self) -> tuple[controlplane_pb2.Deployment, str] | None:
        deployment = self._require()
        if deployment is None:
            return None
        if not deployment.experiment:
            self.sluice.notify(
                f"no experiment is running on {deployment.name}: press e to start one", severity="warning"
            )
            return None
        return deployment, deployment.experiment

    # ---- deploy ----

    def action_deploy(self) -> None:
        deployment = self.target()
        form = DeployForm(
            deployment.name if deployment else "", generation=deployment.generation if deployment else None
        )
        self.app.push_screen(form, self._deploy)

    def _deploy(self, request: DeployRequest | None) -> None:
        if request is None:
            return

        def call(client: SluiceClient) -> controlplane_pb2.Deployment:
            return client.deploy(
                request.deployment,
                request.version,
                expected_generation=request.expected_generation,
                reason=request.reason,
            )

        self.sluice.perform(
            f"deploy {request.version} to {request.deployment}",
            call,
            lambda d: f"{d.name}: {request.version} is the champion at 100% (generation {d.generation})",
        )

    # ---- traffic ----

    def action_traffic(self) -> None:
        deployment = self._require()
        if deployment is None:
            return
        weights = [(vref(s.version), s.weight) for s in champion_first(deployment.splits)]
        form = TrafficForm(deployment.name, weights, deployment.generation)
        self.app.push_screen(form, lambda request: self._traffic(deployment.name, request))

    def _traffic(self, name: str, request: TrafficRequest | None) -> None:
        if request is None:
            return

        def call(client: SluiceClient) -> controlplane_pb2.Deployment:
            return client.set_traffic(
                name, request.weights, expected_generation=request.expected_generation, reason=request.reason
            )

        summary = ", ".join(f"{v}={w}" for v, w in request.weights)
        self.sluice.perform(f"set traffic of {name}", call, lambda d: f"{name}: {summary} (generation {d.generation})")

    # ---- experiments ----

    def action_experiment(self) -> None:
        deployment = self._require()
        if deployment is None:
            return
        champion, _ = split_roles(deployment)
        model = champion.version.model if champion else ""
        self.app.push_screen(ExperimentForm(deployment.name, model), lambda r: submit_experiment(self.sluice, r))

    def action_promote(self) -> None:
        found = self._require_experiment()
        if found is None:
            return
        deployment, name = found
        _, others = split_roles(deployment)
        challenger = vref(others[0].version) if others else "the challenger"
        question = f"Promote experiment {name}: make {challenger} the champion of {deployment.name} at 100%?"
        self.app.push_screen(
            ConfirmScreen("Promote?", question, yes="Promote"),
            lambda yes: self._experiment_call(yes, "Promote", name, "promote"),
        )

    def action_stop_experiment(self) -> None:
        found = self._require_experiment()
        if found is None:
            return
        deployment, name = found
        question = (
            f"Stop experiment {name} on {deployment.name}? Its challenger goes to 0% "
            "(resume later with `sluice experiment resume`)."
        )
        self.app.push_screen(
            ConfirmScreen("Stop the experiment?", question, yes="Stop"),
            lambda yes: self._experiment_call(yes, "StopExperiment", name, "stop"),
        )

    def _experiment_call(self, confirmed: bool | None, method: str, name: str, verb: str) -> None:
        if not confirmed:
            return
        self.sluice.perform(
            f"{verb} experiment {name}",
            lambda client: client.experiment_action(method, name, reason=f"{verb} from the TUI"),
            lambda _: f"experiment {name}: {verb} done",
        )

    # ---- rollback ----

    def action_rollback(self) -> None:
        deployment = self._require()
        if deployment is None:
            return
        champion, _ = split_roles(deployment)
        current = vref(champion.version) if champion else ""
        previous = vref(deployment.previous_champion) if deployment.previous_champion.model else ""
        form = RollbackForm(deployment.name, current, previous)
        self.app.push_screen(form, lambda request: self._rollback(deployment, request))

    def _rollback(self, deployment: controlplane_pb2.Deployment, request: RollbackRequest | None) -> None:
        if request is None:
            return
        name = deployment.name

        def call(client: SluiceClient) -> controlplane_pb2.Deployment:
            return client.rollback(name, request.to, expected_generation=deployment.generation, reason=request.reason)

        def done(d: controlplane_pb2.Deployment) -> str:
            champion, _ = split_roles(d)
            now = vref(champion.version) if champion else "-"
            return f"{name} rolled back to {now} (generation {d.generation})"

        self.sluice.perform(f"roll back {name}", call, done)
