"""The bundled demo data: scikit-learn's breast-cancer set (569 rows, 30 features, no download),
as arrays, feature names and a CSV for `sluice train`."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from controlplane.onnx_export import atomic_write


@functools.cache
def _breast_cancer() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()  # ships inside scikit-learn: no download
    names = tuple(str(n).replace(" ", "_") for n in bunch.feature_names)
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64), names


def breast_cancer_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's breast-cancer data: X float32 [569, 30], y int64 (1 = benign); copies."""
    data, target, _ = _breast_cancer()
    return data.astype(np.float32), target.copy()


def breast_cancer_feature_names() -> list[str]:
    """The 30 feature names with spaces replaced by '_' (the CSV header)."""
    return list(_breast_cancer()[2])


def write_breast_cancer_csv(path: Path) -> None:
    """The breast-cancer data as CSV: header of feature names, then `label` last."""
    data, target, names = _breast_cancer()
    lines = [",".join([*names, "label"])]
    for row, label in zip(data, target, strict=True):
        lines.append(",".join([*(repr(float(v)) for v in row), str(int(label))]))
    atomic_write(Path(path), ("\n".join(lines) + "\n").encode())
