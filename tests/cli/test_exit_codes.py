"""Exit codes per kind of failure, `status --check` and `--wait`, with the real `sluice` command
(the first test as a child process, the exit status the shell sees; the others in-process through
`cli.main`, tests/clirun.py).

The numbers are a contract for scripts, cron and CI (README "Exit codes"): 2 usage, 3 unavailable,
4 not found, 5 refused, 6 conflict, 7 permission, 8 not applied by the agents, 9/10 warning/critical
from `status --check`, 1 anything else.
"""

from __future__ import annotations

import json
from pathlib import Path

from controlplane.config import Config, TokenConfig
from controlplane.monitoring import alerts
from core.client import SluiceClient
from tests.agent.cluster import AgentProcess, wait_until
from tests.harness import ServerThread, free_port, one_line_error, run_cli, start_server, unique
from tests.models import breast_cancer_rows, make_classifier_onnx


def test_each_kind_of_failure_has_its_exit_code(shared_server: ServerThread, models_dir: Path, tmp_path: Path) -> None:
    address = shared_server.address
    model, dep = unique("codes"), unique("web")
    with SluiceClient(address, token="") as client:
        client.register_version(model, "v1", make_classifier_onnx(models_dir))
        generation = client.deploy(dep, f"{model}:v1").generation

    def code(*args: str, **kw: str) -> int:
        result = run_cli(*args, address=kw.pop("at", address), process=True, **kw)  # type: ignore[arg-type]
        one_line_error(result)
        return result.returncode

    assert code("deploy") == 2  # usage
    assert code("version", "list", at=f"127.0.0.1:{free_port()}") == 3  # unavailable
    assert code("deploy", dep, "nomodel:v1") == 4  # not found
    assert code("rollback", unique("nowhere")) == 4
    assert code("rollback", dep, "--to", f"{model}:v1") == 5  # refused: it already serves at 100%
    assert code("version", "register", model, str(tmp_path / "x.onnx"), "--version", "v1") == 1  # local: no file
    stale = str(generation - 1)
    assert code("deploy", dep, f"{model}:v1", "--expected-generation", stale) == 6  # conflict
    assert code("version", "register", model, str(make_classifier_onnx(models_dir)), "--version", "v1") == 6

    secured = start_server(tmp_path / "cp", config=Config(tokens=[TokenConfig("ro", "viewer", token="viewer-secret")]))
    try:
        assert code("version", "list", at=secured.address, env={"SLUICE_TOKEN": ""}) == 7  # unauthenticated
        denied = run_cli(
            "deploy", dep, f"{model}:v1", address=secured.address, env={"SLUICE_TOKEN": "viewer-secret"}, process=True
        )
        assert denied.returncode == 7 and "PERMISSION_DENIED" in one_line_error(denied)
    finally:
        secured.stop()


def test_rollback_expected_generation(shared_server: ServerThread, models_dir: Path) -> None:
    address = shared_server.address
    model, dep = unique("gen"), unique("web")
    with SluiceClient(address, token="") as client:
        for i, version in enumerate(("v1", "v2")):
            client.register_version(model, version, make_classifier_onnx(models_dir, "logreg", i))
            client.deploy(dep, f"{model}:{version}")
    stale = run_cli("rollback", dep, "--expected-generation", "1", address=address)
    err = one_line_error(stale)
    assert stale.returncode == 6 and "is at generation 2, not 1 (--expected-generation)" in err and "ABORTED" in err
    assert not stale.stdout  # nothing announced, nothing done
    with SluiceClient(address, token="") as client:
        assert client.get_deployment(dep).generation == 2
    done = run_cli("rollback", dep, "--expected-generation", "2", "--json", address=address)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["generation"] == 3


def test_status_check_exits_by_the_worst_health_shown(shared_server: ServerThread, models_dir: Path) -> None:
    address, ctx = shared_server.address, shared_server.ctx
    model, calm, worried, burning = unique("chk"), unique("calm"), unique("worried"), unique("burning")
    with SluiceClient(address, token="") as client:
        client.register_version(model, "v1", make_classifier_onnx(models_dir))
        for dep in (calm, worried, burning):
            client.deploy(dep, f"{model}:v1")
    quiet = run_cli("status", calm, "--check", address=address)
    assert quiet.returncode == 0 and not quiet.stderr, quiet.stderr  # no verdict yet is not a failure

    alerts.open_alert(
        ctx, deployment=worried, kind="drift", subject="mean_texture", severity="warning", message="drifting a bit"
    )
    warned = run_cli("status", worried, "--check", address=address)
    assert warned.returncode == 9, warned.stderr
    assert warned.stderr.startswith(f"check: warning — {worried} (1 open alert(s): `sluice alerts --deployment")
    assert worried in warned.stdout  # the status itself is printed as without --check

    alerts.open_alert(
        ctx, deployment=burning, kind="error_rate", subject="error_rate", severity="critical", message="on fire"
    )
    both = run_cli("status", "--check", "--json", address=address)  # every deployment: the worst decides
    assert both.returncode == 10, both.stderr
    assert burning in both.stderr and worried not in both.stderr
    assert {d["deployment"]["name"] for d in json.loads(both.stdout)} >= {calm, worried, burning}
    plain = run_cli("status", burning, address=address)
    assert plain.returncode == 0  # without --check, status only reports


def test_wait_on_deploy_promote_rollback_returns_once_the_agent_serves_it(tmp_path: Path, models_dir: Path) -> None:
    server = start_server(tmp_path / "cp")
    agent = AgentProcess(server.address, unique("waiter"), tmp_path / "agent", tmp_path / "agent.log")
    try:
        address, model, dep, name = server.address, unique("m"), unique("web"), unique("exp")
        with SluiceClient(address, token="") as client:
            client.register_version(model, "v1", make_classifier_onnx(models_dir))
            client.register_version(model, "v2", make_classifier_onnx(models_dir, "gbm"))
            wait_until(lambda: client.agents(), 30, "the agent connected")
        row = breast_cancer_rows(1, seed=1)

        def serving() -> str:
            return str(agent.predict(dep, row).served_by.version)

        deployed = run_cli("deploy", dep, f"{model}:v1", "--wait", address=address)
        assert deployed.returncode == 0, deployed.stderr
        assert f"applied by 1 agent(s): {agent.name}" in deployed.stdout
        assert serving() == "v1"  # no polling: --wait returned after the agent applied it

        started = run_cli(
            "experiment", "start", name, "--deployment", dep, "--challenger", f"{model}:v2", address=address
        )
        assert started.returncode == 0, started.stderr
        promoted = run_cli("promote", name, "--wait", "--json", address=address)
        assert promoted.returncode == 0, promoted.stderr
        assert json.loads(promoted.stdout)["generation"] >= 3  # --json: the deployment alone on stdout
        assert serving() == "v2"

        rolled = run_cli("rollback", dep, "--wait", "--timeout", "60", address=address)
        assert rolled.returncode == 0, rolled.stderr
        assert f"applied by 1 agent(s): {agent.name}" in rolled.stdout
        assert serving() == "v1"

        err = one_line_error(run_cli("promote", name, "--timeout", "5", address=address))
        assert "--timeout only applies with --wait" in err
    finally:
        agent.stop()
        server.stop()


def test_the_readme_lists_these_exit_codes() -> None:
    from cli import output

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("### Exit codes", 1)[1].split("###", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "code" not in line]
    documented = {int(row.split("|")[1]) for row in rows}
    defined = {value for name, value in vars(output).items() if name.startswith("EXIT_")}
    assert defined <= documented, f"exit codes without a README row: {defined - documented}"
