"""JSON route for auditors: the audit chain, newest first. Reading it is itself audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from crossborder.audit import service
from crossborder.audit.models import AuditEvent
from crossborder.auth.deps import api_principal
from crossborder.auth.permissions import Permission, Principal
from crossborder.core.errors import PermissionDenied
from crossborder.db.session import atomic
from crossborder.deps import get_session

router = APIRouter(tags=["audit"])


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    occurred_at: datetime
    actor_user_id: int | None
    actor_label: str
    actor_authority_id: int | None
    via: str
    action: str
    object_type: str | None
    object_id: str | None
    outcome: str
    reason: str | None
    ip: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


@atomic
def _read_events(
    session: Session, *, actor: Principal, limit: int, before_seq: int | None, action: str | None
) -> list[AuditEvent]:
    events = service.list_events(
        session, actor=actor, limit=limit, before_seq=before_seq, action=action
    )
    service.record(
        session,
        actor=actor,
        action="audit.viewed",
        object_type="audit_event",
        details={"count": len(events), "before_seq": before_seq, "action": action},
    )
    return events


@atomic
def _record_denied(session: Session, *, actor: Principal) -> None:
    service.record(
        session,
        actor=actor,
        action="audit.viewed",
        object_type="audit_event",
        outcome="denied",
        reason=f"missing permission {Permission.AUDIT_READ.value}",
    )


@router.get("/audit/events", response_model=list[AuditEventOut])
def list_audit_events(
    limit: int = Query(100, ge=1, le=500),
    before_seq: int | None = Query(None, ge=1),
    action: str | None = Query(None, max_length=80),
    principal: Principal = Depends(api_principal),
    session: Session = Depends(get_session),
) -> list[AuditEventOut]:
    try:
        events = _read_events(
            session, actor=principal, limit=limit, before_seq=before_seq, action=action
        )
    except PermissionDenied:
        _record_denied(session, actor=principal)
        raise
    return [AuditEventOut.model_validate(e) for e in events]
