"""`sluice log set DEPLOYMENT --sample-rate R|off`: stored, audited, shown by `sluice status`."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from core.client import ClientError, SluiceClient
from tests.harness import ServerThread, one_line_error, run_cli, unique
from tests.models import make_classifier_onnx


def test_log_set_changes_the_sample_rate_and_status_shows_it(
    shared_server: ServerThread, client: SluiceClient, models_dir: Path
) -> None:
    model, dep = unique("m"), unique("d")
    client.register_version(model, "1", make_classifier_onnx(models_dir))
    client.deploy(dep, f"{model}:1")
    address = shared_server.address
    [before] = client.status(dep)
    assert before.deployment.log_sample_rate == 1.0

    result = run_cli("log", "set", dep, "--sample-rate", "off", "--reason", "privacy", address=address)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"prediction log of {dep}: off"
    status = run_cli("status", dep, address=address)
    assert "prediction log off" in status.stdout
    result = run_cli("log", "set", dep, "--sample-rate", "0.25", "--json", address=address)
    assert json.loads(result.stdout)["log_sample_rate"] == 0.25
    assert "prediction log 25%" in run_cli("status", dep, address=address).stdout
    [event, *_] = [e for e in client.audit(target=dep) if e.action == "log.set"]
    assert json.loads(event.details_json)["after"] == 0.25

    for bad in ("2", "nan", "-0.1", "most"):
        one_line_error(run_cli("log", "set", dep, "--sample-rate", bad, address=address))
    one_line_error(run_cli("log", "set", unique("nope"), "--sample-rate", "off", address=address))
    with pytest.raises(ClientError) as refused:  # the server checks too, whatever the client
        client.set_log_sample_rate(dep, 1.5)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "between 0 (off) and 1" in refused.value.message
    [after] = client.status(dep)
    assert after.deployment.log_sample_rate == 0.25  # refusals changed nothing
