"""Counting feature values on a route's baseline bins: the drift histograms' numpy kernel.

A feature's bins are its baseline's: [just below the baseline min, inner edges..., baseline max]
(`extended_edges`). Every feature's edges and bins are laid end to end (`BinLayout`) so one batch
is counted in a few numpy calls, and float32 rows are compared with edges rounded down to float32
(`float32_edges`) so the counts are exact without a float64 copy of the rows. Counting compares
every value with every edge of its feature in one numpy call (no sort, no search per value, no
Python loop per feature) and adds the comparisons up eight at a time (`count_true`).
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
    [first_bin[i], last_bin[i]] of the flat count array. `grid32` / `grid64` hold the same edges
    as one [features, most edges + 1] table (shorter features padded with +inf, whose counts are
    never read); `grid_index` picks the real edges out of the flattened table, in flat edge order.
    The last column is +inf for every feature: what is at most +inf is every value but NaN, so its
    count (at `finite_index`) tells the missing values apart for the price of one more edge.
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
        width = int(lengths.max()) + 1 if len(lengths) else 0
        self.grid64 = np.full((len(lengths), width), np.inf, dtype=np.float64)
        self.grid32 = np.full((len(lengths), width), np.inf, dtype=np.float32)
        for i, (e64, e32) in enumerate(zip(self.edges64, self.edges32, strict=True)):
            self.grid64[i, : len(e64)] = e64
            self.grid32[i, : len(e32)] = e32
        self.grid_index = np.concatenate(
            [i * width + np.arange(len(e)) for i, e in enumerate(self.edges64)] or [np.zeros(0, dtype=np.int64)]
        )
        self.finite_index = np.arange(len(lengths), dtype=np.int64) * width + (width - 1)

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


#: `columns` pads the rows to a multiple of this; `count_true` adds up the comparisons of this many
#: rows in 8 bytes per (feature, edge), up to GROUP_ROWS / 8 in each byte: at most 8 * 255.
GROUP_ROWS = 1024
#: `count_columns` compares at most about this many (value, edge) pairs at once (one byte each).
BLOCK_BYTES = 4 << 20


def count_flat(info: Binned, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`count_features` with every feature's bin counts end to end in one array (`BinLayout`).

    The bins of a feature are those of `searchsorted(edges, value, side="left")` on
    [min-, inner edges..., max]: index 0 is below the baseline's min, the last index above its max,
    and the bins in between are the baseline's bins. NaN (a missing value) counts in no bin.
    Instead of a binary search per value, every value is compared with every edge of its feature
    (count(v <= edge) for each edge, whose differences are the counts): about ten SIMD comparisons
    per value in one numpy call, cheaper than a sort or a search per value, the same numbers
    (`count_rowwise` is the plain reference the tests compare with).
    """
    return count_columns(info.layout, columns([rows]), rows.shape[0])


def columns(chunks: Sequence[np.ndarray]) -> np.ndarray:
    """The rows of every chunk as one fresh C-ordered [features, rows] array (one transposed copy).

    The rows are padded with NaN up to a multiple of GROUP_ROWS (NaN is at most no edge, so the
    padding is counted nowhere; `count_columns` is told how many rows are real). float32 stays
    float32 (compared with `float32_edges`); any other dtype becomes float64.
    """
    dtype = np.float32 if all(c.dtype == np.float32 for c in chunks) else np.float64
    n = sum(c.shape[0] for c in chunks)
    out = np.empty((chunks[0].shape[1], -(-n // GROUP_ROWS) * GROUP_ROWS), dtype=dtype)
    out[:, n:] = np.nan
    if len(chunks) <= 64:  # a few big batches: transpose while concatenating
        np.concatenate([c.T for c in chunks], axis=1, out=out[:, :n])
    else:  # many single rows: one C loop, then one transposed copy
        out[:, :n] = np.concatenate(chunks).T
    return out


def count_columns(layout: BinLayout, columns: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`count_flat` on the output of `columns`, of which the first `n` rows are real."""
    flat, outside, _ = count_columns_missing(layout, columns, n)
    return flat, outside


def count_columns_missing(
    layout: BinLayout, columns: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count_columns` plus each feature's missing values (NaN), which the same comparisons give
    for free (the data-quality counters' missing share)."""
    grid = layout.grid32 if columns.dtype == np.float32 else layout.grid64
    at_most = np.zeros(grid.shape, dtype=np.int64)  # values <= each edge
    if grid.size:
        edges = grid[:, :, None]
        step = max(1, BLOCK_BYTES // (grid.size * GROUP_ROWS)) * GROUP_ROWS
        for start in range(0, columns.shape[1], step):
            block = columns[:, None, start : start + step]
            # [features, edges, rows], C-ordered: one numpy call compares every value with its
            # feature's edges
            mask = np.empty((*grid.shape, block.shape[2]), dtype=np.bool_)
            np.less_equal(block, edges, out=mask)
            at_most += count_true(mask)
    flat = at_most.ravel()
    # NaN (a missing value, for a model whose graph imputes it) is at most no edge, not even +inf
    missing = n - flat[layout.finite_index] if grid.size else None
    counts, outside = _bins(layout, flat[layout.grid_index], n, missing)
    return counts, outside, missing if missing is not None else np.zeros(0, dtype=np.int64)


def count_true(mask: np.ndarray) -> np.ndarray:
    """How many of mask[..., :] are true, for a boolean mask whose last axis is a multiple of GROUP_ROWS.

    Eight booleans (one byte each, 0 or 1) make a 64-bit word; adding GROUP_ROWS / 8 words adds up
    each byte position separately (at most 128 each, so no carry reaches the next byte), and the
    eight byte sums of the result are added last. On 8,192 rows x 30 features x 11 edges: a seventh
    of numpy's `count_nonzero(axis=-1)`, half of `np.bitwise_count` of the same words.
    """
    words = mask.view(np.uint64).reshape(*mask.shape[:-1], -1, GROUP_ROWS // 8)
    lanes = np.add.reduce(words, axis=-1)
    return np.add.reduce(lanes.view(np.uint8).reshape(*mask.shape[:-1], -1), axis=-1, dtype=np.int64)


def _bins(
    layout: BinLayout, at_most: np.ndarray, n: int, missing: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flat bin counts and out-of-range counts from count(value <= edge) of every flat edge.

    Missing values (NaN, `missing` per feature) are counted in no bin: a feature's missing share
    is not drift of its distribution.
    """
    # bin k of a feature: at_most[k] - at_most[k-1]; below the min joins the first bin, above the
    # max the last one, and both are out of range.
    flat = (at_most[1:] - at_most[:-1])[layout.keep]
    below = at_most[layout.starts]
    above = n - at_most[layout.ends - 1]
    if missing is not None:
        above = above - missing  # NaN is at most no edge: it was counted as above the max
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
        values = columns[i][~np.isnan(columns[i])]  # a missing value counts in no bin
        c = np.bincount(np.searchsorted(edges, values, side="left"), minlength=m + 3)
        bins = c[1 : m + 2].copy()
        bins[0] += c[0]
        bins[m] += c[m + 2]
        counts.append(bins)
        outside[i] = c[0] + c[m + 2]
    return counts, outside
