"""Monitoring settings in the TOML config: defaults, and refusal of unknown keys and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.config import load_config
from core.errors import InvalidInput
from tests.harness import run_cli


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sluice.toml"
    path.write_text(text)
    return path


def test_defaults_follow_common_practice() -> None:
    config = load_config(None, environ={})
    h = config.health
    assert (h.accuracy_warning, h.accuracy_critical) == (0.80, 0.75)
    assert (h.p95_latency_ms_warning, h.p95_latency_ms_critical) == (100.0, 200.0)
    assert (h.error_rate_warning, h.error_rate_critical) == (0.01, 0.05)
    assert (h.psi_warning, h.psi_critical) == (0.1, 0.25)
    assert config.alerts.resolve_after >= 2 and config.alerts.webhooks == []
    r = config.retention
    assert r.raw_seconds <= r.minute_seconds <= r.hour_seconds


def test_a_full_monitoring_config_loads(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
[health]
window_seconds = 30
min_samples = 20
accuracy_warning = 0.9
accuracy_critical = 0.85
mae_warning = 2.5
mae_critical = 5

[alerts]
resolve_after = 4
webhooks = ["https://hooks.example.com/sluice"]

[retention]
raw_seconds = 600
minute_seconds = 86400
hour_seconds = 8640000

[[retraining]]
deployment = "fraud"
command = "python -m cli train --data /data/fraud.csv"
new_labeled_samples = 5000
min_hours_between = 12
max_per_day = 1
""",
        ),
        environ={},
    )
    assert config.health.min_samples == 20 and config.health.mae_critical == 5.0
    assert config.alerts.webhooks == ["https://hooks.example.com/sluice"]
    [rt] = config.retraining
    assert (rt.deployment, rt.new_labeled_samples, rt.max_per_day) == ("fraud", 5000, 1)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[health]\nbogus_threshold = 1\n", "health.bogus_threshold"),
        ("[alerts]\nresolve_after = 'three'\n", "alerts.resolve_after"),
        ("[alerts]\nwebhooks = ['ftp://x']\n", "alerts.webhooks[0]"),
        ("[retention]\nraw_seconds = 7200\nminute_seconds = 3600\n", "raw_seconds <= minute_seconds"),
        ("[health]\npsi_warning = 0.3\npsi_critical = 0.2\n", "health.psi_critical"),
        ("[health]\nks_alpha = 1.5\n", "health.ks_alpha"),
        ("[[retraining]]\ndeployment = 'd'\ncommand = 'x'\nevery = 3\n", "retraining[0].every"),
        ("[[retraining]]\ndeployment = 'd'\ncommand = 'x'\n", "retraining[0] has no trigger"),
        ("[[retraining]]\ndeployment = 'd'\ncommand = 'x'\non_critical = true\nmax_per_day = 0\n", "max_per_day"),
        # Every interval is above 0: a 0 tick would spin the rollout loop and pin a core at 100%.
        ("[rollout]\ntick_seconds = 0\n", "rollout.tick_seconds must be more than 0 seconds, got 0"),
        ("[agents]\nheartbeat_seconds = 0\n", "agents.heartbeat_seconds must be more than 0"),
        ("[agents]\nforget_after_seconds = 0\n", "agents.forget_after_seconds must be more than 0"),
        ("[agents]\nforget_after_seconds = 5\n", "forget_after_seconds must be longer than heartbeat_seconds"),
        ("[limits]\nmax_agents_per_credential = 0\n", "limits.max_agents_per_credential must be at least 1"),
        ("[[tokens]]\nname = '" + "t" * 129 + "'\nrole = 'agent'\ntoken = 's'\n", "tokens[0].name is 129 characters"),
        ("[alerts]\nevaluate_seconds = 0\n", "alerts.evaluate_seconds must be more than 0"),
        ("[alerts]\nwebhook_timeout_seconds = 0.0\n", "alerts.webhook_timeout_seconds must be more than 0"),
        ("[health]\nwindow_seconds = 0\n", "health.window_seconds must be more than 0"),
        ("[retention]\nrollup_interval_seconds = 0\n", "retention.rollup_interval_seconds must be more than 0"),
        ("[retention]\nreceipt_seconds = 0\n", "retention.receipt_seconds must be more than 0"),
        ("[retention]\nraw_seconds = 0\n", "retention.raw_seconds must be more than 0"),
        # The model sandbox's limits (issue 13, item 7).
        ("[models]\ninspect_timeout_seconds = 0\n", "models.inspect_timeout_seconds must be more than 0"),
        ("[models]\nevaluate_timeout_seconds = inf\n", "models.evaluate_timeout_seconds must be a finite number"),
        ("[models]\ninspect_memory_mb = 0\n", "models.inspect_memory_mb must be at least 1"),
        ("[models]\nevaluate_concurrency = 0\n", "models.evaluate_concurrency must be at least 1"),
        ("[models]\nregister_concurrency = 0\n", "models.register_concurrency must be at least 1"),
    ],
)
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_config(write(tmp_path, text), environ={})
    assert named in info.value.message


def test_the_control_plane_refuses_to_start_with_an_unknown_key(tmp_path: Path) -> None:
    config = write(tmp_path, "[alerts]\nresolve_after = 2\nescalate_after = 5\n")
    result = run_cli(
        "controlplane",
        "--listen",
        "127.0.0.1:0",
        "--db",
        f"sqlite:///{tmp_path / 'cp.db'}",
        "--artifacts",
        str(tmp_path / "artifacts"),
        "--metrics-port",
        "0",
        "--config",
        str(config),
        timeout=60,
    )
    assert result.returncode != 0
    err = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(err) == 1
    assert err[0].startswith("error: config: unknown key 'alerts.escalate_after'"), result.stderr
    assert "listening" not in result.stdout


def test_the_readme_configuration_example_is_accepted(tmp_path: Path) -> None:
    """The TOML shown in README.md loads as written: the docs match what the loader accepts."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    # The README says which values are placeholders: each line marked REPLACE, and only those.
    assert [line.split("=")[0].strip() for line in example.splitlines() if "REPLACE" in line and "=" in line] == [
        "sha256",
        "cert_file",
        "key_file",
        "deployment",
        "command",
    ]
    example = example.replace("<sha256 hex of the token>", "ab" * 32)
    path = tmp_path / "sluice.toml"
    path.write_text(example)
    config = load_config(path, environ={})
    assert config.tokens[0].role == "operator"
    assert config.health.psi_critical == 0.25
    assert config.retraining[0].deployment == "cancer-web"
