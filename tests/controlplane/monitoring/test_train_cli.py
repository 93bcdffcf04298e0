"""`sluice train`: the built-in trainer as a real process, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from controlplane.sample_data import breast_cancer_arrays, write_breast_cancer_csv
from tests.harness import run_cli


def test_train_writes_a_working_model_and_baseline(tmp_path: Path) -> None:
    data = tmp_path / "cancer.csv"
    write_breast_cancer_csv(data)
    out = tmp_path / "model.onnx"
    result = run_cli("train", "--data", str(data), "--out", str(out), "--kind", "logreg", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 569 and summary["features"] == 30 and summary["holdout_accuracy"] > 0.9
    baseline = np.load(summary["baseline"])
    assert baseline.ndim == 2 and baseline.shape[1] == 30
    X, y = breast_cancer_arrays()
    labels, _ = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": X})
    assert np.mean(labels == y) > 0.9
    # Without --out the paths come from the environment a retraining trigger sets.
    env_out = tmp_path / "from-env.onnx"
    env_baseline = tmp_path / "from-env.npy"
    result = run_cli(
        "train",
        "--data",
        str(data),
        env={"SLUICE_OUTPUT": str(env_out), "SLUICE_BASELINE_OUTPUT": str(env_baseline)},
    )
    assert result.returncode == 0, result.stderr
    assert env_out.is_file() and env_baseline.is_file() and "holdout accuracy" in result.stdout


def test_train_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "cancer.csv"
    write_breast_cancer_csv(data)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("a,b,label\n1,2,0\n3,oops,1\n")
    cases = [
        (["--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "m.onnx")], "does not exist"),
        (["--data", str(data), "--out", str(tmp_path / "m.txt")], "must name a .onnx file"),
        (["--data", str(data), "--out", str(tmp_path / "m.onnx"), "--label", "nope"], "no column 'nope'"),
        (["--data", str(bad_csv), "--out", str(tmp_path / "m.onnx")], "not a number"),
    ]
    for args, text in cases:
        result = run_cli("train", *args, env={"SLUICE_OUTPUT": ""})
        assert result.returncode == 1, (args, result.stdout)
        err = result.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and text in err[0], (args, result.stderr)
    assert not (tmp_path / "m.onnx").exists()
