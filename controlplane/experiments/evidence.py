"""An experiment's evidence per agent: no single agent can move a challenger forward.

Every agent writes its own metric reports, so one agent (a compromised host holding an agent
token, or a broken one) can report anything that passes the plausibility bounds of ingest. The
rule, with two or more contributing agents:

    every forward move (the next step, completion, promotion) must also hold on the evidence of
    the other agents alone, for each agent left out in turn ("leave one out").

So a move happens only when it does not depend on any one agent. A rollback needs no such
agreement: it is the safe direction, and it is judged on everybody's evidence (one agent that
lies the challenger down can stop an experiment, visibly and attributed; it cannot promote one).
With a single contributing agent there is nobody to disagree with: its evidence decides, within
the bounds of ingest.

Pure functions over merged summaries: `without_each` builds the leave-one-out evidence (3n merges,
not n²); `dissent` finds the agent without whose evidence the forward move fails, if any;
`exposure_without_any` is the same rule for a step's own samples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from controlplane.experiments.analysis import AgentEvidence, Analysis, failed_gates
from controlplane.experiments.estimates import estimate, sample_count
from controlplane.monitoring.query import ArmSummary, merge_arms
from controlplane.stats import CHALLENGER_WINS

Arms = tuple[ArmSummary, ArmSummary]  # champion, challenger
#: agents left out in turn, the largest shares of the primary metric's samples first: each agent
#: beyond them holds less evidence than every one of them, i.e. under 1/(MAX_LEFT_OUT + 1) of it
#: (an analysis costs up to ~10 ms: a tick stays bounded on a large fleet)
MAX_LEFT_OUT = 16


def without_each(arms: Mapping[str, Arms]) -> dict[str, Arms]:
    """For each agent, the other agents' evidence merged: prefix and suffix merges."""
    agents = list(arms)
    n = len(agents)
    empty = (ArmSummary(), ArmSummary())
    prefix: list[Arms] = [empty]
    for agent in agents:
        prefix.append(_merged(prefix[-1], arms[agent]))
    suffix: list[Arms] = [empty]
    for agent in reversed(agents):
        suffix.append(_merged(suffix[-1], arms[agent]))
    return {agent: _merged(prefix[i], suffix[n - 1 - i]) for i, agent in enumerate(agents)}


def _merged(a: Arms, b: Arms) -> Arms:
    return merge_arms((a[0], b[0])), merge_arms((a[1], b[1]))


def contributes(arms: Arms) -> bool:
    return any(a.requests or a.rows or a.n_labeled or a.shadow_pairs for a in arms)


def agent_evidence(
    arms: Mapping[str, Arms],
    names: Mapping[str, str],
    analyze_without: Callable[[ArmSummary, ArmSummary], Analysis],
    *,
    metric: str,
    task: str,
    alpha: float,
) -> list[AgentEvidence]:
    """Each contributing agent's share and metric per arm, largest share of the primary metric's
    samples first, with the analysis of the others' evidence (two or more contributors; the
    MAX_LEFT_OUT largest)."""
    mine = {agent: a for agent, a in arms.items() if contributes(a)}
    out = [
        AgentEvidence(
            agent_id=agent,
            name=names.get(agent, agent) or "(unattributed: stored before agents were recorded)",
            champion_n=sample_count(metric, champion, task),
            challenger_n=sample_count(metric, challenger, task),
            champion_metric=estimate(metric, champion, task, alpha).value,
            challenger_metric=estimate(metric, challenger, task, alpha).value,
        )
        for agent, (champion, challenger) in mine.items()
    ]
    out.sort(key=lambda e: (-(e.champion_n + e.challenger_n), e.agent_id))
    if len(mine) < 2:
        return out
    others = without_each(mine)
    return [
        replace(e, without=analyze_without(*others[e.agent_id])) if i < MAX_LEFT_OUT else e for i, e in enumerate(out)
    ]


class Blocked(StrEnum):
    """How the evidence without one agent stops a forward move."""

    #: a gate fails without it: the verdict depends on that agent; a person looks (pause)
    FAILS = "fails"
    #: the others have too few samples yet: wait
    WAITING = "waiting"
    #: at the last gate the others do not show the challenger winning (pause, as inconclusive)
    NOT_WINNING = "not_winning"


@dataclass(frozen=True)
class Dissent:
    agent: AgentEvidence
    blocked: Blocked
    detail: str

    def reason(self) -> str:
        return f"without the evidence of agent {self.agent.name}: {self.detail}"


def dissent(analysis: Analysis, last_step: bool) -> Dissent | None:
    """The agent without whose evidence the move that `analysis` allows does not hold (the most
    serious block first: a failing gate, then missing samples, then at the last step a challenger
    that does not win); None when the move holds without each agent, or with one contributor."""
    found: dict[Blocked, Dissent] = {}
    for agent in analysis.agents:
        rest = agent.without
        if rest is None:
            continue
        failed = failed_gates(rest)
        if failed:
            found.setdefault(Blocked.FAILS, Dissent(agent, Blocked.FAILS, " | ".join(failed)))
        elif not rest.ready:
            waiting = "; ".join(rest.waiting_for)
            found.setdefault(Blocked.WAITING, Dissent(agent, Blocked.WAITING, f"waiting for samples: {waiting}"))
        elif last_step and analysis.decision == CHALLENGER_WINS and rest.decision != CHALLENGER_WINS:
            found.setdefault(Blocked.NOT_WINNING, Dissent(agent, Blocked.NOT_WINNING, f"decision {rest.decision}"))
    for blocked in Blocked:
        if blocked in found:
            return found[blocked]
    return None


def exposure_without_any(rows: Mapping[str, int], contributors: int) -> tuple[int, str | None]:
    """(a step's samples, the agent left out) under the same rule: with two or more contributors
    the step needs its samples without any one agent, i.e. without the one that sent the most."""
    total = sum(rows.values())
    if contributors < 2 or not rows:
        return total, None
    largest = max(sorted(rows), key=lambda agent: rows[agent])
    return total - rows[largest], largest
