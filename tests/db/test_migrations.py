"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

import crossborder.models  # noqa: F401 - registers every table
from crossborder.db.base import Base
from crossborder.db.migrate import current_revision, head_revision


def test_database_is_at_the_latest_migration(engine: Engine, database_url: str) -> None:
    assert current_revision(engine) == head_revision(database_url)


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff: list[Any] = compare_metadata(context, Base.metadata)
    assert diff == []


def test_every_model_table_exists(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_the_audit_head_row_is_seeded(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id FROM audit_head").fetchall()
    assert [r[0] for r in rows] == [1]
