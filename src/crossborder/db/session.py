"""Engine and session factories, and the ``atomic`` unit of work used by every service."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

P = ParamSpec("P")
R = TypeVar("R")

_DEPTH_KEY = "crossborder.atomic_depth"
DATA_DIR_KEY = "crossborder.data_dir"


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the pysqlite driver, open transactions, so that SAVEPOINTs
            # and rollbacks behave as on PostgreSQL (SQLAlchemy's documented recipe).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine, *, data_dir: Path | None = None) -> sessionmaker[Session]:
    """Sessions for one node. ``data_dir`` rides along in ``session.info`` for the code that
    needs the node's files but is reached only with a session (federation message handlers)."""
    info = {DATA_DIR_KEY: data_dir} if data_dir is not None else {}
    return sessionmaker(bind=engine, expire_on_commit=False, info=info)


def data_dir_of(session: Session) -> Path:
    found = session.info.get(DATA_DIR_KEY)
    if not isinstance(found, Path):
        raise RuntimeError("this session was not made for a node (no data directory)")
    return found


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """One transaction: commit when the outermost block ends, roll back on any error.

    Nested blocks (a service calling another service) join the outer transaction, so a
    change, its audit event and its outbox messages always commit together or not at all.
    """
    depth = session.info.get(_DEPTH_KEY, 0)
    session.info[_DEPTH_KEY] = depth + 1
    try:
        yield session
        if depth == 0:
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
        raise
    finally:
        session.info[_DEPTH_KEY] = depth


def atomic(fn: Callable[Concatenate[Session, P], R]) -> Callable[Concatenate[Session, P], R]:
    """Decorate a service function whose first argument is the session."""

    @functools.wraps(fn)
    def wrapper(session: Session, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with unit_of_work(session):
            return fn(session, *args, **kwargs)

    return wrapper
