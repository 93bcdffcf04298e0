"""docker-compose.yml starts only valid `sluice` invocations (checked with the real parser)."""

from __future__ import annotations

import re

import pytest

from cli import build_parser
from tests.harness import REPO


def _commands() -> dict[str, list[str]]:
    """The `command:` lists of each service (the file keeps them as one-line JSON lists)."""
    import json

    commands: dict[str, list[str]] = {}
    service = ""
    for line in (REPO / "docker-compose.yml").read_text().splitlines():
        header = re.match(r"^  ([a-z][a-z0-9-]*):\s*$", line)
        if header:
            service = header.group(1)
        found = re.match(r"^\s+command:\s*(\[.*\])\s*$", line)
        if found:
            commands[service] = json.loads(found.group(1))
    return commands


def test_every_service_command_parses() -> None:
    commands = _commands()
    assert set(commands) == {"controlplane", "agent-a", "agent-b"}
    parser = build_parser()
    for service, argv in commands.items():
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{service}: `sluice {' '.join(argv)}` is not a valid invocation ({exc})")
        assert args.command == argv[0]
    assert "Dockerfile" in {p.name for p in REPO.iterdir()}


def test_every_service_builds_an_image_stage_that_exists() -> None:
    """Each service builds the Dockerfile stage of its process (the agent image: the agent extra only)."""
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", (REPO / "Dockerfile").read_text(), re.M))
    service_and_target = r"^  ([a-z][a-z0-9-]*):\n(?:    .*\n)*?    build: \{context: \., target: (\S+)\}"
    targets = dict(re.findall(service_and_target, (REPO / "docker-compose.yml").read_text(), re.M))
    assert targets == {"controlplane": "controlplane", "agent-a": "agent", "agent-b": "agent"}
    assert set(targets.values()) <= stages
    agent_stage = (REPO / "Dockerfile").read_text().split("AS agent\n", 1)[1].split("\nFROM", 1)[0]
    assert "--extra agent" in agent_stage and "controlplane" not in agent_stage


def test_the_image_copies_every_package_the_wheel_ships() -> None:
    import tomllib

    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in patterns}
    copied = set(re.findall(r"^COPY (\S+) \1$", (REPO / "Dockerfile").read_text(), re.M))
    assert packages == copied


def test_each_agent_service_has_a_token_of_its_own() -> None:
    """An agent record is bound to the token that registered it: two agents sharing one token could
    answer for each other. Each agent's default token is an agent-role token of the control plane's
    default SLUICE_TOKENS, and no two agents share one."""
    text = (REPO / "docker-compose.yml").read_text()
    services = re.split(r"^  (?=[a-z][a-z0-9-]*:\s*$)", text, flags=re.M)
    tokens_default = re.search(r"SLUICE_TOKENS: \$\{SLUICE_TOKENS:-([^}]*)\}", text)
    assert tokens_default is not None
    roles = {secret: role for _name, role, secret in (t.split(":") for t in tokens_default.group(1).split(","))}
    agent_secrets = {}
    for block in services:
        name = block.split(":", 1)[0]
        if not name.startswith("agent-"):
            continue
        found = re.search(r"SLUICE_TOKEN: \$\{(\w+):-([^}]*)\}", block)
        assert found is not None, f"{name} sets no SLUICE_TOKEN"
        agent_secrets[name] = found.groups()
    assert set(agent_secrets) == {"agent-a", "agent-b"}
    variables = [v for v, _ in agent_secrets.values()]
    secrets = [s for _, s in agent_secrets.values()]
    assert len(set(variables)) == len(variables) and len(set(secrets)) == len(secrets)
    assert all(roles.get(secret) == "agent" for secret in secrets)
