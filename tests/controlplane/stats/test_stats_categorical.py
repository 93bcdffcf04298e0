"""Categorical drift statistics (issue 14 item 5) against scipy's own implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from controlplane.stats import chi_square_test, psi, share
from controlplane.stats.categorical import chi_square_statistic, pooled_table


def test_chi_square_equals_scipys_contingency_test() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        k = int(rng.integers(2, 12))
        baseline = rng.integers(20, 400, size=k)
        live = rng.integers(20, 400, size=k)
        statistic, p_value = chi_square_test(baseline, live)
        reference = sps.chi2_contingency(np.vstack([baseline, live]), correction=False)
        assert statistic == pytest.approx(reference.statistic, rel=1e-10)
        assert p_value == pytest.approx(reference.pvalue, rel=1e-8, abs=1e-300)
        assert chi_square_statistic(np.vstack([baseline, live]))[1] == reference.dof


def test_a_shifted_mix_is_significant_and_the_same_mix_is_not() -> None:
    baseline = np.array([500, 300, 200, 0])
    same = np.array([250, 150, 100, 0])
    shifted = np.array([100, 150, 250, 0])
    assert chi_square_test(baseline, same)[1] == pytest.approx(1.0)
    assert chi_square_test(baseline, shifted)[1] < 1e-20
    assert psi(baseline, shifted) > 0.25 > psi(baseline, same)


def test_small_bins_are_pooled_and_degenerate_tables_give_nan() -> None:
    # two tiny categories merge into one column: 3 columns, dof 2
    table = pooled_table(np.array([400, 300, 2, 1]), np.array([200, 150, 1, 2]))
    assert table.shape == (2, 3) and table[:, 2].tolist() == [3, 3]
    reference = sps.chi2_contingency(table, correction=False)
    assert chi_square_test(np.array([400, 300, 2, 1]), np.array([200, 150, 1, 2]))[1] == pytest.approx(reference.pvalue)
    for baseline, live in [([10, 0], [5, 0]), ([0, 0], [3, 4]), ([5, 5], [0, 0])]:
        assert all(math.isnan(v) for v in chi_square_test(np.array(baseline), np.array(live)))
    with pytest.raises(ValueError, match="differ in length"):
        chi_square_test(np.array([1, 2]), np.array([1, 2, 3]))
    assert share(1, 4) == 0.25 and math.isnan(share(0, 0))
