"""The leave-one-out rule on its own (pure): the evidence without each agent, and which agent, if
any, a forward move depends on."""

from __future__ import annotations

import functools

import numpy as np

from controlplane.experiments.analysis import Analysis, Arm, analyze
from controlplane.experiments.evidence import (
    MAX_LEFT_OUT,
    Blocked,
    agent_evidence,
    dissent,
    exposure_without_any,
    without_each,
)
from controlplane.monitoring.query import ArmSummary, merge_arms
from controlplane.stats import CHALLENGER_WINS, CHAMPION_HOLDS, NO_DIFFERENCE
from core.sketch import LatencySketch
from core.vocabulary import ServingRole

Arms = tuple[ArmSummary, ArmSummary]


def arm(n: int, correct: int, latency: float = 0.005) -> ArmSummary:
    sketch = LatencySketch(0.01)
    sketch.add_many(np.full(n, latency))
    return ArmSummary(requests=n, rows=n, n_labeled=n, n_correct=correct, latency=sketch, prediction_counts=[n])


def judge(champion: ArmSummary, challenger: ArmSummary, srm_counts: tuple[int, int] | None = None) -> Analysis:
    return analyze(
        metric="accuracy",
        champion=Arm("m", "v1", ServingRole.CHAMPION, champion),
        challenger=Arm("m", "v2", ServingRole.CHALLENGER, challenger),
        task="classifier",
        alpha=0.05,
        min_samples=50,
        min_improvement=0.0,
        sequential=False,
        guardrails=[],
        srm_counts=srm_counts,
    )


def judged(per_agent: dict[str, Arms]) -> Analysis:
    """The full analysis with its per-agent evidence, as compute_analysis builds it."""
    full = judge(merge_arms(a[0] for a in per_agent.values()), merge_arms(a[1] for a in per_agent.values()))
    evidence = functools.partial(agent_evidence, metric="accuracy", task="classifier", alpha=0.05)
    full.agents = evidence(per_agent, {}, judge)
    return full


HONEST = (arm(300, 270), arm(300, 270))  # both versions right 90% of the time
LIE = (arm(40_000, 20_000), arm(40_000, 40_000))


def test_without_each_merges_every_other_agent() -> None:
    per_agent = {"a": (arm(10, 5), arm(20, 10)), "b": (arm(30, 3), arm(40, 4)), "c": (arm(50, 50), arm(60, 6))}
    rest = without_each(per_agent)
    assert set(rest) == {"a", "b", "c"}
    for left_out, (champion, challenger) in rest.items():
        others = [v for k, v in per_agent.items() if k != left_out]
        assert (champion.n_labeled, champion.n_correct) == (
            sum(o[0].n_labeled for o in others),
            sum(o[0].n_correct for o in others),
        )
        assert challenger.latency.count == sum(o[1].latency.count for o in others)
        assert challenger.prediction_counts == [sum(o[1].n_labeled for o in others)]
    assert without_each({"only": HONEST})["only"][0].requests == 0


def test_a_liar_beside_an_honest_agent_wins_alone_and_is_named_at_the_last_step() -> None:
    analysis = judged({"honest": HONEST, "liar": LIE})
    assert analysis.decision == CHALLENGER_WINS  # everybody's evidence: the lie dominates
    liar, honest = analysis.agents  # the largest share first
    assert liar.agent_id == "liar" and liar.without is not None and liar.without.decision == NO_DIFFERENCE
    assert honest.without is not None and honest.without.decision == CHALLENGER_WINS
    found = dissent(analysis, last_step=True)
    assert found is not None and found.blocked == Blocked.NOT_WINNING and found.agent.agent_id == "liar"
    assert found.reason() == f"without the evidence of agent liar: decision {NO_DIFFERENCE}"
    assert dissent(analysis, last_step=False) is None  # the next step is no promotion: its gate holds


def test_a_liar_hiding_a_failure_blocks_every_forward_move() -> None:
    failing = (arm(300, 270), arm(300, 180))  # the challenger is much worse
    analysis = judged({"honest": failing, "liar": LIE})
    assert analysis.decision == CHALLENGER_WINS
    found = dissent(analysis, last_step=False)
    assert found is not None and found.blocked == Blocked.FAILS
    assert found.agent.without is not None and found.agent.without.decision == CHAMPION_HOLDS
    assert "primary metric accuracy: challenger significantly worse" in found.detail


def test_missing_samples_without_an_agent_wait_and_a_failure_comes_first() -> None:
    analysis = judged({"few": (arm(20, 18), arm(20, 18)), "liar": LIE})
    found = dissent(analysis, last_step=True)
    assert found is not None and found.blocked == Blocked.WAITING and found.agent.agent_id == "liar"
    assert "20 and 20 samples of 50 per arm" in found.detail
    three = judged({"few": (arm(20, 18), arm(20, 18)), "liar": LIE, "failing": (arm(300, 270), arm(300, 180))})
    worst = dissent(three, last_step=True)
    assert worst is not None and worst.blocked == Blocked.FAILS


def test_one_agent_or_agreeing_agents_decide_as_before() -> None:
    alone = judged({"only": LIE})
    assert [a.without for a in alone.agents] == [None] and dissent(alone, last_step=True) is None
    better = (arm(300, 240), arm(300, 290))
    agreeing = judged({"a": better, "b": better, "c": better})
    assert agreeing.decision == CHALLENGER_WINS and dissent(agreeing, last_step=True) is None
    idle = judged({"a": better, "b": better, "idle": (ArmSummary(), ArmSummary())})
    assert [a.agent_id for a in idle.agents] == ["a", "b"]  # no evidence: not a contributor


def test_only_the_largest_shares_are_left_out_on_a_large_fleet() -> None:
    per_agent = {f"agent-{i:02d}": (arm(100 + i, 90), arm(100 + i, 90)) for i in range(MAX_LEFT_OUT + 4)}
    agents = judged(per_agent).agents
    assert [a.agent_id for a in agents] == sorted(per_agent, reverse=True)  # the largest share first
    assert [a.without is not None for a in agents] == [True] * MAX_LEFT_OUT + [False] * 4


def test_a_steps_exposure_without_the_agent_that_sent_the_most() -> None:
    assert exposure_without_any({"liar": 40_000, "honest": 300}, contributors=2) == (300, "liar")
    assert exposure_without_any({"liar": 40_000}, contributors=2) == (0, "liar")  # the other sent none yet
    assert exposure_without_any({"only": 500}, contributors=1) == (500, None)
    assert exposure_without_any({}, contributors=3) == (0, None)


def test_the_evidence_is_kept_in_the_stored_json() -> None:
    row = judged({"honest": HONEST, "liar": LIE}).to_json()["agents"][0]
    assert row == {
        "agent_id": "liar",
        "agent_name": "liar",
        "champion_n": 40_000,
        "challenger_n": 40_000,
        "champion_metric": 0.5,
        "challenger_metric": 1.0,
        "decision_without": NO_DIFFERENCE,
        "ready_without": True,
        "failed_without": [],
    }
