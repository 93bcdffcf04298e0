"""Operators' workflows driven by key presses in the real app against a real control plane.

Each step is checked in the control plane's own state: deployments, history and the audit log.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from controlplane.monitoring.alerts import open_alert
from controlplane.registry import find_version
from core.client import ClientError, SluiceClient
from protos import common_pb2, controlplane_pb2
from tests.controlplane.experiments.support import add_window
from tests.harness import ServerThread, unique
from tests.tui.conftest import Registered
from tests.tui.helpers import (
    confirm,
    cursor_to,
    eventually,
    focus_field,
    loaded,
    make_app,
    notices_with,
    open_detail,
    open_form,
    type_text,
    until,
)
from tui.format import vref
from tui.screens.alert_detail import AlertDetailScreen, alert_details
from tui.screens.alerts import AlertsScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.deploy_form import DeployForm
from tui.screens.deployments import DeploymentsScreen
from tui.screens.detail import DeploymentDetailScreen
from tui.screens.experiment_form import ExperimentForm
from tui.screens.experiments import ExperimentsScreen
from tui.screens.policy_form import PolicyForm
from tui.screens.rollback_form import RollbackForm
from tui.screens.traffic_form import TrafficForm
from tui.widgets.navbar import NavBar
from tui.widgets.traffic import TrafficBars


def weights(deployment: controlplane_pb2.Deployment) -> dict[str, tuple[int, int]]:
    return {vref(s.version): (s.weight, s.role) for s in deployment.splits}


def deployment_if(client: SluiceClient, name: str) -> controlplane_pb2.Deployment | None:
    try:
        return client.get_deployment(name)
    except ClientError as exc:
        if exc.code == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def test_deploy_set_traffic_and_roll_back_by_keys(
    shared_server: ServerThread, client: SluiceClient, registered: Registered
) -> None:
    name = unique("tui-dep")
    app = make_app(shared_server.address)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, DeploymentsScreen)
        await until(pilot, lambda: app.connection == "connected", "the event stream")

        # d: deploy v1 to a new deployment.
        await open_form(pilot, "d", DeployForm)
        await focus_field(pilot, "deployment")
        await type_text(pilot, name, clear=True)
        await focus_field(pilot, "version")
        await type_text(pilot, registered.v1, clear=True)
        await focus_field(pilot, "reason")
        await type_text(pilot, "first launch")
        await pilot.press("enter")
        deployed = await eventually(pilot, lambda: deployment_if(client, name), "the deployment")
        assert weights(deployed) == {registered.v1: (100, common_pb2.ROLE_CHAMPION)}
        audit = client.audit(name)
        assert [e.action for e in audit] == ["deploy"]
        assert "first launch" in audit[0].details_json

        # The new row arrives through the event stream; enter opens its detail.
        detail = await open_detail(pilot, name)
        bars = detail.query_one("#traffic", TrafficBars)
        assert [vref(s.version) for s in bars.splits] == [registered.v1]

        # t: 90/10 between v1 and v2.
        await open_form(pilot, "t", TrafficForm)
        await focus_field(pilot, "weight-0")
        await type_text(pilot, "90", clear=True)
        await focus_field(pilot, "new-version")
        await type_text(pilot, registered.v2)
        await focus_field(pilot, "new-weight")
        await type_text(pilot, "10")
        await pilot.press("enter")
        split = await eventually(
            pilot,
            lambda: len(client.get_deployment(name).splits) == 2 and client.get_deployment(name),
            "traffic",
        )
        assert weights(split) == {
            registered.v1: (90, common_pb2.ROLE_CHAMPION),
            registered.v2: (10, common_pb2.ROLE_CHALLENGER),
        }
        assert client.history(name)[0].action == "traffic.set"
        # The detail screen follows the change by itself (WatchEvents), no key pressed.
        await until(pilot, lambda: len(bars.splits) == 2, "the traffic bars to show both versions")

        # b with nothing to roll back to: the control plane says why, nothing changes, no crash.
        await open_form(pilot, "b", RollbackForm)
        await pilot.press("enter")
        await until(
            pilot,
            lambda: notices_with(app, "error", "no earlier champion that was not itself rolled back"),
            "the refusal",
        )
        assert client.get_deployment(name).generation == split.generation

        # b to a named version (v2), then b again back to the previous champion (v1).
        await open_form(pilot, "b", RollbackForm)
        await focus_field(pilot, "to")
        await type_text(pilot, registered.v2)
        await pilot.press("enter")
        to_v2 = await eventually(
            pilot,
            lambda: client.get_deployment(name).generation > split.generation and client.get_deployment(name),
            "the rollback to v2",
        )
        assert weights(to_v2) == {registered.v2: (100, common_pb2.ROLE_CHAMPION)}
        await until(
            pilot,
            lambda: detail.data is not None and detail.data.deployment.generation == to_v2.generation,
            "the detail screen to show the rollback",
        )

        # b with a blank target: v1 was rolled back (to v2), so it is not restored by default
        form = await open_form(pilot, "b", RollbackForm)
        assert "none left" in " ".join(str(w.render()) for w in form.query(Static))
        await pilot.press("enter")
        await until(
            pilot,
            lambda: notices_with(app, "error", f"not itself rolled back (serving {registered.v2}=100%)"),
            "the refusal of a rollback onto a rolled-back version",
        )
        await open_form(pilot, "b", RollbackForm)
        await focus_field(pilot, "to")
        await type_text(pilot, registered.v1)  # named: an operator's deliberate choice
        await pilot.press("enter")
        back = await eventually(
            pilot,
            lambda: client.get_deployment(name).generation > to_v2.generation and client.get_deployment(name),
            "the rollback to the previous champion",
        )
        assert weights(back) == {registered.v1: (100, common_pb2.ROLE_CHAMPION)}
        assert [e.action for e in client.history(name)] == ["rollback", "rollback", "traffic.set", "deploy"]
        assert [e.action for e in client.audit(name)] == ["rollback", "rollback", "traffic.set", "deploy"]
        assert not notices_with(app, "error", "unexpected")


async def test_rejected_input_changes_nothing(
    shared_server: ServerThread, client: SluiceClient, registered: Registered
) -> None:
    name = unique("tui-bad")
    client.deploy(name, registered.v1)
    app = make_app(shared_server.address)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_detail(pilot, name)

        # Weights that do not sum to 100 never leave the form.
        form = await open_form(pilot, "t", TrafficForm)
        await focus_field(pilot, "weight-0")
        await type_text(pilot, "80", clear=True)
        await pilot.press("enter")
        error = form.query_one("#form-error")
        await until(pilot, lambda: "sum to 80" in str(error.render()), "the form's error line")
        await pilot.press("escape")

        # A version the registry does not know: the server's NOT_FOUND becomes a notification.
        await open_form(pilot, "d", DeployForm)
        await focus_field(pilot, "version")
        await type_text(pilot, f"{registered.model}:v404", clear=True)
        await pilot.press("enter")
        await until(pilot, lambda: notices_with(app, "error", "v404"), "the NOT_FOUND notification")

        # Someone else changes the traffic while the form is open: the stale form is refused.
        await open_form(pilot, "t", TrafficForm)
        await asyncio.to_thread(client.set_traffic, name, {registered.v1: 50, registered.v2: 50})
        await focus_field(pilot, "weight-0")
        await type_text(pilot, "70", clear=True)
        await focus_field(pilot, "new-version")
        await type_text(pilot, registered.v2)
        await focus_field(pilot, "new-weight")
        await type_text(pilot, "30")
        await pilot.press("enter")
        await until(pilot, lambda: notices_with(app, "error", "generation"), "the conflict notification")
        assert {w for w, _ in weights(client.get_deployment(name)).values()} == {50}
        assert isinstance(app.screen, DeploymentDetailScreen)


async def start_experiment_by_keys(pilot: Pilot[Any], challenger: str, traffic: int) -> None:
    await open_form(pilot, "e", ExperimentForm)
    await focus_field(pilot, "challenger")
    await type_text(pilot, challenger, clear=True)
    await focus_field(pilot, "traffic")
    await type_text(pilot, str(traffic))
    await focus_field(pilot, "plan")
    await type_text(pilot, f"{traffic},50,100")
    await focus_field(pilot, "hold")
    await type_text(pilot, "3600")
    await pilot.press("enter")


async def test_experiment_promote_stop_and_roll_back_by_keys(
    shared_server: ServerThread, client: SluiceClient, registered: Registered
) -> None:
    name = unique("tui-exp")
    client.deploy(name, registered.v1, reason="launch")
    app = make_app(shared_server.address)
    async with app.run_test(size=(80, 24)) as pilot:
        detail = await open_detail(pilot, name)

        # e: v2 as challenger at 10% with a plan; the experiment runs on the control plane.
        await start_experiment_by_keys(pilot, registered.v2, 10)
        experiment = await eventually(pilot, lambda: client.get_deployment(name).experiment, "the experiment")
        assert experiment.startswith(f"{name}-v2-")
        running = client.get_experiment(experiment)
        assert running.state == controlplane_pb2.EXPERIMENT_RUNNING
        assert list(running.config.plan) == [10, 50, 100]
        assert weights(client.get_deployment(name))[registered.v2][0] == 10
        await until(
            pilot,
            lambda: detail.data is not None and detail.data.experiment is not None,
            "the experiment panel",
        )

        # p asks first and warns: nothing has been measured yet, so the analysis does not support it.
        question = await ask(pilot, "p")
        assert question.startswith("Promote against the analysis?"), question
        assert "does NOT support promoting at step 1/3: accuracy: not enough data" in question
        await pilot.press("y")
        promoted = await eventually(
            pilot,
            lambda: client.get_experiment(experiment).state == controlplane_pb2.EXPERIMENT_PROMOTED,
            "the promotion",
        )
        assert promoted
        assert weights(client.get_deployment(name)) == {registered.v2: (100, common_pb2.ROLE_CHAMPION)}

        # b: back to the previous champion, v1.
        await until(
            pilot,
            lambda: detail.data is not None and not detail.data.deployment.experiment,
            "the detail screen to see the promotion",
        )
        await open_form(pilot, "b", RollbackForm)
        await pilot.press("enter")
        await eventually(
            pilot,
            lambda: weights(client.get_deployment(name)) == {registered.v1: (100, common_pb2.ROLE_CHAMPION)},
            "the rollback",
        )

        # e again, then s (asks first): the experiment stops, its challenger leaves the traffic.
        await start_experiment_by_keys(pilot, registered.v2, 20)
        await eventually(pilot, lambda: client.get_deployment(name).experiment, "the second experiment")
        second = client.get_deployment(name).experiment
        await until(
            pilot,
            lambda: detail.data is not None and detail.data.deployment.experiment == second,
            "the detail screen to see the second experiment",
        )
        await confirm(pilot, "s")
        await eventually(
            pilot,
            lambda: client.get_experiment(second).state == controlplane_pb2.EXPERIMENT_STOPPED,
            "the stop",
        )
        actions = [e.action for e in client.audit(name)]
        for action in ("deploy", "experiment.start", "promote", "rollback", "experiment.stop"):
            assert action in actions, actions
        (promote,) = [e for e in client.audit(name) if e.action == "promote"]
        assert '"against_analysis": true' in promote.details_json


async def ask(pilot: Pilot[Any], key: str) -> str:
    """Press `key` and return the text of the confirmation it opens."""
    await pilot.press(key)
    screen = await until(
        pilot, lambda: pilot.app.screen if isinstance(pilot.app.screen, ConfirmScreen) else None, "the confirmation"
    )
    return f"{screen.title_text}\n{screen.question}"


async def test_pause_resume_stop_and_abort_say_what_they_do(
    shared_server: ServerThread, client: SluiceClient, registered: Registered
) -> None:
    name = unique("tui-pause")
    client.deploy(name, registered.v1, reason="launch")
    model, _, version = registered.v2.partition(":")

    def start(experiment: str) -> None:
        config = controlplane_pb2.ExperimentConfig(
            deployment=name,
            challenger=common_pb2.VersionRef(model=model, version=version),
            plan=[20, 50, 100],
            hold_seconds=3600,
        )
        client.start_experiment(experiment, config)

    def state(experiment: str) -> int:
        return client.get_experiment(experiment).state

    first = unique("exp")
    start(first)
    app = make_app(shared_server.address)
    async with app.run_test(size=(80, 24)) as pilot:
        detail = await open_detail(pilot, name)
        await until(pilot, lambda: detail.data is not None and detail.data.experiment is not None, "the panel")

        text = await ask(pilot, "z")
        assert "traffic stays as it is" in text and f"{registered.v2} keeps 20%" in text
        assert "rollout clock stops" in text and "no automatic rollback" in text
        await pilot.press("y")
        await eventually(pilot, lambda: state(first) == controlplane_pb2.EXPERIMENT_PAUSED, "the pause")
        paused = client.get_experiment(first)
        assert weights(client.get_deployment(name))[registered.v2][0] == 20  # traffic kept
        assert paused.HasField("paused_at") and "paused by" in paused.status_reason

        text = await ask(pilot, "g")
        assert "hold continues where it stopped" in text
        await pilot.press("y")
        await eventually(pilot, lambda: state(first) == controlplane_pb2.EXPERIMENT_RUNNING, "the resume")
        resumed = client.get_experiment(first)
        # no agent serves this server's deployments: the step never went live, its hold waits for them
        assert resumed.step_index == 0
        await until(
            pilot, lambda: notices_with(app, "information", "hold starts once every agent serves it"), "the notice"
        )
        assert resumed.hold_remaining_seconds == paused.hold_remaining_seconds == 3600

        text = await ask(pilot, "s")
        assert "This is final" in text and "cannot be resumed" in text and "pause with z" in text
        assert "resume later" not in text
        await pilot.press("n")  # cancelled: nothing happens
        await until(pilot, lambda: not isinstance(pilot.app.screen, ConfirmScreen), "the dialog to close")
        assert state(first) == controlplane_pb2.EXPERIMENT_RUNNING

        text = await ask(pilot, "x")
        assert "ends as aborted" in text and "cannot be resumed" in text and f"{registered.v2} goes to 0%" in text
        await pilot.press("y")
        await eventually(pilot, lambda: state(first) == controlplane_pb2.EXPERIMENT_ABORTED, "the abort")
        assert weights(client.get_deployment(name)) == {registered.v1: (100, common_pb2.ROLE_CHAMPION)}
        actions = [e.action for e in client.audit(first)]  # pause and resume are the experiment's own
        assert "experiment.pause" in actions and "experiment.resume" in actions, actions
        assert "experiment.abort" in [e.action for e in client.audit(name)]  # the abort changed the deployment


async def test_the_detail_screen_says_why_a_deployment_is_critical(
    shared_server: ServerThread, client: SluiceClient, registered: Registered
) -> None:
    """Reported windows with 40% failures make the champion critical; the reason is at the top."""
    name = unique("tui-why")
    client.deploy(name, registered.v1, reason="launch")
    model, version = registered.v1.split(":")
    with shared_server.ctx.db.session() as session:
        version_id = find_version(session, model, version).id
    now = datetime.now(UTC)
    for second in range(5):
        at = now - timedelta(seconds=5 - second)
        add_window(shared_server.ctx, name, version_id, "", at, requests=100, errors=40)
    (status,) = client.status(name)
    assert status.health == common_pb2.HEALTH_CRITICAL, status
    said = "; ".join(status.versions[0].reasons)
    app = make_app(shared_server.address)
    async with app.run_test(size=(80, 24)) as pilot:
        detail = await open_detail(pilot, name)
        reasons = detail.query_one("#health-reasons", Static)
        await until(pilot, lambda: said in str(reasons.render()), f"the reason for critical health: {said}")
        assert str(reasons.render()).startswith(f"✖ {registered.v1} (champion): {said}")
        assert "error" in said
        assert detail.query_one("#detail-title", Static).render().plain.count("critical") == 1  # type: ignore[attr-defined]


async def test_a_new_alert_is_hard_to_miss(shared_server: ServerThread, client: SluiceClient) -> None:
    """A toast that stays, and the active-alert count on the nav bar's Alerts entry."""
    name = unique("tui-alert")
    app = make_app(shared_server.address)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, DeploymentsScreen)
        await until(pilot, lambda: app.open_alerts >= 0, "the count of active alerts")
        before = app.open_alerts
        open_alert(
            shared_server.ctx, deployment=name, kind="error_rate", severity="critical", message="error rate 9% > 5%"
        )
        await until(pilot, lambda: notices_with(app, "error", f"{name}: alert "), "the new alert's toast")
        # other tests share this control plane: their alerts may open meanwhile too
        await until(pilot, lambda: app.open_alerts >= before + 1, "the count to go up")
        await until(
            pilot, lambda: f"4 Alerts {app.open_alerts}" in str(app.screen.query_one(NavBar).render()), "the nav bar"
        )


async def test_the_experiments_screen_lists_them_and_pauses_resumes_and_aborts(
    shared_server: ServerThread, client: SluiceClient, registered: Registered
) -> None:
    name = unique("tui-exps")
    client.deploy(name, registered.v1, reason="launch")
    model, _, version = registered.v2.partition(":")
    experiment = unique("exp")
    config = controlplane_pb2.ExperimentConfig(
        deployment=name, challenger=common_pb2.VersionRef(model=model, version=version), plan=[10, 100]
    )
    client.start_experiment(experiment, config)

    def state() -> int:
        return client.get_experiment(experiment).state

    app = make_app(shared_server.address)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, DeploymentsScreen)
        await pilot.press("6")
        screen = await loaded(pilot, ExperimentsScreen)
        table = screen.query_one("#experiments", DataTable)
        await until(pilot, lambda: experiment in table.rows, "the experiment's row")
        await cursor_to(pilot, table, experiment)
        assert str(table.get_cell(experiment, "step")) == "1/2 at 10%"
        selected = await eventually(pilot, screen.selected, "the selected experiment")
        assert selected.name == experiment  # its panel is drawn below the list

        for key, wanted, what in (
            ("z", controlplane_pb2.EXPERIMENT_PAUSED, "the pause"),
            ("g", controlplane_pb2.EXPERIMENT_RUNNING, "the resume"),
        ):
            await ask(pilot, key)
            await pilot.press("y")
            await eventually(pilot, lambda wanted=wanted: state() == wanted, what)  # type: ignore[misc]
        # The dialog asks for a reason too: typed there, enter confirms and the audit keeps it.
        await ask(pilot, "x")
        await focus_field(pilot, "reason")
        await type_text(pilot, "no winner in sight")
        await pilot.press("enter")
        await eventually(pilot, lambda: state() == controlplane_pb2.EXPERIMENT_ABORTED, "the abort")
        (abort,) = [e for e in client.audit(name) if e.action == "experiment.abort"]
        assert abort.principal and "no winner in sight" in abort.details_json
        # Ended experiments stay on the list with how they ended.
        await until(pilot, lambda: "aborted" in str(table.get_cell(experiment, "outcome")), "the outcome")
        await pilot.press("z")
        await until(pilot, lambda: notices_with(app, "warning", "has ended; nothing to pause"), "the refusal")
        assert state() == controlplane_pb2.EXPERIMENT_ABORTED


async def test_alerts_open_in_full_and_are_acknowledged_after_asking(
    shared_server: ServerThread, client: SluiceClient
) -> None:
    name = unique("tui-ack")
    long_message = "feature mean_texture drifted: PSI 0.412 >= 0.25, KS p < 0.001; " + "detail " * 20
    for kind in ("drift", "error_rate"):
        open_alert(shared_server.ctx, deployment=name, kind=kind, severity="warning", message=f"{kind}: {long_message}")
    (first, second) = sorted((a for a in client.alerts() if a.deployment == name), key=lambda a: a.id)
    app = make_app(shared_server.address)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, DeploymentsScreen)
        await pilot.press("4")
        screen = await loaded(pilot, AlertsScreen)
        table = screen.query_one("#alerts", DataTable)
        await until(pilot, lambda: str(second.id) in table.rows, "the alerts")
        await cursor_to(pilot, table, str(second.id))
        await pilot.press("j")  # newest first: down is the older one
        await until(pilot, lambda: screen.selected() is not None and screen.selected().id == first.id, "j")  # type: ignore[union-attr]
        await pilot.press("k")
        await until(pilot, lambda: screen.selected() is not None and screen.selected().id == second.id, "k")  # type: ignore[union-attr]

        # enter: the whole alert, not a clipped line
        await pilot.press("enter")
        detail = await until(
            pilot, lambda: pilot.app.screen if isinstance(pilot.app.screen, AlertDetailScreen) else None, "the alert"
        )
        assert detail.alert.id == second.id and "acknowledged" in plain_of(detail)
        whole = " ".join(f"error_rate: {long_message}".split())
        assert whole in " ".join(plain_of(detail).split())  # every word, wrapped, none cut
        await pilot.press("escape")
        await until(pilot, lambda: pilot.app.screen is screen, "the list again")

        # a asks first; n changes nothing, y acknowledges
        text = await ask(pilot, "a")
        assert f"Acknowledge alert #{second.id}" in text and "stays active" in text
        await pilot.press("n")
        await until(pilot, lambda: pilot.app.screen is screen, "the dialog to close")
        assert not next(a for a in client.alerts() if a.id == second.id).acknowledged_by
        await ask(pilot, "a")
        await pilot.press("y")
        acked = await eventually(
            pilot, lambda: next(a for a in client.alerts() if a.id == second.id).acknowledged_by, "the acknowledgement"
        )
        assert acked
        await until(pilot, lambda: screen.selected() is not None and screen.selected().acknowledged_by, "the reload")  # type: ignore[union-attr]
        await pilot.press("enter")
        detail = await until(
            pilot, lambda: pilot.app.screen if isinstance(pilot.app.screen, AlertDetailScreen) else None, "the alert"
        )
        assert f"by {acked}" in plain_of(detail)


def plain_of(detail: AlertDetailScreen) -> str:
    console = Console(width=76, record=True, color_system=None)
    console.print(alert_details(detail.alert, detail.now))
    return console.export_text()


async def test_the_policy_is_set_by_keys(
    shared_server: ServerThread, client: SluiceClient, registered: Registered
) -> None:
    name = unique("tui-policy")
    client.deploy(name, registered.v1, reason="launch")
    app = make_app(shared_server.address)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_detail(pilot, name)
        form = await open_form(pilot, "o", PolicyForm)
        assert form.query_one("#action", Input).value == "alert"  # opens on the policy in force
        # every field, a one-line error and the buttons fit inside the dialog on a 24-row terminal
        error = form.query_one("#form-error", Static)
        error.update("a one-line error")
        error.add_class("-shown")
        await pilot.pause()
        inside = form.query_one(".dialog").content_region
        assert inside.contains_region(form.query_one("#submit").region), inside
        error.remove_class("-shown")
        await focus_field(pilot, "action")
        await type_text(pilot, "rollback_champion", clear=True)
        await focus_field(pilot, "after")
        await type_text(pilot, "120", clear=True)
        await focus_field(pilot, "error-rate")
        await type_text(pilot, "0.01,0.02", clear=True)
        await focus_field(pilot, "fallback")
        await type_text(pilot, "on", clear=True)
        await focus_field(pilot, "mae")
        await type_text(pilot, "0.5,1.5", clear=True)
        await focus_field(pilot, "source")
        assert form.query_one("#source", Input).value == "live"
        await type_text(pilot, "joined", clear=True)
        await focus_field(pilot, "delay")
        await type_text(pilot, "6h", clear=True)
        await pilot.press("enter")
        policy = await eventually(
            pilot,
            lambda: (p := client.get_policy(name)).action == controlplane_pb2.POLICY_ROLLBACK_CHAMPION and p,
            "the policy",
        )
    assert policy.action_after_seconds == 120 and policy.thresholds.error_rate_critical == 0.02
    assert policy.fallback
    assert policy.thresholds.mae_warning == 0.5 and policy.thresholds.mae_critical == 1.5
    assert policy.accuracy_source == "joined" and policy.label_delay_seconds == 6 * 3600
    # only what changed is set for the deployment; the rest keeps following the configuration
    assert set(policy.overridden) == {
        "action",
        "action_after_seconds",
        "error_rate_critical",
        "fallback",
        "mae_warning",
        "mae_critical",
        "accuracy_source",
        "label_delay_seconds",
    }
