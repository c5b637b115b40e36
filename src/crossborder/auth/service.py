"""Every authentication decision and every change to users, sessions and tokens.

Rules kept here and nowhere else:

- One message for every failed login ("invalid username or password"), and an unknown user name
  costs the same argon2 verification as a wrong password: no user enumeration.
- Throttling: at most ``login_max_failures`` failures per user name (reset by a success) and
  ``login_ip_max_failures`` per address within ``login_window_minutes``. While throttled, even
  the right password is refused. Throttled attempts are audited but not counted, so a lockout
  ends at a predictable time.
- A failed attempt must leave a trace even though the caller gets an exception: the attempt
  and its audit event are committed first (``_password_attempt``), the exception raised after.
- A browser session needs its second factor when the user has TOTP enabled; a user who must
  have TOTP (``require_totp``) but has none is sent to enrol first — except on a demo node.
- TOTP codes are accepted once: the matched 30-second step must be later than the last one.
- Sessions and API tokens are random values of which only SHA-256 digests are stored; a
  session is replaced by a fresh one on login and on passing the second factor.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, delete, func, select
from sqlalchemy.orm import Session

from crossborder.audit import service as audit
from crossborder.auth import passwords, tokens, totp
from crossborder.auth.models import (
    USER_AGENT_MAX,
    USERNAME_MAX,
    ApiToken,
    LoginAttempt,
    User,
    UserRole,
    WebSession,
)
from crossborder.auth.permissions import (
    TOKEN_SCOPES,
    Permission,
    Principal,
    Role,
    require,
)
from crossborder.core.clock import utc_now
from crossborder.core.errors import (
    AuthenticationRequired,
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TooManyRequests,
)
from crossborder.db.session import atomic
from crossborder.settings import Settings

log = logging.getLogger("crossborder.auth")

INVALID_LOGIN = "invalid username or password"
INVALID_CODE = "invalid or already used code"
INVALID_TOKEN = "invalid, expired or revoked API token"  # noqa: S105 - a message, not a secret
TOKEN_MAX_DAYS = 365
TOKEN_NAME_MAX = 100
_TOUCH_EVERY = timedelta(seconds=60)
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")


class InvalidCredentials(AuthenticationRequired):
    code = "invalid-credentials"
    title = "Invalid credentials"


class SessionState(StrEnum):
    ACTIVE = "active"
    NEEDS_TOTP = "needs-totp"
    NEEDS_ENROLMENT = "needs-enrolment"


# --------------------------------------------------------------------------- principals


def principal_for(
    user: User, *, via: str = "session", ip: str | None = None, token: ApiToken | None = None
) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        authority_id=user.authority_id,
        roles=user.roles,
        via="token" if token is not None else via,
        token_id=token.id if token is not None else None,
        scopes=frozenset(token.scopes) if token is not None else None,
        ip=ip,
    )


def normalise_username(username: str) -> str:
    return username.strip().lower()


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def find_user(session: Session, username: str) -> User | None:
    name = normalise_username(username)
    if len(name) > USERNAME_MAX:
        return None
    return session.scalars(select(User).where(User.username == name)).one_or_none()


def _require_manage(actor: Principal, user: User) -> None:
    """Administrators manage the users of their own authority; SYSTEM manages all."""
    require(actor, Permission.USERS_MANAGE)
    if actor.via != "system" and actor.authority_id != user.authority_id:
        raise PermissionDenied("users of another authority are managed by that authority")


# --------------------------------------------------------------------------- users


def _check_roles(roles: Iterable[Role | str]) -> list[Role]:
    checked: set[Role] = set()
    for role in roles:
        try:
            checked.add(Role(role))
        except ValueError:
            raise InvalidInput(f"unknown role '{role}'", field="roles") from None
    if not checked:
        raise InvalidInput("a user needs at least one role", field="roles")
    return sorted(checked)


@atomic
def create_user(
    session: Session,
    *,
    actor: Principal,
    username: str,
    password: str,
    authority_id: int,
    roles: Iterable[Role | str],
    display_name: str,
    email: str | None = None,
    require_totp: bool = True,
    bootstrap: bool = False,
) -> User:
    """Create a user. ``bootstrap=True`` (CLI, demo) is reserved to the SYSTEM principal."""
    if bootstrap:
        if actor.via != "system":
            raise PermissionDenied("only the node itself may bootstrap users")
    else:
        require(actor, Permission.USERS_MANAGE)
        if actor.authority_id != authority_id:
            raise PermissionDenied("users of another authority are managed by that authority")
    name = normalise_username(username)
    if not _USERNAME.fullmatch(name):
        raise InvalidInput(
            "a user name has 2 to 64 characters: letters, digits and . _ @ -", field="username"
        )
    passwords.check_policy(password, username=name)
    checked_roles = _check_roles(roles)
    if find_user(session, name) is not None:
        raise Conflict(f"the user name '{name}' is taken")
    now = utc_now()
    user = User(
        username=name,
        display_name=display_name.strip() or name,
        email=(email or "").strip() or None,
        authority_id=authority_id,
        password_hash=passwords.hash_password(password),
        totp_enabled=False,
        require_totp=require_totp,
        is_active=True,
        created_at=now,
        password_changed_at=now,
        role_rows=[UserRole(role=role.value) for role in checked_roles],
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.created",
        object_type="user",
        object_id=user.id,
        details={
            "username": name,
            "authority_id": authority_id,
            "roles": [r.value for r in checked_roles],
            "require_totp": require_totp,
            "bootstrap": bootstrap,
        },
    )
    return user


@atomic
def change_password(
    session: Session,
    *,
    actor: Principal,
    user_id: int,
    new_password: str,
    current_password: str | None = None,
) -> None:
    """Self-service (needs the current password) or by an administrator; ends all sessions."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    if actor.user_id == user.id and actor.via == "session":
        if current_password is None or not passwords.verify_password(
            user.password_hash, current_password
        ):
            raise InvalidInput("the current password is wrong", field="current_password")
    else:
        _require_manage(actor, user)
    passwords.check_policy(new_password, username=user.username)
    user.password_hash = passwords.hash_password(new_password)
    user.password_changed_at = utc_now()
    ended = _delete_user_sessions(session, user.id)
    audit.record(
        session,
        actor=actor,
        action="auth.password.changed",
        object_type="user",
        object_id=user.id,
        details={"sessions_ended": ended},
    )


@atomic
def set_user_active(session: Session, *, actor: Principal, user_id: int, active: bool) -> None:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    _require_manage(actor, user)
    user.is_active = active
    ended = 0 if active else _delete_user_sessions(session, user.id)
    audit.record(
        session,
        actor=actor,
        action="user.activated" if active else "user.deactivated",
        object_type="user",
        object_id=user.id,
        details={"sessions_ended": ended},
    )


# --------------------------------------------------------------------------- throttling


def _retry_after(
    session: Session, *, settings: Settings, username: str, ip: str | None, now: datetime
) -> int | None:
    """Seconds until another attempt is allowed, or None when not throttled."""
    window = timedelta(minutes=settings.login_window_minutes)
    window_start = now - window
    last_success = session.scalar(
        select(func.max(LoginAttempt.at)).where(
            LoginAttempt.username == username,
            LoginAttempt.success.is_(True),
            LoginAttempt.at >= window_start,
        )
    )
    since = max(window_start, last_success) if last_success else window_start
    waits: list[float] = []
    user_failures = _recent_failures(
        session, LoginAttempt.username == username, since, settings.login_max_failures
    )
    if len(user_failures) >= settings.login_max_failures:
        waits.append((user_failures[-1] + window - now).total_seconds())
    if ip:
        ip_failures = _recent_failures(
            session, LoginAttempt.ip == ip, window_start, settings.login_ip_max_failures
        )
        if len(ip_failures) >= settings.login_ip_max_failures:
            waits.append((ip_failures[-1] + window - now).total_seconds())
    if not waits:
        return None
    return max(1, int(max(waits)) + 1)


def _recent_failures(
    session: Session, condition: object, since: datetime, limit: int
) -> list[datetime]:
    """The ``limit`` most recent failures after ``since``, newest first."""
    stmt = (
        select(LoginAttempt.at)
        .where(condition, LoginAttempt.success.is_(False), LoginAttempt.at > since)  # type: ignore[arg-type]
        .order_by(LoginAttempt.at.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def _throttled(retry_after: int) -> TooManyRequests:
    minutes = max(1, (retry_after + 59) // 60)
    return TooManyRequests(
        f"too many failed attempts: try again in {minutes} minute(s)",
        extra={"retry_after": retry_after},
    )


def _note_attempt(
    session: Session, *, username: str, ip: str | None, success: bool, now: datetime
) -> None:
    session.add(LoginAttempt(username=username[:USERNAME_MAX], ip=ip, at=now, success=success))


# --------------------------------------------------------------------------- password login


@dataclass
class _Outcome:
    user: User | None = None
    error: DomainError | None = None


def authenticate(
    session: Session,
    *,
    settings: Settings,
    username: str,
    password: str,
    ip: str | None,
    now: datetime | None = None,
) -> User:
    """Check a user name and password; raise ``InvalidCredentials`` or ``TooManyRequests``."""
    outcome = _password_attempt(
        session,
        settings=settings,
        username=username,
        password=password,
        ip=ip,
        now=now or utc_now(),
    )
    if outcome.error is not None:
        raise outcome.error
    assert outcome.user is not None
    return outcome.user


@atomic
def _password_attempt(
    session: Session,
    *,
    settings: Settings,
    username: str,
    password: str,
    ip: str | None,
    now: datetime,
) -> _Outcome:
    name = normalise_username(username)[:USERNAME_MAX]
    retry_after = _retry_after(session, settings=settings, username=name, ip=ip, now=now)
    user = find_user(session, name)
    if retry_after is not None:
        _audit_login(session, user, ip, outcome="throttled", reason="too many failures")
        return _Outcome(error=_throttled(retry_after))
    if user is None or len(password) > passwords.MAX_LENGTH:
        passwords.burn_time(password[: passwords.MAX_LENGTH])
        ok, reason = False, "unknown user" if user is None else "password too long"
    else:
        ok = passwords.verify_password(user.password_hash, password)
        reason = "wrong password"
        if ok and not user.is_active:
            ok, reason = False, "inactive user"
    _note_attempt(session, username=name, ip=ip, success=ok, now=now)
    if not ok or user is None:
        _audit_login(session, user, ip, outcome="failed", reason=reason)
        return _Outcome(error=InvalidCredentials(INVALID_LOGIN))
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    _audit_login(session, user, ip, outcome="ok", reason=None)
    return _Outcome(user=user)


def _audit_login(
    session: Session, user: User | None, ip: str | None, *, outcome: str, reason: str | None
) -> None:
    # The typed user name is recorded only when it names a real user: a password typed into
    # the user-name field must not end up in the append-only chain.
    audit.record(
        session,
        actor=principal_for(user, ip=ip) if user is not None and outcome == "ok" else None,
        action="auth.login",
        object_type="user",
        object_id=user.id if user is not None else None,
        details={"username": user.username} if user is not None else {},
        outcome=outcome,
        reason=reason,
        ip=ip,
    )


# --------------------------------------------------------------------------- sessions


def session_hash(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def session_state(user: User, web_session: WebSession, *, settings: Settings) -> SessionState:
    if web_session.totp_verified:
        return SessionState.ACTIVE
    if user.totp_enabled:
        return SessionState.NEEDS_TOTP
    if user.require_totp and not settings.demo_mode:
        return SessionState.NEEDS_ENROLMENT
    return SessionState.ACTIVE


@atomic
def create_session(
    session: Session,
    *,
    settings: Settings,
    user: User,
    ip: str | None,
    user_agent: str | None,
    totp_verified: bool = False,
    now: datetime | None = None,
) -> tuple[WebSession, str]:
    """Start a browser session; return it and the raw cookie value (not stored anywhere)."""
    now = now or utc_now()
    raw = secrets.token_urlsafe(32)
    web_session = WebSession(
        id=session_hash(raw),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(minutes=settings.session_lifetime_minutes),
        totp_verified=totp_verified,
        ip=ip,
        user_agent=(user_agent or "")[:USER_AGENT_MAX] or None,
    )
    session.add(web_session)
    session.flush()
    return web_session, raw


@atomic
def resolve_session(
    session: Session, *, settings: Settings, raw_token: str, now: datetime | None = None
) -> tuple[User, WebSession] | None:
    """The user and session behind a cookie value, honouring absolute and idle expiry."""
    if not raw_token or len(raw_token) > 200:
        return None
    now = now or utc_now()
    web_session = session.get(WebSession, session_hash(raw_token))
    if web_session is None:
        return None
    idle_limit = web_session.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    if now >= web_session.expires_at or now >= idle_limit:
        session.delete(web_session)
        return None
    user = session.get(User, web_session.user_id)
    if user is None or not user.is_active:
        return None
    if now - web_session.last_seen_at >= _TOUCH_EVERY:
        web_session.last_seen_at = now
    return user, web_session


@atomic
def revoke_session(session: Session, *, raw_token: str, ip: str | None = None) -> None:
    """Log out: delete the session server-side (the cookie becomes worthless)."""
    web_session = session.get(WebSession, session_hash(raw_token)) if raw_token else None
    if web_session is None:
        return
    user = session.get(User, web_session.user_id)
    session.delete(web_session)
    if user is not None:
        audit.record(
            session,
            actor=principal_for(user, ip=ip),
            action="auth.logout",
            object_type="user",
            object_id=user.id,
            ip=ip,
        )


def _delete_user_sessions(session: Session, user_id: int) -> int:
    result = session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


@atomic
def revoke_user_sessions(session: Session, *, actor: Principal, user_id: int) -> int:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    if actor.user_id != user.id:
        _require_manage(actor, user)
    ended = _delete_user_sessions(session, user.id)
    audit.record(
        session,
        actor=actor,
        action="auth.sessions.revoked",
        object_type="user",
        object_id=user.id,
        details={"sessions_ended": ended},
    )
    return ended


@atomic
def mark_session_verified(
    session: Session, *, settings: Settings, web_session: WebSession, now: datetime | None = None
) -> tuple[WebSession, str]:
    """Replace a session by a fresh, second-factor-verified one (new cookie value)."""
    user = session.get(User, web_session.user_id)
    if user is None:
        raise NotFound("no such user")
    session.delete(web_session)
    session.flush()
    return create_session(
        session,
        settings=settings,
        user=user,
        ip=web_session.ip,
        user_agent=web_session.user_agent,
        totp_verified=True,
        now=now,
    )


# --------------------------------------------------------------------------- TOTP


def _accept_code(settings: Settings, user: User, code: str, now: datetime) -> bool:
    """Check a code against the user's secret and consume its step (no replay)."""
    if user.totp_secret_encrypted is None:
        return False
    try:
        secret = totp.decrypt_secret(settings.secret_key, user.totp_secret_encrypted)
    except totp.SecretUnreadableError:
        log.warning("TOTP secret of user %s cannot be decrypted (secret key changed?)", user.id)
        return False
    step = totp.match_step(secret, code, now=now)
    if step is None:
        return False
    if user.last_totp_step is not None and step <= user.last_totp_step:
        return False
    user.last_totp_step = step
    return True


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str


@atomic
def begin_totp_enrolment(
    session: Session, *, settings: Settings, actor: Principal, renew: bool = False
) -> Enrolment:
    """Give the acting user a secret to add to an authenticator; enabled only once confirmed.

    A pending secret is shown again on later visits (so reloading the page does not invalidate
    what the user already scanned) unless ``renew`` asks for a new one.
    """
    user = _self(session, actor)
    if user.totp_enabled:
        raise Conflict("a second factor is already enabled; disable it first")
    secret: str | None = None
    if user.totp_secret_encrypted and not renew:
        try:
            secret = totp.decrypt_secret(settings.secret_key, user.totp_secret_encrypted)
        except totp.SecretUnreadableError:
            secret = None
    if secret is None:
        secret = totp.new_secret()
        user.totp_secret_encrypted = totp.encrypt_secret(settings.secret_key, secret)
        audit.record(
            session,
            actor=actor,
            action="auth.totp.enrolment_started",
            object_type="user",
            object_id=user.id,
        )
    return Enrolment(secret=secret, uri=totp.provisioning_uri(secret, username=user.username))


@atomic
def confirm_totp(
    session: Session,
    *,
    settings: Settings,
    actor: Principal,
    code: str,
    now: datetime | None = None,
) -> None:
    user = _self(session, actor)
    if user.totp_enabled:
        raise Conflict("a second factor is already enabled")
    if user.totp_secret_encrypted is None:
        raise Conflict("start the enrolment first")
    if not _accept_code(settings, user, code, now or utc_now()):
        raise InvalidInput(INVALID_CODE, field="code")
    user.totp_enabled = True
    audit.record(
        session, actor=actor, action="auth.totp.enabled", object_type="user", object_id=user.id
    )


@atomic
def verify_totp(
    session: Session, *, settings: Settings, user: User, code: str, now: datetime | None = None
) -> bool:
    """True if ``code`` is valid now and was not used before (its step is then consumed)."""
    return user.totp_enabled and _accept_code(settings, user, code, now or utc_now())


def complete_totp_login(
    session: Session,
    *,
    settings: Settings,
    web_session: WebSession,
    code: str,
    ip: str | None,
    now: datetime | None = None,
) -> str:
    """Second login step: on a valid code, return the raw value of a fresh verified session."""
    outcome, raw = _totp_attempt(
        session,
        settings=settings,
        web_session=web_session,
        code=code,
        ip=ip,
        now=now or utc_now(),
    )
    if outcome.error is not None:
        raise outcome.error
    assert raw is not None
    return raw


@atomic
def _totp_attempt(
    session: Session,
    *,
    settings: Settings,
    web_session: WebSession,
    code: str,
    ip: str | None,
    now: datetime,
) -> tuple[_Outcome, str | None]:
    user = session.get(User, web_session.user_id)
    if user is None or not user.is_active or not user.totp_enabled:
        return _Outcome(error=InvalidCredentials("log in again")), None
    actor = principal_for(user, ip=ip)
    retry_after = _retry_after(session, settings=settings, username=user.username, ip=ip, now=now)
    if retry_after is not None:
        audit.record(
            session,
            actor=actor,
            action="auth.totp",
            object_type="user",
            object_id=user.id,
            outcome="throttled",
            ip=ip,
        )
        return _Outcome(error=_throttled(retry_after)), None
    ok = _accept_code(settings, user, code, now)
    _note_attempt(session, username=user.username, ip=ip, success=ok, now=now)
    audit.record(
        session,
        actor=actor,
        action="auth.totp",
        object_type="user",
        object_id=user.id,
        outcome="ok" if ok else "failed",
        ip=ip,
    )
    if not ok:
        return _Outcome(error=InvalidCredentials(INVALID_CODE)), None
    _, raw = mark_session_verified(session, settings=settings, web_session=web_session, now=now)
    return _Outcome(user=user), raw


@atomic
def disable_totp(
    session: Session,
    *,
    settings: Settings,
    actor: Principal,
    user_id: int,
    code: str | None = None,
    now: datetime | None = None,
) -> None:
    """The user with a valid code, or an administrator of the user's authority."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    if actor.user_id == user.id and actor.via == "session":
        if not user.totp_enabled:
            raise Conflict("no second factor is enabled")
        if code is None or not _accept_code(settings, user, code, now or utc_now()):
            raise InvalidInput(INVALID_CODE, field="code")
    else:
        _require_manage(actor, user)
    user.totp_enabled = False
    user.totp_secret_encrypted = None
    user.last_totp_step = None
    audit.record(
        session, actor=actor, action="auth.totp.disabled", object_type="user", object_id=user.id
    )


def _self(session: Session, actor: Principal) -> User:
    if actor.via != "session":
        raise PermissionDenied("the second factor is managed from a browser session")
    user = session.get(User, actor.user_id)
    if user is None or not user.is_active:
        raise AuthenticationRequired("log in again")
    return user


# --------------------------------------------------------------------------- API tokens


def _check_scopes(actor: Principal, scopes: Iterable[str]) -> list[str]:
    requested = sorted({str(s).strip() for s in scopes})
    if not requested:
        raise InvalidInput("choose at least one scope", field="scopes")
    unknown = [s for s in requested if s not in TOKEN_SCOPES]
    if unknown:
        raise InvalidInput(f"unknown scope(s): {', '.join(unknown)}", field="scopes")
    own = {p.value for p in actor.permissions}
    beyond = [s for s in requested if s not in own]
    if beyond:
        raise PermissionDenied(
            f"a token cannot carry permissions you do not have: {', '.join(beyond)}"
        )
    return requested


@atomic
def create_token(
    session: Session,
    *,
    actor: Principal,
    name: str,
    scopes: Iterable[str],
    expires_in_days: int,
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for the acting user; return it and the raw token (shown once)."""
    require(actor, Permission.TOKENS_MANAGE_OWN)
    if actor.via == "token":
        raise PermissionDenied("API tokens are created from a browser session, not by a token")
    clean_name = name.strip()
    if not clean_name or len(clean_name) > TOKEN_NAME_MAX:
        raise InvalidInput(f"a token name has 1 to {TOKEN_NAME_MAX} characters", field="name")
    if not 1 <= expires_in_days <= TOKEN_MAX_DAYS:
        raise InvalidInput(
            f"a token expires after 1 to {TOKEN_MAX_DAYS} days", field="expires_in_days"
        )
    checked = _check_scopes(actor, scopes)
    now = now or utc_now()
    raw, public_id, secret_hash = tokens.new_token()
    token = ApiToken(
        user_id=actor.user_id,
        name=clean_name,
        public_id=public_id,
        secret_hash=secret_hash,
        scopes=checked,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days),
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="auth.token.created",
        object_type="api_token",
        object_id=token.id,
        details={
            "public_id": public_id,
            "scopes": checked,
            "expires_at": token.expires_at.isoformat(),
        },
    )
    return token, raw


def list_tokens(session: Session, *, actor: Principal) -> list[ApiToken]:
    require(actor, Permission.TOKENS_MANAGE_OWN)
    stmt = (
        select(ApiToken)
        .where(ApiToken.user_id == actor.user_id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return list(session.scalars(stmt))


@atomic
def revoke_token(
    session: Session, *, actor: Principal, token_id: int, now: datetime | None = None
) -> ApiToken:
    """Revoke one of the actor's tokens (an administrator may revoke any of their authority)."""
    token = session.get(ApiToken, token_id)
    owner = session.get(User, token.user_id) if token is not None else None
    if token is None or owner is None:
        raise NotFound("no such token")
    if token.user_id != actor.user_id:
        if not actor.has(Permission.USERS_MANAGE) or actor.authority_id != owner.authority_id:
            raise NotFound("no such token")  # do not confirm that someone else's token exists
    else:
        require(actor, Permission.TOKENS_MANAGE_OWN)
    if token.revoked_at is None:
        token.revoked_at = now or utc_now()
        audit.record(
            session,
            actor=actor,
            action="auth.token.revoked",
            object_type="api_token",
            object_id=token.id,
            details={"public_id": token.public_id, "owner_user_id": token.user_id},
        )
    return token


@atomic
def authenticate_token(
    session: Session, *, raw: str, ip: str | None = None, now: datetime | None = None
) -> Principal:
    """The principal behind a bearer token, narrowed to its scopes; else 401."""
    parsed = tokens.parse(raw)
    if parsed is None:
        raise AuthenticationRequired(INVALID_TOKEN)
    token = session.scalars(
        select(ApiToken).where(ApiToken.public_id == parsed.public_id)
    ).one_or_none()
    stored = token.secret_hash if token is not None else "0" * 64
    matches = tokens.secret_matches(parsed.secret, stored)
    if token is None or not matches:
        raise AuthenticationRequired(INVALID_TOKEN)
    now = now or utc_now()
    user = session.get(User, token.user_id)
    if (
        token.revoked_at is not None
        or now >= token.expires_at
        or user is None
        or not user.is_active
    ):
        log.info("refused API token %s (revoked, expired or inactive user)", token.public_id)
        raise AuthenticationRequired(INVALID_TOKEN)
    if token.last_used_at is None or now - token.last_used_at >= _TOUCH_EVERY:
        token.last_used_at = now
    return principal_for(user, ip=ip, token=token)


@dataclass(frozen=True)
class PurgeCounts:
    sessions: int
    login_attempts: int


@atomic
def purge_expired(
    session: Session, *, settings: Settings, now: datetime | None = None
) -> PurgeCounts:
    """Worker sweep: drop sessions past their absolute or idle limit, and login attempts older
    than the throttling window (they no longer count; the audit chain keeps the record)."""
    now = now or utc_now()
    idle_cutoff = now - timedelta(minutes=settings.session_idle_minutes)
    sessions = _deleted(
        session,
        delete(WebSession).where(
            (WebSession.expires_at <= now) | (WebSession.last_seen_at <= idle_cutoff)
        ),
    )
    attempts_cutoff = now - timedelta(minutes=settings.login_window_minutes)
    attempts = _deleted(session, delete(LoginAttempt).where(LoginAttempt.at < attempts_cutoff))
    return PurgeCounts(sessions=sessions, login_attempts=attempts)


def _deleted(session: Session, statement: Delete) -> int:
    result = cast("CursorResult[Any]", session.execute(statement))
    return int(result.rowcount or 0)
