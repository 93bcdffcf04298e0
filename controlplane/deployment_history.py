"""A deployment's history read as a stack of champions: which version a plain rollback restores.

The rule (`restorable`) is a pure function of the history entries, oldest first;
`restorable_version` applies it to one deployment's stored history. `deployments.py` uses it to
roll back and to keep `previous_champion` current; migration 0006 applied a copy of it once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.store.models import DeploymentHistoryRow, DeploymentRow, ModelVersionRow
from core.names import parse_version_ref
from core.vocabulary import ServingRole

MAX_HISTORY = 1000  # history entries read at most: by the rollback rule and by a history listing


def restorable(history: Iterable[tuple[str, list[dict[str, Any]]]]) -> str | None:
    """The version ref a plain rollback restores, from the history (action, splits), oldest first:
    the last champion before the current one that was not rolled back since it last became
    champion. A rollback marks the champion it replaces; being made champion again (deploy,
    promote, traffic, rollback --to) clears the mark."""
    reigns: list[str] = []
    rolled_back: set[str] = set()
    for action, splits in history:
        champion = next((s["version"] for s in splits if s.get("role") == ServingRole.CHAMPION), None)
        if champion is None or (reigns and reigns[-1] == champion):
            continue
        if action == "rollback" and reigns:
            rolled_back.add(reigns[-1])
        rolled_back.discard(champion)
        reigns.append(champion)
    if not reigns:
        return None
    current = reigns[-1]
    return next((ref for ref in reversed(reigns[:-1]) if ref != current and ref not in rolled_back), None)


def restorable_version(session: Session, row: DeploymentRow) -> ModelVersionRow | None:
    entries = session.execute(
        select(DeploymentHistoryRow.action, DeploymentHistoryRow.splits)
        .where(DeploymentHistoryRow.deployment_id == row.id)
        .order_by(DeploymentHistoryRow.generation.desc())
        .limit(MAX_HISTORY)
    ).all()
    ref = restorable((action, list(splits or [])) for action, splits in reversed(entries))
    if ref is None:
        return None
    model, version = parse_version_ref(ref)
    return session.scalar(
        select(ModelVersionRow).where(ModelVersionRow.model == model, ModelVersionRow.version == version)
    )
