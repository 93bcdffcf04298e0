"""Could one agent have served what a window says? Counts bounded by a rate times the window.

An agent token holder writes its reports itself. A window claiming a billion labels in one second
is a lie no honest agent can tell, and it would outweigh every honest agent's evidence; it is
refused whole on ingest (never clamped: half a lie is still a lie), counted by reason.

The rates are per agent (`limits.max_requests_per_second_per_agent`,
`limits.max_rows_per_second_per_agent`), times the window's length, at least one second: an
agent's last window before it stops may be a few milliseconds long and still hold a few calls.
Within one window, failed calls and latencies are counted per request, so neither can exceed the
requests. Labels are not bounded by the window's requests: a label joins a prediction made in an
earlier window.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.monitoring.summary import WindowSummary

#: the shortest window the bounds assume, in seconds
MIN_SECONDS = 1.0


@dataclass(frozen=True)
class Rates:
    requests_per_second: int
    rows_per_second: int


def implausible(summary: WindowSummary, seconds: float, rates: Rates) -> str | None:
    """Why no agent can have served this window (for the log), or None when it could."""
    span = max(seconds, MIN_SECONDS) if seconds == seconds else MIN_SECONDS
    most_requests = rates.requests_per_second * span
    if summary.requests > most_requests:
        return f"{summary.requests} requests in {span:g} s (at most {rates.requests_per_second}/s)"
    if summary.n_errors > summary.requests:
        return f"{summary.n_errors} failed requests of {summary.requests}"
    if summary.latency.count > summary.requests:
        return f"{summary.latency.count} latencies for {summary.requests} requests"
    most_rows = rates.rows_per_second * span
    for what, n in (
        ("rows", summary.rows),
        ("labels", summary.n_labeled),
        ("absolute errors", summary.abs_error.n),
        ("shadow pairs", summary.shadow_pairs),
        ("labeled shadow pairs", summary.shadow_labeled_pairs),
    ):
        if n > most_rows:
            return f"{n} {what} in {span:g} s (at most {rates.rows_per_second}/s)"
    for i, counts in enumerate(summary.categories):
        # every value of a string input is one answered row's
        missing = summary.category_missing[i] if i < len(summary.category_missing) else 0
        if sum(counts) + missing > summary.rows:
            return f"{sum(counts) + missing} values of categorical feature {i} for {summary.rows} rows"
    return None
