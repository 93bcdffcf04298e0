"""Seeded simulations of the experiment statistics against the figures of shared/STATS.md.

False positives of the fixed-horizon tests, of peeking at them after every window and of the
always-valid tests under the same peeking; power at the planned sample size; SRM false alarms;
sketch error. Prints a table and how long it took:

    .venv/bin/python bench/stats_simulation.py
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy import stats as sps

from controlplane.stats import (
    confidence_sequence_half_width,
    design_arrays,
    proportion_arrays,
    ratio_score_interval,
    relative_lift,
    sample_size_two_proportions,
    score_interval,
    sequential_plan,
    sequential_plan_two_proportions,
    srm_check,
    two_proportion_test,
    welch_arrays,
    welch_test,
)
from core.sketch import LatencySketch
from core.summaries import Moments

SEED = 2024
RUNS = 2_000
LOOKS = 20
PER_LOOK = 250
ALPHA = 0.05


def fixed_fpr(rng: np.random.Generator) -> tuple[float, float]:
    """A/A at one look: two-proportion z-test (n=2,000 per arm) and Welch on skewed data."""
    draws = rng.binomial(2_000, 0.8, size=(RUNS, 2))
    z = np.mean([two_proportion_test(int(c), 2_000, int(t), 2_000).significant for c, t in draws])
    welch = np.mean(
        [
            welch_test(Moments.of(rng.exponential(1, 200)), Moments.of(rng.exponential(1, 200))).significant
            for _ in range(RUNS)
        ]
    )
    return float(z), float(welch)


PLAN = sequential_plan_two_proportions(0.80, 0.03, alpha=ALPHA, power=0.8)
MEANS_PLAN = sequential_plan(1.0, 1.0, 0.06, alpha=ALPHA, power=0.8)  # exponential data: std 1


def peeking_proportions(rng: np.random.Generator, plan_rng: np.random.Generator) -> tuple[float, float, float]:
    """A/A with a look after each of LOOKS windows: (naive fixed, unplanned CS, planned) FPR.

    The planned test looks LOOKS times up to its planned size.
    """
    cumulative = rng.binomial(PER_LOOK, 0.8, size=(RUNS, LOOKS, 2)).cumsum(axis=1)
    n = PER_LOOK * np.arange(1, LOOKS + 1)
    a = proportion_arrays(cumulative[..., 0], n, cumulative[..., 1], n)
    unplanned = np.abs(a.difference) > confidence_sequence_half_width(a.se, 2 * n, ALPHA)
    step = math.ceil(PLAN.n_control / LOOKS)
    cumulative = plan_rng.binomial(step, 0.8, size=(RUNS, LOOKS, 2)).cumsum(axis=1)
    m = step * np.arange(1, LOOKS + 1)
    b = proportion_arrays(cumulative[..., 0], m, cumulative[..., 1], m)
    planned = np.abs(b.difference) > design_arrays(PLAN.design, b.difference, b.se)[0]
    return (
        float((a.p_value < ALPHA).any(axis=1).mean()),
        float(unplanned.any(axis=1).mean()),
        float(planned.any(axis=1).mean()),
    )


def peeking_means(rng: np.random.Generator, per_look: int = PER_LOOK) -> tuple[float, float, float]:
    """Same for a mean metric, windows merged with the Chan formula; the planned design here
    looks after each window of ``per_look`` (the caller sizes it to the plan)."""
    n = np.zeros((RUNS, 2))
    mean = np.zeros((RUNS, 2))
    m2 = np.zeros((RUNS, 2))
    naive = np.zeros(RUNS, dtype=bool)
    sequential = np.zeros(RUNS, dtype=bool)
    planned = np.zeros(RUNS, dtype=bool)
    for _ in range(LOOKS):
        values = rng.exponential(1.0, size=(RUNS, 2, per_look))
        w_mean = values.mean(axis=2)
        w_m2 = ((values - w_mean[..., None]) ** 2).sum(axis=2)
        total = n + per_look
        delta = w_mean - mean
        mean = mean + delta * per_look / total
        m2 = m2 + w_m2 + delta**2 * n * per_look / total
        n = total
        var = m2 / (n - 1)
        a = welch_arrays(n[:, 0], mean[:, 0], var[:, 0], n[:, 1], mean[:, 1], var[:, 1])
        naive |= a.p_value < ALPHA
        half = confidence_sequence_half_width(a.se, n.sum(axis=1), ALPHA)
        sequential |= np.abs(a.difference) > half
        planned |= np.abs(a.difference) > design_arrays(MEANS_PLAN.design, a.difference, a.se)[0]
    return float(naive.mean()), float(sequential.mean()), float(planned.mean())


def planned_power(rng: np.random.Generator, n_per_arm: int) -> float:
    """Power of the planned sequential test for 0.80 -> 0.83, LOOKS looks up to n_per_arm."""
    step = math.ceil(n_per_arm / LOOKS)
    cc = rng.binomial(step, 0.80, size=(RUNS, LOOKS)).cumsum(axis=1)
    ct = rng.binomial(step, 0.83, size=(RUNS, LOOKS)).cumsum(axis=1)
    m = step * np.arange(1, LOOKS + 1)
    a = proportion_arrays(cc, m, ct, m)
    return float((np.abs(a.difference) > design_arrays(PLAN.design, a.difference, a.se)[0]).any(axis=1).mean())


def power(rng: np.random.Generator) -> tuple[int, float, float, float]:
    """Planned n for 0.80 -> 0.83: simulated (20,000 runs), exact and unplanned-CS power."""
    n = sample_size_two_proportions(0.80, 0.03, alpha=ALPHA, power=0.8)
    control, treatment = rng.binomial(n, 0.80, 20_000), rng.binomial(n, 0.83, 20_000)
    simulated = float(np.mean(proportion_arrays(control, n, treatment, n).p_value < ALPHA))
    k = np.arange(n + 1)
    lo, hi = int(n * 0.7), int(n * 0.95)
    kc, kt = k[lo:hi], k[lo:hi]
    rejects = proportion_arrays(kc[:, None], n, kt[None, :], n).p_value < ALPHA
    weights = sps.binom.pmf(kc, n, 0.80)[:, None] * sps.binom.pmf(kt, n, 0.83)[None, :]
    exact = float(np.sum(weights * rejects))
    # the always-valid test with 20 looks up to (about) the same planned n: its price in power
    looks, step = 20, math.ceil(n / 20)
    cc = rng.binomial(step, 0.80, size=(RUNS, looks)).cumsum(axis=1)
    ct = rng.binomial(step, 0.83, size=(RUNS, looks)).cumsum(axis=1)
    m = step * np.arange(1, looks + 1)
    a = proportion_arrays(cc, m, ct, m)
    detected = np.abs(a.difference) > confidence_sequence_half_width(a.se, 2 * m, ALPHA)
    return n, simulated, exact, float(detected.any(axis=1).mean())


def srm(rng: np.random.Generator) -> tuple[float, float]:
    """False alarms on 2,000 A/A splits of 20k; detection of 52/48 against 50/50."""
    a_a = rng.multinomial(20_000, [0.5, 0.5], size=RUNS)
    alarms = np.mean([srm_check(c.tolist(), [50, 50]).mismatch for c in a_a])
    skewed = rng.multinomial(20_000, [0.52, 0.48], size=RUNS)
    detected = np.mean([srm_check(c.tolist(), [50, 50]).mismatch for c in skewed])
    return float(alarms), float(detected)


def sketch_errors(rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """Worst relative error of p50/p95/p99: one sketch of 200k values, 100 merged windows."""

    def errors(sketch: LatencySketch, values: np.ndarray) -> list[float]:
        out = []
        for q in (0.5, 0.95, 0.99):
            truth = float(np.quantile(values, q, method="lower"))
            out.append(abs(sketch.quantile(q) - truth) / truth)
        return out

    values = rng.lognormal(math.log(0.02), 0.9, 200_000)
    one = LatencySketch(0.01)
    one.add_many(values)
    parts = [rng.lognormal(math.log(rng.uniform(0.005, 0.05)), 0.8, 3_000) for _ in range(100)]
    merged = LatencySketch(0.01)
    for part in parts:
        window = LatencySketch(0.01)
        window.add_many(part)
        merged.merge(LatencySketch.from_parts(0.01, *window.to_parts()))
    return errors(one, values), errors(merged, np.concatenate(parts))


def interval_disagreements(rng: np.random.Generator, cases: int = 10_000) -> tuple[int, int, int]:
    """Random near-boundary inputs where "significant" and "the interval excludes 0" disagree:
    (difference intervals, lift intervals) of the two-proportion test, and lift intervals of
    Welch's test; each out of `cases`."""
    critical = float(sps.norm.isf(ALPHA / 2))
    n_c, n_t = rng.integers(200, 12_000, cases), rng.integers(200, 12_000, cases)
    p = rng.uniform(0.05, 0.95, cases)
    s_c = rng.binomial(n_c, p)
    s_t = rng.binomial(n_t, np.minimum(p * rng.uniform(0.97, 1.03, cases), 1.0))
    significant = proportion_arrays(s_c, n_c, s_t, n_t).p_value < ALPHA
    low, high = score_interval(s_c, n_c, s_t, n_t, critical)
    diff_bad = int(np.sum(significant == ((low <= 0) & (high >= 0))))
    lift_bad = 0
    for i in range(cases):
        lift_low, lift_high = ratio_score_interval(int(s_c[i]), int(n_c[i]), int(s_t[i]), int(n_t[i]), critical)
        lift_bad += bool(significant[i]) == (lift_low <= 0 <= lift_high)
    welch_bad = 0
    n = 80
    mean_c, mean_t = rng.normal(1.0, 0.05, cases), rng.normal(1.0, 0.05, cases)
    var_c, var_t = rng.uniform(0.5, 1.5, cases), rng.uniform(0.5, 1.5, cases)
    w = welch_arrays(n, mean_c, var_c, n, mean_t, var_t)
    for i in range(cases):
        t = float(sps.t.isf(ALPHA / 2, float(w.df[i])))
        _, (lift_low, lift_high) = relative_lift(
            float(mean_c[i]), float(mean_t[i]), float(w.var_control[i]), float(w.var_treatment[i]), t
        )
        if math.isfinite(lift_low):
            welch_bad += bool(w.p_value[i] < ALPHA) == (lift_low <= 0 <= lift_high)
    return diff_bad, lift_bad, welch_bad


def main() -> None:
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    z_fpr, welch_fpr = fixed_fpr(rng)
    plan_rng = np.random.default_rng(SEED + 1)  # the planned design's draws leave the others as they were
    naive_p, seq_p, planned_p = peeking_proportions(rng, plan_rng)
    naive_m, seq_m, _ = peeking_means(rng)
    _, _, planned_m = peeking_means(plan_rng, math.ceil(MEANS_PLAN.n_control / LOOKS))
    n, simulated, exact, seq_power = power(rng)
    power_planned = planned_power(plan_rng, PLAN.n_control)
    power_125 = planned_power(plan_rng, math.ceil(1.25 * n))
    alarms, detected = srm(rng)
    one, merged = sketch_errors(rng)
    diff_bad, lift_bad, welch_bad = interval_disagreements(np.random.default_rng(SEED + 2))

    def pct(x: float) -> str:
        return f"{x:.2%}"

    rows = [
        ("A/A two-proportion z-test, 1 look, 2,000 runs", pct(z_fpr), "4%-6%"),
        ("A/A Welch t-test (exponential data), 2,000 runs", pct(welch_fpr), "4%-6%"),
        (f"A/A proportions, fixed test peeking at {LOOKS} looks", pct(naive_p), "> 5% (contrast)"),
        (f"A/A proportions, unplanned CS (N*=5000), {LOOKS} looks", pct(seq_p), "<= 5%"),
        (f"A/A proportions, planned sequential, {LOOKS} looks to n={PLAN.n_control}", pct(planned_p), "2%-5%"),
        (f"A/A means, fixed Welch peeking at {LOOKS} looks", pct(naive_m), "> 5% (contrast)"),
        (f"A/A means, unplanned CS (N*=5000), {LOOKS} looks", pct(seq_m), "<= 5%"),
        (f"A/A means, planned sequential, {LOOKS} looks to n={MEANS_PLAN.n_control}", pct(planned_m), "2%-5%"),
        (f"power 0.80->0.83 at planned n={n}/arm, 20k runs", pct(simulated), ">= 80%"),
        ("  same, exact (binomial enumeration)", pct(exact), ">= 80%"),
        ("  unplanned CS (N*=5000), 20 looks up to the same n", pct(seq_power), "(reference)"),
        (
            f"  planned sequential at its n={PLAN.n_control}/arm, {LOOKS} looks",
            pct(power_planned),
            f"planner: {PLAN.expected_power:.1%}",
        ),
        (f"  planned sequential at 1.25 x {n} = {math.ceil(1.25 * n)}/arm", pct(power_125), ">= 75%"),
        ("interval vs decision, 2-proportion difference, 10,000 random", f"{diff_bad} disagree", "0"),
        ("interval vs decision, 2-proportion relative lift, 10,000", f"{lift_bad} disagree", "0"),
        ("interval vs decision, Welch relative lift (Fieller), 10,000", f"{welch_bad} disagree", "0"),
        ("SRM false alarms, 2,000 A/A runs of 20k", pct(alarms), "<= 0.2%"),
        ("SRM detection of 52/48 vs 50/50 on 20k", pct(detected), "(reference)"),
        ("sketch p50/p95/p99 rel. error, one sketch", " / ".join(f"{e:.3%}" for e in one), "<= 1%"),
        (
            "sketch p50/p95/p99 rel. error, 100 merged",
            " / ".join(f"{e:.3%}" for e in merged),
            "<= 1%",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    measured = max(len(r[1]) for r in rows)
    print(f"{'what'.ljust(width)}  {'measured'.ljust(measured)}  target")
    for what, value, target in rows:
        print(f"{what.ljust(width)}  {value.ljust(measured)}  {target}")
    print(f"seed {SEED}; took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
