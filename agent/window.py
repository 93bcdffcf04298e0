"""One metric window of one (deployment, version): the raw material it accumulates until a flush.

`RouteInfo` is what the snapshot says about the route (role, experiment, baseline bins); `Window`
holds what was recorded since the last flush. Rows wait as raw chunks and are counted on the
route's bins (and sampled into the reservoir) in bulk, by `count_chunks` then `Window.merge`,
outside the recorder's lock.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agent.binning import BinLayout, columns, count_columns_missing, extended_edges
from agent.categories import CategoryCounts, CategoryLookup, count_values, lookups
from core.reservoir import Reservoir
from core.vocabulary import ServingRole
from protos import agent_pb2

#: rows kept as raw chunks before they are folded into the histograms (bounds memory per window)
FOLD_ROWS = 8192

VersionKey = tuple[str, str, str]  # (deployment, model, version)

#: what `count_chunks` hands to `Window.merge`: (flat feature counts, their layout, out-of-range
#: counts, a uniform sample, rows seen, missing values per feature)
Counted = tuple[np.ndarray | None, BinLayout | None, np.ndarray | None, np.ndarray, int, np.ndarray | None]
#: a string input's values by input name, as a batch's feeds hold them
Texts = dict[str, np.ndarray]


@dataclass(frozen=True)
class RouteInfo:
    """What the snapshot says about one (deployment, version)."""

    deployment: str
    model: str
    version: str
    role: ServingRole
    experiment: str
    task: str
    #: per feature: [just below the baseline min, inner bin edges..., baseline max]
    extended_edges: tuple[np.ndarray, ...] = ()
    n_classes: int = 0
    #: string inputs with category bins from the baseline, in index order
    categories: tuple[CategoryLookup, ...] = ()
    #: regressor: inner edges of the baseline's prediction bins (empty: predictions not binned)
    prediction_edges: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def n_features(self) -> int:
        return len(self.extended_edges)

    @functools.cached_property
    def layout(self) -> BinLayout:
        return BinLayout(self.extended_edges)


def route_info(deployment: str, experiment: str, route: agent_pb2.Route) -> RouteInfo:
    try:
        role = ServingRole.from_wire(route.role)
    except ValueError:
        role = ServingRole.CHAMPION  # a route without a role this build knows counts as the champion
    return RouteInfo(
        deployment=deployment,
        model=route.version.model,
        version=route.version.version,
        role=role,
        experiment=experiment,
        task=route.task,
        extended_edges=extended_edges(route.baseline.features),
        categories=lookups(route.baseline.categories),
        # classifiers: one count per class (a regressor's baseline counts are value bins)
        n_classes=0 if route.baseline.prediction_edges else len(route.baseline.prediction_counts),
        prediction_edges=np.asarray(route.baseline.prediction_edges, dtype=np.float64),
    )


def count_chunks(
    info: RouteInfo | None, chunks: Sequence[np.ndarray], reservoir_size: int, rng: np.random.Generator
) -> Counted:
    """Count rows on the route's bins and take a uniform sample of at most `reservoir_size` (no lock).

    Rows that do not fit the route's bins (no route, no baseline, another width) are only sampled.
    """
    n = sum(c.shape[0] for c in chunks)
    k = min(reservoir_size, n)
    pick = np.sort(rng.choice(n, k, replace=False)) if k < n else slice(None)
    if info is None or not info.n_features or chunks[0].shape[1] != info.n_features:
        rows = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        return None, None, None, np.array(rows[pick], dtype=np.float32), n, None
    # One transposed copy serves the sample and the counting.
    cols = columns(chunks)
    sample = np.array(cols[:, :n][:, pick].T, dtype=np.float32)
    counts, outside, missing = count_columns_missing(info.layout, cols, n)
    return counts, info.layout, outside, sample, n, missing


def count_texts(info: RouteInfo | None, chunks: list[Texts]) -> list[CategoryCounts] | None:
    """Count string inputs on the route's category bins (no lock); None without bins."""
    if info is None or not info.categories:
        return None
    return [count_values(c, [t[c.name] for t in chunks if c.name in t]) for c in info.categories]


@dataclass
class Window:
    """Accumulated raw material of one (deployment, version) during one window."""

    role: str
    requests: int = 0
    rows: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    row_chunks: list[np.ndarray] = field(default_factory=list)
    pending_rows: int = 0
    label_chunks: list[np.ndarray] = field(default_factory=list)
    value_chunks: list[np.ndarray] = field(default_factory=list)
    #: every feature's bin counts end to end (split per feature by `feature_layout`)
    feature_counts: np.ndarray | None = None
    feature_layout: BinLayout | None = None
    out_of_range: np.ndarray | None = None
    #: NaN values per numeric feature
    feature_missing: np.ndarray | None = None
    #: string inputs' values waiting to be counted, and how many rows they hold
    text_chunks: list[Texts] = field(default_factory=list)
    pending_text_rows: int = 0
    #: per string input with bins: its counts so far
    category_counts: list[CategoryCounts] | None = None
    reservoir: Reservoir | None = None
    n_labeled: int = 0
    n_correct: int = 0
    sum_abs_error: float = 0.0
    sum_squared_error: float = 0.0
    n_within_tolerance: int = 0
    abs_errors: list[float] = field(default_factory=list)
    rejected: int = 0
    pairs: int = 0
    agreements: int = 0
    labeled_pairs: int = 0
    champion_only_correct: int = 0
    challenger_only_correct: int = 0

    def empty(self) -> bool:
        return not (self.requests or self.rejected or self.n_labeled or self.pairs or self.labeled_pairs)

    def add_rows(self, rows: np.ndarray, n: int) -> list[np.ndarray] | None:
        """Keep a batch's rows; once FOLD_ROWS wait, hand every waiting chunk back to be counted."""
        self.row_chunks.append(rows)
        self.pending_rows += n
        if self.pending_rows < FOLD_ROWS:
            return None
        detached = self.row_chunks
        self.row_chunks = []
        self.pending_rows = 0
        return detached

    def add_texts(self, texts: Texts, n: int) -> list[Texts] | None:
        """Keep a batch's string columns; once FOLD_ROWS wait, hand them back to be counted."""
        self.text_chunks.append(texts)
        self.pending_text_rows += n
        if self.pending_text_rows < FOLD_ROWS:
            return None
        detached = self.text_chunks
        self.text_chunks = []
        self.pending_text_rows = 0
        return detached

    def merge_texts(self, counted: list[CategoryCounts] | None) -> None:
        if counted is None:
            return
        if self.category_counts is None or len(self.category_counts) != len(counted):
            self.category_counts = counted
            return
        for mine, theirs in zip(self.category_counts, counted, strict=True):
            mine.add(theirs)

    def merge(self, counted: Counted, reservoir_size: int, rng: np.random.Generator) -> None:
        counts, layout, outside, sample, seen, missing = counted
        if counts is not None and outside is not None:
            if (
                self.feature_counts is None
                or self.out_of_range is None
                or self.feature_counts.shape != counts.shape
                or self.out_of_range.shape != outside.shape
            ):
                self.feature_counts = counts.copy()
                self.out_of_range = outside.copy()
                self.feature_missing = None if missing is None else missing.copy()
            else:
                self.feature_counts += counts
                self.out_of_range += outside
                if missing is not None and self.feature_missing is not None:
                    self.feature_missing += missing
            self.feature_layout = layout
        if reservoir_size and sample.shape[0]:
            # `sample` is already a uniform sample of the `seen` rows of this batch.
            batch = Reservoir.from_sample(sample, seen, capacity=reservoir_size, seed=rng)
            if self.reservoir is None:
                self.reservoir = batch
            else:
                self.reservoir.merge(batch)
