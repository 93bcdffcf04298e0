"""Each module adds its subcommands to the parser; REGISTRARS lists them in help order."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from cli.commands import (
    agents,
    dataset,
    demo,
    deployments,
    experiments,
    labels,
    log,
    monitoring,
    policy,
    registry,
    serve,
    tokens,
    trail,
    train,
    tui,
)

Registrar = Callable[[argparse._SubParsersAction], None]

REGISTRARS: list[Registrar] = [
    serve.register,
    agents.register,
    tui.register,
    demo.register,
    registry.register,
    train.register,
    deployments.register,
    experiments.register,
    monitoring.register,
    labels.register,
    dataset.register,
    policy.register,
    log.register,
    trail.register,
    tokens.register,
]
