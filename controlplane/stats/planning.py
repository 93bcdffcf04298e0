"""Planning: how many samples per arm an experiment needs to detect a given difference."""

from __future__ import annotations

import math

from scipy import special as spf

from controlplane.stats.fixed import check_alpha


def sample_size_two_proportions(
    p_control: float,
    min_detectable_diff: float,
    alpha: float = 0.05,
    power: float = 0.8,
    continuity_correction: bool = True,
) -> int:
    """Samples per arm for a two-sided test to detect p_control -> p_control + diff.

    The normal-approximation size (Fleiss) with, by default, the Fleiss-Tytun-Ury continuity
    correction: the uncorrected size gives the pooled z-test a power of almost exactly the
    target, the correction buys a small margin against the binomial's discreteness.
    """
    check_alpha(alpha)
    p_t = p_control + min_detectable_diff
    if not (0 < p_control < 1 and 0 < p_t < 1) or min_detectable_diff == 0:
        raise ValueError("proportions must stay within (0, 1) and the difference must not be 0")
    if not 0 < power < 1:
        raise ValueError("power must be in (0, 1)")
    p_bar = (p_control + p_t) / 2
    z_a, z_b = float(spf.ndtri(1 - alpha / 2)), float(spf.ndtri(power))
    root = z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(
        p_control * (1 - p_control) + p_t * (1 - p_t)
    )
    delta = abs(min_detectable_diff)
    n = root**2 / delta**2
    if continuity_correction:
        n = n / 4 * (1 + math.sqrt(1 + 4 / (n * delta))) ** 2
    return math.ceil(n - 1e-9)


def sample_size_two_means(
    std: float, min_detectable_diff: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Samples per arm to detect a shift of the mean with a two-sided test (normal approx.)."""
    check_alpha(alpha)
    if std <= 0 or min_detectable_diff == 0:
        raise ValueError("std must be positive and the difference must not be 0")
    z_a, z_b = float(spf.ndtri(1 - alpha / 2)), float(spf.ndtri(power))
    return math.ceil(2 * (z_a + z_b) ** 2 * std**2 / min_detectable_diff**2 - 1e-9)
