"""Registry validation without a database (pure): the feature count a model fixes, and what a
table baseline stores for agents to judge drift on (docs/STATISTICS.md: numeric bins, categorical
frequency bins with "other" last and missing values counted apart)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from controlplane import registry
from controlplane.context import Context
from controlplane.domain import Principal, Role
from controlplane.onnx_inspect import ModelSignature, TensorSpec
from controlplane.registry import _table_as_matrix, baseline_predictions, category_bins, n_features, summarise_table
from controlplane.tables import Table
from core.errors import AlreadyExists, InvalidInput
from tests.models import make_classifier_onnx

ALICE = Principal("alice", Role.OPERATOR)
MAX_DESCRIPTION = registry.MAX_DESCRIPTION


def spec(shape: list[int], name: str = "x") -> dict[str, object]:
    return {"name": name, "dtype": "float32", "shape": shape}


def test_a_model_fixes_its_feature_count_only_with_one_two_dimensional_input() -> None:
    assert n_features([spec([-1, 4])]) == 4
    assert n_features([spec([-1, -1])]) is None  # symbolic width: not fixed
    assert n_features([spec([-1, 0])]) is None
    assert n_features([spec([-1, 4, 2])]) is None
    assert n_features([spec([-1, 4]), spec([-1, 4], "y")]) is None  # one input per feature: no matrix
    assert n_features([]) is None


def test_category_bins_keep_the_most_frequent_with_other_last_and_missing_apart() -> None:
    values = np.array(["b", "a", "a", "c", "", "b", "d", "", "b"], dtype=object)
    bins = category_bins(values, top_k=2)
    assert bins["categories"] == ["b", "a"]  # b 3, a 2, then c and d (1 each) are "other"
    assert bins["counts"] == [3, 2, 2]
    assert bins["missing"] == 2
    assert bins["known"] == ["c", "d"] and bins["known_complete"] is True


def test_ties_are_broken_by_name_and_every_category_can_fit() -> None:
    bins = category_bins(np.array(["z", "y", "x"], dtype=object), top_k=5)
    assert bins["categories"] == ["x", "y", "z"] and bins["counts"] == [1, 1, 1, 0]
    assert bins["missing"] == 0 and bins["known"] == []


def test_a_mixed_table_baseline_bins_numbers_in_input_order_and_strings_as_categories() -> None:
    table = Table(
        names=("city", "age", "income"),
        columns={
            "city": np.array(["paris", "rome", "paris", ""], dtype=object),
            "age": np.array([20.0, 30.0, np.nan, 50.0]),
            "income": np.array([1.0, 2.0, 3.0, 4.0]),
        },
    )
    signature = ModelSignature(
        inputs=(TensorSpec("income", "float32", (None, 1)), TensorSpec("city", "string", (None, 1)),
                TensorSpec("age", "float32", (None, 1))),
        outputs=(),
        task="classifier",
    )  # fmt: skip
    out = summarise_table(table, signature, top_k=5)
    assert out["n_rows"] == 4
    numeric = [(f["name"], f["column"], f["missing"]) for f in out["features"]]
    assert numeric == [("income", "income", 0), ("age", "age", 1)]
    (city,) = out["categories"]
    assert (city["index"], city["name"], city["categories"], city["counts"], city["missing"]) == (
        0, "city", ["paris", "rome"], [2, 1, 0], 1,
    )  # fmt: skip


def test_only_a_complete_numeric_table_for_one_numeric_input_is_a_classic_matrix() -> None:
    table = Table(names=("a", "b"), columns={"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])})
    one_float = ModelSignature(inputs=(TensorSpec("x", "float32", (None, 2)),), outputs=(), task="classifier")
    one_string = ModelSignature(inputs=(TensorSpec("x", "string", (None, 2)),), outputs=(), task="classifier")
    matrix = _table_as_matrix(table, one_float)
    assert matrix is not None and matrix.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert _table_as_matrix(table, one_string) is None
    holes = Table(names=("a",), columns={"a": np.array([1.0, np.nan])})
    assert _table_as_matrix(holes, one_float) is None  # missing cells: a table baseline, not a matrix


def test_without_trial_answers_there_is_no_prediction_histogram() -> None:
    for answers in (None, np.array([])):
        signature = ModelSignature(inputs=(), outputs=(), task="classifier", baseline_answers=answers, n_classes=2)
        assert baseline_predictions(signature) == {}
    signature = ModelSignature(
        inputs=(), outputs=(), task="classifier", baseline_answers=np.array([0, 1, 1]), n_classes=2
    )
    assert baseline_predictions(signature)["prediction_counts"] == [1, 2]


def test_feature_names_and_the_description_are_checked_at_their_limits(ctx: Context, models_dir: Path) -> None:
    """Feature names of 1 to 128 characters, a description of at most MAX_DESCRIPTION: a name or
    description at its limit passes on to the next check (here: the upload's sha256)."""
    model = make_classifier_onnx(models_dir)
    wrong_sha = "0" * 64
    for names in (["x" * 129], [""]):
        with pytest.raises(InvalidInput, match="feature names must be 1 to 128 characters"):
            registry.register_file(ctx, ALICE, registry.NewVersion("m", "v1", feature_names=names), model, None)
    with pytest.raises(InvalidInput, match=f"the description is {MAX_DESCRIPTION + 1} characters"):
        registry.register_file(
            ctx, ALICE, registry.NewVersion("m", "v1", description="d" * (MAX_DESCRIPTION + 1)), model, None
        )
    at_limits = registry.NewVersion(
        "m", "v1", description="d" * MAX_DESCRIPTION, feature_names=["x" * 128], expected_sha256=wrong_sha
    )
    with pytest.raises(InvalidInput, match="the header said"):
        registry.register_file(ctx, ALICE, at_limits, model, None)
    assert registry.list_versions(ctx) == []


def test_two_models_may_share_a_version_name_and_a_model_have_many(ctx: Context, models_dir: Path) -> None:
    model = make_classifier_onnx(models_dir)
    for name in ("fraud", "churn"):
        registry.register_file(ctx, ALICE, registry.NewVersion(name, "v1"), model, None)
    registry.register_file(ctx, ALICE, registry.NewVersion("churn", "v2"), model, None)  # and many versions
    assert sorted(v.ref for v in registry.list_versions(ctx)) == ["churn:v1", "churn:v2", "fraud:v1"]
    with pytest.raises(AlreadyExists):
        registry.register_file(ctx, ALICE, registry.NewVersion("churn", "v1"), model, None)


def test_a_regressors_prediction_histogram_has_its_edges_and_a_classifiers_has_none() -> None:
    """A regressor's predictions are binned on inner edges the agents must use too (stored with the
    counts); a classifier's bins are its classes (docs/STATISTICS.md)."""
    answers = np.linspace(0.0, 1.0, 50)
    regressor = ModelSignature(inputs=(), outputs=(), task="regressor", baseline_answers=answers, n_classes=0)
    stored = baseline_predictions(regressor)
    assert sum(stored["prediction_counts"]) == 50
    assert len(stored["prediction_edges"]) == len(stored["prediction_counts"]) - 1  # inner edges
    classifier = ModelSignature(
        inputs=(), outputs=(), task="classifier", baseline_answers=np.array([0, 1, 1]), n_classes=2
    )
    assert "prediction_edges" not in baseline_predictions(classifier)


class _Payload:
    """Unpickling it makes a directory: proof that a baseline's bytes ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.mkdir, (str(self.marker),)


def npy(array: np.ndarray) -> bytes:
    import io

    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


def test_a_baseline_npy_of_pickled_objects_is_refused_unread(tmp_path: Path) -> None:
    """An uploaded .npy holding Python objects would run code when unpickled: refused as unreadable."""
    marker = tmp_path / "ran"
    hostile = np.empty(1, dtype=object)
    hostile[0] = _Payload(marker)
    with pytest.raises(InvalidInput, match=r"is not a readable \.npy array"):
        registry._load_baseline(npy(hostile))
    assert not marker.exists()


def test_a_baseline_npy_is_rows_by_features_with_at_least_one_row() -> None:
    one_row = registry._load_baseline(npy(np.ones((1, 3))))
    assert isinstance(one_row, np.ndarray) and one_row.shape == (1, 3)
    for bad in (np.ones((0, 3)), np.ones(5), np.ones((2, 3, 1))):
        with pytest.raises(InvalidInput, match=r"must be a 2-D array \[rows, features\]"):
            registry._load_baseline(npy(bad))


def test_a_numeric_baseline_is_cut_into_ten_quantile_bins() -> None:
    """docs/STATISTICS.md: 10 quantile bins per feature, fixed at registration (1,000 distinct
    values: 100 in each bin)."""
    sample = np.column_stack([np.arange(1000.0), np.arange(1000.0) * -2])
    summary = registry.summarise_baseline(sample, ["a", "b"])
    for feature in summary["features"]:
        assert len(feature["counts"]) == 10 and len(feature["inner_edges"]) == 9
        assert feature["counts"] == [100] * 10


def test_a_versions_feature_names_are_read_back() -> None:
    from controlplane.store.models import ModelVersionRow

    row = ModelVersionRow(
        model="m", version="v1", sha256="0" * 64, size_bytes=1, task="classifier", inputs=[], outputs=[],
        feature_names=["age", "income"], description="", baseline=None, baseline_sha256=None,
        offline_evaluation=None, created_by="alice",
    )  # fmt: skip
    assert registry.version_info(row).feature_names == ["age", "income"]


def test_a_table_baseline_may_have_exactly_the_row_limit() -> None:
    limit = registry.MAX_BASELINE_ROWS  # 100,000 (docs: the baseline's row limit)
    assert limit == 100_000
    at_limit = registry._load_baseline(("x\n" + "1\n" * limit).encode())
    assert isinstance(at_limit, Table) and at_limit.rows == limit
    with pytest.raises(InvalidInput, match="has 100001 rows; the limit is 100000"):
        registry._load_baseline(("x\n" + "1\n" * (limit + 1)).encode())
