"""Shared fixtures: one real database per test run, one rolled-back transaction per test.

The database is SQLite by default. Set ``CROSSBORDER_TEST_DATABASE_URL`` to a PostgreSQL URL
to run the same suite there: a fresh database is created for the run and dropped after it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from crossborder.db.session import make_engine
from crossborder.settings import Settings

pytest_plugins = ["tests.fixtures.factories", "tests.fixtures.web"]


def _backend_url(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str | None]:
    """Return (url for the run, name of a temporary PostgreSQL database to drop or None)."""
    configured = os.environ.get("CROSSBORDER_TEST_DATABASE_URL", "")
    if not configured or configured.startswith("sqlite"):
        path = tmp_path_factory.mktemp("db") / "test.sqlite3"
        return f"sqlite:///{path}", None
    base = make_url(configured)
    name = f"cb_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False), name


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, temp_db = _backend_url(tmp_path_factory)
    if os.environ.get("CROSSBORDER_TEST_SCHEMA") == "create_all":
        # Shortcut while a model change has no migration yet; CI always migrates.
        import crossborder.models  # noqa: F401
        from crossborder.db.base import Base

        eng = make_engine(url)
        Base.metadata.create_all(eng)
        eng.dispose()
    else:
        from crossborder.db.migrate import upgrade

        upgrade(url)
    yield url
    if temp_db:
        _drop_database(temp_db)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A real session whose work is rolled back after the test (commits become savepoints)."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        if outer.is_active:
            outer.rollback()
        connection.close()


@pytest.fixture
def fresh_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database of the run's backend (for CLI and server tests that migrate it)."""
    url, temp_db = _backend_url(tmp_path_factory)
    yield url
    if temp_db:
        _drop_database(temp_db)


def _drop_database(name: str) -> None:
    base = make_url(os.environ["CROSSBORDER_TEST_DATABASE_URL"])
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        environment="test",  # type: ignore[arg-type]
        data_dir=tmp_path,
        database_url=database_url,
        secret_key="test-secret-key-" + "x" * 40,
        cookie_secure=False,
    )
