"""The agent's /metrics exposition, built at scrape time from plain counters."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.prometheus import AgentPrometheus


def samples(prom: AgentPrometheus) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(prom.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_counters_histogram_and_gauges() -> None:
    prom = AgentPrometheus()
    prom.observe("web", "m:v1", 3, 0.0005)  # exactly on a bound: counted in that bucket (le)
    prom.observe("web", "m:v1", 1, 0.2)
    prom.refused("web", "INVALID_ARGUMENT")
    prom.refused("web", "INVALID_ARGUMENT")
    prom.set_connected(True)
    prom.set_generations({"web": 7})
    got = samples(prom)
    ok = (("code", "OK"), ("deployment", "web"), ("version", "m:v1"))
    assert got[("sluice_predictions_total", ok)] == 4
    bad = (("code", "INVALID_ARGUMENT"), ("deployment", "web"), ("version", ""))
    assert got[("sluice_predictions_total", bad)] == 2
    labels = (("deployment", "web"), ("version", "m:v1"))
    bucket = "sluice_prediction_latency_seconds_bucket"
    assert got[(bucket, (*labels[:1], ("le", "0.00025"), *labels[1:]))] == 0
    assert got[(bucket, (*labels[:1], ("le", "0.0005"), *labels[1:]))] == 1
    assert got[(bucket, (*labels[:1], ("le", "+Inf"), *labels[1:]))] == 2
    assert got[("sluice_prediction_latency_seconds_count", labels)] == 2
    assert abs(got[("sluice_prediction_latency_seconds_sum", labels)] - 0.2005) < 1e-12
    assert got[("sluice_agent_connected", ())] == 1
    assert got[("sluice_snapshot_generation", (("deployment", "web"),))] == 7
    prom.set_connected(False)
    prom.set_generations({})
    got = samples(prom)
    assert got[("sluice_agent_connected", ())] == 0
    assert not any(name == "sluice_snapshot_generation" for name, _ in got)


def test_the_label_spool_counts_are_exposed() -> None:
    prom = AgentPrometheus()
    assert ("sluice_agent_label_batches_waiting", ()) not in samples(prom)
    prom.label_counts = lambda: (3, 7)
    got = samples(prom)
    assert got[("sluice_agent_label_batches_waiting", ())] == 3
    assert got[("sluice_agent_labels_dropped_total", ())] == 7
