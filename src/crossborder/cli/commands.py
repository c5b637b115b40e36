"""What CLI commands do, as plain functions (tested without a terminal)."""

from __future__ import annotations

from sqlalchemy import func, select

from crossborder.audit import service as audit_service
from crossborder.audit.chain import VerifyResult
from crossborder.auth import service as auth_service
from crossborder.auth.permissions import SYSTEM
from crossborder.cli.context import act_as, session_scope
from crossborder.core.errors import InvalidInput, NotFound
from crossborder.directory.models import Authority
from crossborder.settings import Settings


def _authority_id(session: object, ref: str) -> int:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    if ref.isdigit():
        found = session.get(Authority, int(ref))
    else:
        found = session.scalars(
            select(Authority).where(func.lower(Authority.short_name) == ref.lower())
        ).first()
    if found is None:
        raise NotFound(f"no authority with id or acronym '{ref}'")
    return found.id


def add_user(
    settings: Settings,
    *,
    username: str,
    authority: str,
    roles: list[str],
    password: str,
    display_name: str | None,
    email: str | None,
) -> int:
    if not roles:
        raise InvalidInput("give at least one --role", field="role")
    with session_scope(settings) as session:
        user = auth_service.create_user(
            session,
            actor=SYSTEM,
            username=username,
            password=password,
            authority_id=_authority_id(session, authority),
            roles=roles,
            display_name=display_name or username,
            email=email,
            bootstrap=True,
        )
        return user.id


def create_token(
    settings: Settings, *, username: str, name: str, scopes: list[str], days: int
) -> str:
    with session_scope(settings) as session:
        actor = act_as(session, username)
        _token, raw = auth_service.create_token(
            session, actor=actor, name=name, scopes=scopes, expires_in_days=days
        )
        return raw


def verify_audit(settings: Settings) -> VerifyResult:
    with session_scope(settings) as session:
        return audit_service.verify_chain(session)
