"""Labels an agent's Feedback RPC received, forwarded over AgentHub (`LabelBatch`): each batch is
one import of the label store (source "feedback", not atomic), named after the agent and the
batch, so a batch sent again (a lost ack, a reconnect, a restart) is stored once."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence

from controlplane.context import Context
from controlplane.domain import Principal, Role
from controlplane.labels.incoming import LabelInput, PendingImport, validate_import_id
from controlplane.labels.store import ImportSummary, begin_import, finish_import
from core.errors import InvalidInput, SluiceError, Unavailable
from core.vocabulary import LabelSource


def feedback_import_id(agent_id: str, batch_id: str) -> str:
    """Stable and short whatever the two ids are: 'fb-' and 40 hex digits."""
    return "fb-" + hashlib.sha256(f"{agent_id}\0{batch_id}".encode()).hexdigest()[:40]


def store_feedback(
    ctx: Context,
    agent_id: str,
    agent_name: str,
    batch_id: str,
    deployment: str,
    rows: Sequence[LabelInput],
    allowed_deployments: Collection[str],
) -> str:
    """Store one batch; returns "" when it is stored (now or before), else why it is refused for
    good (the agent drops it). Raises Unavailable (and any unexpected error) when it should be
    sent again later."""
    try:
        validate_import_id(batch_id)
        if deployment not in allowed_deployments:
            raise InvalidInput(f"deployment {deployment!r} was not sent to agent {agent_name}")
        began = begin_import(
            ctx, deployment, feedback_import_id(agent_id, batch_id), atomic=False, source=LabelSource.FEEDBACK
        )
        if isinstance(began, ImportSummary):
            return ""
        assert isinstance(began, PendingImport)
        began.add(rows)
        finish_import(ctx, Principal(f"agent:{agent_name}"[:128], Role.AGENT), began)
        return ""
    except Unavailable:
        raise
    except SluiceError as exc:
        return exc.message
