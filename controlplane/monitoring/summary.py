"""The mergeable summary of a metric window, as stored in MetricWindowRow.summary (JSON).

A window arrives from an agent as a VersionWindow; the counters that queries filter or sum often
(requests, errors, n_labeled, n_correct) are columns, everything else lives in the JSON summary.
Summaries of any number of windows merge by adding counts, sketch buckets and moments, so a
minute or hour rollup is itself a summary of the same shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from core.report_limits import (
    ERROR_CODES,
    LATENCY_ACCURACY,
    MAX_BINS,
    MAX_CATEGORIES,
    MAX_CLASSES,
    MAX_COUNT,
    MAX_ERROR_CODES,
    MAX_FEATURES,
    MAX_SKETCH_BUCKETS,
    UNKNOWN_ERROR_CODE,
)
from core.sketch import LatencySketch
from core.summaries import Moments
from protos import agent_pb2


def moments_from(data: dict[str, Any] | None) -> Moments:
    if not data:
        return Moments()
    return Moments(n=int(data.get("n", 0)), mean=float(data.get("mean", 0.0)), m2=float(data.get("m2", 0.0)))


def moments_dict(m: Moments) -> dict[str, Any]:
    return {"n": int(m.n), "mean": float(m.mean), "m2": float(m.m2)}


def sketch_from(parts: dict[str, Any] | None) -> LatencySketch:
    if not parts:
        return LatencySketch(LATENCY_ACCURACY)
    return LatencySketch.from_parts(**parts)


def count(value: int) -> int:
    """A counter from an agent, clamped to [0, MAX_COUNT] (a window claiming 2**62 requests
    would make every later sum overflow the SQL column)."""
    return min(max(int(value), 0), MAX_COUNT)


def _sat(a: int, b: int) -> int:
    """Saturating addition: merged counters stop at MAX_COUNT instead of overflowing SQL."""
    return min(a + b, MAX_COUNT)


def _add_lists(a: list[int], b: list[int]) -> list[int]:
    if len(a) < len(b):
        a = a + [0] * (len(b) - len(a))
    return [_sat(x, b[i] if i < len(b) else 0) for i, x in enumerate(a)]


def error_code(code: str) -> str:
    """An agent's error code as one of gRPC's status names; anything else is UNKNOWN."""
    return code if code in ERROR_CODES else UNKNOWN_ERROR_CODE


@dataclass
class WindowSummary:
    """Everything one or many windows of one (deployment, version) say, ready to merge."""

    requests: int = 0
    rows: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latency: LatencySketch = field(default_factory=lambda: LatencySketch(LATENCY_ACCURACY))
    prediction_counts: list[int] = field(default_factory=list)
    prediction_values: Moments = field(default_factory=Moments)
    #: per feature index: counts on the baseline bins
    features: list[list[int]] = field(default_factory=list)
    out_of_range: list[int] = field(default_factory=list)
    #: per feature index: NaN values (counted in no bin)
    feature_missing: list[int] = field(default_factory=list)
    #: per string input (CategoryBins index): counts on the baseline's categories, "other" last
    categories: list[list[int]] = field(default_factory=list)
    category_missing: list[int] = field(default_factory=list)
    category_unseen: list[int] = field(default_factory=list)
    n_labeled: int = 0
    n_correct: int = 0
    sum_abs_error: float = 0.0
    #: regression: sum of squared errors (RMSE); 0 from agents older than the field
    sum_squared_error: float = 0.0
    n_within_tolerance: int = 0
    abs_error: Moments = field(default_factory=Moments)
    rejected_inputs: int = 0
    unmatched_feedback: int = 0
    shadow_pairs: int = 0
    shadow_agreements: int = 0
    shadow_labeled_pairs: int = 0
    champion_only_correct: int = 0
    challenger_only_correct: int = 0

    @property
    def n_errors(self) -> int:
        return min(sum(self.errors.values()), MAX_COUNT)

    @property
    def feature_rows(self) -> int:
        """Rows counted in the feature histograms (rows of a version without a baseline: 0)."""
        if self.features:
            return sum(self.features[0])
        return sum(self.categories[0]) if self.categories else 0

    # ---- building ----

    @classmethod
    def from_window(cls, window: agent_pb2.VersionWindow) -> WindowSummary:
        """Validate and convert one agent window; raises ValueError when it is malformed."""
        if len(window.errors) > MAX_ERROR_CODES:
            raise ValueError(f"{len(window.errors)} error codes in one window")
        if len(window.features) > MAX_FEATURES or len(window.prediction_counts) > MAX_CLASSES:
            raise ValueError("too many features or classes in one window")
        if len(window.latency.keys) != len(window.latency.counts):
            raise ValueError("the latency sketch has keys and counts of different lengths")
        if len(window.latency.keys) > MAX_SKETCH_BUCKETS:
            raise ValueError("the latency sketch has too many buckets")
        errors: dict[str, int] = {}
        for e in window.errors:
            code = error_code(e.code)
            errors[code] = _sat(errors.get(code, 0), count(e.count))
        features: list[list[int]] = []
        out_of_range: list[int] = []
        for position, f in enumerate(sorted(window.features, key=lambda f: f.index)):
            if f.index != position:
                raise ValueError("feature windows must be numbered 0, 1, 2...")
            if len(f.counts) > MAX_BINS:
                raise ValueError("too many bins in a feature window")
            features.append([count(c) for c in f.counts])
            out_of_range.append(count(f.out_of_range))
        feature_missing = [count(f.missing) for f in sorted(window.features, key=lambda f: f.index)]
        if len(window.categories) > MAX_FEATURES:
            raise ValueError("too many categorical features in one window")
        categories: list[list[int]] = []
        category_missing: list[int] = []
        category_unseen: list[int] = []
        for position, c in enumerate(sorted(window.categories, key=lambda c: c.index)):
            if c.index != position:
                raise ValueError("category windows must be numbered 0, 1, 2...")
            if len(c.counts) > MAX_CATEGORIES + 1:
                raise ValueError("too many categories in a category window")
            categories.append([count(n) for n in c.counts])
            category_missing.append(count(c.missing))
            category_unseen.append(count(c.unseen))
        latency = LatencySketch(LATENCY_ACCURACY)
        if window.HasField("latency") and (window.latency.counts or window.latency.zero_count):
            parts = sketch_parts_of(window.latency)
            if not math.isclose(parts["relative_accuracy"], LATENCY_ACCURACY):
                raise ValueError(f"latency sketches must have relative accuracy {LATENCY_ACCURACY}")
            if not all(math.isfinite(parts[k]) for k in ("sum", "min", "max")):
                raise ValueError("the latency sketch carries a NaN or infinite value")
            low, high = latency.key_range()
            if parts["keys"] and not low <= min(parts["keys"]) <= max(parts["keys"]) <= high:
                raise ValueError(
                    f"latency sketch keys must be in [{low}, {high}] (latencies up to 1e18), "
                    f"got [{min(parts['keys'])}, {max(parts['keys'])}]"
                )
            parts["counts"] = [count(c) for c in parts["counts"]]
            parts["zero_count"] = count(parts["zero_count"])
            latency = LatencySketch.from_parts(**parts)
        fb = window.feedback
        # Every counter clamped to MAX_COUNT: the sums of rollups and queries stay in range.
        summary = cls(
            requests=count(window.requests),
            rows=count(window.rows),
            errors=errors,
            latency=latency,
            prediction_counts=[count(c) for c in window.prediction_counts],
            prediction_values=Moments(
                n=count(window.prediction_values.n),
                mean=float(window.prediction_values.mean),
                m2=float(window.prediction_values.m2),
            ),
            features=features,
            out_of_range=out_of_range,
            feature_missing=feature_missing if any(feature_missing) else [],
            categories=categories,
            category_missing=category_missing,
            category_unseen=category_unseen,
            n_labeled=count(fb.n_labeled),
            n_correct=count(fb.n_correct),
            sum_abs_error=float(fb.sum_abs_error),
            sum_squared_error=float(fb.sum_squared_error),
            n_within_tolerance=count(fb.n_within_tolerance),
            abs_error=Moments(n=count(fb.abs_error.n), mean=float(fb.abs_error.mean), m2=float(fb.abs_error.m2)),
            rejected_inputs=count(window.rejected_inputs),
            shadow_pairs=count(window.shadow.pairs),
            shadow_agreements=count(window.shadow.agreements),
            shadow_labeled_pairs=count(window.shadow.labeled_pairs),
            champion_only_correct=count(window.shadow.champion_only_correct),
            challenger_only_correct=count(window.shadow.challenger_only_correct),
        )
        for value in (
            summary.sum_abs_error,
            summary.sum_squared_error,
            summary.prediction_values.mean,
            summary.abs_error.mean,
        ):
            if not math.isfinite(value):
                raise ValueError("a window carries a NaN or infinite value")
        if summary.sum_abs_error < 0 or summary.sum_squared_error < 0:
            raise ValueError("a window carries a negative sum of errors")
        if summary.n_correct > summary.n_labeled or summary.n_within_tolerance > summary.n_labeled:
            raise ValueError("a window has more correct answers than labels")
        return summary

    # ---- merging ----

    def merge(self, other: WindowSummary) -> WindowSummary:
        """Add `other` into this summary (in place) and return self; counters saturate at
        MAX_COUNT, so a merge never fails, whatever rows were stored before ingest clamped them."""
        self.requests = _sat(self.requests, other.requests)
        self.rows = _sat(self.rows, other.rows)
        for code, n in other.errors.items():
            self.errors[code] = _sat(self.errors.get(code, 0), n)
        if other.latency.count:
            self.latency.merge(other.latency)
        self.prediction_counts = _add_lists(self.prediction_counts, other.prediction_counts)
        self.prediction_values = self.prediction_values.merge(other.prediction_values)
        if other.features:
            if not self.features:
                self.features = [list(c) for c in other.features]
                self.out_of_range = list(other.out_of_range)
                self.feature_missing = list(other.feature_missing)
            elif len(self.features) == len(other.features):
                self.features = [_add_lists(a, b) for a, b in zip(self.features, other.features, strict=True)]
                self.out_of_range = _add_lists(self.out_of_range, other.out_of_range)
                self.feature_missing = _add_lists(self.feature_missing, other.feature_missing)
        if other.categories:
            if not self.categories:
                self.categories = [list(c) for c in other.categories]
                self.category_missing = list(other.category_missing)
                self.category_unseen = list(other.category_unseen)
            elif len(self.categories) == len(other.categories):
                self.categories = [_add_lists(a, b) for a, b in zip(self.categories, other.categories, strict=True)]
                self.category_missing = _add_lists(self.category_missing, other.category_missing)
                self.category_unseen = _add_lists(self.category_unseen, other.category_unseen)
        self.n_labeled = _sat(self.n_labeled, other.n_labeled)
        self.n_correct = _sat(self.n_correct, other.n_correct)
        self.sum_abs_error += other.sum_abs_error
        self.sum_squared_error += other.sum_squared_error
        self.n_within_tolerance = _sat(self.n_within_tolerance, other.n_within_tolerance)
        self.abs_error = self.abs_error.merge(other.abs_error)
        self.rejected_inputs = _sat(self.rejected_inputs, other.rejected_inputs)
        self.unmatched_feedback = _sat(self.unmatched_feedback, other.unmatched_feedback)
        self.shadow_pairs = _sat(self.shadow_pairs, other.shadow_pairs)
        self.shadow_agreements = _sat(self.shadow_agreements, other.shadow_agreements)
        self.shadow_labeled_pairs = _sat(self.shadow_labeled_pairs, other.shadow_labeled_pairs)
        self.champion_only_correct = _sat(self.champion_only_correct, other.champion_only_correct)
        self.challenger_only_correct = _sat(self.challenger_only_correct, other.challenger_only_correct)
        return self

    # ---- storage ----

    def to_json(self) -> dict[str, Any]:
        """The summary column (the four counter columns are stored beside it)."""
        out: dict[str, Any] = {"rows": self.rows}
        if self.errors:
            out["errors"] = dict(self.errors)
        if self.latency.count:
            out["latency"] = sketch_json(self.latency)
        if self.prediction_counts:
            out["prediction_counts"] = self.prediction_counts
        if self.prediction_values.n:
            out["prediction_values"] = moments_dict(self.prediction_values)
        if self.features:
            out["features"] = self.features
            out["out_of_range"] = self.out_of_range
            if any(self.feature_missing):
                out["feature_missing"] = self.feature_missing
        if self.categories:
            out["categories"] = {
                "counts": self.categories,
                "missing": self.category_missing,
                "unseen": self.category_unseen,
            }
        if self.sum_abs_error or self.n_within_tolerance or self.abs_error.n:
            out["feedback"] = {
                "sum_abs_error": self.sum_abs_error,
                "sum_squared_error": self.sum_squared_error,
                "n_within_tolerance": self.n_within_tolerance,
                "abs_error": moments_dict(self.abs_error),
            }
        if self.rejected_inputs:
            out["rejected_inputs"] = self.rejected_inputs
        if self.unmatched_feedback:
            out["unmatched_feedback"] = self.unmatched_feedback
        if self.shadow_pairs or self.shadow_labeled_pairs:
            out["shadow"] = {
                "pairs": self.shadow_pairs,
                "agreements": self.shadow_agreements,
                "labeled_pairs": self.shadow_labeled_pairs,
                "champion_only_correct": self.champion_only_correct,
                "challenger_only_correct": self.challenger_only_correct,
            }
        return out

    @classmethod
    def from_row(
        cls, requests: int, errors: int, n_labeled: int, n_correct: int, data: dict[str, Any] | None
    ) -> WindowSummary:
        data = data or {}
        fb = data.get("feedback") or {}
        shadow = data.get("shadow") or {}
        error_codes = {str(k): int(v) for k, v in (data.get("errors") or {}).items()}
        if not error_codes and errors:
            error_codes = {"UNKNOWN": int(errors)}
        return cls(
            requests=int(requests),
            rows=int(data.get("rows", 0)),
            errors=error_codes,
            latency=sketch_from(data.get("latency")),
            prediction_counts=[int(c) for c in data.get("prediction_counts", [])],
            prediction_values=moments_from(data.get("prediction_values")),
            features=[[int(c) for c in f] for f in data.get("features", [])],
            out_of_range=[int(c) for c in data.get("out_of_range", [])],
            feature_missing=[int(c) for c in data.get("feature_missing", [])],
            categories=[[int(n) for n in c] for c in (data.get("categories") or {}).get("counts", [])],
            category_missing=[int(n) for n in (data.get("categories") or {}).get("missing", [])],
            category_unseen=[int(n) for n in (data.get("categories") or {}).get("unseen", [])],
            n_labeled=int(n_labeled),
            n_correct=int(n_correct),
            sum_abs_error=float(fb.get("sum_abs_error", 0.0)),
            sum_squared_error=float(fb.get("sum_squared_error", 0.0)),
            n_within_tolerance=int(fb.get("n_within_tolerance", 0)),
            abs_error=moments_from(fb.get("abs_error")),
            rejected_inputs=int(data.get("rejected_inputs", 0)),
            unmatched_feedback=int(data.get("unmatched_feedback", 0)),
            shadow_pairs=int(shadow.get("pairs", 0)),
            shadow_agreements=int(shadow.get("agreements", 0)),
            shadow_labeled_pairs=int(shadow.get("labeled_pairs", 0)),
            champion_only_correct=int(shadow.get("champion_only_correct", 0)),
            challenger_only_correct=int(shadow.get("challenger_only_correct", 0)),
        )


def sketch_json(sketch: LatencySketch) -> dict[str, Any]:
    """A sketch as JSON-safe keyword arguments of LatencySketch.from_parts."""
    keys, counts, zero_count = sketch.to_parts()
    finite = sketch.count and math.isfinite(sketch.min) and math.isfinite(sketch.max)
    return {
        "relative_accuracy": sketch.relative_accuracy,
        "keys": [int(k) for k in keys],
        "counts": [int(c) for c in counts],
        "zero_count": int(zero_count),
        "sum": float(sketch.sum) if math.isfinite(sketch.sum) else 0.0,
        "min": float(sketch.min) if finite else 0.0,
        "max": float(sketch.max) if finite else 0.0,
    }


def sketch_parts_of(message: Any) -> dict[str, Any]:
    """A LatencySketch protobuf message as the keyword arguments of LatencySketch.from_parts."""
    return {
        "relative_accuracy": message.relative_accuracy or LATENCY_ACCURACY,
        "keys": list(message.keys),
        "counts": list(message.counts),
        "zero_count": int(message.zero_count),
        "sum": float(message.sum),
        "min": float(message.min),
        "max": float(message.max),
    }
