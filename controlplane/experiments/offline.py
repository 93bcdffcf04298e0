"""The offline champion/challenger gate: both versions score the same labeled file.

Classifiers are compared on accuracy with McNemar's test on the rows where exactly one of the two
is right; regressors on MAE with a paired t-test of the per-row absolute-error differences. The
challenger wins when the difference is significant at alpha, in its favour, and at least
`min_improvement` (accuracy points, or MAE units). The verdict is stored on the challenger's
version (`offline_evaluation`), where `experiment start --require-offline-win` looks for it.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from controlplane import audit
from controlplane.context import Context
from controlplane.datasets import NPY_MAGIC, load_dataset
from controlplane.deployment_reads import deployment_info, find_deployment
from controlplane.domain import Principal
from controlplane.experiments.challenger_checks import check_schema
from controlplane.registry import find_version
from controlplane.stats import mcnemar_test, paired_t_test
from controlplane.store.models import ModelVersionRow, utcnow
from controlplane.tables import PARQUET_MAGIC, Table, read_table, split_label
from core.errors import FailedPrecondition, InvalidInput, ResourceExhausted
from core.names import validate_name
from core.summaries import Moments

MIN_ROWS = 2
DATA_NAME = "the data file"


@dataclass(frozen=True)
class EvaluateRequest:
    challenger: tuple[str, str]
    deployment: str
    data: bytes
    data_format: str = ""  # csv | npy | "" (sniffed)
    label_column: str = ""
    min_improvement: float = 0.0
    alpha: float = 0.05


def _by_column(inputs: list[dict[str, Any]]) -> bool:
    """A model fed column by column (several inputs, or text): its data file is read as a table."""
    return len(inputs) > 1 or any(spec["dtype"] == "string" for spec in inputs)


def _load_table(data: bytes, data_format: str, label_column: str) -> tuple[Table, np.ndarray]:
    """A mixed-type CSV or Parquet file: its feature columns (matched to the model's inputs by
    name, as records are) and its label column."""
    if data.startswith(NPY_MAGIC) or data_format == "npy":
        raise InvalidInput(
            "the model takes named inputs: send a CSV (with a header) or Parquet file with a column named after each"
        )
    if data_format == "parquet" and not data.startswith(PARQUET_MAGIC):
        raise InvalidInput(f"{DATA_NAME} is not a Parquet file (it does not start with PAR1)")
    table = read_table(data, DATA_NAME)
    return split_label(table, label_column or None, DATA_NAME)


def _load(data: bytes, data_format: str, label_column: str) -> tuple[np.ndarray, np.ndarray]:
    if data_format not in ("", "csv", "npy", "parquet"):
        raise InvalidInput(f"data format {data_format!r} is not supported; send csv, parquet or npy")
    if not data:
        raise InvalidInput("the data file is empty: send a labeled CSV (with a header), Parquet or .npy")
    if data_format == "parquet" or data.startswith(PARQUET_MAGIC):
        if data_format == "parquet" and not data.startswith(PARQUET_MAGIC):
            raise InvalidInput(f"{DATA_NAME} is not a Parquet file (it does not start with PAR1)")
        features, labels = split_label(read_table(data, DATA_NAME), label_column or None, DATA_NAME)
        if not features.complete_numeric() or labels.dtype.kind != "f":
            raise InvalidInput(f"{DATA_NAME} has text or missing cells; the model takes one numeric matrix")
        return features.matrix().astype(np.float32), labels
    is_npy = data_format == "npy" or data.startswith(NPY_MAGIC)
    if is_npy and label_column:
        raise InvalidInput("a .npy file has no column names: its label is the last column; drop --label")
    with tempfile.TemporaryDirectory(prefix="sluice-evaluate-") as tmp:
        path = Path(tmp) / ("data.npy" if is_npy else "data.csv")
        path.write_bytes(data)
        try:
            return load_dataset(path, label_column or None)
        except InvalidInput as exc:
            raise InvalidInput(exc.message.replace(str(path), DATA_NAME)) from None


def evaluate(ctx: Context, principal: Principal, request: EvaluateRequest) -> dict[str, Any]:
    """Score both versions, judge, store the verdict on the challenger; returns the verdict."""
    validate_name("deployment", request.deployment)
    model, version = request.challenger
    validate_name("model", model)
    validate_name("version", version)
    alpha = request.alpha or 0.05
    if not (math.isfinite(alpha) and 0.0 < alpha < 1.0):
        raise InvalidInput(f"alpha is {request.alpha!r}; it must lie strictly between 0 and 1 (e.g. 0.05)")
    min_improvement = float(request.min_improvement)
    if not math.isfinite(min_improvement) or min_improvement < 0:
        raise InvalidInput(f"min improvement is {request.min_improvement!r}; it must be a number >= 0")
    if len(request.data) > ctx.config.limits.max_evaluation_bytes:
        raise ResourceExhausted(
            f"the data file is {len(request.data)} bytes; the limit is {ctx.config.limits.max_evaluation_bytes}"
        )
    with ctx.db.session() as session:
        deployment = find_deployment(session, request.deployment)
        current = deployment_info(session, deployment)
        if current.champion is None:
            raise FailedPrecondition(f"deployment {request.deployment!r} has no champion to compare with")
        champion = session.get(ModelVersionRow, current.champion.id)
        assert champion is not None
        challenger = find_version(session, model, version)
        if challenger.id == champion.id:
            raise InvalidInput(
                f"{model}:{version} is the champion of {request.deployment!r}; evaluate a different version"
            )
        check_schema(champion, challenger)
        champion_ref, challenger_ref = f"{champion.model}:{champion.version}", f"{model}:{version}"
        paths = (ctx.artifacts.path(champion.sha256), ctx.artifacts.path(challenger.sha256))
        inputs = list(champion.inputs)
    x: np.ndarray | Table
    if _by_column(inputs):
        x, y = _load_table(request.data, request.data_format, request.label_column)
    else:
        x, y = _load(request.data, request.data_format, request.label_column)
    n = x.rows if isinstance(x, Table) else int(x.shape[0])
    if n < MIN_ROWS:
        raise InvalidInput(f"{DATA_NAME} has {n} row; at least {MIN_ROWS} labeled rows are needed")
    # Each version scores the rows in the sandbox: a model that hangs or takes all memory is
    # stopped there, and the evaluation is refused with the reason.
    from controlplane.model_checks import score_rows  # onnxruntime loads only when an evaluation runs

    task, champion_out = score_rows(ctx.config.models, paths[0], champion_ref, DATA_NAME, x)
    _, challenger_out = score_rows(ctx.config.models, paths[1], challenger_ref, DATA_NAME, x)
    if task == "classifier" and (y.dtype.kind == "O" or champion_out.dtype.kind == "O"):
        # text classes: compare names (a numeric label column read as text compares as text)
        truth_names = y.astype(str)
        right_c = champion_out.astype(str) == truth_names
        right_t = challenger_out.astype(str) == truth_names
        b = int(np.count_nonzero(right_c & ~right_t))
        c = int(np.count_nonzero(right_t & ~right_c))
        metric, method = "accuracy", "mcnemar"
        champion_metric, challenger_metric = float(right_c.mean()), float(right_t.mean())
        p_value = mcnemar_test(b, c)
        gain = challenger_metric - champion_metric
        detail = f"{c} rows only the challenger got right, {b} only the champion"
    elif task == "classifier":
        if np.any(y != np.round(y)):
            raise InvalidInput(
                f"the labels are not whole numbers, but {champion_ref} is a classifier: the label "
                "column must hold class ids"
            )
        truth = y.astype(np.int64)
        right_c = champion_out.astype(np.int64) == truth
        right_t = challenger_out.astype(np.int64) == truth
        b = int(np.count_nonzero(right_c & ~right_t))
        c = int(np.count_nonzero(right_t & ~right_c))
        metric, method = "accuracy", "mcnemar"
        champion_metric, challenger_metric = float(right_c.mean()), float(right_t.mean())
        p_value = mcnemar_test(b, c)
        gain = challenger_metric - champion_metric
        detail = f"{c} rows only the challenger got right, {b} only the champion"
    else:
        if y.dtype.kind == "O":
            raise InvalidInput(f"{champion_ref} is a regressor: the label column must hold numbers, not text")
        err_c = np.abs(champion_out.astype(np.float64) - y)
        err_t = np.abs(challenger_out.astype(np.float64) - y)
        metric, method = "mae", "paired_t"
        champion_metric, challenger_metric = float(err_c.mean()), float(err_t.mean())
        differences = Moments.of(err_t - err_c)
        p_value = paired_t_test(differences)
        if math.isnan(p_value):  # identical differences on every row: no noise at all
            p_value = 0.0 if differences.mean != 0 else 1.0
        gain = champion_metric - challenger_metric
        detail = f"mean paired difference of absolute errors {differences.mean:+.4g}"
    wins = bool(p_value < alpha and gain > 0 and gain >= min_improvement)
    if wins:
        verdict = f"{challenger_ref} beats {champion_ref}: {metric} {challenger_metric:.4g} vs {champion_metric:.4g}"
    elif p_value < alpha and gain < 0:
        verdict = (
            f"{challenger_ref} is worse than {champion_ref}: {metric} {challenger_metric:.4g} vs {champion_metric:.4g}"
        )
    elif p_value < alpha:
        verdict = (
            f"{challenger_ref} is better than {champion_ref} by {abs(gain):.4g}, less than the required "
            f"{min_improvement:g}"
        )
    else:
        verdict = (
            f"no significant difference between {challenger_ref} and {champion_ref}: "
            f"{metric} {challenger_metric:.4g} vs {champion_metric:.4g}"
        )
    verdict += f" on {n} rows ({method} p={p_value:.3g}; {detail})"
    result: dict[str, Any] = {
        "deployment": request.deployment,
        "champion": champion_ref,
        "challenger": challenger_ref,
        "metric": metric,
        "n": n,
        "champion_metric": champion_metric,
        "challenger_metric": challenger_metric,
        "p_value": float(p_value),
        "method": method,
        "min_improvement": min_improvement,
        "challenger_wins": wins,
        "verdict": verdict,
        "evaluated_at": utcnow().isoformat(),
        "evaluated_by": principal.name,
    }
    with ctx.db.session() as session:
        row = find_version(session, model, version)
        row.offline_evaluation = result
        audit.record(session, principal, "version.evaluate", challenger_ref, **result)
    ctx.events.publish("version", request.deployment, f"offline evaluation of {challenger_ref}: {verdict}")
    return result
