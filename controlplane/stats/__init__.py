"""Pure statistics of the control plane (numpy/scipy, no I/O): drift and experiment tests.

``drift`` (PSI, KS), ``categorical`` (chi-square on category frequencies),
``fixed`` (fixed-horizon z and Welch tests, the verdict), ``sequential``
(always-valid p-values and confidence sequences), ``checks`` (sample ratio mismatch, paired tests)
and ``planning`` (sample sizes, the plan of a sequential experiment).

They judge the summaries agents send, which live in `core` (LatencySketch, Moments,
Reservoir) because agents build them and must not load scipy.
"""

from controlplane.stats.categorical import chi_square_test, share
from controlplane.stats.checks import SrmResult, mcnemar_test, paired_t_test, srm_check
from controlplane.stats.drift import (
    PSI_EPSILON,
    FeatureKS,
    baseline_bin_edges,
    baseline_bin_edges_2d,
    histogram_counts,
    ks_features,
    ks_test,
    prediction_histogram,
    prediction_psi,
    psi,
    psi_level,
)
from controlplane.stats.fixed import (
    CHALLENGER_WINS,
    CHAMPION_HOLDS,
    NO_DIFFERENCE,
    Comparison,
    DifferenceArrays,
    decide,
    proportion_arrays,
    ratio_score_interval,
    ratio_score_statistic,
    relative_lift,
    score_interval,
    score_statistic,
    two_proportion_test,
    welch_arrays,
    welch_test,
)
from controlplane.stats.planning import (
    SequentialPlan,
    sample_size_two_means,
    sample_size_two_proportions,
    sequential_plan,
    sequential_plan_two_proportions,
)
from controlplane.stats.sequential import (
    SequentialDesign,
    always_valid_p_value,
    confidence_sequence_half_width,
    design_arrays,
    sequential_mean_test,
    sequential_proportion_test,
)

__all__ = [
    "CHALLENGER_WINS",
    "CHAMPION_HOLDS",
    "NO_DIFFERENCE",
    "PSI_EPSILON",
    "Comparison",
    "DifferenceArrays",
    "FeatureKS",
    "SequentialDesign",
    "SequentialPlan",
    "SrmResult",
    "always_valid_p_value",
    "baseline_bin_edges",
    "baseline_bin_edges_2d",
    "chi_square_test",
    "confidence_sequence_half_width",
    "decide",
    "design_arrays",
    "histogram_counts",
    "ks_features",
    "ks_test",
    "mcnemar_test",
    "paired_t_test",
    "prediction_histogram",
    "prediction_psi",
    "proportion_arrays",
    "psi",
    "psi_level",
    "ratio_score_interval",
    "ratio_score_statistic",
    "relative_lift",
    "sample_size_two_means",
    "sample_size_two_proportions",
    "score_interval",
    "score_statistic",
    "sequential_mean_test",
    "sequential_plan",
    "sequential_plan_two_proportions",
    "sequential_proportion_test",
    "share",
    "srm_check",
    "two_proportion_test",
    "welch_arrays",
    "welch_test",
]
