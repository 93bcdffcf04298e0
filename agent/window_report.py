"""Closed metric windows turned into the MetricReport the agent sends (`agent.reports` then
numbers it and keeps it until the control plane's ack).

Per (deployment, version): counts, a latency sketch, the prediction histogram or moments, the
feature histograms, the reservoir sample, and the feedback and shadow-pair counts.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from agent.window import RouteInfo, VersionKey, Window
from core.report_limits import LATENCY_ACCURACY, MAX_CLASSES
from core.sketch import LatencySketch
from core.summaries import Moments
from core.vocabulary import ServingRole
from protos import agent_pb2, common_pb2


def build_report(
    windows: Mapping[VersionKey, Window],
    routes: Mapping[VersionKey, RouteInfo],
    start: float,
    now: float,
    unmatched: int,
) -> agent_pb2.MetricReport:
    """The report of the windows open from `start` to `now` (time.time()); empty windows are left out."""
    report = agent_pb2.MetricReport(window_seconds=max(now - start, 0.0), unmatched_feedback=unmatched)
    report.window_start.FromNanoseconds(int(start * 1e9))
    for key, window in windows.items():
        if window.empty():
            continue
        report.windows.append(version_window(key, window, routes.get(key)))
    return report


def version_window(key: VersionKey, window: Window, info: RouteInfo | None) -> agent_pb2.VersionWindow:
    deployment, model, version = key
    out = agent_pb2.VersionWindow(
        deployment=deployment,
        version=common_pb2.VersionRef(model=model, version=version),
        role=_role(window, info).to_wire(),
        experiment=info.experiment if info else "",
        requests=window.requests,
        rows=window.rows,
        rejected_inputs=window.rejected,
    )
    for code, count in sorted(window.errors.items()):
        out.errors.append(agent_pb2.ErrorCount(code=code, count=count))
    if window.latencies:
        sketch = LatencySketch(LATENCY_ACCURACY)
        sketch.add_many(np.asarray(window.latencies, dtype=np.float64))
        keys, counts, zero_count = sketch.to_parts()
        out.latency.CopyFrom(
            common_pb2.LatencySketch(
                relative_accuracy=sketch.relative_accuracy,
                keys=keys,
                counts=counts,
                zero_count=zero_count,
                sum=sketch.sum,
                min=sketch.min,
                max=sketch.max,
            )
        )
    if window.label_chunks:
        labels = np.concatenate(window.label_chunks)
        if np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.bool_):
            labels = labels.astype(np.int64)
            labels = labels[(labels >= 0) & (labels < MAX_CLASSES)]
            minlength = info.n_classes if info else 0
            out.prediction_counts.extend(int(c) for c in np.bincount(labels, minlength=minlength))
    if window.value_chunks:
        values = np.concatenate(window.value_chunks).astype(np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            out.prediction_values.CopyFrom(_moments_proto(Moments.of(values)))
            if info is not None and info.prediction_edges.size:
                # the baseline's value bins, right-closed as the feature bins (prediction drift)
                positions = np.searchsorted(info.prediction_edges, values, side="left")
                binned = np.bincount(positions, minlength=info.prediction_edges.size + 1)
                out.prediction_counts.extend(int(c) for c in binned)
    layout = window.feature_layout
    if window.feature_counts is not None and window.out_of_range is not None and layout is not None:
        missing = window.feature_missing
        for i, bins in enumerate(layout.per_feature(window.feature_counts)):
            out.features.append(
                agent_pb2.FeatureWindow(
                    index=i,
                    counts=[int(c) for c in bins],
                    out_of_range=int(window.out_of_range[i]),
                    missing=int(missing[i]) if missing is not None and i < missing.size else 0,
                )
            )
    for i, counted in enumerate(window.category_counts or []):
        out.categories.append(
            agent_pb2.CategoryWindow(
                index=i, counts=[int(c) for c in counted.counts], missing=counted.missing, unseen=counted.unseen
            )
        )
    reservoir = window.reservoir
    if reservoir is not None and len(reservoir):
        sample = reservoir.sample()
        out.reservoir_features = int(sample.shape[1])
        out.reservoir.extend(sample.astype(np.float32).ravel().tolist())
    if window.n_labeled:
        out.feedback.n_labeled = window.n_labeled
        out.feedback.n_correct = window.n_correct
        out.feedback.sum_abs_error = window.sum_abs_error
        out.feedback.sum_squared_error = window.sum_squared_error
        out.feedback.n_within_tolerance = window.n_within_tolerance
        if window.abs_errors:
            moments = Moments.of(np.asarray(window.abs_errors, dtype=np.float64))
            out.feedback.abs_error.CopyFrom(_moments_proto(moments))
    if window.pairs or window.labeled_pairs:
        out.shadow.pairs = window.pairs
        out.shadow.agreements = window.agreements
        out.shadow.labeled_pairs = window.labeled_pairs
        out.shadow.champion_only_correct = window.champion_only_correct
        out.shadow.challenger_only_correct = window.challenger_only_correct
    return out


def _role(window: Window, info: RouteInfo | None) -> ServingRole:
    """The role the window was recorded under; else the snapshot's; else champion."""
    for word in (window.role, info.role if info else ServingRole.CHAMPION):
        try:
            return ServingRole(word)
        except ValueError:
            continue
    return ServingRole.CHAMPION


def _moments_proto(moments: Moments) -> common_pb2.Moments:
    return common_pb2.Moments(n=int(moments.n), mean=float(moments.mean), m2=float(moments.m2))
