"""Identifier sets and bulk CSV import: all-or-nothing, clear errors, kept to one authority."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crossborder.auth.permissions import Principal
from crossborder.core.errors import InvalidInput, NotFound, PermissionDenied
from crossborder.directory.models import Authority
from crossborder.selectors import sets
from crossborder.selectors.models import IdentOccurrence


@pytest.fixture
def officer(
    make_authority: Callable[..., Authority], make_principal: Callable[..., Principal]
) -> Principal:
    authority = make_authority("VN", name="A05")
    return make_principal("officer", authority_id=authority.id)


@pytest.fixture
def stranger(
    make_authority: Callable[..., Authority], make_principal: Callable[..., Principal]
) -> Principal:
    authority = make_authority("AU", name="AFP")
    return make_principal("officer", authority_id=authority.id)


def count(db: Session, public_id: str) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(IdentOccurrence)
            .where(IdentOccurrence.record_id == public_id)
        )
        or 0
    )


GOOD = (
    "type,value,port,seen_from,seen_until,time_zone,chain\n"
    "ip,203.0.113.9,51000,2026-03-01T10:00:00+07:00,2026-03-01T10:05:00+07:00,Asia/Ho_Chi_Minh,\n"
    "phone,0912 345 678,,,,,\n"
    "crypto,0x52908400098527886e0f7030069857d2e4169ee7,,,,,bsc\n"
    "\n"
    "email,Scam@Example.COM,,,,,\n"
)


def test_import_stores_every_row_with_its_details(db: Session, officer: Principal) -> None:
    kept = sets.create_set(db, officer, name="Seized phone")
    ticks: list[int] = []
    report = sets.import_csv(
        db, officer, kept, sets.read_text(GOOD.encode()), default_region="VN", progress=ticks.append
    )
    assert (report.rows, report.stored, report.invalid) == (4, 4, 0)
    assert sum(ticks) == 2 * report.rows  # checked, then stored
    occ = db.scalars(
        select(IdentOccurrence).where(
            IdentOccurrence.record_id == kept.public_id, IdentOccurrence.port.is_not(None)
        )
    ).one()
    assert occ.port == 51000
    assert occ.seen_from is not None
    assert occ.seen_from.hour == 3
    assert occ.location == "line 2"
    [summary] = sets.list_sets(db, officer)
    assert summary.identifiers == 4


def test_one_bad_row_imports_nothing_and_names_the_line(db: Session, officer: Principal) -> None:
    kept = sets.create_set(db, officer, name="Seized phone")
    bad = GOOD + "imei,490154203237519,,,,,\n"
    with pytest.raises(InvalidInput) as caught:
        sets.import_csv(db, officer, kept, sets.read_text(bad.encode()), default_region="VN")
    assert "line 7" in caught.value.detail
    assert "nothing was imported" in caught.value.detail
    assert count(db, kept.public_id) == 0
    report = sets.import_csv(
        db, officer, kept, sets.read_text(bad.encode()), default_region="VN", skip_invalid=True
    )
    assert (report.stored, report.invalid) == (4, 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "first line"),
        (b"value\n1.2.3.4\n", "'type' and 'value'"),
        (b"type,value,colour\nip,1.2.3.4,red\n", "unknown column"),
        (b"type,value\nip,1.2.3.4,extra\n", "more fields"),
        (b"type,value,port\nip,1.2.3.4,http\n", "port is not a number"),
        (b"type,value,seen_from\nip,1.2.3.4,2026-03-01T10:00\n", "UTC offset"),
        (b"type,value\nip,\xff\xfe1.2.3.4\n", "UTF-8"),
    ],
)
def test_malformed_files_are_refused_clearly(
    db: Session, officer: Principal, content: bytes, message: str
) -> None:
    kept = sets.create_set(db, officer, name="x")
    with pytest.raises(InvalidInput) as caught:
        sets.import_csv(db, officer, kept, sets.read_text(content))
    assert message in caught.value.detail
    assert count(db, kept.public_id) == 0


def test_a_set_is_kept_to_its_authority(
    db: Session, officer: Principal, stranger: Principal
) -> None:
    kept = sets.create_set(db, officer, name="Seized phone")
    with pytest.raises(NotFound):
        sets.get_set(db, stranger, kept.public_id)
    with pytest.raises(NotFound):
        sets.import_csv(db, stranger, kept, sets.read_text(GOOD.encode()))
    assert sets.list_sets(db, stranger) == []
    assert sets.SetScopes().visible(db, stranger, [kept.public_id]) == set()
    assert sets.SetScopes().visible(db, officer, [kept.public_id]) == {kept.public_id}


def test_only_casework_roles_keep_sets(
    db: Session,
    make_authority: Callable[..., Authority],
    make_principal: Callable[..., Principal],
) -> None:
    authority = make_authority("VN", name="A05")
    admin = make_principal("administrator", authority_id=authority.id)
    with pytest.raises(PermissionDenied):
        sets.create_set(db, admin, name="x")


def test_names_are_checked(db: Session, officer: Principal) -> None:
    with pytest.raises(InvalidInput):
        sets.create_set(db, officer, name="   ")
    with pytest.raises(InvalidInput):
        sets.create_set(db, officer, name="x" * 201)


def test_the_report_counts_values_other_records_already_hold(
    db: Session, officer: Principal
) -> None:
    first = sets.create_set(db, officer, name="first")
    sets.import_csv(db, officer, first, sets.read_text(b"type,value\nip,103.27.12.7\n"))
    second = sets.create_set(db, officer, name="second")
    body = b"type,value\nip,103.27.12.7\nip,103.27.12.8\nip,103.27.12.8\n"
    report = sets.import_csv(db, officer, second, sets.read_text(body))
    assert (report.stored, report.known_elsewhere) == (3, 1)
    again = sets.import_csv(db, officer, second, sets.read_text(body))
    assert again.known_elsewhere == 1  # its own earlier rows do not count
