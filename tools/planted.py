"""The six bugs an outside audit planted (issue 19), kept as text edits so `make mutate` can plant
them again (`tools/mutate.py --planted`): each must be killed by the fast tests named with it.

An edit whose text is no longer in the module fails the run: the code moved, so the bug must be
written down again against the new code (never dropped silently).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Planted:
    name: str
    module: str
    edits: tuple[tuple[str, str], ...]  # (text in the module, what it becomes), applied in order
    tests: tuple[str, ...]


_SRM = (
    "        if analysis.srm_detected:\n"
    "            why = (\n"
    '                f"{step}: sample ratio mismatch (p={analysis.srm_p_value:.2g}): the split does not "\n'
    '                "match the weights, so the comparison cannot be trusted; check routing, then resume or abort"\n'
    "            )\n"
    "            return self._pause(info, analysis, why)\n"
)
_ADVANCE = "        if not last:\n            return self._advance(info, analysis, step)\n"
_GATES = "tests/controlplane/experiments/test_gates.py"

PLANTED = (
    Planted(
        "Promote in the read class of the permission table (a viewer can promote)",
        "controlplane/api/auth.py",
        (
            (
                '            "ExportDataset",\n        )',
                '            "ExportDataset",\n            "Promote",\n        )',
            ),
            ('            "Promote",\n            "AckAlert",', '            "AckAlert",'),
        ),
        ("tests/security/test_auth_check.py",),
    ),
    Planted(
        "the SRM check after the advance to the next step",
        "controlplane/experiments/rollout.py",
        ((_SRM + _ADVANCE, _ADVANCE + _SRM),),
        (f"{_GATES}::test_sample_ratio_mismatch_pauses_a_multi_step_plan_instead_of_advancing",),
    ),
    Planted(
        "the metric report's receipt committed in its own transaction, before the windows",
        "controlplane/monitoring/ingest.py",
        (
            (
                '"received_at": utcnow()},\n        )\n        if not inserted:',
                '"received_at": utcnow()},\n        )\n        session.commit()\n        if not inserted:',
            ),
        ),
        (
            "tests/controlplane/monitoring/test_ingest_atomic.py::"
            "test_a_failure_part_way_through_an_ingest_leaves_nothing_and_the_resend_counts",
        ),
    ),
    Planted(
        "the gate's rollback publishes no event (agents never get it)",
        "controlplane/experiments/rollout.py",
        (
            (
                "        self.ctx.events.publish(\n"
                '            "experiment", info.deployment, f"generation {generation}: experiment {info.name} '
                'rolled back ({gate})"\n        )\n',
                "",
            ),
        ),
        (f"{_GATES}::test_a_rollback_by_its_gate_publishes_the_generation_that_took_the_challenger_out",),
    ),
    Planted(
        "register_version stores the model file before validating the baseline",
        "controlplane/registry.py",
        (
            (
                "        sample: np.ndarray | Table | None = None\n",
                "        sha = ctx.artifacts.commit(model_upload)\n        sample: np.ndarray | Table | None = None\n",
            ),
            (
                "        sha = ctx.artifacts.commit(model_upload)\n        row = ModelVersionRow(",
                "        row = ModelVersionRow(",
            ),
        ),
        (
            "tests/controlplane/store/test_registry_atomic.py::"
            "test_a_bad_baseline_leaves_neither_the_model_nor_the_baseline_stored",
        ),
    ),
    Planted(
        "the agent ACKs a snapshot on receipt, before the swap",
        "agent/link.py",
        (
            (
                "            reply = await self.apply(snapshot)\n",
                "            ack = agent_pb2.SnapshotAck(snapshot_id=snapshot.snapshot_id)\n"
                "            self.send(agent_pb2.AgentMessage(ack=ack))\n"
                "            reply = await self.apply(snapshot)\n",
            ),
        ),
        ("tests/agent/test_link_ack_order.py",),
    ),
)


def plant(source: str, bug: Planted) -> str:
    """`source` with the bug's edits; ValueError naming the edit that no longer applies."""
    for old, new in bug.edits:
        if source.count(old) != 1:
            raise ValueError(f"planted bug {bug.name!r}: {bug.module} no longer holds {old[:60]!r} exactly once")
        source = source.replace(old, new)
    return source
