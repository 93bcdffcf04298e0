"""Counting feature values on a route's baseline bins: the drift histograms' numpy kernel.

A feature's bins are its baseline's: [just below the baseline min, inner edges..., baseline max]
(`extended_edges`). Every feature's edges and bins are laid end to end (`BinLayout`) so one batch
is counted in a few numpy calls, and float32 rows are compared with edges rounded down to float32
(`float32_edges`) so the counts are exact without a float64 copy of the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from protos import common_pb2


class Binned(Protocol):
    """What counting reads of a route (`agent.window.RouteInfo`)."""

    @property
    def extended_edges(self) -> tuple[np.ndarray, ...]: ...

    @property
    def layout(self) -> BinLayout: ...


class BinLayout:
    """Every feature's edges and bins laid end to end, so one batch is counted in a few numpy calls.

    Feature i owns edges [starts[i], ends[i]) of the flat edge arrays and bins
    [first_bin[i], last_bin[i]] of the flat count array.
    """

    def __init__(self, extended_edges: tuple[np.ndarray, ...]) -> None:
        self.edges64 = tuple(np.asarray(e, dtype=np.float64) for e in extended_edges)
        self.edges32 = tuple(float32_edges(e) for e in self.edges64)
        lengths = np.asarray([len(e) for e in self.edges64], dtype=np.int64)
        self.ends = np.cumsum(lengths)
        self.starts = self.ends - lengths
        self.total_edges = int(self.ends[-1]) if len(lengths) else 0
        # Differences of neighbouring flat positions, minus those that straddle two features.
        self.keep = np.setdiff1d(np.arange(max(self.total_edges - 1, 0)), self.ends[:-1] - 1)
        bins = lengths - 1
        self.first_bin = np.cumsum(bins) - bins
        self.last_bin = self.first_bin + bins - 1
        self.total_bins = int(bins.sum())

    def per_feature(self, flat: np.ndarray) -> list[np.ndarray]:
        return [flat[a : b + 1] for a, b in zip(self.first_bin.tolist(), self.last_bin.tolist(), strict=True)]


def extended_edges(features: Iterable[common_pb2.FeatureBins]) -> tuple[np.ndarray, ...]:
    """Per feature, in index order: [just below the baseline min, inner bin edges..., baseline max]."""
    ordered = sorted(features, key=lambda f: f.index)
    return tuple(np.asarray([np.nextafter(f.min, -np.inf), *f.inner_edges, f.max], dtype=np.float64) for f in ordered)


def float32_edges(edges: np.ndarray) -> np.ndarray:
    """Each float64 edge rounded down to the nearest float32 e'.

    For every float32 value v (NaN included): v <= e exactly when v <= e'. If e is a float32,
    e' = e; otherwise e' < e < next float32 after e', and no float32 lies strictly between, so the
    float32 values at most e are those at most e'. Comparing float32 rows with e' is therefore
    exact, and needs no float64 copy of the rows.
    """
    edges = np.asarray(edges, dtype=np.float64)
    with np.errstate(over="ignore"):  # beyond float32's range: +-inf, then stepped down below
        out = edges.astype(np.float32)
    above = out.astype(np.float64) > edges  # rounded up (or to +inf): step one float32 down
    out[above] = np.nextafter(out[above], np.float32(-np.inf))
    return out


def count_features(info: Binned, rows: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Counts on each feature's baseline bins, and how many values fell outside [min, max]."""
    flat, outside = count_flat(info, rows)
    return info.layout.per_feature(flat), outside


def count_flat(info: Binned, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`count_features` with every feature's bin counts end to end in one array (`BinLayout`).

    The bins of a feature are those of `searchsorted(edges, value, side="left")` on
    [min-, inner edges..., max]: index 0 is below the baseline's min, the last index above its max
    (NaN sorts last, so it counts as above), and the bins in between are the baseline's bins.
    Instead of a binary search per value, each column is sorted once (numpy's SIMD sort) and the
    edges are searched in it: count(v <= edge) for every edge, whose differences are the counts.
    The same numbers as the per-value search at a third of its cost (`count_rowwise` is the plain
    reference the tests compare with).
    """
    return count_columns(info.layout, columns([rows]))


def columns(chunks: Sequence[np.ndarray]) -> np.ndarray:
    """The rows of every chunk as one fresh C-ordered [features, rows] array (one copy).

    float32 stays float32 (compared with `float32_edges`); any other dtype becomes float64.
    """
    dtype = np.float32 if all(c.dtype == np.float32 for c in chunks) else np.float64
    if len(chunks) <= 64:  # a few big batches: transpose while concatenating
        return np.concatenate([c.T for c in chunks], axis=1, dtype=dtype)
    rows = np.concatenate(chunks)  # many single rows: one C loop, then one transposed copy
    return np.array(rows.T, dtype=dtype, order="C")


def count_columns(layout: BinLayout, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`count_flat` on the output of `columns`, which it sorts in place."""
    edge_sets = layout.edges32 if columns.dtype == np.float32 else layout.edges64
    columns.sort(axis=1)  # NaN sorts to the end, as searchsorted places it
    n = columns.shape[1]
    at_most = np.empty(layout.total_edges, dtype=np.int64)  # values <= each edge
    for column, edges, lo, hi in zip(columns, edge_sets, layout.starts.tolist(), layout.ends.tolist(), strict=True):
        at_most[lo:hi] = column.searchsorted(edges, side="right")
    # bin k of a feature: at_most[k] - at_most[k-1]; below the min joins the first bin, above the
    # max the last one, and both are out of range.
    flat = (at_most[1:] - at_most[:-1])[layout.keep]
    below = at_most[layout.starts]
    above = n - at_most[layout.ends - 1]
    flat[layout.first_bin] += below
    flat[layout.last_bin] += above
    return flat, below + above


def count_rowwise(info: Binned, rows: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The reference for `count_features`: one binary search per value, on float64 values."""
    columns = np.ascontiguousarray(rows.T, dtype=np.float64)
    counts: list[np.ndarray] = []
    outside = np.zeros(len(info.extended_edges), dtype=np.int64)
    for i, edges in enumerate(info.extended_edges):
        m = len(edges) - 2
        c = np.bincount(np.searchsorted(edges, columns[i], side="left"), minlength=m + 3)
        bins = c[1 : m + 2].copy()
        bins[0] += c[0]
        bins[m] += c[m + 2]
        counts.append(bins)
        outside[i] = c[0] + c[m + 2]
    return counts, outside
