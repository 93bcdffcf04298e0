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
