"""A refused registration stores nothing: not the model's bytes, not the baseline's, no row.

The uploads here are bytes the store has never seen (a model with its own doc string), so a
model file committed before the baseline was checked would show up as a new artifact.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import onnx
import pytest
from sqlalchemy import func, select

from controlplane import registry
from controlplane.context import Context
from controlplane.domain import Principal, Role
from controlplane.store.models import ModelVersionRow
from core.errors import InvalidInput
from tests.models import make_classifier_onnx

ALICE = Principal("alice", Role.OPERATOR)


def artifacts_on_disk(ctx: Context) -> set[str]:
    root = ctx.artifacts.root
    return {p.name for p in root.rglob("*") if p.is_file() and "tmp" not in p.relative_to(root).parts}


def unseen_model(models_dir: Path, where: Path) -> Path:
    model = onnx.load(make_classifier_onnx(models_dir))
    model.doc_string = f"unique {uuid.uuid4()}"
    path = where / "unseen.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        (np.zeros((10, 7)), "the baseline has 7 features but the model expects 30"),
        (np.full((10, 30), np.nan), "NaN or infinite"),
        (b"not a numpy file", "no data rows"),  # read as a table: a header line alone
    ],
)
def test_a_bad_baseline_leaves_neither_the_model_nor_the_baseline_stored(
    ctx: Context, models_dir: Path, tmp_path: Path, baseline: object, message: str
) -> None:
    model = unseen_model(models_dir, tmp_path)
    bad = tmp_path / "baseline.npy"
    if isinstance(baseline, bytes):
        bad.write_bytes(baseline)
    else:
        np.save(bad, baseline)
    before = artifacts_on_disk(ctx)
    with pytest.raises(InvalidInput, match=message):
        registry.register_file(ctx, ALICE, registry.NewVersion(model="m", version="v1"), model, bad)
    assert artifacts_on_disk(ctx) == before
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ModelVersionRow)) == 0
    # The same files with a good baseline register: the refusal was about the baseline only.
    np.save(bad, np.zeros((10, 30)))
    info = registry.register_file(ctx, ALICE, registry.NewVersion(model="m", version="v1"), model, bad)
    assert ctx.artifacts.exists(info.sha256)
