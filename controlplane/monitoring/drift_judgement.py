"""Drift and data quality of a version's inputs and predictions, judged against its baseline.

PSI per feature on the baseline's own bins (counted by the agents), and a two-sample KS test of the
stored reservoir of recent inputs against the raw baseline sample with a Bonferroni correction
(numeric features), or chi-square on the top-k bins (categorical ones); the share of missing and
of unseen values; the PSI of the predictions against the baseline's. Pure functions of a window
summary and what the caller read (`controlplane.monitoring.samples`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from controlplane.config import HealthConfig
from controlplane.monitoring.judgement import Judgement, high_is_bad
from controlplane.monitoring.summary import WindowSummary
from controlplane.stats import ks_test, prediction_psi, psi
from controlplane.stats.categorical import chi_square_test, share
from core.vocabulary import Health

#: fewest reservoir rows for a KS test
KS_MIN_ROWS = 50


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
            judgement = high_is_bad("missing", excess, config.missing_share_warning, config.missing_share_critical)
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
            judgement = high_is_bad("unseen", d.unseen_share, config.unseen_share_warning, config.unseen_share_critical)
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
    judgement = high_is_bad("prediction_drift", value, config.prediction_psi_warning, config.prediction_psi_critical)
    if judgement.state == Health.HEALTHY:
        return Judgement("prediction_drift", value, Health.HEALTHY)
    limit = config.prediction_psi_critical if judgement.state == Health.CRITICAL else config.prediction_psi_warning
    reason = f"predictions drifted from the baseline's: PSI {value:.3f} >= {limit:g} ({judgement.state})"
    return Judgement("prediction_drift", value, judgement.state, reason)
