"""`sluice train` on mixed-type tables (issue 14 item 6): text, numbers and missing cells.

Real scikit-learn pipelines exported by skl2onnx and run by onnxruntime, on a deterministic table
generated here (2 string columns, 3 numeric columns with about 10% missing), as CSV and Parquet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from controlplane.tables import read_table_file, split_label
from controlplane.training import (
    _as_float32_values,
    _table_classes,
    export_table_onnx,
    fit_table,
    table_feeds,
    train_command,
)
from core.errors import InvalidInput
from tests.harness import run_cli
from tests.models import TABLE_NUMBERS, TABLE_STRINGS, mixed_table_rows, write_mixed_table

COLUMNS = ["plan", "device", *TABLE_NUMBERS]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    return mixed_table_rows(300, seed=4)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_exported_model_answers_as_the_pipeline(tmp_path: Path, rows: list[dict[str, object]], suffix: str) -> None:
    data = write_mixed_table(tmp_path / f"table{suffix}", rows)
    features, labels = split_label(read_table_file(data), None, str(data))
    assert features.categorical() == list(TABLE_STRINGS) and features.numeric() == list(TABLE_NUMBERS)
    assert np.isnan(features.columns["age"]).sum() > 10  # missing cells stay missing
    features = _as_float32_values(features)
    classes = _table_classes(labels, "logreg")
    pipeline = fit_table(features, classes, "logreg")
    out = tmp_path / "model.onnx"
    export_table_onnx(pipeline, features, out)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    types = {i.name: i.type for i in session.get_inputs()}
    assert types == {
        "plan": "tensor(string)",
        "device": "tensor(string)",
        **dict.fromkeys(TABLE_NUMBERS, "tensor(float)"),
    }
    onnx_labels, probabilities = session.run(None, table_feeds(features))
    expected = pipeline.predict(features.to_arrow())
    assert onnx_labels.tolist() == expected.tolist()
    assert set(onnx_labels.tolist()) == {"churn", "stay"} and probabilities.shape == (300, 2)


def test_a_regressor_on_mixed_columns_answers_as_the_pipeline(tmp_path: Path, rows: list[dict[str, object]]) -> None:
    rows = [dict(r) for r in rows]
    for row in rows:
        row["label"] = float(len(str(row["plan"]))) + (float(row["visits"]) if row["visits"] is not None else 0.0)
    features, labels = split_label(read_table_file(write_mixed_table(tmp_path / "t.csv", rows)), None, "t.csv")
    features = _as_float32_values(features)
    pipeline = fit_table(features, labels, "ridge")
    export_table_onnx(pipeline, features, tmp_path / "r.onnx")
    session = ort.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"])
    (values,) = session.run(["value"], table_feeds(features))
    np.testing.assert_allclose(values.reshape(-1), pipeline.predict(features.to_arrow()), rtol=1e-4, atol=1e-4)


def test_train_command_writes_a_model_per_column_and_a_parquet_baseline(
    tmp_path: Path, rows: list[dict[str, object]]
) -> None:
    data = write_mixed_table(tmp_path / "table.parquet", rows)
    result = train_command(data, tmp_path / "m.onnx", None, "logreg")
    assert result.columns == {"plan": "categorical", "device": "categorical", **dict.fromkeys(TABLE_NUMBERS, "numeric")}
    assert result.holdout_accuracy is not None and result.holdout_accuracy > 0.7 and result.n_holdout == 60
    assert result.baseline == tmp_path / "m.baseline.parquet"
    baseline = pq.read_table(result.baseline)
    assert baseline.column_names == COLUMNS and baseline.num_rows == 240  # training rows, no label
    # Integer class labels: an int64 label output, the same one input per column.
    rows = [dict(r) for r in rows]
    for i, row in enumerate(rows):
        row["label"] = i % 3
    ints = write_mixed_table(tmp_path / "ints.csv", rows)
    result = train_command(ints, tmp_path / "i.onnx", None, "gbm")
    session = ort.InferenceSession(str(tmp_path / "i.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].type == "tensor(int64)" and len(session.get_inputs()) == 5


def test_bad_tables_are_refused_in_one_line(tmp_path: Path, rows: list[dict[str, object]]) -> None:
    dated = tmp_path / "dated.parquet"
    pq.write_table(
        pa.table(
            {
                "plan": ["a", "b"] * 10,
                "seen": pa.array(np.arange(20).astype("datetime64[s]")),
                "label": [0, 1] * 10,
            }
        ),
        dated,
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("plan,nothing,age,label\n" + "".join(f"p{i % 3},,{i},{i % 2}\n" for i in range(20)))
    out = tmp_path / "m.onnx"
    for data, text in [
        (dated, "column 'seen' has type timestamp"),
        (empty, "column 'nothing' is empty in every row"),
    ]:
        result = run_cli("train", "--data", str(data), "--out", str(out), env={"SLUICE_OUTPUT": ""})
        err = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(err) == 1 and text in err[0], result.stderr
    assert not out.exists()
    mixed = write_mixed_table(tmp_path / "t.csv", rows)
    cases = [
        (mixed, {"baseline_out": tmp_path / "b.npy"}, "its baseline is a Parquet table; name it .parquet"),
        (mixed, {"kind": "ridge"}, "its label column must hold numbers, not text"),
    ]
    for data, kw, text in cases:
        with pytest.raises(InvalidInput, match=text):
            train_command(data, out, kw.get("baseline_out"), str(kw.get("kind", "logreg")))
    typo = tmp_path / "typo.csv"
    typo.write_text("a,b,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(20)) + "3,oops,1\n")
    with pytest.raises(InvalidInput, match=r"line 22, column 'b' is 'oops', not a number"):
        train_command(typo, out, None)
    assert not out.exists()
