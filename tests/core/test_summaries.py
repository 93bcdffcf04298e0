"""Moments: Chan et al. merges agree with numpy on the concatenation, without cancellation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.summaries import Moments


def test_merge_equals_numpy_on_the_concatenation() -> None:
    rng = np.random.default_rng(20)
    # a large mean and a small spread: raw sums of squares would lose every digit here
    chunks = [rng.normal(1e9, 3.0, size=int(n)) for n in rng.integers(1, 400, size=60)]
    merged = Moments()
    for chunk in chunks:
        merged = merged.merge(Moments.of(chunk))
    everything = np.concatenate(chunks)
    assert merged.n == everything.size
    assert merged.mean == pytest.approx(everything.mean(), rel=1e-14)
    assert merged.variance == pytest.approx(everything.var(ddof=1), rel=1e-8)
    assert merged.std == pytest.approx(everything.std(ddof=1), rel=1e-8)
    assert merged.m2 == pytest.approx(np.sum((everything - everything.mean()) ** 2), rel=1e-8)


def test_merge_is_order_independent() -> None:
    rng = np.random.default_rng(21)
    a, b, c = (Moments.of(rng.exponential(2.0, size=n)) for n in (10, 300, 47))
    left = a.merge(b).merge(c)
    right = a.merge(b.merge(c))
    swapped = c.merge(a).merge(b)
    for other in (right, swapped, a + b + c):
        assert other.n == left.n
        assert other.mean == pytest.approx(left.mean, rel=1e-12)
        assert other.m2 == pytest.approx(left.m2, rel=1e-12)


def test_empty_and_tiny_summaries() -> None:
    empty = Moments()
    one = Moments.of([4.0])
    assert empty.merge(one) == one and one.merge(empty) == one
    assert empty.variance == 0.0 and one.variance == 0.0 and one.std == 0.0
    assert math.isnan(one.standard_error)
    assert Moments.of([]) == empty
    # NaN/inf would poison every later merge, so they are not counted
    assert Moments.of([1.0, np.nan, 3.0, np.inf]) == Moments(2, 2.0, 2.0)
    two = Moments.of([1.0, 3.0])
    assert two.variance == 2.0 and two.standard_error == pytest.approx(1.0)
