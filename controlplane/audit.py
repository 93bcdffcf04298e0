"""The audit trail: every mutation writes one event in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import AuditEntry, Principal
from controlplane.store.db import Database
from controlplane.store.models import AuditEventRow
from core.errors import InvalidInput

MAX_LIST = 1000
MAX_TARGET = 512  # the column's width: a longer target can match nothing


def record(session: Session, principal: Principal, action: str, target: str, **details: Any) -> None:
    session.add(AuditEventRow(principal=principal.name, action=action, target=target, details=details))


def list_audit(db: Database, target: str = "", limit: int = 100) -> list[AuditEntry]:
    if len(target) > MAX_TARGET:
        raise InvalidInput(f"the audit target is {len(target)} characters; the limit is {MAX_TARGET}")
    limit = min(limit or 100, MAX_LIST)
    with db.session() as session:
        query = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit)
        if target:
            query = query.where(AuditEventRow.target == target)
        return [
            AuditEntry(r.id, r.at, r.principal, r.action, r.target, dict(r.details))
            for r in session.scalars(query)
        ]
