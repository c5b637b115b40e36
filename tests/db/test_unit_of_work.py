"""One transaction per service call: a failure leaves nothing half-written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crossborder.audit.models import AuditEvent, AuditHead
from crossborder.auth.permissions import SYSTEM
from crossborder.core.errors import InvalidInput
from crossborder.db.session import unit_of_work
from crossborder.directory import schemas
from crossborder.directory import service as directory
from crossborder.directory.models import Authority, State


def _counts(db: Session) -> tuple[int, int, int, int]:
    head = db.get(AuditHead, 1)
    assert head is not None
    return (
        db.scalar(select(func.count()).select_from(State)) or 0,
        db.scalar(select(func.count()).select_from(Authority)) or 0,
        db.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        head.seq,
    )


def _three_steps_the_last_of_which_fails(db: Session) -> None:
    with unit_of_work(db):
        directory.create_state(db, schemas.StateCreate(alpha2="KH"), actor=SYSTEM)
        directory.create_authority(
            db,
            schemas.AuthorityCreate(
                state="KH",
                name="Cambodian National Police",
                roles=["police"],
                time_zone="Asia/Phnom_Penh",
            ),
            actor=SYSTEM,
        )
        # The third step breaks a rule only the database knows: Fiji is a valid ISO code,
        # but no such state is in this directory.
        directory.create_authority(
            db,
            schemas.AuthorityCreate(
                state="FJ", name="Fiji Police Force", roles=["police"], time_zone="Pacific/Fiji"
            ),
            actor=SYSTEM,
        )


def test_a_failure_late_in_a_unit_of_work_undoes_everything(db: Session) -> None:
    before = _counts(db)
    with pytest.raises(InvalidInput):
        _three_steps_the_last_of_which_fails(db)
    db.expire_all()
    assert _counts(db) == before


def test_nested_service_calls_commit_once_with_their_audit_events(db: Session) -> None:
    states, authorities, events, head = _counts(db)
    with unit_of_work(db):
        directory.create_state(db, schemas.StateCreate(alpha2="KH"), actor=SYSTEM)
        directory.create_authority(
            db,
            schemas.AuthorityCreate(
                state="KH",
                name="Cambodian National Police",
                roles=["police"],
                time_zone="Asia/Phnom_Penh",
            ),
            actor=SYSTEM,
        )
    db.expire_all()
    assert _counts(db) == (states + 1, authorities + 1, events + 2, head + 2)
