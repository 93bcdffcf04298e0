"""The CLI contract against a real control plane: `cli.main` in-process (tests/clirun.py), and a
real `sluice` process where what reaches the terminal from outside Python is the point."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from core.client import SluiceClient, with_default_port
from protos import common_pb2, controlplane_pb2
from tests.harness import ServerThread, free_port, one_line_error, run_cli, start_server, unique
from tests.models import make_baseline, make_classifier_onnx


def test_register_list_deploy_traffic_history_audit(shared_server: ServerThread, models_dir: Path) -> None:
    address = shared_server.address
    model, dep = unique("cli"), unique("web")
    v1 = run_cli(
        "version",
        "register",
        model,
        str(make_classifier_onnx(models_dir)),
        "--version",
        "v1",
        "--baseline",
        str(make_baseline(models_dir)),
        address=address,
    )
    assert v1.returncode == 0, v1.stderr
    assert f"registered {model}:v1" in v1.stdout
    v2 = run_cli(
        "version",
        "register",
        model,
        str(make_classifier_onnx(models_dir, "gbm")),
        "--version",
        "v2",
        address=address,
    )
    assert v2.returncode == 0, v2.stderr

    listed = run_cli("version", "list", model, "--json", address=address)
    versions = json.loads(listed.stdout)
    assert [v["ref"]["version"] for v in versions] == ["v1", "v2"]
    assert all(len(v["sha256"]) == 64 for v in versions)
    assert versions[0]["inputs"][0]["shape"] == [-1, 30] and versions[0]["size_bytes"] > 0
    shown = run_cli("version", "show", f"{model}:v1", address=address)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"{model}:v1  classifier  sha256 {versions[0]['sha256']}")
    inputs = lines[lines.index("inputs (what a request must carry, by name):") + 1].split()
    assert inputs[:2] == ["input", "float32"] and " ".join(inputs[2:]) == "[?, 30]"
    assert any(line.startswith("baseline: ") and " rows, 30 features" in line for line in lines)
    assert "baseline: none" in run_cli("version", "show", f"{model}:v2", address=address).stdout
    as_json = json.loads(run_cli("version", "show", f"{model}:v1", "--json", address=address).stdout)
    assert as_json["ref"] == {"model": model, "version": "v1"} and as_json["outputs"]
    missing = run_cli("version", "show", f"{model}:v9", address=address)
    assert missing.returncode == 4 and "v9" in missing.stderr  # NOT_FOUND
    assert run_cli("version", "show", "no-colon", address=address).returncode != 0
    table = run_cli("version", "list", model, address=address)
    assert f"{model}:v1" in table.stdout and "MODEL:VERSION" in table.stdout

    deployed = run_cli("deploy", dep, f"{model}:v1", address=address)
    assert deployed.returncode == 0 and "generation 1" in deployed.stdout
    traffic = run_cli("traffic", "set", dep, f"{model}:v1=90", f"{model}:v2=10", "--json", address=address)
    assert traffic.returncode == 0, traffic.stderr
    splits = {s["version"]["version"]: s["weight"] for s in json.loads(traffic.stdout)["splits"]}
    assert splits == {"v1": 90, "v2": 10}

    history = json.loads(run_cli("history", dep, "--json", address=address).stdout)
    assert [h["action"] for h in history] == ["traffic.set", "deploy"]
    audit = json.loads(run_cli("audit", "--target", dep, "--json", address=address).stdout)
    assert {a["action"] for a in audit} == {"deploy", "traffic.set"}
    about = json.loads(run_cli("audit", "--deployment", dep, "--json", address=address).stdout)
    assert [a["action"] for a in about] == ["traffic.set", "deploy"]
    # details are a JSON object, not a string
    assert {(s["version"], s["weight"]) for s in about[0]["details"]["splits"]} == {
        (f"{model}:v1", 90),
        (f"{model}:v2", 10),
    }

    rolled = run_cli("rollback", dep, "--to", f"{model}:v1", address=address)
    assert rolled.returncode == 0 and f"{model}:v1=100%" in rolled.stdout


def test_rollback_says_what_it_restores_and_never_restores_a_rolled_back_version(
    shared_server: ServerThread, models_dir: Path
) -> None:
    address = shared_server.address
    model, dep = unique("cli"), unique("web")
    with SluiceClient(address, token="") as client:
        for i, version in enumerate(("v1", "v2", "v3")):
            client.register_version(model, version, make_classifier_onnx(models_dir, "logreg", i))
            client.deploy(dep, f"{model}:{version}")
    first = run_cli("rollback", dep, address=address)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == f"rolling back {dep} (generation 3, serving {model}:v3): restoring {model}:v2 at 100%"
    assert lines[1].startswith(f"restored {model}:v2: {dep} generation 4")
    assert lines[2] == f"a plain rollback now would restore {model}:v1"
    second = run_cli("rollback", dep, address=address)
    assert second.returncode == 0, second.stderr
    assert f"restoring {model}:v1" in second.stdout and f"{model}:v3" not in second.stdout
    assert "no earlier champion is left" in second.stdout
    third = one_line_error(run_cli("rollback", dep, address=address))
    assert "FAILED_PRECONDITION" in third and "no earlier champion that was not itself rolled back" in third
    noop = one_line_error(run_cli("rollback", dep, "--to", f"{model}:v1", address=address))
    assert f"{model}:v1 already serves '{dep}' at 100% (generation 5); nothing to roll back" in noop


def test_experiment_pause_resume_abort(shared_server: ServerThread, models_dir: Path) -> None:
    address = shared_server.address
    model, dep, name = unique("cli"), unique("web"), unique("exp")
    with SluiceClient(address, token="") as client:
        client.register_version(model, "v1", make_classifier_onnx(models_dir))
        client.register_version(model, "v2", make_classifier_onnx(models_dir, "gbm"))
        client.deploy(dep, f"{model}:v1")
    started = run_cli(
        "experiment",
        "start",
        name,
        "--deployment",
        dep,
        "--challenger",
        f"{model}:v2",
        "--plan",
        "10,50,100",
        address=address,
    )
    assert started.returncode == 0, started.stderr
    paused = run_cli("experiment", "pause", name, "--reason", "freeze", address=address)
    assert paused.returncode == 0, paused.stderr
    assert f"experiment {name} paused: {model}:v2 keeps 10% of the traffic" in paused.stdout
    assert "no gate is checked" in paused.stdout
    status = run_cli("experiment", "status", name, address=address)
    assert "paused by an operator" in status.stdout and "paused by anonymous: freeze" in status.stdout
    again = one_line_error(run_cli("experiment", "pause", name, address=address))
    assert "already paused" in again
    resumed = run_cli("experiment", "resume", name, address=address)
    assert resumed.returncode == 0 and "resumed" in resumed.stdout
    aborted = run_cli("experiment", "abort", name, address=address)
    assert aborted.returncode == 0 and "aborted" in aborted.stdout
    refused = one_line_error(run_cli("experiment", "resume", name, address=address))
    assert "aborted, not paused" in refused and "start a new experiment" in refused
    helped = run_cli("experiment", "pause", "--help", address=address)
    assert "traffic stays as it is" in helped.stdout


def test_errors_are_one_line(shared_server: ServerThread, models_dir: Path, tmp_path: Path) -> None:
    address = shared_server.address
    err = one_line_error(run_cli("traffic", "set", "web", "m:v1=ninety", address=address))
    assert "whole number" in err
    err = one_line_error(run_cli("deploy", unique("d"), "nomodel:v1", address=address))
    assert "no model named" in err and "NOT_FOUND" in err
    err = one_line_error(
        run_cli("version", "register", "m", str(tmp_path / "missing.onnx"), "--version", "v1", address=address)
    )
    assert "does not exist" in err
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    model = unique("m")
    err = one_line_error(run_cli("version", "register", model, str(junk), "--version", "v1", address=address))
    assert "INVALID_ARGUMENT" in err
    # The message names what the user uploaded, not the control plane's temporary file.
    assert f"the file uploaded for {model}:v1 is not an ONNX model" in err and ".upload-" not in err
    err = one_line_error(run_cli("deploy", "bad name", "m:v1", address=address))
    assert "may only contain" in err


def test_usage_errors_are_one_line_too() -> None:
    err = one_line_error(run_cli("deploy"))
    assert "sluice deploy: the following arguments are required: deployment" in err
    assert "`sluice deploy --help`" in err
    err = one_line_error(run_cli("alerts", "ack", "abc"))
    assert "argument id: 'abc' is not a whole number" in err
    assert one_line_error(run_cli("no-such-command")).startswith("error: sluice: argument COMMAND: invalid choice")


def test_an_agent_refuses_negative_sizes_before_it_starts(tmp_path: Path) -> None:
    for flag in ("--keep-freed-memory-mb", "--log-buffer-mb"):
        result = run_cli("agent", "--cache", str(tmp_path / "cache"), flag, "-1", timeout=60)
        assert result.returncode != 0, result.stderr
        assert f"{flag} must be 0" in one_line_error(result)
    assert not (tmp_path / "cache").exists()  # refused before anything was made


def test_unreachable_control_plane(tmp_path: Path) -> None:
    result = run_cli("version", "list", address=f"127.0.0.1:{free_port()}")
    err = one_line_error(result)
    assert "cannot reach the control plane" in err or "UNAVAILABLE" in err


def test_controlplane_config_errors_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "sluice.toml"
    config.write_text("[health]\naccuracy_warnin = 0.8\n")
    result = run_cli(
        "controlplane",
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--db",
        str(tmp_path / "x.db"),
        "--config",
        str(config),
        "--metrics-port",
        "0",
        timeout=60,
    )
    err = one_line_error(result)
    assert "health.accuracy_warnin" in err


def test_traffic_wait_checks_first_warns_without_agents_and_names_the_ended_experiment(
    tmp_path: Path, models_dir: Path
) -> None:
    server = start_server(tmp_path)  # its own control plane: no agent ever connects to it
    try:
        address, model, dep = server.address, unique("m"), unique("web")
        with SluiceClient(address, token="") as client:
            client.register_version(model, "v1", make_classifier_onnx(models_dir))
            client.register_version(model, "v2", make_classifier_onnx(models_dir, "gbm"))
            client.deploy(dep, f"{model}:v1")
            name = unique("exp")
            client.start_experiment(
                name,
                controlplane_pb2.ExperimentConfig(
                    deployment=dep, challenger=common_pb2.VersionRef(model=model, version="v2"), traffic_percent=10
                ),
            )
            generation = client.get_deployment(dep).generation

            # A bad --timeout is refused before anything changes (a retry must not apply it twice).
            for timeout in ("-1", "0", "700"):
                err = one_line_error(
                    run_cli("traffic", "set", dep, f"{model}:v1=100", "--wait", "--timeout", timeout, address=address)
                )
                assert "--timeout" in err
            assert client.get_deployment(dep).generation == generation

            # The kill switch works, says which experiment it ended, and that no agent confirmed it.
            result = run_cli("traffic", "set", dep, f"{model}:v1=100", "--wait", address=address)
            assert result.returncode == 0, result.stderr
            assert f"experiment {name} ended: this change replaced its traffic" in result.stdout
            assert result.stderr.startswith("warning: no agent is connected") and len(result.stderr.splitlines()) == 1
            assert client.get_experiment(name).state == controlplane_pb2.EXPERIMENT_ABORTED
            assert client.history(dep)[0].reason == f"ends experiment {name}"
    finally:
        server.stop()


def test_what_used_to_leak_from_libraries_is_one_line_too(tmp_path: Path) -> None:
    # Numbers protobuf or scikit-learn would refuse with their own exceptions.
    for args in (
        ("alerts", "ack", "99999999999999999999999"),
        ("audit", "--limit", "-1"),
        ("history", "web", "--limit", "0"),
        ("train", "--data", "x.csv", "--out", "x.onnx", "--seed", "-1"),
        ("experiment", "start", "e", "--deployment", "d", "--challenger", "m:v", "--traffic", "200"),
    ):
        assert "must be from" in one_line_error(run_cli(*args, address=f"127.0.0.1:{free_port()}")), args
    # A token with a carriage return (a file saved on Windows): named, not gRPC's header dump.
    # A real process: gRPC's C core writes its header dump to the process's stderr, not Python's.
    err = one_line_error(
        run_cli("version", "list", address=f"127.0.0.1:{free_port()}", env={"SLUICE_TOKEN": "tok\r"}, process=True)
    )
    assert "the token (SLUICE_TOKEN) has a space, a line break or a non-ASCII character" in err

    def controlplane(*args: str) -> str:
        return one_line_error(run_cli("controlplane", "--metrics-port", "0", "--artifacts", str(tmp_path), *args))

    assert "cannot use the database 'foo://u:***@bar/x'" in controlplane("--db", "foo://u:secret@bar/x")
    assert "--listen 'nonsense' is not HOST:PORT" in controlplane("--listen", "nonsense")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = controlplane("--listen", f"127.0.0.1:{port}", "--db", str(tmp_path / "cp.db"))
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use" in err


def test_an_address_without_a_port_means_the_default_one() -> None:
    assert with_default_port("cp.example") == "cp.example:7400"
    assert with_default_port("[::1]") == "[::1]:7400"
    assert with_default_port("10.0.0.1:7000") == "10.0.0.1:7000"
    assert with_default_port("[::1]:7000") == "[::1]:7000"


def test_predict_input_and_addresses_are_checked_before_any_call() -> None:
    agent = f"127.0.0.1:{free_port()}"  # nothing listens: these must fail before trying
    row = ",".join(["1e300"] * 30)
    err = one_line_error(run_cli("predict", "web", "--agent", agent, "--input", f"[{row}]"))
    assert "row 0 feature 0 is 1e+300, beyond float32's range" in err
    err = one_line_error(run_cli("predict", "web", "--agent", agent, "--input", "[1]", "--timeout", "nan"))
    assert "must be a number of seconds above 0" in err


def test_predict_features_take_one_record_or_a_list_of_them() -> None:
    from cli.commands.agents import parse_records
    from cli.output import CliError

    assert parse_records('{"plan": "pro", "age": 42, "income": null}') == [{"plan": "pro", "age": 42, "income": None}]
    assert len(parse_records('[{"a": 1}, {"a": 2}]')) == 2
    for text, says in (
        ("{", "--features is not JSON"),
        ("[1, 2]", "must be an object"),
        ("[]", "must be an object"),
        ('[{"a": 1}, {}]', "--features row 1 is empty"),
    ):
        with pytest.raises(CliError, match=re.escape(says)):
            parse_records(text)


def test_talking_to_the_wrong_kind_of_server_says_so(shared_server: ServerThread) -> None:
    # The control plane where an agent is expected: named, not gRPC's "Method not found".
    err = one_line_error(run_cli("predict", "web", "--agent", shared_server.address, "--input", "[1, 2]"))
    assert "is not a Sluice agent" in err


def test_options_that_would_be_ignored_are_refused() -> None:
    address = f"127.0.0.1:{free_port()}"  # refused before any call
    err = one_line_error(run_cli("traffic", "set", "web", "m:v1=100", "--timeout", "5", address=address))
    assert "--timeout only applies with --wait" in err
    start = ("experiment", "start", "e", "--deployment", "d", "--challenger", "m:v2")
    err = one_line_error(run_cli(*start, "--traffic", "30", "--plan", "5,50,100", address=address))
    assert "give --traffic or --plan, not both" in err


def test_help_gives_the_addresses_their_env_and_default() -> None:
    agent = run_cli("agent", "--help")
    assert agent.returncode == 0
    flat = " ".join(agent.stdout.split())
    assert (
        "--controlplane ADDR control-plane address to connect to (env SLUICE_CONTROLPLANE, default 127.0.0.1:7400)"
        in (flat)
    )
    predict = " ".join(run_cli("predict", "--help").stdout.split())
    assert "agent address (env SLUICE_AGENT, default 127.0.0.1:7500)" in predict
    status = " ".join(run_cli("status", "--help").stdout.split())
    assert "exit 10 when a deployment shown is critical, 9 when the worst is warning" in status
    for command in (("deploy",), ("rollback",), ("promote",), ("traffic", "set")):
        assert "--wait" in run_cli(*command, "--help").stdout, command
