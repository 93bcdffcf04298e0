"""Experiments over gRPC and through the `sluice` CLI against a real control plane on loopback."""

from __future__ import annotations

import json
import math
from pathlib import Path

import grpc
import pytest

from controlplane.sample_data import write_breast_cancer_csv
from core.client import ClientError, SluiceClient
from protos import common_pb2, controlplane_pb2
from tests.controlplane.experiments.support import make_narrow_classifier_onnx, make_weak_classifier_onnx
from tests.harness import ServerThread, one_line_error, run_cli, unique
from tests.models import make_classifier_onnx


def deployed(client: SluiceClient, champion: Path, challenger: Path) -> tuple[str, str]:
    model, dep = unique("cancer"), unique("dep")
    client.register_version(model, "v1", champion)
    client.register_version(model, "v2", challenger)
    client.deploy(dep, f"{model}:v1")
    return model, dep


def config(dep: str, challenger: str, **kw: object) -> controlplane_pb2.ExperimentConfig:
    model, _, version = challenger.partition(":")
    return controlplane_pb2.ExperimentConfig(
        deployment=dep, challenger=common_pb2.VersionRef(model=model, version=version), **kw
    )


def code_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(ClientError) as info:
        call()  # type: ignore[operator]
    assert "Traceback" not in info.value.message
    return info.value.code, info.value.message


def test_experiment_lifecycle_and_statuses_over_grpc(client: SluiceClient, models_dir: Path) -> None:
    model, dep = deployed(client, make_classifier_onnx(models_dir), make_classifier_onnx(models_dir, "gbm"))
    name = unique("exp")
    started = client.start_experiment(
        name,
        config(
            dep,
            f"{model}:v2",
            plan=[5, 25, 50, 100],
            hold_seconds=600,
            guardrails=[controlplane_pb2.Guardrail(metric="p95_latency", max_degradation=0.25)],
            segment_rules=[common_pb2.SegmentRule(attribute="country", values=["de"])],
        ),
        reason="try gbm",
    )
    assert started.state == controlplane_pb2.EXPERIMENT_RUNNING
    assert (started.step_index, started.current_percent) == (0, 5)
    assert list(started.config.plan) == [5, 25, 50, 100] and started.config.alpha == pytest.approx(0.05)
    assert started.config.min_samples == 100 and started.config.metric == "accuracy"
    assert 0 < started.hold_remaining_seconds <= 600

    deployment = client.get_deployment(dep)
    assert deployment.experiment == name and deployment.segment_rules[0].values == ["de"]
    assert {s.version.version: s.weight for s in deployment.splits} == {"v1": 95, "v2": 5}

    got = client.get_experiment(name)
    assert got.analysis.decision == "not_enough_data" and len(got.analysis.arms) == 2
    assert [g.metric for g in got.analysis.guardrails] == ["p95_latency"]
    assert math.isnan(got.analysis.p_value)
    assert name in [e.name for e in client.list_experiments(dep)]

    status = {
        "second": code_of(lambda: client.start_experiment(unique("e"), config(dep, f"{model}:v2"))),
        "resume": code_of(lambda: client.experiment_action("ResumeExperiment", name)),
        "missing": code_of(lambda: client.get_experiment("ghost")),
        "bad-name": code_of(lambda: client.get_experiment("no spaces allowed")),
    }
    assert status["second"][0] == grpc.StatusCode.FAILED_PRECONDITION and name in status["second"][1]
    assert status["resume"][0] == grpc.StatusCode.FAILED_PRECONDITION
    assert status["missing"][0] == grpc.StatusCode.NOT_FOUND
    assert status["bad-name"][0] == grpc.StatusCode.INVALID_ARGUMENT

    stopped = client.experiment_action("StopExperiment", name, reason="done")
    assert stopped.state == controlplane_pb2.EXPERIMENT_STOPPED
    code, message = code_of(lambda: client.experiment_action("Promote", name))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "stopped" in message
    assert name not in [e.name for e in client.list_experiments(dep)]
    assert name in [e.name for e in client.list_experiments(dep, include_finished=True)]
    assert {s.version.version: s.weight for s in client.get_deployment(dep).splits} == {"v1": 100}


def test_bad_experiment_requests_get_clear_statuses(client: SluiceClient, models_dir: Path) -> None:
    model, dep = deployed(client, make_classifier_onnx(models_dir), make_classifier_onnx(models_dir, "gbm"))
    client.register_version(model, "narrow", make_narrow_classifier_onnx(models_dir))
    before = client.get_deployment(dep).generation
    cases = [
        (config(dep, f"{model}:v2", plan=[50, 25]), grpc.StatusCode.INVALID_ARGUMENT, "not increasing"),
        (config(dep, f"{model}:v2", plan=[50, 101]), grpc.StatusCode.INVALID_ARGUMENT, "outside 1..100"),
        (config(dep, f"{model}:v2", alpha=1.5), grpc.StatusCode.INVALID_ARGUMENT, "between 0 and 1"),
        (config(dep, f"{model}:v2", alpha=-0.5), grpc.StatusCode.INVALID_ARGUMENT, "between 0 and 1"),
        (config(dep, f"{model}:v1"), grpc.StatusCode.INVALID_ARGUMENT, "already the champion"),
        (config(dep, f"{model}:narrow"), grpc.StatusCode.INVALID_ARGUMENT, "input schema mismatch"),
        (config(dep, f"{model}:v404"), grpc.StatusCode.NOT_FOUND, "no version"),
        (config("nowhere", f"{model}:v2"), grpc.StatusCode.NOT_FOUND, "no deployment"),
        (config(dep, ""), grpc.StatusCode.INVALID_ARGUMENT, "challenger is required"),
    ]
    for cfg, expected, text in cases:
        code, message = code_of(lambda cfg=cfg: client.start_experiment(unique("e"), cfg))
        assert (code, text in message) == (expected, True), message
    code, message = code_of(
        lambda: client._call("StartExperiment", controlplane_pb2.StartExperimentRequest(name=unique("e")))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert client.get_deployment(dep).generation == before


def test_evaluate_over_grpc_stores_the_verdict(client: SluiceClient, models_dir: Path, tmp_path: Path) -> None:
    model, dep = deployed(client, make_weak_classifier_onnx(models_dir), make_classifier_onnx(models_dir, "gbm"))
    data = tmp_path / "cancer.csv"
    write_breast_cancer_csv(data)
    verdict = client.evaluate(f"{model}:v2", dep, data, label_column="label")
    assert verdict.challenger_wins and verdict.method == "mcnemar" and verdict.n == 569
    assert verdict.champion.version == "v1" and verdict.evaluated_at.seconds > 0
    assert client.get_version(f"{model}:v2").offline_evaluation.challenger_wins
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,0\n3,4,1\n")
    code, message = code_of(lambda: client.evaluate(f"{model}:v2", dep, bad))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "shape [rows, 30]" in message


def test_cli_start_status_list_abort_promote_evaluate(
    shared_server: ServerThread, client: SluiceClient, models_dir: Path, tmp_path: Path
) -> None:
    address = shared_server.address
    model, dep = deployed(client, make_weak_classifier_onnx(models_dir), make_classifier_onnx(models_dir, "gbm"))
    name = unique("cli-exp")
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
        "--hold",
        "600",
        "--min-samples",
        "30",
        "--alpha",
        "0.01",
        "--sequential",
        "--mde",
        "0.03",
        "--baseline",
        "0.8",
        "--guardrail",
        "error_rate:0.1",
        "--guardrail",
        "p95_latency=0.25",  # the TUI form's old syntax is accepted too
        "--segment",
        "age=18..65",
        "--min-improvement",
        "0.01",
        "--auto-promote",
        "--json",
        address=address,
    )
    assert started.returncode == 0, started.stderr
    body = json.loads(started.stdout)
    assert body["state"] == "EXPERIMENT_RUNNING" and body["current_percent"] == 10
    assert body["config"]["segment_rules"][0]["has_range"] is True
    assert [g["metric"] for g in body["config"]["guardrails"]] == ["error_rate", "p95_latency"]
    # the sequential plan, at alpha 0.01 and the first step's 10% share, is stored and shown
    planned = body["config"]
    assert int(planned["planned_n_challenger"]) * 9 == pytest.approx(int(planned["planned_n_champion"]), rel=1e-3)
    assert planned["expected_power"] == pytest.approx(0.8, abs=0.01)

    status = run_cli("experiment", "status", name, "--json", address=address)
    assert status.returncode == 0, status.stderr
    analysis = json.loads(status.stdout)["analysis"]
    assert analysis["decision"] == "not_enough_data" and analysis["sequential"] is True
    human = run_cli("experiment", "status", name, address=address)
    assert f"experiment {name} on {dep}: running" in human.stdout and "step 1/3 (10%)" in human.stdout
    assert "sequential plan: " in human.stdout and "expected power 80" in human.stdout
    assert "  segment: age=18..65 (requests and batch rows outside it stay on the champion)" in human.stdout
    listed = json.loads(run_cli("experiment", "list", "--json", address=address).stdout)
    assert name in [e["name"] for e in listed]

    err = one_line_error(
        run_cli("experiment", "start", unique("x"), "--deployment", dep, "--challenger", f"{model}:v2", address=address)
    )
    assert "FAILED_PRECONDITION" in err
    assert "not increasing" in one_line_error(
        run_cli(
            "experiment",
            "start",
            unique("x"),
            "--deployment",
            dep,
            "--challenger",
            f"{model}:v2",
            "--plan",
            "50,10",
            address=address,
        )
    )
    assert "between 0 and 1" in one_line_error(
        run_cli(
            "experiment",
            "start",
            unique("x"),
            "--deployment",
            dep,
            "--challenger",
            f"{model}:v2",
            "--alpha",
            "0",
            address=address,
        )
    )
    assert "not paused" in one_line_error(run_cli("experiment", "resume", name, address=address))

    promoted = run_cli("promote", name, "--reason", "gbm wins", address=address)
    assert promoted.returncode == 0, promoted.stderr
    assert f"promoted {model}:v2 to champion of {dep}" in promoted.stdout
    assert f"previous champion {model}:v1" in promoted.stdout
    assert "note: promoted on your call; the analysis said not enough data" in promoted.stdout  # no traffic here
    listed = run_cli("experiment", "list", "--all", address=address)
    assert "promoted at 1/" in next(line for line in listed.stdout.splitlines() if line.startswith(name))
    assert "already promoted" in one_line_error(run_cli("promote", name, address=address))
    assert "NOT_FOUND" in one_line_error(run_cli("experiment", "abort", "ghost", address=address))

    history = run_cli("history", dep, address=address)
    assert "promote" in history.stdout and "experiment.start" in history.stdout

    data = tmp_path / "cancer.csv"
    write_breast_cancer_csv(data)
    client.deploy(dep, f"{model}:v1", reason="back to v1 for the offline check")
    evaluated = run_cli(
        "evaluate", f"{model}:v2", "--deployment", dep, "--data", str(data), "--label", "label", address=address
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.startswith("WIN: ") and "mcnemar" in evaluated.stdout
    missing = run_cli(
        "evaluate", f"{model}:v2", "--deployment", dep, "--data", str(tmp_path / "nope.csv"), address=address
    )
    assert "does not exist" in one_line_error(missing)
