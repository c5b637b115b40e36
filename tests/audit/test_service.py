"""The audit chain in a real database: append in the caller's transaction, catch tampering."""

from __future__ import annotations

from itertools import pairwise

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from crossborder.audit import service
from crossborder.audit.models import AuditEvent
from crossborder.auth.permissions import Principal, Role
from crossborder.core.errors import PermissionDenied

ACTOR = Principal(user_id=1, username="linh", authority_id=1, roles=frozenset({Role.OFFICER}))
AUDITOR = Principal(user_id=2, username="an", authority_id=1, roles=frozenset({Role.AUDITOR}))


def _fill(db: Session, n: int = 5) -> None:
    for i in range(n):
        service.record(
            db, actor=ACTOR, action="test.event", object_type="thing", object_id=i, details={"i": i}
        )
    db.commit()


def _drop_guards(db: Session, is_postgres: bool) -> None:
    """Simulate an attacker with database access who removes the append-only triggers."""
    if is_postgres:
        db.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
    else:
        db.execute(text("DROP TRIGGER audit_events_no_update"))
        db.execute(text("DROP TRIGGER audit_events_no_delete"))


def test_events_chain_and_verify(db: Session) -> None:
    _fill(db)
    result = service.verify_chain(db)
    assert result.ok
    events = list(db.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert [e.seq for e in events][-5:] == list(range(events[-1].seq - 4, events[-1].seq + 1))
    for before, after in pairwise(events):
        assert after.prev_hash == before.hash


def test_event_rolls_back_with_the_change(db: Session) -> None:
    _fill(db, 1)
    count = db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    service.record(db, actor=ACTOR, action="test.doomed")
    db.rollback()
    assert db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) == count
    assert service.verify_chain(db).ok


def test_database_refuses_update_and_delete(db: Session) -> None:
    _fill(db, 2)
    with pytest.raises(DBAPIError), db.begin_nested():
        db.execute(text("UPDATE audit_events SET action = 'x'"))
    with pytest.raises(DBAPIError), db.begin_nested():
        db.execute(text("DELETE FROM audit_events"))
    assert service.verify_chain(db).ok


def test_edit_is_caught(db: Session, is_postgres: bool) -> None:
    _fill(db)
    _drop_guards(db, is_postgres)
    target = db.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(3)).all()[-1]
    db.execute(
        text("UPDATE audit_events SET actor_label = 'someone else' WHERE seq = :s"), {"s": target}
    )
    db.expire_all()
    result = service.verify_chain(db)
    assert not result.ok
    assert result.broken_at == target


def test_delete_is_caught(db: Session, is_postgres: bool) -> None:
    _fill(db)
    _drop_guards(db, is_postgres)
    last = db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    assert last is not None
    db.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": last - 2})
    db.expire_all()
    result = service.verify_chain(db)
    assert not result.ok
    assert result.broken_at == last - 2


def test_delete_of_the_tail_is_caught(db: Session, is_postgres: bool) -> None:
    _fill(db)
    _drop_guards(db, is_postgres)
    last = db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    db.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": last})
    db.expire_all()
    result = service.verify_chain(db)
    assert not result.ok
    assert "removed" in (result.problem or "")


def test_reorder_is_caught(db: Session, is_postgres: bool) -> None:
    _fill(db)
    _drop_guards(db, is_postgres)
    last = db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    assert last is not None
    a, b = last - 3, last - 2
    db.execute(text("UPDATE audit_events SET seq = 999999999 WHERE seq = :a"), {"a": a})
    db.execute(text("UPDATE audit_events SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
    db.execute(text("UPDATE audit_events SET seq = :b WHERE seq = 999999999"), {"b": b})
    db.expire_all()
    result = service.verify_chain(db)
    assert not result.ok
    assert result.broken_at == a


def test_only_auditors_list_events(db: Session) -> None:
    _fill(db, 2)
    with pytest.raises(PermissionDenied):
        service.list_events(db, actor=ACTOR)
    events = service.list_events(db, actor=AUDITOR, limit=2)
    assert len(events) == 2
    assert events[0].seq > events[1].seq
