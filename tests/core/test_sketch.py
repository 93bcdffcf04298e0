"""LatencySketch: the 1% relative-error guarantee, alone and after merging, and its edges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.sketch import MAX_BUCKETS, LatencySketch

ACCURACY = 0.01
PERCENTILES = (0.5, 0.95, 0.99)
# float rounding of log() at a bucket boundary may cost an ulp beyond the guarantee
SLACK = 1e-12


def exact(values: np.ndarray, q: float) -> float:
    """The order statistic the sketch estimates: rank floor(q*(n-1))."""
    return float(np.quantile(values, q, method="lower"))


def relative_error(sketch: LatencySketch, values: np.ndarray, q: float) -> float:
    truth = exact(values, q)
    return abs(sketch.quantile(q) - truth) / truth


def latencies(rng: np.random.Generator, size: int) -> np.ndarray:
    """Lognormal request latencies in seconds, median ~20 ms, with a long tail."""
    return rng.lognormal(mean=math.log(0.02), sigma=0.9, size=size)


def test_one_sketch_p50_p95_p99_within_one_percent() -> None:
    values = latencies(np.random.default_rng(1), 200_000)
    sketch = LatencySketch(ACCURACY)
    sketch.add_many(values)
    assert sketch.count == values.size
    assert sketch.sum == pytest.approx(values.sum(), rel=1e-12)
    assert (sketch.min, sketch.max) == (values.min(), values.max())
    for q in PERCENTILES:
        assert relative_error(sketch, values, q) <= ACCURACY + SLACK, q


def test_every_quantile_keeps_the_guarantee() -> None:
    values = np.random.default_rng(2).pareto(1.5, 50_000) + 1e-4  # heavy tail, 8 decades
    sketch = LatencySketch(ACCURACY)
    sketch.add_many(values)
    errors = [relative_error(sketch, values, q) for q in np.linspace(0, 1, 201)]
    assert max(errors) <= ACCURACY + SLACK


def test_hundred_merged_sketches_within_one_percent_after_round_trip() -> None:
    rng = np.random.default_rng(3)
    # agents differ: each window has its own median and spread
    parts = [
        rng.lognormal(math.log(rng.uniform(0.005, 0.05)), rng.uniform(0.3, 1.2), 3_000)
        for _ in range(100)
    ]
    merged = LatencySketch(ACCURACY)
    for part in parts:
        window = LatencySketch(ACCURACY)
        window.add_many(part)
        keys, counts, zero_count = window.to_parts()
        wire = LatencySketch.from_parts(
            ACCURACY, keys, counts, zero_count, sum=window.sum, min=window.min, max=window.max
        )
        merged.merge(wire)
    everything = np.concatenate(parts)
    assert merged.count == everything.size
    assert merged.sum == pytest.approx(everything.sum(), rel=1e-12)
    assert (merged.min, merged.max) == (everything.min(), everything.max())
    for q in PERCENTILES:
        assert relative_error(merged, everything, q) <= ACCURACY + SLACK, q


def test_merge_equals_one_sketch_of_everything() -> None:
    rng = np.random.default_rng(4)
    a, b = latencies(rng, 5_000), latencies(rng, 7_000) * 3
    left, right, whole = LatencySketch(), LatencySketch(), LatencySketch()
    left.add_many(a)
    right.add_many(b)
    whole.add_many(np.concatenate([a, b]))
    swapped = right.copy()
    swapped.merge(left)
    left.merge(right)
    assert left.to_parts() == whole.to_parts() == swapped.to_parts()


def test_round_trip_through_parts() -> None:
    sketch = LatencySketch(ACCURACY)
    sketch.add_many(np.concatenate([latencies(np.random.default_rng(5), 1_000), [0.0, 0.0]]))
    keys, counts, zero_count = sketch.to_parts()
    assert keys == sorted(keys) and all(isinstance(k, int) for k in keys)
    assert zero_count == 2 and sum(counts) + zero_count == sketch.count
    again = LatencySketch.from_parts(
        sketch.relative_accuracy, keys, counts, zero_count, sketch.sum, sketch.min, sketch.max
    )
    assert again.to_parts() == (keys, counts, zero_count)
    assert [again.quantile(q) for q in PERCENTILES] == [sketch.quantile(q) for q in PERCENTILES]
    assert (again.count, again.sum, again.min, again.max) == (
        sketch.count,
        sketch.sum,
        sketch.min,
        sketch.max,
    )


def test_add_one_at_a_time_equals_add_many() -> None:
    values = latencies(np.random.default_rng(6), 2_000)
    one, many = LatencySketch(), LatencySketch()
    for value in values:
        one.add(float(value))
    many.add_many(values)
    assert one.to_parts() == many.to_parts()
    assert one.sum == pytest.approx(many.sum, rel=1e-12)
    assert (one.min, one.max) == (many.min, many.max)


def test_bucket_arithmetic_matches_the_definition() -> None:
    sketch = LatencySketch(ACCURACY)
    gamma = (1 + ACCURACY) / (1 - ACCURACY)
    assert sketch.gamma == pytest.approx(gamma)
    for x in (1e-6, 0.0123, 1.0, 7.5, 3e4):
        k = sketch.key(x)
        assert k == math.ceil(math.log(x) / math.log(gamma))
        assert gamma ** (k - 1) < x * (1 + 1e-12) and x <= gamma**k * (1 + 1e-12)
        assert sketch.value_of(k) == pytest.approx(2 * gamma**k / (1 + gamma))
        assert abs(sketch.value_of(k) - x) / x <= ACCURACY + SLACK


def test_empty_zero_negative_and_non_finite_values() -> None:
    empty = LatencySketch()
    assert math.isnan(empty.quantile(0.5)) and empty.count == 0 and math.isnan(empty.mean)
    sketch = LatencySketch()
    sketch.add_many(np.array([0.0, 1e-12, -0.5, np.nan, np.inf, 0.2]))
    sketch.add(float("nan"))
    assert sketch.count == 4 and sketch.zero_count == 3  # NaN/inf ignored, <= 1e-9 -> zero
    assert sketch.quantile(0.0) == 0.0 and sketch.quantile(0.5) == 0.0
    assert sketch.quantile(1.0) == pytest.approx(0.2, rel=ACCURACY)
    assert math.isnan(sketch.quantile(1.5)) and math.isnan(sketch.quantile(-0.1))


def test_accuracy_must_match_to_merge() -> None:
    with pytest.raises(ValueError, match="accuracy"):
        LatencySketch(0.01).merge(LatencySketch(0.02))
    with pytest.raises(ValueError):
        LatencySketch(0.0)
    with pytest.raises(ValueError):
        LatencySketch.from_parts(0.01, [1, 2], [1])


def test_unset_fields_from_the_wire() -> None:
    # protobuf leaves unset fields at 0: accuracy 0 means the default, an empty sketch's 0/0 range
    # must not stick once real values are merged in
    placeholder = LatencySketch.from_parts(0.0, [], [], 0, sum=0.0, min=0.0, max=0.0)
    assert placeholder.relative_accuracy == ACCURACY
    assert placeholder.count == 0 and math.isnan(placeholder.min)
    real = LatencySketch()
    real.add_many(np.array([0.5, 0.7]))
    placeholder.merge(real)
    assert (placeholder.min, placeholder.max) == (0.5, 0.7)


def test_memory_is_bounded_and_the_top_keeps_its_accuracy() -> None:
    # 24 decades need ~2,760 buckets at 1%: the lowest ones are folded together
    values = np.geomspace(1e-9 * 1.01, 1e15, 200_001)
    sketch = LatencySketch(ACCURACY)
    sketch.add_many(values)
    assert len(sketch.bins) <= MAX_BUCKETS and sketch.count == values.size
    for q in PERCENTILES:
        assert relative_error(sketch, values, q) <= ACCURACY + SLACK, q
    small = LatencySketch(ACCURACY, max_buckets=64)
    for chunk in np.array_split(values, 7):
        small.add_many(chunk)
    assert len(small.bins) <= 64 and small.count == values.size
    assert relative_error(small, values, 0.999) <= ACCURACY + SLACK
