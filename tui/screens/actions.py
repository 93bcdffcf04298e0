"""Key bindings that act on one deployment, shared by the Deployments list and the detail screen."""

from __future__ import annotations

import contextlib
from typing import ClassVar, TypeVar

from textual import work
from textual.binding import Binding, BindingType

from core.client import ClientError, SluiceClient
from core.vocabulary import PolicyAction, word_of
from protos import controlplane_pb2
from tui.format import champion_first, p_value, split_roles, vref
from tui.screens.base import SluiceScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.deploy_form import DeployForm, DeployRequest
from tui.screens.experiment_form import ExperimentForm, submit_experiment
from tui.screens.policy_form import PolicyForm
from tui.screens.rollback_form import RollbackForm, RollbackRequest
from tui.screens.traffic_form import TrafficForm, TrafficRequest

T = TypeVar("T")

EXPERIMENT_METHODS = {
    "pause": "PauseExperiment",
    "resume": "ResumeExperiment",
    "stop": "StopExperiment",
    "abort": "AbortExperiment",
}


def experiment_dialog(verb: str, deployment: controlplane_pb2.Deployment, name: str) -> tuple[str, str, str, str]:
    """(title, question, yes label, button variant): what the action does, said before it is done."""
    champion, others = split_roles(deployment)
    challenger = vref(others[0].version) if others else "the challenger"
    percent = others[0].weight if others else 0
    serving = vref(champion.version) if champion else "the champion"
    where = f"experiment {name} on {deployment.name}"
    if verb == "pause":
        return (
            "Pause the experiment?",
            f"Pause {where}: the traffic stays as it is ({challenger} keeps {percent}%). The rollout clock "
            "stops and no gate is checked (no step, no promotion, no automatic rollback) until you resume "
            "with g, which continues the step's hold where it stopped.",
            "Pause",
            "warning",
        )
    if verb == "resume":
        return (
            "Resume the experiment?",
            f"Resume {where}: the rollout runs again at its current step ({challenger} at {percent}%) and its "
            "gates are checked again. After a pause by an operator the step's hold continues where it "
            "stopped; after the engine paused it (sample ratio mismatch, inconclusive last gate) the hold "
            "starts over.",
            "Resume",
            "primary",
        )
    if verb == "stop":
        return (
            "Stop the experiment? This is final",
            f"Stop {where}: {challenger} goes to 0% now and {serving} serves 100%. The experiment ends as "
            "stopped, its analysis kept as the outcome. A stopped experiment cannot be resumed "
            "(to hold it and go on later, pause with z instead).",
            "Stop",
            "error",
        )
    return (
        "Abort the experiment? This is final",
        f"Abort {where}: {challenger} goes to 0% now and {serving} serves 100%. The experiment ends as "
        "aborted: cancelled, its result is no verdict. An aborted experiment cannot be resumed.",
        "Abort",
        "error",
    )


def promote_dialog(
    deployment: controlplane_pb2.Deployment, name: str, experiment: controlplane_pb2.Experiment | None
) -> tuple[str, str, str, str]:
    """(title, question, yes label, button variant) of the promote dialog: the analysis's current
    decision, and a warning when it does not support promoting (the promotion is then on you)."""
    _, others = split_roles(deployment)
    challenger = vref(others[0].version) if others else "the challenger"
    question = f"Promote experiment {name}: make {challenger} the champion of {deployment.name} at 100%."
    if experiment is None:
        return (
            "Promote?",
            question + " The analysis could not be read just now: check the experiment panel first.",
            "Promote",
            "warning",
        )
    analysis = experiment.analysis
    said = analysis.decision.replace("_", " ") or "nothing yet"
    steps = len(experiment.config.plan)
    where = f"at step {experiment.step_index + 1}/{steps}" if steps else ""
    failed = [g.metric for g in analysis.guardrails if not g.passed]
    evidence = f"{analysis.metric or 'the metric'}: {said}"
    if analysis.decision and analysis.decision != "not_enough_data":
        evidence += f" (p {p_value(analysis.p_value)})"
    if analysis.decision == "challenger_wins" and not failed:
        return ("Promote?", f"{question}\nThe analysis supports it {where}: {evidence}.", "Promote", "success")
    warning = f"{question}\n⚠ The analysis does NOT support promoting {where}: {evidence}"
    if failed:
        warning += f"; guardrails failing: {', '.join(failed)}"
    warning += ". Promoting now overrides the experiment, and the audit records that it went against the analysis."
    return ("Promote against the analysis?", warning, "Promote anyway", "error")


class DeploymentActionsScreen(SluiceScreen[T]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "deploy", "Deploy"),
        Binding("t", "traffic", "Traffic"),
        Binding("e", "experiment", "Exp"),
        Binding("p", "promote", "Promote"),
        Binding("b", "rollback", "Rollback"),
        Binding("s", "stop_experiment", "Stop"),
        # Listed by `?`; the footer has no room for them at 80 columns.
        Binding("z", "pause_experiment", "Pause", show=False),
        Binding("g", "resume_experiment", "Resume", show=False),
        Binding("x", "abort_experiment", "Abort", show=False),
        Binding("o", "policy", "Policy", show=False),
    ]

    def target(self) -> controlplane_pb2.Deployment | None:
        """The deployment the keys act on (under the cursor, or the one shown)."""
        raise NotImplementedError

    def _require(self) -> controlplane_pb2.Deployment | None:
        deployment = self.target()
        if deployment is None:
            self.app.notify("no deployment selected: press d to deploy a version", severity="warning")
        return deployment

    def _require_experiment(self) -> tuple[controlplane_pb2.Deployment, str] | None:
        deployment = self._require()
        if deployment is None:
            return None
        if not deployment.experiment:
            self.app.notify(f"no experiment is running on {deployment.name}: press e to start one", severity="warning")
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
        self._ask_promote(deployment, name)

    @work(thread=True, group="promote-dialog", exclusive=True, exit_on_error=False)
    def _ask_promote(self, deployment: controlplane_pb2.Deployment, name: str) -> None:
        """Read the experiment's current analysis (I/O, so in a worker), then ask."""
        try:
            experiment: controlplane_pb2.Experiment | None = self.sluice.client.get_experiment(name)
        except Exception:  # noqa: BLE001 - the dialog says the analysis could not be read
            experiment = None
        title, question, yes, variant = promote_dialog(deployment, name, experiment)
        dialog = ConfirmScreen(title, question, yes=yes, variant=variant, ask_reason=True)
        with contextlib.suppress(RuntimeError):  # the app may be closing meanwhile
            self.app.call_from_thread(
                self.app.push_screen,
                dialog,
                lambda confirmed: self._experiment_call(confirmed, "Promote", name, "promote", dialog.reason),
            )

    def action_stop_experiment(self) -> None:
        self._ask_experiment("stop")

    def action_pause_experiment(self) -> None:
        self._ask_experiment("pause")

    def action_resume_experiment(self) -> None:
        self._ask_experiment("resume")

    def action_abort_experiment(self) -> None:
        self._ask_experiment("abort")

    def _ask_experiment(self, verb: str) -> None:
        found = self._require_experiment()
        if found is None:
            return
        deployment, name = found
        title, question, yes, variant = experiment_dialog(verb, deployment, name)
        dialog = ConfirmScreen(title, question, yes=yes, variant=variant, ask_reason=True)
        self.app.push_screen(
            dialog,
            lambda confirmed: self._experiment_call(confirmed, EXPERIMENT_METHODS[verb], name, verb, dialog.reason),
        )

    def _experiment_call(self, confirmed: bool | None, method: str, name: str, verb: str, reason: str = "") -> None:
        if not confirmed:
            return

        def done(result: object) -> str:
            if isinstance(result, controlplane_pb2.Experiment) and result.status_reason:
                return f"experiment {name}: {result.status_reason}"
            return f"experiment {name}: {verb} done"

        self.sluice.perform(
            f"{verb} experiment {name}",
            lambda client: client.experiment_action(method, name, reason=reason or f"{verb} from the TUI"),
            done,
        )

    # ---- health policy ----

    def action_policy(self) -> None:
        deployment = self._require()
        if deployment is not None:
            self._open_policy(deployment.name)

    @work(thread=True, group="policy-form", exclusive=True, exit_on_error=False)
    def _open_policy(self, name: str) -> None:
        """Read the policy in force (I/O, so in a worker), then open the form on it."""
        try:
            current = self.sluice.client.get_policy(name)
        except ClientError as exc:
            self.app.notify(f"cannot read the policy of {name}: {exc.message}", severity="error")
            return
        with contextlib.suppress(RuntimeError):  # the app may be closing meanwhile
            self.app.call_from_thread(self.app.push_screen, PolicyForm(name, current), self._set_policy)

    def _set_policy(self, request: controlplane_pb2.SetPolicyRequest | None) -> None:
        if request is None:
            return
        self.sluice.perform(
            f"set the policy of {request.deployment}",
            lambda client: client.set_policy(request),
            lambda p: f"{p.deployment}: policy {word_of(PolicyAction, p.action)} after {p.action_after_seconds:g} s",
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
