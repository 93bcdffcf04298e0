"""Registering versions: what is stored, and bad input that must change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from sqlalchemy import func, select

from controlplane import registry
from controlplane.context import Context
from controlplane.domain import Principal, Role
from controlplane.store.models import AuditEventRow, ModelVersionRow
from core.errors import AlreadyExists, InvalidInput, NotFound
from tests.models import make_baseline, make_classifier_onnx

ALICE = Principal("alice", Role.OPERATOR)


def upload(ctx: Context, path: Path | None, what: str = "model"):
    if path is None:
        return None
    pending = ctx.artifacts.begin_upload(what)
    pending.write(path.read_bytes())
    return pending


def register(ctx: Context, model: str, version: str, path: Path, baseline: Path | None = None, **kw: object):
    new = registry.NewVersion(model=model, version=version, **kw)  # type: ignore[arg-type]
    return registry.register_version(ctx, ALICE, new, upload(ctx, path), upload(ctx, baseline, "baseline"))


def stored_state(ctx: Context) -> tuple[int, int, list[str]]:
    with ctx.db.session() as s:
        versions = s.scalar(select(func.count()).select_from(ModelVersionRow))
        audits = s.scalar(select(func.count()).select_from(AuditEventRow))
    files = sorted(p.name for p in ctx.artifacts.root.rglob("*") if p.is_file())
    return int(versions or 0), int(audits or 0), files


def test_register_records_signature_baseline_and_audit(ctx: Context, models_dir: Path) -> None:
    info = register(
        ctx, "cancer", "v1", make_classifier_onnx(models_dir), make_baseline(models_dir), description="first"
    )
    assert info.ref == "cancer:v1"
    assert len(info.sha256) == 64 and ctx.artifacts.exists(info.sha256)
    assert info.task == "classifier"
    assert info.inputs == [{"name": "input", "dtype": "float32", "shape": [-1, 30]}]
    assert {o["name"] for o in info.outputs} == {"label", "probabilities"}
    assert info.baseline is not None and len(info.baseline["features"]) == 30
    first = info.baseline["features"][0]
    assert len(first["counts"]) == len(first["inner_edges"]) + 1
    assert sum(first["counts"]) == info.baseline["n_rows"]
    assert ctx.artifacts.exists(info.baseline["sample_sha256"])
    listed = registry.list_versions(ctx, "cancer")
    assert [v.ref for v in listed] == ["cancer:v1"]
    assert registry.get_version(ctx, "cancer", "v1").sha256 == info.sha256
    with ctx.db.session() as s:
        event = s.scalars(select(AuditEventRow)).one()
        assert (event.principal, event.action, event.target) == ("alice", "version.register", "cancer:v1")


def test_not_onnx_changes_nothing(ctx: Context, tmp_path: Path) -> None:
    before = stored_state(ctx)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model at all" * 10)
    with pytest.raises(InvalidInput, match="ONNX"):
        register(ctx, "cancer", "junk", junk)
    assert stored_state(ctx) == before


def test_truncated_onnx_changes_nothing(ctx: Context, models_dir: Path, tmp_path: Path) -> None:
    before = stored_state(ctx)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(make_classifier_onnx(models_dir).read_bytes()[:200])
    with pytest.raises(InvalidInput):
        register(ctx, "cancer", "cut", cut)
    assert stored_state(ctx) == before


def test_onnx_failing_the_checker_is_refused(ctx: Context, tmp_path: Path) -> None:
    node = helper.make_node("Add", ["x", "undefined_input"], ["y"])
    graph = helper.make_graph(
        [node],
        "broken",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
    )
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(helper.make_model(graph).SerializeToString())
    before = stored_state(ctx)
    with pytest.raises(InvalidInput):
        register(ctx, "broken", "v1", bad)
    assert stored_state(ctx) == before


def test_duplicate_version_is_refused(ctx: Context, models_dir: Path) -> None:
    model = make_classifier_onnx(models_dir)
    register(ctx, "cancer", "v1", model)
    before = stored_state(ctx)
    with pytest.raises(AlreadyExists, match="cancer:v1 already exists"):
        register(ctx, "cancer", "v1", model)
    assert stored_state(ctx) == before


@pytest.mark.parametrize(
    ("model", "version"),
    [
        ("", "v1"),
        ("cancer", ""),
        ("x" * 129, "v1"),
        ("has space", "v1"),
        ("a/b", "v1"),
        ("cancer", "../v1"),
        ("ca\x00ncer", "v1"),
    ],
)
def test_bad_names_are_refused(ctx: Context, models_dir: Path, model: str, version: str) -> None:
    before = stored_state(ctx)
    with pytest.raises(InvalidInput, match="name"):
        register(ctx, model, version, make_classifier_onnx(models_dir))
    assert stored_state(ctx) == before


def test_baseline_with_wrong_width_is_refused(ctx: Context, models_dir: Path, tmp_path: Path) -> None:
    narrow = tmp_path / "narrow.npy"
    np.save(narrow, np.zeros((50, 29), dtype=np.float32))
    before = stored_state(ctx)
    with pytest.raises(InvalidInput, match="29 features but the model expects 30"):
        register(ctx, "cancer", "v1", make_classifier_onnx(models_dir), narrow)
    assert stored_state(ctx) == before
    # A CSV baseline of named columns is read as a table; two columns for a model of 30 features
    # fail the trial run, which says what the model expects.
    table = tmp_path / "sample.csv"
    table.write_text("f0,f1\n1.0,2.0\n")
    with pytest.raises(InvalidInput, match=r"does not fit .*shape \[rows, 30\], got \[1, 2\]"):
        register(ctx, "cancer", "v1", make_classifier_onnx(models_dir), table)
    assert stored_state(ctx) == before


def test_unknown_model_and_version(ctx: Context, models_dir: Path) -> None:
    with pytest.raises(NotFound, match="no model named"):
        registry.get_version(ctx, "nothing", "v1")
    register(ctx, "cancer", "v1", make_classifier_onnx(models_dir))
    with pytest.raises(NotFound, match="has no version 'v9'"):
        registry.get_version(ctx, "cancer", "v9")
