"""Planner statistics without autovacuum: ``db.maintenance.analyze_stale`` on both databases."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from crossborder.auth import service as auth_service
from crossborder.auth.models import LoginAttempt, User
from crossborder.core.clock import utc_now
from crossborder.db import maintenance
from crossborder.directory.models import Authority
from crossborder.intel import service as intel
from crossborder.intel.models import IntelCollection, IntelObject
from tests.intel.factories import indicator

TABLE = "login_attempts"
NEEDS_POSTGRES = (
    "ANALYZE, pg_stat_user_tables and lock_timeout are PostgreSQL's "
    "(on SQLite analyze_stale does nothing)"
)


@pytest.fixture
def pg(is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip(NEEDS_POSTGRES)


def _analyze_count(session: Session, table: str) -> int:
    session.execute(text("SELECT pg_stat_clear_snapshot()"))
    count = session.execute(
        text(
            "SELECT analyze_count FROM pg_stat_user_tables"
            " WHERE schemaname = current_schema() AND relname = :t"
        ),
        {"t": table},
    ).scalar_one()
    return int(count)


def _has_statistics(session: Session, table: str) -> bool:
    return bool(
        session.execute(
            text(
                "SELECT count(*) FROM pg_stats"
                " WHERE schemaname = current_schema() AND tablename = :t"
            ),
            {"t": table},
        ).scalar_one()
    )


def _threshold(session: Session, table: str) -> int:
    """Rows a change must exceed for ``table`` to be analysed (by reltuples as they are now)."""
    reltuples = session.execute(
        text(
            "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relname = :t"
        ),
        {"t": table},
    ).scalar_one()
    return int(
        maintenance.ANALYZE_BASE_THRESHOLD
        + maintenance.ANALYZE_SCALE_FACTOR * max(float(reltuples), 0.0)
    )


def _add_attempts(session: Session, count: int) -> None:
    session.execute(
        insert(LoginAttempt),
        [{"username": f"u{n}", "success": False, "at": utc_now()} for n in range(count)],
    )


def test_sqlite_needs_no_statistics(db: Session, is_postgres: bool) -> None:
    if is_postgres:
        pytest.skip("what SQLite does")
    assert maintenance.analyze_stale(db) == []
    assert maintenance.analyze_stale(db, [TABLE], pending={TABLE: 10**6}) == []


@pytest.mark.parametrize(
    ("types", "index"),
    [((), "ix_intel_objects_added"), (("indicator",), "ix_intel_objects_type")],
)
def test_sqlite_pages_read_an_index_in_order_without_statistics(
    db: Session, is_postgres: bool, types: tuple[str, ...], index: str
) -> None:
    """Why analyze_stale may skip SQLite: the TAXII page query needs no statistics there."""
    if is_postgres:
        pytest.skip("what SQLite's planner does")
    filters = intel._filters(None, (), types, "last", ())
    stmt = (
        intel._base(IntelCollection(id=1), filters)
        .order_by(IntelObject.date_added, IntelObject.id)
        .limit(101)
    )
    sql = str(stmt.compile(bind=db.get_bind(), compile_kwargs={"literal_binds": True}))
    plan = " / ".join(row[3] for row in db.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
    assert f"SEARCH intel_objects USING INDEX {index} (collection_id=?" in plan
    assert "TEMP B-TREE" not in plan
    assert "SCAN intel_objects" not in plan


@pytest.mark.usefixtures("pg")
def test_a_table_that_changed_enough_is_analysed(db: Session) -> None:
    rows = _threshold(db, TABLE) + 1
    _add_attempts(db, rows)
    before = _analyze_count(db, TABLE)

    assert maintenance.analyze_stale(db, [TABLE], pending={TABLE: rows}) == [TABLE]

    assert _analyze_count(db, TABLE) == before + 1
    assert _has_statistics(db, TABLE)


@pytest.mark.usefixtures("pg")
def test_a_table_below_the_threshold_is_left_alone(db: Session) -> None:
    assert maintenance.analyze_stale(db, [TABLE], pending={TABLE: 10**6}) == [TABLE]
    _add_attempts(db, 10)  # fewer than the base threshold, whatever the table's size
    before = _analyze_count(db, TABLE)

    assert maintenance.analyze_stale(db, [TABLE], pending={TABLE: 10}) == []
    assert _analyze_count(db, TABLE) == before


@pytest.mark.usefixtures("pg")
def test_every_crossborder_table_is_considered_by_default(db: Session) -> None:
    assert TABLE in maintenance.analyze_stale(db, pending={TABLE: 10**6})


@pytest.mark.usefixtures("pg")
def test_a_locked_table_is_skipped_not_waited_for(db: Session, engine: Engine) -> None:
    db.execute(text("SET LOCAL lock_timeout = '7s'"))
    other = engine.connect()
    try:
        other.begin()
        other.execute(text(f"LOCK TABLE {TABLE} IN SHARE UPDATE EXCLUSIVE MODE"))
        before = _analyze_count(db, TABLE)
        started = time.monotonic()

        analysed = maintenance.analyze_stale(db, [TABLE], pending={TABLE: 10**6})

        assert time.monotonic() - started < 1.0
        assert analysed == []
    finally:
        other.rollback()
        other.close()
    assert _analyze_count(db, TABLE) == before
    # the transaction goes on, with its own lock_timeout back
    assert db.execute(text("SHOW lock_timeout")).scalar_one() == "7s"
    assert maintenance.analyze_stale(db, [TABLE], pending={TABLE: 10**6}) == [TABLE]


@pytest.mark.usefixtures("pg")
def test_a_large_intel_write_leaves_statistics(
    db: Session, make_authority: Callable[..., Authority], make_user: Callable[..., User]
) -> None:
    vn = make_authority("VN", name="A05", short_name="VN-A05")
    admin = auth_service.principal_for(make_user(roles=("administrator",), authority_id=vn.id))
    analyst = auth_service.principal_for(make_user(roles=("analyst",), authority_id=vn.id))
    collection: IntelCollection = intel.create_collection(
        db, admin, title="Statistics", alias=f"stats-{uuid.uuid4().hex[:8]}"
    )
    table = IntelObject.__tablename__
    count = max(intel.ANALYZE_AFTER, _threshold(db, table) + 1)
    objects = [indicator(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}") for n in range(count)]
    before = _analyze_count(db, table)

    status = intel.add_objects(db, analyst, collection, objects)

    assert status.success_count == count
    assert _analyze_count(db, table) == before + 1
    assert _has_statistics(db, table)
