"""Health of deployments and versions from their recent metric windows and the config thresholds.

Each metric is judged only once it has enough samples (`health.min_samples` requests or labels,
`health.min_drift_samples` rows for drift): before that its state is "unknown", never a guess.
A version's health is the worst judged metric; a deployment's the worst of its versions.

Drift compares live inputs with the version's baseline: PSI per feature on the baseline's own bins
(counted by the agents), and a two-sample KS test of the stored reservoir of recent inputs
against the raw baseline sample (from the artifact store) with a Bonferroni correction.
"""

from __future__ import annotations

import io
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import func, select

from controlplane.config import HealthConfig
from controlplane.context import Context
from controlplane.domain import DeploymentInfo, SplitInfo, VersionInfo
from controlplane.monitoring import reservoir as reservoirs
from controlplane.monitoring.policy import thresholds_for
from controlplane.monitoring.query import merged_summary
from controlplane.monitoring.summary import WindowSummary
from controlplane.stats import ks_test, prediction_psi, psi
from controlplane.stats.categorical import chi_square_test, share
from controlplane.store.models import AgentDeploymentRow, AgentRow, ReservoirRow, utcnow
from core.vocabulary import AgentState, Health, MetricSource, ServingRole

if TYPE_CHECKING:
    from controlplane.monitoring.joined_health import LabelSlice
    from controlplane.predlog.joined import JoinedFigures
    from controlplane.predlog.retention import LogUsage

log = logging.getLogger("sluice.monitoring")

#: fewest reservoir rows for a KS test
KS_MIN_ROWS = 50
BASELINE_CACHE = 32


def worst(states: list[Health]) -> Health:
    return max(states, key=lambda s: s.rank, default=Health.UNKNOWN)


@dataclass(frozen=True)
class Judgement:
    # the alert kind too: accuracy | mae | rmse | within_tolerance | latency_p95 | error_rate |
    # drift | prediction_drift
    name: str
    value: float
    state: Health
    reason: str = ""


@dataclass(frozen=True)
class FeatureDriftInfo:
    feature: str
    psi: float
    ks_p_value: float  # NaN when the reservoir or the baseline sample is too small / missing
    drifted: bool
    #: "numeric" (PSI on quantile bins + KS) or "categorical" (PSI on top-k bins + chi-square)
    kind: str = "numeric"
    chi2_p_value: float = math.nan
    #: data quality: the live share of missing values, the baseline's, and (categorical) the
    #: share of values the baseline never had; NaN when not known
    missing_share: float = math.nan
    baseline_missing_share: float = math.nan
    unseen_share: float = math.nan

    @property
    def p_value(self) -> float:
        """The feature's test: KS for a numeric feature, chi-square for a categorical one."""
        return self.chi2_p_value if self.kind == "categorical" else self.ks_p_value

    @property
    def test(self) -> str:
        return "chi-square" if self.kind == "categorical" else "KS"


@dataclass
class VersionHealth:
    version: VersionInfo
    role: str
    weight: int
    state: Health = Health.UNKNOWN
    reasons: list[str] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    #: failed requests by status name (INTERNAL, INVALID_ARGUMENT, DEADLINE_EXCEEDED, CANCELLED...)
    errors_by_code: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    requests_per_second: float = 0.0
    error_rate: float = math.nan
    latency_p50_ms: float = math.nan
    latency_p95_ms: float = math.nan
    latency_p99_ms: float = math.nan
    n_labeled: int = 0
    accuracy: float = math.nan
    mae: float = math.nan
    rmse: float = math.nan
    within_tolerance: float = math.nan
    #: PSI of the predictions against the baseline's (NaN: no baseline predictions, too few rows)
    prediction_psi: float = math.nan
    drift: list[FeatureDriftInfo] = field(default_factory=list)
    judgements: list[Judgement] = field(default_factory=list)
    rejected_inputs: int = 0
    out_of_range_share: float = math.nan
    worst_feature: str = ""
    #: figures of the prediction log joined with the label store (None: nothing logged)
    labeled: JoinedFigures | None = None


@dataclass
class DeploymentHealth:
    deployment: DeploymentInfo
    state: Health
    versions: list[VersionHealth]
    agents_in_sync: int
    agents_total: int
    requests_per_second: float
    open_alerts: int
    agents_lost: int = 0
    #: open health alerts (severity, message) that keep the state from looking better meanwhile
    held_by: list[tuple[Health, str]] = field(default_factory=list)
    #: the prediction log's and labels' disk use (None: nothing recorded)
    log_usage: LogUsage | None = None


# ---- judging ----


def _high_is_bad(name: str, value: float, warning: float, critical: float, unit: str = "") -> Judgement:
    if critical > 0 and value > critical:
        return Judgement(name, value, Health.CRITICAL, f"{name} {value:.4g}{unit} > {critical:.4g}{unit} (critical)")
    if warning > 0 and value > warning:
        return Judgement(name, value, Health.WARNING, f"{name} {value:.4g}{unit} > {warning:.4g}{unit} (warning)")
    return Judgement(name, value, Health.HEALTHY)


def _low_is_bad(name: str, value: float, warning: float, critical: float) -> Judgement:
    if critical > 0 and value < critical:
        return Judgement(name, value, Health.CRITICAL, f"{name} {value:.4g} < {critical:.4g} (critical)")
    if warning > 0 and value < warning:
        return Judgement(name, value, Health.WARNING, f"{name} {value:.4g} < {warning:.4g} (warning)")
    return Judgement(name, value, Health.HEALTHY)


def feature_drift(
    summary: WindowSummary,
    baseline: dict | None,
    reservoir: np.ndarray | None,
    baseline_sample: np.ndarray | None,
    config: HealthConfig,
) -> list[FeatureDriftInfo]:
    """Numeric features: PSI (baseline bins) and KS p-values (reservoir vs baseline sample);
    categorical features: PSI and a chi-square test on the top-k bins. One Bonferroni correction
    over every judged feature."""
    if not baseline:
        return []
    categories = sorted(baseline.get("categories", []), key=lambda c: c["index"])
    # a window stored before categorical missing counts existed has none: count them as 0
    stored = summary.category_missing
    missing_counts = [stored[i] if i < len(stored) else 0 for i in range(len(summary.categories))]
    judged_categories = len(categories) == len(summary.categories) and any(
        sum(c) + m >= config.min_drift_samples for c, m in zip(summary.categories, missing_counts, strict=True)
    )
    others = len(categories) if judged_categories else 0
    numeric = _numeric_drift(summary, baseline, reservoir, baseline_sample, config, others)
    if not judged_categories:
        return numeric
    n = len(numeric) + len(categories)
    threshold = config.ks_alpha / n
    out = list(numeric)
    for i, c in enumerate(categories):
        expected = np.asarray(c["counts"], dtype=np.float64)
        actual = np.asarray(summary.categories[i], dtype=np.float64)
        missing = missing_counts[i]
        if expected.shape != actual.shape or actual.sum() + missing < config.min_drift_samples:
            continue
        value = float(psi(expected, actual))
        _statistic, p_value = chi_square_test(expected, actual)
        unseen = summary.category_unseen[i] if i < len(summary.category_unseen) else 0
        drifted = value >= config.psi_warning or (not math.isnan(p_value) and p_value < threshold)
        out.append(
            FeatureDriftInfo(
                c["name"],
                value,
                math.nan,
                drifted,
                kind="categorical",
                chi2_p_value=p_value,
                missing_share=share(missing, int(actual.sum()) + missing),
                baseline_missing_share=share(int(c.get("missing", 0)), int(expected.sum()) + int(c.get("missing", 0))),
                unseen_share=share(unseen, int(actual.sum())) if c.get("known_complete", False) else math.nan,
            )
        )
    return out


def _numeric_drift(
    summary: WindowSummary,
    baseline: dict,
    reservoir: np.ndarray | None,
    baseline_sample: np.ndarray | None,
    config: HealthConfig,
    other_features: int,
) -> list[FeatureDriftInfo]:
    """The numeric features' part of `feature_drift` (`other_features` more share the correction)."""
    if not summary.features or summary.feature_rows < config.min_drift_samples:
        return []
    features = sorted(baseline.get("features", []), key=lambda f: f["index"])
    if len(features) != len(summary.features):
        return []
    n = len(features)
    use_ks = (
        reservoir is not None
        and baseline_sample is not None
        and reservoir.shape[0] >= KS_MIN_ROWS
        and baseline_sample.shape[0] >= KS_MIN_ROWS
        and reservoir.shape[1] == n
        and baseline_sample.shape[1] == n
    )
    threshold = config.ks_alpha / (n + other_features)  # Bonferroni
    out = []
    for i, f in enumerate(features):
        expected = np.asarray(f["counts"], dtype=np.float64)
        actual = np.asarray(summary.features[i], dtype=np.float64)
        if expected.shape != actual.shape:
            return []
        value = float(psi(expected, actual))
        p_value = math.nan
        if use_ks:
            assert reservoir is not None and baseline_sample is not None
            _statistic, p_value = ks_test(baseline_sample[:, i], reservoir[:, i])
        drifted = value >= config.psi_warning or (not math.isnan(p_value) and p_value < threshold)
        missing = summary.feature_missing[i] if i < len(summary.feature_missing) else 0
        counted = int(actual.sum()) + missing
        baseline_missing = int(f.get("missing", 0))
        out.append(
            FeatureDriftInfo(
                f["name"],
                value,
                p_value,
                drifted,
                missing_share=share(missing, counted),
                baseline_missing_share=share(baseline_missing, int(expected.sum()) + baseline_missing),
            )
        )
    return out


def judge_drift(drift: list[FeatureDriftInfo], config: HealthConfig) -> Judgement | None:
    if not drift:
        return None
    top = max(drift, key=lambda d: d.psi)
    threshold = config.ks_alpha / len(drift)
    ks_hits = [d for d in drift if not math.isnan(d.p_value) and d.p_value < threshold]
    if top.psi >= config.psi_critical:
        state = Health.CRITICAL
    elif top.psi >= config.psi_warning or ks_hits:
        state = Health.WARNING
    else:
        return Judgement("drift", top.psi, Health.HEALTHY)
    if top.psi < config.psi_warning and ks_hits:
        worst_ks = min(ks_hits, key=lambda d: d.p_value)
        reason = (
            f"feature {worst_ks.feature} drifted: {worst_ks.test} p={worst_ks.p_value:.2g} < {threshold:.2g} "
            f"(alpha {config.ks_alpha} / {len(drift)} features); PSI {worst_ks.psi:.3f}"
        )
        return Judgement("drift", top.psi, state, reason)
    limit = config.psi_critical if state == Health.CRITICAL else config.psi_warning
    others = sorted((d for d in drift if d.drifted and d is not top), key=lambda d: -d.psi)
    reason = f"feature {top.feature} drifted: PSI {top.psi:.3f} >= {limit:g} ({state})"
    if not math.isnan(top.p_value):
        reason += f", {top.test} p={top.p_value:.2g}"
    if others:
        reason += f"; {len(others)} more feature(s) drifted: " + ", ".join(d.feature for d in others[:5])
    return Judgement("drift", top.psi, state, reason)


def feature_judgements(drift: list[FeatureDriftInfo], config: HealthConfig) -> list[tuple[str, Judgement]]:
    """One drift judgement per feature, (feature, judgement): the conditions drift alerts follow."""
    threshold = config.ks_alpha / len(drift) if drift else 0.0
    out = []
    for d in drift:
        ks_hit = not math.isnan(d.p_value) and d.p_value < threshold
        if d.psi >= config.psi_critical:
            state, reason = Health.CRITICAL, f"PSI {d.psi:.3f} >= {config.psi_critical:g} (critical)"
        elif d.psi >= config.psi_warning:
            state, reason = Health.WARNING, f"PSI {d.psi:.3f} >= {config.psi_warning:g} (warning)"
        elif ks_hit:
            state, reason = Health.WARNING, f"{d.test} p={d.p_value:.2g} < {threshold:.2g}; PSI {d.psi:.3f}"
        else:
            out.append((d.feature, Judgement("drift", d.psi, Health.HEALTHY)))
            continue
        if d.psi >= config.psi_warning and not math.isnan(d.p_value):
            reason += f", {d.test} p={d.p_value:.2g}"
        out.append((d.feature, Judgement("drift", d.psi, state, f"feature {d.feature} drifted: {reason}")))
    return out


def quality_judgements(drift: list[FeatureDriftInfo], config: HealthConfig) -> list[tuple[str, str, Judgement]]:
    """Data quality per feature, (kind, feature, judgement): `missing` when the live share of
    missing values exceeds the baseline's own share by more than the thresholds, `unseen` when
    a categorical feature's share of values the baseline never had exceeds them."""
    out: list[tuple[str, str, Judgement]] = []
    for d in drift:
        if not math.isnan(d.missing_share) and (config.missing_share_warning or config.missing_share_critical):
            reference = 0.0 if math.isnan(d.baseline_missing_share) else d.baseline_missing_share
            excess = d.missing_share - reference
            judgement = _high_is_bad("missing", excess, config.missing_share_warning, config.missing_share_critical)
            if judgement.reason:
                critical = judgement.state == Health.CRITICAL
                limit = config.missing_share_critical if critical else config.missing_share_warning
                judgement = Judgement(
                    "missing",
                    excess,
                    judgement.state,
                    f"feature {d.feature}: {d.missing_share:.1%} of values missing (baseline {reference:.1%}), "
                    f"{excess:+.1%} > {limit:.0%} ({judgement.state})",
                )
            out.append(("missing", d.feature, judgement))
        if not math.isnan(d.unseen_share) and (config.unseen_share_warning or config.unseen_share_critical):
            judgement = _high_is_bad(
                "unseen", d.unseen_share, config.unseen_share_warning, config.unseen_share_critical
            )
            if judgement.reason:
                judgement = Judgement(
                    "unseen",
                    d.unseen_share,
                    judgement.state,
                    f"feature {d.feature}: {d.unseen_share:.1%} of values are categories the baseline never had "
                    f"({judgement.state})",
                )
            out.append(("unseen", d.feature, judgement))
    return out


def prediction_drift(summary: WindowSummary, baseline: dict | None, config: HealthConfig) -> float:
    """PSI of the live predictions (classes, or a regressor's value bins) against the version's
    baseline predictions; NaN without baseline predictions or with fewer than
    `min_drift_samples` predictions counted."""
    expected = (baseline or {}).get("prediction_counts") or []
    live = summary.prediction_counts
    if not expected or not live or sum(live) < config.min_drift_samples:
        return math.nan
    if (baseline or {}).get("prediction_edges") and len(live) != len(expected):
        return math.nan  # value bins of another baseline: not comparable
    return prediction_psi(np.asarray(expected), np.asarray(live))


def judge_prediction_drift(value: float, config: HealthConfig) -> Judgement | None:
    if math.isnan(value):
        return None
    judgement = _high_is_bad("prediction_drift", value, config.prediction_psi_warning, config.prediction_psi_critical)
    if judgement.state == Health.HEALTHY:
        return Judgement("prediction_drift", value, Health.HEALTHY)
    limit = config.prediction_psi_critical if judgement.state == Health.CRITICAL else config.prediction_psi_warning
    reason = f"predictions drifted from the baseline's: PSI {value:.3f} >= {limit:g} ({judgement.state})"
    return Judgement("prediction_drift", value, judgement.state, reason)


def judge_version(
    split: SplitInfo,
    summary: WindowSummary,
    window_seconds: float,
    config: HealthConfig,
    reservoir: np.ndarray | None = None,
    baseline_sample: np.ndarray | None = None,
    labels: LabelSlice | None = None,
    joined: bool = False,
) -> VersionHealth:
    """`joined`: the policy judges accuracy / MAE / RMSE on label-joined figures (`labels`, None
    when the version logged nothing in the judged slice); the live feedback figures are then
    shown (accuracy, mae... of the status) but not judged."""
    version = split.version
    h = VersionHealth(version=version, role=split.role, weight=split.weight)
    h.requests = summary.requests
    h.errors = summary.n_errors
    h.errors_by_code = dict(summary.errors)
    h.rows = summary.rows
    h.requests_per_second = summary.requests / window_seconds if window_seconds > 0 else 0.0
    h.rejected_inputs = summary.rejected_inputs
    h.n_labeled = summary.n_labeled
    judgements: list[Judgement] = []
    if summary.requests:
        h.error_rate = summary.n_errors / summary.requests
    if summary.latency.count:
        h.latency_p50_ms = summary.latency.quantile(0.50) * 1000.0
        h.latency_p95_ms = summary.latency.quantile(0.95) * 1000.0
        h.latency_p99_ms = summary.latency.quantile(0.99) * 1000.0
    if summary.requests >= config.min_samples:
        judgements.append(
            _high_is_bad("error_rate", h.error_rate, config.error_rate_warning, config.error_rate_critical)
        )
        if not math.isnan(h.latency_p95_ms):
            judgements.append(
                _high_is_bad(
                    "latency_p95",
                    h.latency_p95_ms,
                    config.p95_latency_ms_warning,
                    config.p95_latency_ms_critical,
                    " ms",
                )
            )
    if summary.n_labeled:
        if version.task == "regressor":
            h.mae = summary.sum_abs_error / summary.n_labeled
            h.rmse = math.sqrt(summary.sum_squared_error / summary.n_labeled)
            h.within_tolerance = summary.n_within_tolerance / summary.n_labeled
        else:
            h.accuracy = summary.n_correct / summary.n_labeled
    if joined:  # the policy judges label-joined figures; the live ones are shown, not judged
        from controlplane.monitoring.joined_health import judge_labels

        judgements.extend(judge_labels(version.task, labels, config))
    elif summary.n_labeled >= config.min_samples:
        if version.task == "regressor":
            judgements.append(_high_is_bad("mae", h.mae, config.mae_warning, config.mae_critical))
            if config.rmse_warning > 0 or config.rmse_critical > 0:
                judgements.append(_high_is_bad("rmse", h.rmse, config.rmse_warning, config.rmse_critical))
            if config.within_tolerance_warning > 0 or config.within_tolerance_critical > 0:
                judgements.append(
                    _low_is_bad(
                        "within_tolerance",
                        h.within_tolerance,
                        config.within_tolerance_warning,
                        config.within_tolerance_critical,
                    )
                )
        else:
            judgements.append(_low_is_bad("accuracy", h.accuracy, config.accuracy_warning, config.accuracy_critical))
    if summary.features and summary.feature_rows:
        cells = summary.feature_rows * len(summary.features)
        h.out_of_range_share = sum(summary.out_of_range) / cells
    h.drift = feature_drift(summary, version.baseline, reservoir, baseline_sample, config)
    drift = judge_drift(h.drift, config)
    if drift is not None:
        judgements.append(drift)
        if h.drift:
            h.worst_feature = max(h.drift, key=lambda d: d.psi).feature
    for kind in ("missing", "unseen"):
        # the worst feature's judgement stands for the version (alerts follow each feature)
        per_feature = [j for k, _feature, j in quality_judgements(h.drift, config) if k == kind]
        if per_feature:
            judgements.append(max(per_feature, key=lambda j: (j.state.rank, j.value)))
    h.prediction_psi = prediction_drift(summary, version.baseline, config)
    predictions = judge_prediction_drift(h.prediction_psi, config)
    if predictions is not None:
        judgements.append(predictions)
    h.judgements = judgements
    h.state = worst([j.state for j in judgements])
    h.reasons = [j.reason for j in judgements if j.reason]
    return h


# ---- reading what judging needs ----

_baselines: OrderedDict[str, np.ndarray | None] = OrderedDict()
_baselines_lock = threading.Lock()


def baseline_sample(ctx: Context, version: VersionInfo) -> np.ndarray | None:
    """The version's raw baseline sample (cached by sha256), None when it has none."""
    sha = version.baseline_sha256 or (version.baseline or {}).get("sample_sha256")
    if not sha:
        return None
    with _baselines_lock:
        if sha in _baselines:
            _baselines.move_to_end(sha)
            return _baselines[sha]
    sample: np.ndarray | None
    try:
        data = ctx.artifacts.path(sha).read_bytes()
        if data.startswith(b"\x93NUMPY"):
            sample = np.load(io.BytesIO(data), allow_pickle=False).astype(np.float64)
        else:
            sample = _table_sample(data, version.baseline or {})
        if sample is not None and sample.ndim != 2:
            sample = None
    except Exception:
        log.exception("cannot read the baseline sample %s of %s", sha[:12], version.ref)
        sample = None
    with _baselines_lock:
        _baselines[sha] = sample
        while len(_baselines) > BASELINE_CACHE:
            _baselines.popitem(last=False)
    return sample


def _table_sample(data: bytes, baseline: dict) -> np.ndarray | None:
    """A CSV/Parquet baseline's numeric features as [rows, features], in the feature order the
    agents' reservoirs use (None when it has none)."""
    from controlplane.tables import read_table

    table = read_table(data, "the baseline")
    features = sorted(baseline.get("features", []), key=lambda f: f["index"])
    names = [f.get("column") or f["name"] for f in features]
    if not names or any(n not in table.columns or table.kind(n) != "numeric" for n in names):
        names = table.numeric()
    if not names:
        return None
    return np.column_stack([table.columns[n] for n in names])


def reservoir_sample(ctx: Context, deployment: str, version_id: int, start: datetime) -> np.ndarray | None:
    """Stored input rows of the version from windows that started at or after `start`."""
    with ctx.db.session() as session:
        row = session.execute(
            select(ReservoirRow.n_features, ReservoirRow.sample).where(
                ReservoirRow.deployment == deployment, ReservoirRow.version_id == version_id
            )
        ).first()
    if row is None or not row.sample or row.n_features <= 0:
        return None
    rows = reservoirs.since(row.sample, row.n_features, start)
    return rows if rows.shape[0] else None


def agents_sync(ctx: Context, deployment: str, generation: int) -> tuple[int, int, int]:
    """(connected agents that applied `generation`, connected agents, lost agents that served it)."""
    with ctx.db.session() as session:
        rows = session.execute(
            select(AgentRow.state, AgentDeploymentRow.applied_generation)
            .outerjoin(
                AgentDeploymentRow,
                (AgentDeploymentRow.agent_id == AgentRow.id) & (AgentDeploymentRow.deployment == deployment),
            )
            .where(AgentRow.state.in_((AgentState.CONNECTED, AgentState.LOST)))
        ).all()
    connected = [g or 0 for state, g in rows if state == AgentState.CONNECTED]
    lost = sum(1 for state, g in rows if state == AgentState.LOST and (g or 0) > 0)
    return sum(1 for g in connected if g >= generation), len(connected), lost


def deployment_health(
    ctx: Context,
    deployment: DeploymentInfo,
    window_seconds: float,
    now: datetime | None = None,
    open_alerts: int = 0,
    held_by: list[tuple[Health, str]] | None = None,
) -> DeploymentHealth:
    """`held_by`: the deployment's open health alerts. While one is open the state is at least its
    severity: a new champion without enough samples yet must not look healthy while the drift
    (or the error rate...) goes on."""
    now = now or utcnow()
    held_by = held_by or []
    since = now - timedelta(seconds=window_seconds)
    config = thresholds_for(ctx, deployment.name)  # its policy's, else the configuration's
    slices = None
    if config.accuracy_source == MetricSource.JOINED:
        from controlplane.monitoring.joined_health import label_slices

        slices = label_slices(ctx, deployment.name, config, now)
    versions = []
    for split in deployment.splits:
        summary = merged_summary(ctx, deployment.name, split.version.id, since)
        reservoir = None
        sample = None
        if summary.feature_rows >= config.min_drift_samples and split.version.baseline:
            reservoir = reservoir_sample(ctx, deployment.name, split.version.id, since)
            sample = baseline_sample(ctx, split.version) if reservoir is not None else None
        labels = None if slices is None else slices.get((split.version.model, split.version.version))
        versions.append(
            judge_version(
                split, summary, window_seconds, config, reservoir, sample, labels=labels, joined=slices is not None
            )
        )
    in_sync, total, lost = agents_sync(ctx, deployment.name, deployment.generation)
    return DeploymentHealth(
        deployment=deployment,
        state=worst([v.state for v in versions] + [severity for severity, _ in held_by]),
        versions=versions,
        agents_in_sync=in_sync,
        agents_total=total,
        requests_per_second=sum(v.requests_per_second for v in versions if v.role != ServingRole.SHADOW),
        open_alerts=open_alerts,
        agents_lost=lost,
        held_by=held_by,
    )


def connected_agents(ctx: Context) -> int:
    query = select(func.count()).select_from(AgentRow).where(AgentRow.state == AgentState.CONNECTED)
    with ctx.db.session() as session:
        return int(session.scalar(query) or 0)
