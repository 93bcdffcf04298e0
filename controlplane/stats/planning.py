"""Planning: how many samples per arm an experiment needs to detect a given difference.

Fixed-horizon sizes (``sample_size_*``) and the plan of a sequential experiment
(``sequential_plan*``), whose design the always-valid test then uses at every look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import optimize
from scipy import special as spf

from controlplane.stats.fixed import check_alpha
from controlplane.stats.sequential import SequentialDesign, obf_power


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
    root = z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p_control * (1 - p_control) + p_t * (1 - p_t))
    delta = abs(min_detectable_diff)
    n = root**2 / delta**2
    if continuity_correction:
        n = n / 4 * (1 + math.sqrt(1 + 4 / (n * delta))) ** 2
    return math.ceil(n - 1e-9)


def sample_size_two_means(std: float, min_detectable_diff: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Samples per arm to detect a shift of the mean with a two-sided test (normal approx.)."""
    check_alpha(alpha)
    if std <= 0 or min_detectable_diff == 0:
        raise ValueError("std must be positive and the difference must not be 0")
    z_a, z_b = float(spf.ndtri(1 - alpha / 2)), float(spf.ndtri(power))
    return math.ceil(2 * (z_a + z_b) ** 2 * std**2 / min_detectable_diff**2 - 1e-9)


@dataclass(frozen=True)
class SequentialPlan:
    """A sequential experiment's plan: how many samples per arm it runs to, and its power there.

    ``design`` is what the test needs at every look; ``fixed_n_*`` is what a fixed-horizon test
    with the same split would need (the price of looking any time is the ratio).
    """

    n_control: int
    n_treatment: int
    expected_power: float
    design: SequentialDesign
    fixed_n_control: int
    fixed_n_treatment: int


#: Siegmund's correction: K equally spaced looks at a boundary c cross about as often as
#: continuous monitoring of c + 0.5826 sqrt(1/K) (0.5826 = -zeta(1/2)/sqrt(2 pi))
DISCRETE_LOOK_SHIFT = 0.5826
#: looks the power of a plan is computed for (the engine usually looks more often: a bit more power)
PLANNED_LOOKS = 20


def looks_power(drift: float, c: float, looks: int) -> float:
    """Power of the boundary c with ``looks`` equally spaced looks up to the planned size."""
    return obf_power(drift, c + DISCRETE_LOOK_SHIFT / math.sqrt(looks))


def _drift_for(power: float, c: float) -> float:
    """The drift at which the continuous O'Brien-Fleming boundary c is crossed with ``power``."""
    return float(optimize.brentq(lambda mu: obf_power(mu, c) - power, 0.0, c + 20.0, xtol=1e-12))


def sequential_plan(
    var_control: float,
    var_treatment: float,
    min_detectable_diff: float,
    alpha: float = 0.05,
    power: float = 0.8,
    treatment_share: float = 0.5,
    looks: int = PLANNED_LOOKS,
) -> SequentialPlan:
    """Plan the always-valid test for one experiment from the per-unit variance of each arm.

    The size is where the difference's standard error equals mde / drift, the drift being the
    one at which the planned boundary, looked at ``looks`` times, reaches ``power``; the split
    follows ``treatment_share``. The test stays valid however often it is looked at.
    """
    if looks < 1:
        raise ValueError("a plan needs at least one look")
    check_alpha(alpha)
    if not 0 < power < 1:
        raise ValueError("power must be in (0, 1)")
    if not 0 < treatment_share < 1:
        raise ValueError("the treatment's share must be in (0, 1)")
    if var_control <= 0 or var_treatment <= 0 or min_detectable_diff == 0:
        raise ValueError("variances must be positive and the difference must not be 0")
    if not math.isfinite(min_detectable_diff):
        raise ValueError("the minimum detectable difference must be finite")
    delta = abs(min_detectable_diff)
    c = SequentialDesign(alpha, 1.0).boundary
    shifted = c + DISCRETE_LOOK_SHIFT / math.sqrt(looks)
    planned_se = delta / _drift_for(power, shifted)
    unit = var_control / (1 - treatment_share) + var_treatment / treatment_share
    total = unit / planned_se**2
    n_c = math.ceil(total * (1 - treatment_share) - 1e-9)
    n_t = math.ceil(total * treatment_share - 1e-9)
    se = math.sqrt(var_control / n_c + var_treatment / n_t)
    z_a, z_b = float(spf.ndtri(1 - alpha / 2)), float(spf.ndtri(power))
    fixed_total = unit * (z_a + z_b) ** 2 / delta**2
    return SequentialPlan(
        n_control=n_c,
        n_treatment=n_t,
        expected_power=looks_power(delta / se, c, looks),
        design=SequentialDesign(alpha, planned_se),
        fixed_n_control=math.ceil(fixed_total * (1 - treatment_share) - 1e-9),
        fixed_n_treatment=math.ceil(fixed_total * treatment_share - 1e-9),
    )


def sequential_plan_two_proportions(
    p_control: float,
    min_detectable_diff: float,
    alpha: float = 0.05,
    power: float = 0.8,
    treatment_share: float = 0.5,
    looks: int = PLANNED_LOOKS,
) -> SequentialPlan:
    """``sequential_plan`` for proportions p_control -> p_control + diff (Bernoulli variances)."""
    p_t = p_control + min_detectable_diff
    if not (0 < p_control < 1 and 0 < p_t < 1):
        raise ValueError("proportions must stay within (0, 1)")
    return sequential_plan(
        p_control * (1 - p_control), p_t * (1 - p_t), min_detectable_diff, alpha, power, treatment_share, looks
    )
