"""Micro-benchmark of the metric window's histogram kernel against the other ways to count.

    .venv/bin/python bench/binning.py [--repeat N]

One fold of the recorder (8 PredictBatch chunks of 1,024 rows = FOLD_ROWS) and one chunk alone, 30
float32 features on the breast-cancer baseline's bins (10 bins, 11 edges per feature), about a
sixth of the values out of range. Every strategy is checked against `count_rowwise` (the plain
per-value search) before it is timed; each figure is the median (and the 10th percentile) of
`--repeat` timings, the transposed copy of the rows included where the strategy needs one.
"""

from __future__ import annotations

import argparse
import functools
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.binning import BinLayout, columns, count_columns, count_rowwise
from agent.window import RouteInfo
from controlplane.registry import summarise_baseline
from controlplane.sample_data import breast_cancer_arrays

Counts = tuple[np.ndarray, np.ndarray]


def flat_from_places(layout: BinLayout, places: list[np.ndarray]) -> Counts:
    """Flat bin counts from each feature's counts of searchsorted places (0..len(edges))."""
    flat = np.empty(layout.total_bins, dtype=np.int64)
    outside = np.empty(len(places), dtype=np.int64)
    for i, c in enumerate(places):
        bins = c[1:-1].copy()
        bins[0] += c[0]
        bins[-1] += c[-1]
        flat[layout.first_bin[i] : layout.last_bin[i] + 1] = bins
        outside[i] = c[0] + c[-1]
    return flat, outside


def sort_then_search(layout: BinLayout, chunks: list[np.ndarray]) -> Counts:
    """The previous kernel: sort each column, search the edges in it (count(v <= edge))."""
    n = sum(c.shape[0] for c in chunks)
    cols = np.ascontiguousarray(np.concatenate(chunks).T)
    cols.sort(axis=1)
    at_most = np.empty(layout.total_edges, dtype=np.int64)
    for column, edges, lo, hi in zip(cols, layout.edges32, layout.starts.tolist(), layout.ends.tolist(), strict=True):
        at_most[lo:hi] = column.searchsorted(edges, side="right")
    flat = (at_most[1:] - at_most[:-1])[layout.keep]
    below, above = at_most[layout.starts], n - at_most[layout.ends - 1]
    flat[layout.first_bin] += below
    flat[layout.last_bin] += above
    return flat, below + above


def searchsorted_per_feature(layout: BinLayout, chunks: list[np.ndarray]) -> Counts:
    """One binary search per value (one np.searchsorted per feature), one bincount per feature."""
    cols = np.ascontiguousarray(np.concatenate(chunks).T)
    places = [
        np.bincount(edges.searchsorted(col, side="left"), minlength=len(edges) + 1)
        for col, edges in zip(cols, layout.edges32, strict=True)
    ]
    return flat_from_places(layout, places)


def digitize_per_feature(layout: BinLayout, chunks: list[np.ndarray]) -> Counts:
    """np.digitize(right=True) is searchsorted(side="left"): the same search, one more wrapper."""
    cols = np.ascontiguousarray(np.concatenate(chunks).T)
    places = [
        np.bincount(np.digitize(col, edges, right=True), minlength=len(edges) + 1)
        for col, edges in zip(cols, layout.edges32, strict=True)
    ]
    return flat_from_places(layout, places)


def _ordered_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> uint32 in the same order (NaN of either sign made positive, -0.0 as +0.0)."""
    x = np.where(np.isnan(x), np.float32(np.nan), x + np.float32(0.0))  # + 0.0 turns -0.0 into +0.0
    bits = x.view(np.uint32)
    return bits ^ np.where(bits >> 31 == 1, np.uint32(0xFFFFFFFF), np.uint32(0x80000000))


def one_flat_search(layout: BinLayout, chunks: list[np.ndarray]) -> Counts:
    """One np.searchsorted for every value of every feature and one np.bincount, no Python loop.

    The key of a value is (feature << 32) | its order-preserving bits, so one sorted array of every
    feature's edge keys serves them all; position + feature is the (feature, place) slot.
    """
    cols = np.ascontiguousarray(np.concatenate(chunks).T)
    feature = np.arange(cols.shape[0], dtype=np.uint64)[:, None] << np.uint64(32)
    edge_keys = np.concatenate(
        [(np.uint64(i) << np.uint64(32)) | _ordered_bits(e).astype(np.uint64) for i, e in enumerate(layout.edges32)]
    )
    keys = feature | _ordered_bits(cols).astype(np.uint64)
    slots = np.searchsorted(edge_keys, keys, side="left") + np.arange(cols.shape[0])[:, None]
    counts = np.bincount(slots.ravel(), minlength=layout.total_edges + cols.shape[0])
    places = [counts[lo + i : hi + i + 1] for i, (lo, hi) in enumerate(zip(layout.starts, layout.ends, strict=True))]
    return flat_from_places(layout, places)


def compare_all_edges(layout: BinLayout, chunks: list[np.ndarray]) -> Counts:
    """The kernel the agent runs (agent.binning.count_columns)."""
    return count_columns(layout, columns(chunks), sum(c.shape[0] for c in chunks))


STRATEGIES: dict[str, Callable[[BinLayout, list[np.ndarray]], Counts]] = {
    "sort each column, search the edges (before; C order)": sort_then_search,
    "np.searchsorted per feature + bincount": searchsorted_per_feature,
    "np.digitize per feature + bincount": digitize_per_feature,
    "one flat searchsorted (uint64 keys) + bincount": one_flat_search,
    "compare with every edge, count 8 per word (now)": compare_all_edges,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200, help="timings per figure (default 200)")
    args = parser.parse_args()
    X, _ = breast_cancer_arrays()
    summary = summarise_baseline(X.astype(np.float32).astype(np.float64), [])
    edges = tuple(
        np.asarray([np.nextafter(f["min"], -np.inf), *f["inner_edges"], f["max"]]) for f in summary["features"]
    )
    info = RouteInfo("bench", "m", "v1", "champion", "", "classifier", edges)
    batch = np.resize(X, (1024, X.shape[1])).astype(np.float32)
    batch[:170] *= np.float32(1.3)  # some values beyond the baseline's max
    print(f"{X.shape[1]} features, edges per feature: {sorted({len(e) for e in edges})}, float32 rows\n")
    print("| strategy | 8 x 1,024 rows (one fold), us | 1,024 rows, us |")
    print("| --- | ---: | ---: |")
    for name, strategy in STRATEGIES.items():
        cells = []
        for chunks in ([batch] * 8, [batch]):
            rows = np.concatenate(chunks)
            expected_counts, expected_outside = count_rowwise(info, rows)
            flat, outside = strategy(info.layout, chunks)
            assert np.array_equal(flat, np.concatenate(expected_counts)), name
            assert np.array_equal(outside, expected_outside), name
            run = functools.partial(strategy, info.layout, chunks)
            times = np.asarray(timeit.repeat(run, number=1, repeat=args.repeat))
            cells.append(f"{np.median(times) * 1e6:,.0f} (p10 {np.percentile(times, 10) * 1e6:,.0f})")
        print(f"| {name} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
