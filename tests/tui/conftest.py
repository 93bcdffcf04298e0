"""Fixtures of the TUI tests: real trained models registered in the shared control plane."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from core.client import SluiceClient
from tests.harness import unique
from tests.models import make_baseline, make_classifier_onnx


@dataclass(frozen=True)
class Registered:
    model: str
    v1: str
    v2: str


@pytest.fixture
def registered(client: SluiceClient, models_dir: Path) -> Registered:
    """Two versions of a fresh model (logistic regression, gradient boosting) in the shared server."""
    model = unique("tuim")
    baseline = make_baseline(models_dir)
    client.register_version(model, "v1", make_classifier_onnx(models_dir, "logreg", 0), baseline)
    client.register_version(model, "v2", make_classifier_onnx(models_dir, "gbm", 0), baseline)
    return Registered(model, f"{model}:v1", f"{model}:v2")
