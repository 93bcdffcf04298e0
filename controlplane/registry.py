"""The model registry: versions of models, their ONNX artifacts, signatures and baselines."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane import audit
from controlplane.artifacts import PendingUpload
from controlplane.context import Context
from controlplane.domain import Principal, VersionInfo
from controlplane.store.models import ModelVersionRow
from controlplane.tables import Table, read_table
from core.errors import AlreadyExists, InvalidInput, NotFound
from core.names import validate_name
from core.report_limits import MAX_KNOWN_CATEGORIES

if TYPE_CHECKING:
    from controlplane.onnx_inspect import ModelSignature, TensorSpec

MAX_BASELINE_ROWS = 100_000
MAX_DESCRIPTION = 2000
BASELINE_BINS = 10


@dataclass
class NewVersion:
    model: str
    version: str
    description: str = ""
    feature_names: list[str] = field(default_factory=list)
    expected_sha256: str = ""


def version_info(row: ModelVersionRow) -> VersionInfo:
    return VersionInfo(
        id=row.id,
        model=row.model,
        version=row.version,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        task=row.task,
        inputs=list(row.inputs),
        outputs=list(row.outputs),
        feature_names=list(row.feature_names or []),
        description=row.description,
        baseline=row.baseline,
        baseline_sha256=row.baseline_sha256,
        offline_evaluation=row.offline_evaluation,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _spec_dict(spec: TensorSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "dtype": spec.dtype,
        "shape": [-1 if d is None else int(d) for d in spec.shape],
    }


def n_features(inputs: list[dict[str, Any]]) -> int | None:
    """Feature count of a single [rows, features] input, None when not fixed."""
    if len(inputs) != 1 or len(inputs[0]["shape"]) != 2:
        return None
    width = int(inputs[0]["shape"][1])
    return width if width > 0 else None


def _load_baseline(data: bytes) -> np.ndarray | Table:
    """The baseline's rows: a .npy array as float64, or a CSV/Parquet table of named columns
    (numbers with missing cells, categories); whether they fit the model is the sandbox's trial run."""
    if not data.startswith(b"\x93NUMPY"):
        table = read_table(data, "the baseline")
        if table.rows > MAX_BASELINE_ROWS:
            raise InvalidInput(f"the baseline has {table.rows} rows; the limit is {MAX_BASELINE_ROWS}")
        for name in table.numeric():
            if np.isinf(table.columns[name]).any():
                raise InvalidInput(f"the baseline's column {name!r} holds an infinite value")
        return table
    try:
        sample = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # numpy raises several types for corrupt files
        raise InvalidInput(f"the baseline is not a readable .npy array: {exc}") from exc
    if sample.ndim != 2 or sample.shape[0] == 0:
        raise InvalidInput(f"the baseline must be a 2-D array [rows, features], got shape {sample.shape}")
    if not np.issubdtype(sample.dtype, np.number):
        raise InvalidInput(f"the baseline must be numeric, got dtype {sample.dtype}")
    if sample.shape[0] > MAX_BASELINE_ROWS:
        raise InvalidInput(f"the baseline has {sample.shape[0]} rows; the limit is {MAX_BASELINE_ROWS}")
    sample = sample.astype(np.float64)
    if not np.isfinite(sample).all():
        raise InvalidInput("the baseline contains NaN or infinite values")
    return sample


def summarise_baseline(sample: np.ndarray, feature_names: list[str]) -> dict[str, Any]:
    """Bin edges fixed once from the baseline; agents count live inputs on these bins."""
    from controlplane.stats.drift import baseline_bin_edges, histogram_counts

    features = []
    for i in range(sample.shape[1]):
        column = sample[:, i]
        edges = baseline_bin_edges(column, BASELINE_BINS)
        given = column[~np.isnan(column)]
        features.append(
            {
                "index": i,
                "name": feature_names[i] if i < len(feature_names) else f"f{i}",
                "inner_edges": [float(e) for e in edges],
                "counts": [int(c) for c in histogram_counts(column, edges)],
                "min": float(given.min()) if given.size else 0.0,
                "max": float(given.max()) if given.size else 0.0,
                "missing": int(column.size - given.size),
            }
        )
    return {"n_rows": int(sample.shape[0]), "features": features}


def category_bins(values: np.ndarray, top_k: int) -> dict[str, Any]:
    """A categorical column's frequency bins: its `top_k` most frequent categories (ties by name),
    their counts and "other" last; "" (missing) counts apart. `known` lists the other categories
    (up to MAX_KNOWN_CATEGORIES) so that agents can tell a rare known category from an unseen one."""

    given = [str(v) for v in values.tolist() if v != ""]
    tally = Counter(given)
    ranked = sorted(tally.items(), key=lambda nc: (-nc[1], nc[0]))
    top, rest = ranked[:top_k], ranked[top_k:]
    return {
        "categories": [n for n, _ in top],
        "counts": [c for _, c in top] + [sum(c for _, c in rest)],
        "missing": int(values.size - len(given)),
        "known": [n for n, _ in rest[:MAX_KNOWN_CATEGORIES]],
        "known_complete": len(rest) <= MAX_KNOWN_CATEGORIES,
    }


def summarise_table(table: Table, signature: ModelSignature, top_k: int) -> dict[str, Any]:
    """A table baseline's drift bins, in the order agents count live inputs: the numeric inputs
    in input order (their values side by side are the agent's metric rows), then the string
    inputs as categorical features."""
    numeric = [s.name for s in signature.inputs if s.dtype != "string"]
    strings = [s.name for s in signature.inputs if s.dtype == "string"]
    matrix = np.column_stack([table.columns[n].astype(np.float64) for n in numeric]) if numeric else None
    out: dict[str, Any] = summarise_baseline(matrix, numeric) if matrix is not None else {"n_rows": table.rows}
    out.setdefault("features", [])
    for feature in out["features"]:
        feature["column"] = feature["name"]
    out["categories"] = [
        {"index": i, "name": name, **category_bins(table.columns[name], top_k)} for i, name in enumerate(strings)
    ]
    return out


def _table_as_matrix(table: Table, signature: ModelSignature) -> np.ndarray | None:
    """A complete numeric table for a model of one float input [rows, n] with n = its columns:
    the classic baseline, as a matrix in column order (the header then names the features)."""
    if len(signature.inputs) != 1 or signature.inputs[0].dtype == "string" or not table.complete_numeric():
        return None
    return table.matrix()


def baseline_predictions(signature: ModelSignature) -> dict[str, Any]:
    """The prediction histogram of the version on its baseline rows (registration's trial run):
    what its live predictions are judged against (prediction drift)."""
    from controlplane.stats.drift import prediction_histogram

    if signature.baseline_answers is None or not signature.baseline_answers.size:
        return {}
    counts, edges = prediction_histogram(signature.baseline_answers, signature.task, signature.n_classes, BASELINE_BINS)
    out: dict[str, Any] = {"prediction_counts": [int(c) for c in counts]}
    if signature.task == "regressor":
        out["prediction_edges"] = [float(e) for e in edges]
    return out


def register_version(
    ctx: Context,
    principal: Principal,
    new: NewVersion,
    model_upload: PendingUpload,
    baseline_upload: PendingUpload | None,
) -> VersionInfo:
    """Validate and store a new version. Uploads are consumed: committed or discarded."""
    # onnx/onnxruntime load only where a model is checked, not for every registry read.
    from controlplane.model_checks import check_model

    try:
        validate_name("model", new.model)
        validate_name("version", new.version)
        if len(new.description) > MAX_DESCRIPTION:
            raise InvalidInput(
                f"the description is {len(new.description)} characters; the limit is {MAX_DESCRIPTION}"
            )
        for name in new.feature_names:
            if not name or len(name) > 128:
                raise InvalidInput("feature names must be 1 to 128 characters")
        with ctx.db.session() as session:
            _ensure_new(session, new.model, new.version)
        model_upload.close()
        if new.expected_sha256 and model_upload.sha256 != new.expected_sha256:
            raise InvalidInput(
                f"the upload's sha256 is {model_upload.sha256}, the header said "
                f"{new.expected_sha256}: the file changed or was cut off in transit"
            )
        sample: np.ndarray | Table | None = None
        if baseline_upload is not None:
            baseline_upload.close()
            sample = _load_baseline(baseline_upload.path.read_bytes())
        # In the sandbox: the ONNX checks, then a trial run as agents will run it (on the baseline
        # rows, or a row of zeros). A model that fails, or exceeds the limits, stores nothing.
        signature = check_model(
            ctx.config.models, model_upload.path, f"the file uploaded for {new.model}:{new.version}", sample
        )
        if isinstance(sample, Table):
            matrix = _table_as_matrix(sample, signature)
            if matrix is not None:
                if not new.feature_names:
                    new.feature_names = list(sample.numeric())
                sample = matrix
        inputs = [_spec_dict(s) for s in signature.inputs]
        outputs = [_spec_dict(s) for s in signature.outputs]
        width = n_features(inputs)
        if new.feature_names and width is not None and len(new.feature_names) != width:
            raise InvalidInput(
                f"{len(new.feature_names)} feature names given; the model has {width} features"
            )
        baseline = None
        baseline_sha = None
        if baseline_upload is not None and sample is not None:
            if isinstance(sample, Table):
                baseline = summarise_table(sample, signature, ctx.config.health.category_top_k)
            else:
                baseline = summarise_baseline(sample, new.feature_names)
            baseline.update(baseline_predictions(signature))
            baseline_sha = ctx.artifacts.commit(baseline_upload)
            baseline["sample_sha256"] = baseline_sha
            baseline_upload = None
        sha = ctx.artifacts.commit(model_upload)
        row = ModelVersionRow(
            model=new.model,
            version=new.version,
            sha256=sha,
            size_bytes=model_upload.size,
            task=signature.task,
            inputs=inputs,
            outputs=outputs,
            feature_names=list(new.feature_names),
            description=new.description,
            baseline=baseline,
            baseline_sha256=baseline_sha,
            created_by=principal.name,
        )
        try:
            with ctx.db.session() as session:
                _ensure_new(session, new.model, new.version)
                session.add(row)
                session.flush()
                audit.record(
                    session,
                    principal,
                    "version.register",
                    f"{new.model}:{new.version}",
                    sha256=sha,
                    size_bytes=model_upload.size,
                    task=signature.task,
                )
                info = version_info(row)
        except IntegrityError as exc:
            raise AlreadyExists(f"version {new.model}:{new.version} already exists") from exc
    finally:
        model_upload.discard()
        if baseline_upload is not None:
            baseline_upload.discard()
    ctx.events.publish("version", "", f"registered {info.ref}")
    return info


def _ensure_new(session: Session, model: str, version: str) -> None:
    exists = session.scalar(
        select(ModelVersionRow.id).where(ModelVersionRow.model == model, ModelVersionRow.version == version)
    )
    if exists is not None:
        raise AlreadyExists(
            f"version {model}:{version} already exists; versions are immutable, "
            "register under a new version label"
        )


def find_version(session: Session, model: str, version: str) -> ModelVersionRow:
    row = session.scalar(
        select(ModelVersionRow).where(ModelVersionRow.model == model, ModelVersionRow.version == version)
    )
    if row is None:
        known = session.scalar(select(ModelVersionRow.id).where(ModelVersionRow.model == model))
        if known is None:
            raise NotFound(f"no model named {model!r}; `sluice version list` shows the registry")
        raise NotFound(f"model {model!r} has no version {version!r}")
    return row


def get_version(ctx: Context, model: str, version: str) -> VersionInfo:
    validate_name("model", model)
    validate_name("version", version)
    with ctx.db.session() as session:
        return version_info(find_version(session, model, version))


def list_versions(ctx: Context, model: str = "") -> list[VersionInfo]:
    with ctx.db.session() as session:
        query = select(ModelVersionRow).order_by(ModelVersionRow.model, ModelVersionRow.id)
        if model:
            validate_name("model", model)
            query = query.where(ModelVersionRow.model == model)
        return [version_info(r) for r in session.scalars(query)]


def register_file(
    ctx: Context,
    principal: Principal,
    new: NewVersion,
    model_path: Path,
    baseline_path: Path | None,
) -> VersionInfo:
    """Register an ONNX file (and .npy baseline) from the local disk, e.g. a retraining result."""
    uploads: list[PendingUpload] = []
    try:
        for path, what in ((model_path, "model"), (baseline_path, "baseline")):
            if path is None:
                continue
            upload = ctx.artifacts.begin_upload(what)
            uploads.append(upload)
            with Path(path).open("rb") as handle:
                while data := handle.read(1 << 20):
                    upload.write(data)
    except OSError as exc:
        for upload in uploads:
            upload.discard()
        raise InvalidInput(f"cannot read {exc.filename}: {exc.strerror}") from exc
    except BaseException:
        for upload in uploads:
            upload.discard()
        raise
    model_upload = uploads[0]
    baseline_upload = uploads[1] if len(uploads) > 1 else None
    return register_version(ctx, principal, new, model_upload, baseline_upload)
