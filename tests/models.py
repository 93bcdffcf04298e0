"""Small real models for tests: trained with scikit-learn, exported with skl2onnx, cached on disk.

Every helper writes into the directory it is given (usually the session-scoped `models_dir`
fixture) and reuses a file that is already there, so a test session trains each model once.
Writes go to a temporary name and are renamed, so threads and xdist workers sharing a directory
never see half a file.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from controlplane.training import breast_cancer_arrays, export_onnx, train_model, write_baseline

_lock = threading.Lock()


@functools.cache
def _breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    X, y = breast_cancer_arrays()
    X.setflags(write=False)  # shared by every caller: a test must not edit it in place
    y.setflags(write=False)
    return X, y


def _cached(path: Path, write: Callable[[Path], None]) -> Path:
    with _lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}{path.suffix}")
            try:
                write(tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
    return path


def make_classifier_onnx(directory: Path, kind: str = "logreg", seed: int = 0) -> Path:
    """A breast-cancer classifier trained on all 569 rows with `train_model(X, y, kind, seed)`.

    Input `input` float32 [N, 30]; outputs `label` int64 [N] and `probabilities` float32 [N, 2].
    kind: 'logreg', 'gbm' (50 trees) or 'constant' (always the majority class, 1).
    """

    def write(tmp: Path) -> None:
        X, y = _breast_cancer()
        export_onnx(train_model(X, y, kind, seed), X.shape[1], tmp)

    return _cached(Path(directory) / f"classifier-{kind}-{seed}.onnx", write)


FIXTURES = Path(__file__).parent / "fixtures"


def fixture_classifier(kind: str) -> Path:
    """A committed breast-cancer classifier ('logreg' or 'constant'), fixed bytes whatever the
    installed scikit-learn/skl2onnx/onnx: for tests that show or compare a model's sha256 or size.
    Same inputs and outputs as `make_classifier_onnx` (regenerate: `python -m tests.fixtures.make`).
    """
    path = FIXTURES / f"classifier-{kind}.onnx"
    if not path.exists():
        raise FileNotFoundError(f"no committed fixture {path.name}; kinds: logreg, constant")
    return path


def regression_target() -> np.ndarray:
    """The regressor's target: the benign label as a score in [0, 1] (MAE around 0.2)."""
    return _breast_cancer()[1].astype(np.float64)


def make_regressor_onnx(directory: Path, seed: int = 0) -> Path:
    """A ridge regressor on the same 30 features: input `input` [N, 30], output `value` [N, 1]."""

    def write(tmp: Path) -> None:
        X, _ = _breast_cancer()
        export_onnx(train_model(X, regression_target(), "ridge", seed), X.shape[1], tmp)

    return _cached(Path(directory) / f"regressor-{seed}.onnx", write)


def make_baseline(directory: Path) -> Path:
    """A baseline sample (.npy float32 [569, 30]) of the breast-cancer features."""
    return _cached(
        Path(directory) / "baseline.npy", lambda tmp: write_baseline(_breast_cancer()[0], tmp)
    )


def breast_cancer_rows(n: int, seed: int = 0) -> np.ndarray:
    """n rows drawn from the breast-cancer features (float32, C-contiguous, a fresh copy).

    With replacement only when n exceeds the 569 rows available.
    """
    X, _ = _breast_cancer()
    rows = np.random.default_rng(seed).choice(X.shape[0], size=n, replace=n > X.shape[0])
    return X[rows]
