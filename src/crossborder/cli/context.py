"""What every CLI command needs: settings, a database session, an initialised node."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from crossborder.auth import service as auth_service
from crossborder.auth.permissions import Principal
from crossborder.core.errors import DomainError, NotFound
from crossborder.db.migrate import is_up_to_date, upgrade
from crossborder.db.session import make_engine, make_session_factory
from crossborder.federation import identity
from crossborder.settings import Settings, ensure_data_dir, load_settings


def settings() -> Settings:
    return load_settings()


def ensure_dir(settings: Settings) -> None:
    ensure_data_dir(settings)


def safe_url(settings: Settings) -> str:
    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def init_node(settings: Settings) -> None:
    ensure_data_dir(settings)
    identity.ensure_identity(settings.data_dir)
    upgrade(settings.resolved_database_url)


def require_migrated(settings: Settings) -> None:
    engine = make_engine(settings.resolved_database_url)
    try:
        if not is_up_to_date(engine):
            raise DomainError(
                "the database is not at the latest migration: run "
                "`crossborder db upgrade` (or `crossborder init`)"
            )
    finally:
        engine.dispose()


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    engine = make_engine(settings.resolved_database_url)
    session = make_session_factory(engine, data_dir=settings.data_dir)()
    try:
        yield session
    finally:
        session.close()
        engine.dispose()


def act_as(session: Session, username: str) -> Principal:
    """The principal of an active user, for commands run ``--as`` that user."""
    user = auth_service.find_user(session, username)
    if user is None or not user.is_active:
        raise NotFound(f"no active user '{username}'")
    return auth_service.principal_for(user, via="cli")
