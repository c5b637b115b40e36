"""Append events to the audit chain (inside the caller's transaction) and verify it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.audit import chain
from crossborder.audit.models import AuditEvent, AuditHead
from crossborder.auth.permissions import Permission, Principal, require
from crossborder.core.clock import utc_now

HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_user_id",
    "actor_label",
    "actor_authority_id",
    "via",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "reason",
    "ip",
    "details",
    "prev_hash",
)


def _lock_head(session: Session) -> AuditHead:
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=chain.GENESIS)
        session.add(head)
        session.flush()
    return head


def record(
    session: Session,
    *,
    actor: Principal | None,
    action: str,
    object_type: str | None = None,
    object_id: object | None = None,
    details: dict[str, Any] | None = None,
    outcome: str = "ok",
    reason: str | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Append one event in the current transaction (it commits or rolls back with the change).

    ``details`` must hold identifiers and codes, never the protected content itself.
    """
    head = _lock_head(session)
    fields: dict[str, Any] = {
        "seq": head.seq + 1,
        "occurred_at": utc_now(),
        "actor_user_id": actor.user_id if actor and actor.via != "system" else None,
        "actor_label": actor.label if actor else "anonymous",
        "actor_authority_id": actor.authority_id if actor and actor.via != "system" else None,
        "via": actor.via if actor else "anonymous",
        "action": action,
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "outcome": outcome,
        "reason": reason,
        "ip": ip if ip is not None else (actor.ip if actor else None),
        "details": details or {},
        "prev_hash": head.hash,
    }
    fields["hash"] = chain.compute_hash(head.hash, fields)
    event = AuditEvent(**fields)
    session.add(event)
    head.seq = fields["seq"]
    head.hash = fields["hash"]
    session.flush()
    return event


def _as_record(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in (*HASHED_FIELDS, "hash")}


def verify_chain(session: Session, *, batch: int = 1000) -> chain.VerifyResult:
    """Walk the whole chain in order, streaming (a server-side cursor on PostgreSQL)."""
    head = session.get(AuditHead, 1)
    stmt = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=batch)
    result = session.scalars(stmt)
    try:
        return chain.verify(
            (_as_record(event) for event in result),
            head_seq=head.seq if head else None,
            head_hash=head.hash if head else None,
        )
    finally:
        result.close()  # verify may stop at the first break: release the cursor


def list_events(
    session: Session,
    *,
    actor: Principal,
    limit: int = 100,
    before_seq: int | None = None,
    action: str | None = None,
) -> list[AuditEvent]:
    require(actor, Permission.AUDIT_READ)
    stmt = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(min(max(limit, 1), 500))
    if before_seq is not None:
        stmt = stmt.where(AuditEvent.seq < before_seq)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return list(session.scalars(stmt))
