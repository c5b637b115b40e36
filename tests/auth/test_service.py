"""auth.service against a real database: users, login throttling, TOTP, sessions, tokens."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crossborder.audit.models import AuditEvent
from crossborder.auth import passwords, service, totp
from crossborder.auth.models import ApiToken, LoginAttempt, User, WebSession
from crossborder.auth.permissions import SYSTEM, Permission, Principal, Role
from crossborder.core.clock import utc_now
from crossborder.core.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidInput,
    PermissionDenied,
    TooManyRequests,
)
from crossborder.settings import Settings
from tests.fixtures.auth import DEFAULT_PASSWORD, user_totp_secret

MakeUser = Callable[..., User]


def _events(db: Session, action: str) -> list[AuditEvent]:
    return list(
        db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
    )


def _login(
    db: Session,
    settings: Settings,
    username: str,
    password: str = DEFAULT_PASSWORD,
    ip: str | None = "192.0.2.1",
    **kw: object,
) -> User:
    return service.authenticate(
        db, settings=settings, username=username, password=password, ip=ip, **kw
    )  # type: ignore[arg-type]


# --------------------------------------------------------------------------- users


def test_create_user_stores_lower_case_and_argon2(db: Session, make_user: MakeUser) -> None:
    user = make_user("Alice.Example", roles=[Role.OFFICER, "analyst"])
    assert user.username == "alice.example"
    assert user.password_hash.startswith("$argon2id$")
    assert DEFAULT_PASSWORD not in user.password_hash
    assert user.roles == {Role.OFFICER, Role.ANALYST}
    assert user.require_totp is False  # factory default; the service default is True


def test_username_uniqueness_is_case_insensitive(make_user: MakeUser) -> None:
    make_user("bob.unique")
    with pytest.raises(Conflict):
        make_user("BOB.Unique")


def test_database_refuses_mixed_case_username(db: Session, make_user: MakeUser) -> None:
    user = make_user()
    with pytest.raises(IntegrityError), db.begin_nested():
        db.execute(text("UPDATE users SET username = 'MiXed' WHERE id = :id"), {"id": user.id})


def test_create_user_needs_users_manage(
    db: Session, make_principal: Callable[..., Principal], auth_authority: int
) -> None:
    officer = make_principal(Role.OFFICER)
    with pytest.raises(PermissionDenied):
        service.create_user(
            db,
            actor=officer,
            username="newbie",
            password=DEFAULT_PASSWORD,
            authority_id=auth_authority,
            roles=["officer"],
            display_name="N",
        )
    admin = make_principal(Role.ADMINISTRATOR)
    user = service.create_user(
        db,
        actor=admin,
        username="newbie",
        password=DEFAULT_PASSWORD,
        authority_id=auth_authority,
        roles=["officer"],
        display_name="N",
    )
    assert user.require_totp is True
    event = _events(db, "user.created")[-1]
    assert event.actor_user_id == admin.user_id
    assert DEFAULT_PASSWORD not in json.dumps(event.details)


def test_bootstrap_only_for_system(
    db: Session, make_principal: Callable[..., Principal], auth_authority: int
) -> None:
    admin = make_principal(Role.ADMINISTRATOR)
    with pytest.raises(PermissionDenied):
        service.create_user(
            db,
            actor=admin,
            username="boot",
            password=DEFAULT_PASSWORD,
            authority_id=auth_authority,
            roles=["officer"],
            display_name="B",
            bootstrap=True,
        )


def test_admin_cannot_create_users_of_another_authority(
    db: Session, make_principal: Callable[..., Principal], auth_authority: int
) -> None:
    admin = make_principal(Role.ADMINISTRATOR)
    with pytest.raises(PermissionDenied):
        service.create_user(
            db,
            actor=admin,
            username="foreign",
            password=DEFAULT_PASSWORD,
            authority_id=auth_authority + 1000,
            roles=["officer"],
            display_name="F",
        )


@pytest.mark.parametrize(
    ("username", "password", "roles", "field"),
    [
        ("x", DEFAULT_PASSWORD, ["officer"], "username"),
        ("has space", DEFAULT_PASSWORD, ["officer"], "username"),
        ("carol", "short", ["officer"], "password"),
        ("carol.example.one", "carol.example.one", ["officer"], "password"),
        ("carol", DEFAULT_PASSWORD, ["superuser"], "roles"),
        ("carol", DEFAULT_PASSWORD, [], "roles"),
    ],
)
def test_create_user_validation(
    db: Session,
    auth_authority: int,
    fast_password_hashing: object,
    username: str,
    password: str,
    roles: list[str],
    field: str,
) -> None:
    with pytest.raises(InvalidInput) as err:
        service.create_user(
            db,
            actor=SYSTEM,
            username=username,
            password=password,
            authority_id=auth_authority,
            roles=roles,
            display_name="C",
            bootstrap=True,
        )
    assert err.value.field == field


# --------------------------------------------------------------------------- password login


def test_login_ok_records_attempt_and_audit(
    db: Session, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user()
    assert _login(db, settings, user.username.upper()).id == user.id
    attempt = db.scalars(select(LoginAttempt).where(LoginAttempt.username == user.username)).one()
    assert attempt.success is True
    event = _events(db, "auth.login")[-1]
    assert (event.outcome, event.actor_user_id, event.ip) == ("ok", user.id, "192.0.2.1")
    assert DEFAULT_PASSWORD not in json.dumps(event.details)


def test_wrong_password_and_unknown_user_look_the_same(
    db: Session, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user()
    with pytest.raises(service.InvalidCredentials) as wrong:
        _login(db, settings, user.username, "wrong password 123")
    with pytest.raises(service.InvalidCredentials) as unknown:
        _login(db, settings, "nobody-at-all", "wrong password 123")
    assert str(wrong.value) == str(unknown.value) == "invalid username or password"
    assert wrong.value.code == unknown.value.code
    failed = [e for e in _events(db, "auth.login") if e.outcome == "failed"]
    assert len(failed) == 2
    assert "wrong password 123" not in json.dumps([e.details for e in failed])
    assert all(e.actor_user_id is None for e in failed)
    # The unknown name is not written into the chain (it could be a mistyped password).
    assert "nobody-at-all" not in json.dumps([e.details for e in failed])


def test_inactive_user_is_refused_with_the_generic_message(
    db: Session, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user(is_active=False)
    with pytest.raises(service.InvalidCredentials, match="invalid username or password"):
        _login(db, settings, user.username)


def test_throttle_per_username_refuses_even_the_right_password(
    db: Session, settings: Settings, make_user: MakeUser
) -> None:
    settings.login_max_failures = 3
    user = make_user()
    now = utc_now()
    for i in range(3):
        with pytest.raises(service.InvalidCredentials):
            _login(db, settings, user.username, "bad password!!", ip=f"198.51.100.{i}", now=now)
    with pytest.raises(TooManyRequests) as err:
        _login(db, settings, user.username, ip="203.0.113.9", now=now + timedelta(seconds=1))
    assert 0 < err.value.extra["retry_after"] <= settings.login_window_minutes * 60
    assert _events(db, "auth.login")[-1].outcome == "throttled"
    # Still locked just before the window passes, open after it.
    window = timedelta(minutes=settings.login_window_minutes)
    with pytest.raises(TooManyRequests):
        _login(db, settings, user.username, now=now + window - timedelta(seconds=5))
    assert _login(db, settings, user.username, now=now + window + timedelta(seconds=1))


def test_throttle_applies_to_unknown_usernames_too(db: Session, settings: Settings) -> None:
    settings.login_max_failures = 2
    for _ in range(2):
        with pytest.raises(service.InvalidCredentials):
            _login(db, settings, "ghost-user", "whatever whatever")
    with pytest.raises(TooManyRequests):
        _login(db, settings, "ghost-user", "whatever whatever")


def test_success_resets_the_username_counter(
    db: Session, settings: Settings, make_user: MakeUser
) -> None:
    settings.login_max_failures = 3
    user = make_user()
    for _ in range(2):
        with pytest.raises(service.InvalidCredentials):
            _login(db, settings, user.username, "bad password!!")
    _login(db, settings, user.username)
    for _ in range(2):
        with pytest.raises(service.InvalidCredentials):
            _login(db, settings, user.username, "bad password!!")
    assert _login(db, settings, user.username)


def test_throttle_per_address_across_usernames(
    db: Session, settings: Settings, make_user: MakeUser
) -> None:
    settings.login_ip_max_failures = 4
    victim = make_user()
    for i in range(4):
        with pytest.raises(service.InvalidCredentials):
            _login(db, settings, f"spray-{i}", "bad password!!", ip="192.0.2.77")
    with pytest.raises(TooManyRequests):
        _login(db, settings, victim.username, ip="192.0.2.77")
    # Another address is not affected.
    assert _login(db, settings, victim.username, ip="192.0.2.78")


def test_rehash_on_login_when_parameters_change(
    db: Session, settings: Settings, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from argon2 import PasswordHasher

    user = make_user()
    old_hash = user.password_hash
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=2, memory_cost=2048))
    _login(db, settings, user.username)
    db.refresh(user)
    assert user.password_hash != old_hash
    assert "m=2048,t=2" in user.password_hash
    assert passwords.verify_password(user.password_hash, DEFAULT_PASSWORD)


def test_change_password_needs_current_and_ends_sessions(
    db: Session, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user()
    service.create_session(db, settings=settings, user=user, ip=None, user_agent=None)
    me = service.principal_for(user)
    with pytest.raises(InvalidInput):
        service.change_password(
            db,
            actor=me,
            user_id=user.id,
            new_password="a new passphrase",
            current_password="wrong one here",
        )
    service.change_password(
        db,
        actor=me,
        user_id=user.id,
        new_password="a new passphrase",
        current_password=DEFAULT_PASSWORD,
    )
    assert db.scalars(select(WebSession).where(WebSession.user_id == user.id)).all() == []
    assert _login(db, settings, user.username, "a new passphrase")


# --------------------------------------------------------------------------- TOTP


def _enrol(db: Session, settings: Settings, user: User) -> str:
    me = service.principal_for(user)
    enrolment = service.begin_totp_enrolment(db, settings=settings, actor=me)
    assert enrolment.uri.startswith("otpauth://totp/crossborder:")
    now = utc_now() - timedelta(seconds=60)
    code = totp.code_at_step(enrolment.secret, totp.step_of(now))
    service.confirm_totp(db, settings=settings, actor=me, code=code, now=now)
    return enrolment.secret


def test_totp_secret_is_encrypted_at_rest(
    db: Session, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user()
    secret = _enrol(db, settings, user)
    stored = db.execute(
        text("SELECT totp_secret_encrypted FROM users WHERE id = :id"), {"id": user.id}
    ).scalar_one()
    assert secret not in stored
    assert user_totp_secret(settings, user) == secret
    assert user.totp_enabled


def test_totp_not_enabled_until_confirmed_and_wrong_code_refused(
    db: Session, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user()
    me = service.principal_for(user)
    first = service.begin_totp_enrolment(db, settings=settings, actor=me)
    assert not user.totp_enabled
    # A reload shows the same pending secret; renew gives a new one.
    assert service.begin_totp_enrolment(db, settings=settings, actor=me).secret == first.secret
    with pytest.raises(InvalidInput):
        service.confirm_totp(db, settings=settings, actor=me, code="000000")
    assert not user.totp_enabled
    assert service.begin_totp_enrolment(db, settings=settings, actor=me, renew=True).secret != (
        first.secret
    )
    _enrol(db, settings, user)
    with pytest.raises(Conflict):
        service.begin_totp_enrolment(db, settings=settings, actor=me)


def test_totp_code_cannot_be_replayed(db: Session, settings: Settings, make_user: MakeUser) -> None:
    user = make_user()
    secret = _enrol(db, settings, user)
    now = utc_now()
    code = totp.code_at_step(secret, totp.step_of(now))
    assert service.verify_totp(db, settings=settings, user=user, code=code, now=now)
    assert not service.verify_totp(db, settings=settings, user=user, code=code, now=now)
    # An older step (still inside the window) is refused too.
    older = totp.code_at_step(secret, totp.step_of(now) - 1)
    assert not service.verify_totp(db, settings=settings, user=user, code=older, now=now)
    later = now + timedelta(seconds=30)
    assert service.verify_totp(
        db,
        settings=settings,
        user=user,
        code=totp.code_at_step(secret, totp.step_of(later)),
        now=later,
    )


def test_totp_unreadable_after_secret_key_change(
    db: Session, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user()
    secret = _enrol(db, settings, user)
    other = settings.model_copy(update={"secret_key": "another-secret-key-" + "y" * 40})
    code = totp.code_at_step(secret, totp.step_of(utc_now()))
    assert not service.verify_totp(db, settings=other, user=user, code=code)


def test_disable_totp_self_needs_code_admin_does_not(
    db: Session, settings: Settings, make_user: MakeUser, make_principal: Callable[..., Principal]
) -> None:
    user = make_user()
    secret = _enrol(db, settings, user)
    me = service.principal_for(user)
    with pytest.raises(InvalidInput):
        service.disable_totp(db, settings=settings, actor=me, user_id=user.id, code="123456")
    assert user.totp_enabled
    service.disable_totp(
        db,
        settings=settings,
        actor=me,
        user_id=user.id,
        code=totp.code_at_step(secret, totp.step_of(utc_now())),
    )
    assert not user.totp_enabled
    assert user.totp_secret_encrypted is None

    _enrol(db, settings, user)
    officer = make_principal(Role.OFFICER)
    with pytest.raises(PermissionDenied):
        service.disable_totp(db, settings=settings, actor=officer, user_id=user.id)
    admin = make_principal(Role.ADMINISTRATOR)
    service.disable_totp(db, settings=settings, actor=admin, user_id=user.id)
    assert not user.totp_enabled
    assert _events(db, "auth.totp.disabled")[-1].actor_user_id == admin.user_id


def test_totp_login_step_throttled(db: Session, settings: Settings, make_user: MakeUser) -> None:
    settings.login_max_failures = 2
    user = make_user(totp_enabled=True)
    ws, _ = service.create_session(db, settings=settings, user=user, ip=None, user_agent=None)
    for _ in range(2):
        with pytest.raises(service.InvalidCredentials):
            service.complete_totp_login(
                db, settings=settings, web_session=ws, code="000000", ip=None
            )
    code = totp.code_at_step(user_totp_secret(settings, user), totp.step_of(utc_now()))
    with pytest.raises(TooManyRequests):
        service.complete_totp_login(db, settings=settings, web_session=ws, code=code, ip=None)
    outcomes = [e.outcome for e in _events(db, "auth.totp")]
    assert outcomes == ["failed", "failed", "throttled"]


# --------------------------------------------------------------------------- sessions


def test_session_stores_only_the_hash(db: Session, settings: Settings, make_user: MakeUser) -> None:
    user = make_user()
    ws, raw = service.create_session(
        db, settings=settings, user=user, ip="192.0.2.1", user_agent="x" * 500
    )
    assert ws.id == service.session_hash(raw)
    assert raw not in ws.id
    assert len(ws.user_agent or "") == 200
    assert db.get(WebSession, raw) is None


def test_session_idle_timeout_and_absolute_expiry(
    db: Session, settings: Settings, make_user: MakeUser
) -> None:
    settings.session_idle_minutes = 30
    settings.session_lifetime_minutes = 120
    user = make_user()
    start = utc_now()
    _, raw = service.create_session(
        db, settings=settings, user=user, ip=None, user_agent=None, now=start
    )
    # Activity every 20 minutes keeps it alive until the absolute limit.
    for minutes in (20, 40, 60, 80, 100):
        assert (
            service.resolve_session(
                db, settings=settings, raw_token=raw, now=start + timedelta(minutes=minutes)
            )
            is not None
        )
    assert (
        service.resolve_session(
            db, settings=settings, raw_token=raw, now=start + timedelta(minutes=120)
        )
        is None
    )
    # And it is gone for good.
    assert (
        service.resolve_session(
            db, settings=settings, raw_token=raw, now=start + timedelta(minutes=101)
        )
        is None
    )

    _, idle = service.create_session(
        db, settings=settings, user=user, ip=None, user_agent=None, now=start
    )
    assert (
        service.resolve_session(
            db, settings=settings, raw_token=idle, now=start + timedelta(minutes=31)
        )
        is None
    )


def test_session_of_deactivated_user_is_refused(
    db: Session, settings: Settings, make_user: MakeUser, make_principal: Callable[..., Principal]
) -> None:
    user = make_user()
    _, raw = service.create_session(db, settings=settings, user=user, ip=None, user_agent=None)
    service.set_user_active(
        db, actor=make_principal(Role.ADMINISTRATOR), user_id=user.id, active=False
    )
    assert service.resolve_session(db, settings=settings, raw_token=raw) is None


def test_session_states(db: Session, settings: Settings, make_user: MakeUser) -> None:
    plain = make_user()
    with_totp = make_user(totp_enabled=True)
    must_enrol = make_user(require_totp=True)
    states = {}
    for user in (plain, with_totp, must_enrol):
        ws, _ = service.create_session(db, settings=settings, user=user, ip=None, user_agent=None)
        states[user.id] = (service.session_state(user, ws, settings=settings), ws)
    assert states[plain.id][0] is service.SessionState.ACTIVE
    assert states[with_totp.id][0] is service.SessionState.NEEDS_TOTP
    assert states[must_enrol.id][0] is service.SessionState.NEEDS_ENROLMENT
    demo = settings.model_copy(update={"demo_mode": True})
    assert service.session_state(must_enrol, states[must_enrol.id][1], settings=demo) is (
        service.SessionState.ACTIVE
    )
    # Demo mode does not skip a second factor that is enabled.
    assert service.session_state(with_totp, states[with_totp.id][1], settings=demo) is (
        service.SessionState.NEEDS_TOTP
    )


def test_revoke_session_is_server_side(
    db: Session, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user()
    _, raw = service.create_session(db, settings=settings, user=user, ip=None, user_agent=None)
    service.revoke_session(db, raw_token=raw)
    assert service.resolve_session(db, settings=settings, raw_token=raw) is None
    assert _events(db, "auth.logout")[-1].actor_user_id == user.id


# --------------------------------------------------------------------------- API tokens


def test_token_creation_audited_without_secret(
    db: Session, make_user: MakeUser, make_token: Callable[..., tuple[ApiToken, str]]
) -> None:
    user = make_user()
    token, raw = make_token(user, ["directory:read"], expires_in_days=10)
    assert token.secret_hash not in raw
    assert raw.split("_", 2)[2] not in token.secret_hash
    event = _events(db, "auth.token.created")[-1]
    assert event.details["public_id"] == token.public_id
    assert raw not in json.dumps(event.details)
    assert raw.split("_", 2)[2] not in json.dumps(event.details)
    assert token.expires_at - token.created_at == timedelta(days=10)


def test_token_scopes_cannot_exceed_permissions(db: Session, make_user: MakeUser) -> None:
    officer = service.principal_for(make_user(roles=[Role.OFFICER]))
    with pytest.raises(PermissionDenied):
        service.create_token(
            db, actor=officer, name="t", scopes=["users:manage"], expires_in_days=5
        )
    with pytest.raises(InvalidInput):
        service.create_token(db, actor=officer, name="t", scopes=["root"], expires_in_days=5)
    with pytest.raises(InvalidInput):
        service.create_token(db, actor=officer, name="t", scopes=[], expires_in_days=5)
    auditor = service.principal_for(make_user(roles=[Role.AUDITOR]))
    with pytest.raises(PermissionDenied):  # auditors may not mint tokens at all
        service.create_token(db, actor=auditor, name="t", scopes=["audit:read"], expires_in_days=5)


@pytest.mark.parametrize("days", [0, -1, 366])
def test_token_expiry_bounds(db: Session, make_user: MakeUser, days: int) -> None:
    me = service.principal_for(make_user())
    with pytest.raises(InvalidInput):
        service.create_token(
            db, actor=me, name="t", scopes=["directory:read"], expires_in_days=days
        )


def test_authenticate_token_narrows_to_scopes(
    db: Session, make_user: MakeUser, make_token: Callable[..., tuple[ApiToken, str]]
) -> None:
    admin = make_user(roles=[Role.ADMINISTRATOR])
    token, raw = make_token(admin, ["directory:read"])
    principal = service.authenticate_token(db, raw=raw, ip="192.0.2.5")
    assert (principal.via, principal.token_id, principal.user_id) == ("token", token.id, admin.id)
    assert principal.permissions == {Permission.DIRECTORY_READ}
    assert not principal.has(Permission.USERS_MANAGE)
    assert token.last_used_at is not None


def test_a_token_cannot_mint_tokens(
    db: Session, make_user: MakeUser, make_token: Callable[..., tuple[ApiToken, str]]
) -> None:
    user = make_user()
    _, raw = make_token(user, ["tokens:manage-own", "directory:read"])
    via_token = service.authenticate_token(db, raw=raw)
    with pytest.raises(PermissionDenied):
        service.create_token(
            db, actor=via_token, name="child", scopes=["directory:read"], expires_in_days=365
        )


def test_refused_tokens(
    db: Session,
    make_user: MakeUser,
    make_token: Callable[..., tuple[ApiToken, str]],
    make_principal: Callable[..., Principal],
) -> None:
    user = make_user()
    _expired, expired_raw = make_token(user, ["directory:read"], expires_in_days=1)
    revoked, revoked_raw = make_token(user, ["directory:read"])
    service.revoke_token(db, actor=service.principal_for(user), token_id=revoked.id)
    _, good_raw = make_token(user, ["directory:read"])
    public_id = good_raw.split("_")[1]
    forged = f"cbt_{public_id}_{'A' * 43}"
    unknown = f"cbt_{'0' * 16}_{'A' * 43}"
    later = utc_now() + timedelta(days=1, seconds=1)
    for raw, now in [
        (expired_raw, later),
        (revoked_raw, None),
        (forged, None),
        (unknown, None),
        ("not-a-token", None),
        ("", None),
    ]:
        with pytest.raises(AuthenticationRequired, match="invalid, expired or revoked"):
            service.authenticate_token(db, raw=raw, now=now)
    other = make_user()
    _, other_raw = make_token(other, ["directory:read"])
    service.set_user_active(
        db, actor=make_principal(Role.ADMINISTRATOR), user_id=other.id, active=False
    )
    with pytest.raises(AuthenticationRequired):
        service.authenticate_token(db, raw=other_raw)
    assert service.authenticate_token(db, raw=good_raw).user_id == user.id


def test_token_listing_and_revocation_are_owner_scoped(
    db: Session, make_user: MakeUser, make_token: Callable[..., tuple[ApiToken, str]]
) -> None:
    from crossborder.core.errors import NotFound

    alice, bob = make_user(), make_user()
    token, _ = make_token(alice, ["directory:read"])
    make_token(bob, ["directory:read"])
    assert [t.id for t in service.list_tokens(db, actor=service.principal_for(alice))] == [token.id]
    with pytest.raises(NotFound):
        service.revoke_token(db, actor=service.principal_for(bob), token_id=token.id)
    assert token.revoked_at is None
