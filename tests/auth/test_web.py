"""The browser flows over HTTP: login, second factor, enrolment, logout, tokens, language."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.audit.models import AuditEvent
from crossborder.auth import totp
from crossborder.auth.models import User
from crossborder.core.clock import utc_now
from crossborder.settings import Settings
from crossborder.web import csrf
from tests.fixtures.auth import DEFAULT_PASSWORD, user_totp_secret
from tests.fixtures.web import (
    TestClient,
    csrf_for,
    current_code,
    make_client,
    post_login,
)

MakeUser = Callable[..., User]


def test_login_page_renders_with_fields(client: TestClient) -> None:
    response = client.get("/login?next=/account")
    assert response.status_code == 200
    for marker in ('id="username"', 'id="password"', 'name="csrf_token"', 'value="/account"'):
        assert marker in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_login_without_or_with_wrong_csrf_is_forbidden(
    client: TestClient, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user()
    client.get("/login")
    no_token = client.post("/login", data={"username": user.username, "password": DEFAULT_PASSWORD})
    assert no_token.status_code == 403
    wrong = client.post(
        "/login",
        data={"username": user.username, "password": DEFAULT_PASSWORD, "csrf_token": "0" * 64},
    )
    assert wrong.status_code == 403
    assert "cb_session" not in client.cookies


def test_login_success_sets_session_and_follows_local_next(
    client: TestClient, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user()
    response = post_login(client, settings, user.username, next_path="/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    account = client.get("/account")
    assert account.status_code == 200
    assert user.username in account.text


def test_open_redirect_is_ignored(
    client: TestClient, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user()
    for evil in ("https://evil.example", "//evil.example/x", "/\\evil.example"):
        response = post_login(client, settings, user.username, next_path=evil)
        assert response.headers["location"] == "/"


def test_wrong_password_and_unknown_user_render_the_same(
    client: TestClient, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user()
    wrong = post_login(client, settings, user.username, "not the password")
    unknown = post_login(client, settings, "no-such-user", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert 'data-testid="login-error"' in wrong.text
    assert 'data-testid="login-error"' in unknown.text
    assert "cb_session" not in client.cookies


def test_throttling_message_and_retry_after(
    client: TestClient, settings: Settings, make_user: MakeUser
) -> None:
    settings.login_max_failures = 2
    user = make_user()
    for _ in range(2):
        assert post_login(client, settings, user.username, "not the password").status_code == 401
    locked = post_login(client, settings, user.username)  # right password, still refused
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert 'data-testid="login-throttled"' in locked.text
    assert "cb_session" not in client.cookies


def test_session_cookie_flags(app: FastAPI, settings: Settings, make_user: MakeUser) -> None:
    settings.cookie_secure = True
    user = make_user()
    with make_client(app, base_url="https://testserver") as secure_client:
        response = post_login(secure_client, settings, user.username)
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith("cb_session=")
    )
    lowered = cookie.lower()
    assert "httponly" in lowered
    assert "secure" in lowered
    assert "samesite=lax" in lowered
    assert "path=/" in lowered
    assert f"max-age={settings.session_lifetime_minutes * 60}" in lowered


def test_login_regenerates_the_session(
    client: TestClient, settings: Settings, make_user: MakeUser, db: Session
) -> None:
    user = make_user()
    post_login(client, settings, user.username)
    first = client.cookies["cb_session"]
    post_login(client, settings, user.username)
    second = client.cookies["cb_session"]
    assert first != second
    client.cookies.set("cb_session", first)
    assert client.get("/account").status_code == 303  # the old one is gone


def test_logout_invalidates_server_side(
    client: TestClient, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user()
    post_login(client, settings, user.username)
    raw = client.cookies["cb_session"]
    no_csrf = client.post("/logout")
    assert no_csrf.status_code == 403
    response = client.post("/logout", data={"csrf_token": csrf_for(client, settings)})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    client.cookies.set("cb_session", raw)  # replaying the old cookie does not work
    again = client.get("/account")
    assert again.status_code == 303
    assert again.headers["location"] == "/login?next=%2Faccount"


def test_pages_redirect_anonymous_users_to_login(client: TestClient) -> None:
    response = client.get("/account?tab=tokens", headers={"accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount%3Ftab%3Dtokens"


def test_totp_login_flow_with_replay_refused(
    app: FastAPI, client: TestClient, settings: Settings, make_user: MakeUser, db: Session
) -> None:
    user = make_user(totp_enabled=True)
    secret = user_totp_secret(settings, user)
    response = post_login(client, settings, user.username, next_path="/account")
    assert response.headers["location"] == "/login/totp?next=%2Faccount"
    pending = client.cookies["cb_session"]
    # Half logged in is not logged in.
    assert client.get("/account").headers["location"].startswith("/login/totp")
    assert client.get("/api/v1/me").status_code == 401
    page = client.get("/login/totp?next=/account")
    assert 'id="totp-code"' in page.text

    token = csrf_for(client, settings)
    wrong = client.post(
        "/login/totp", data={"code": "000000", "next": "/account", "csrf_token": token}
    )
    assert wrong.status_code == 401
    assert 'data-testid="totp-error"' in wrong.text
    code = current_code(secret)
    ok = client.post("/login/totp", data={"code": code, "next": "/account", "csrf_token": token})
    assert ok.status_code == 303
    assert ok.headers["location"] == "/account"
    assert client.cookies["cb_session"] != pending  # regenerated on elevation
    assert client.get("/account").status_code == 200
    outcomes = [
        e.outcome
        for e in db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "auth.totp", AuditEvent.object_id == str(user.id)
            )
        )
    ]
    assert outcomes == ["failed", "ok"]

    # The same code, seen by someone else, cannot be used again.
    with make_client(app) as other:
        post_login(other, settings, user.username)
        replay = other.post(
            "/login/totp", data={"code": code, "next": "/", "csrf_token": csrf_for(other, settings)}
        )
        assert replay.status_code == 401


def test_forced_enrolment_then_access(
    client: TestClient, settings: Settings, make_user: MakeUser
) -> None:
    user = make_user(require_totp=True)
    response = post_login(client, settings, user.username)
    assert response.headers["location"] == "/account/totp"
    assert client.get("/account").headers["location"] == "/account/totp"
    assert client.get("/api/v1/me").status_code == 401
    page = client.get("/account/totp")
    assert page.status_code == 200
    assert 'data-testid="totp-required"' in page.text
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret is not None
    assert "otpauth://totp/crossborder:" in page.text
    token = csrf_for(client, settings)
    bad = client.post("/account/totp", data={"code": "000000", "csrf_token": token})
    assert bad.status_code == 422
    done = client.post(
        "/account/totp", data={"code": current_code(secret.group(1)), "csrf_token": token}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/account?done=totp-enabled"
    assert client.get("/account").status_code == 200


def test_demo_mode_relaxes_required_second_factor(
    client: TestClient, settings: Settings, make_user: MakeUser
) -> None:
    settings.demo_mode = True
    user = make_user(require_totp=True)
    response = post_login(client, settings, user.username)
    assert response.headers["location"] == "/"
    assert client.get("/account").status_code == 200


def test_account_token_created_once_and_usable(
    client: TestClient, settings: Settings, logged_in: Callable[..., User]
) -> None:
    user = logged_in()
    page = client.get("/account")
    assert 'data-testid="token-form"' in page.text
    token = csrf_for(client, settings)
    created = client.post(
        "/account/tokens",
        data={
            "name": "ci",
            "scopes": ["directory:read"],
            "expires_in_days": "30",
            "csrf_token": token,
        },
    )
    assert created.status_code == 200
    raw = re.search(r'data-testid="new-token">(cbt_[^<]+)<', created.text)
    assert raw is not None
    # Shown once: the account page lists it without the secret.
    listing = client.get("/account").text
    assert raw.group(1) not in listing
    assert "ci" in listing
    with make_client(client.app) as machine:  # type: ignore[arg-type]
        me = machine.get("/api/v1/me", headers={"authorization": f"Bearer {raw.group(1)}"})
        assert me.status_code == 200
        assert me.json()["username"] == user.username
        assert me.json()["scopes"] == ["directory:read"]

    too_wide = client.post(
        "/account/tokens",
        data={
            "name": "x",
            "scopes": ["users:manage"],
            "expires_in_days": "30",
            "csrf_token": token,
        },
    )
    assert too_wide.status_code == 403
    no_csrf = client.post("/account/tokens", data={"name": "x", "scopes": ["directory:read"]})
    assert no_csrf.status_code == 403

    token_id = re.search(r'data-token-id="(\d+)"', listing)
    assert token_id is not None
    revoked = client.post(f"/account/tokens/{token_id.group(1)}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    with make_client(client.app) as machine:  # type: ignore[arg-type]
        me = machine.get("/api/v1/me", headers={"authorization": f"Bearer {raw.group(1)}"})
        assert me.status_code == 401


def test_language_switch(client: TestClient, settings: Settings) -> None:
    token = csrf_for(client, settings)
    assert client.post("/language", data={"lang": "vi", "next": "/login"}).status_code == 403
    response = client.post(
        "/language", data={"lang": "vi", "next": "https://evil.example", "csrf_token": token}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith("cb_lang=")
    )
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    assert "max-age=31536000" in cookie.lower()
    ignored = client.post("/language", data={"lang": "xx", "next": "/login", "csrf_token": token})
    assert ignored.headers["location"] == "/login"
    assert "cb_lang=xx" not in ignored.headers.get("set-cookie", "")


def test_csrf_cookie_is_set_by_middleware(client: TestClient) -> None:
    client.get("/login")
    assert csrf.CSRF_COOKIE in client.cookies


def test_totp_enrolment_page_for_logged_in_user_and_disable(
    client: TestClient, settings: Settings, logged_in: Callable[..., User], db: Session
) -> None:
    user = logged_in()
    page = client.get("/account/totp")
    assert page.status_code == 200
    assert 'data-testid="totp-required"' not in page.text
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret is not None
    token = csrf_for(client, settings)
    step = totp.step_of(utc_now())
    first = totp.code_at_step(secret.group(1), step - 1)
    assert (
        client.post("/account/totp", data={"code": first, "csrf_token": token}).status_code == 303
    )
    assert client.get("/account").status_code == 200  # the session stays verified
    second = totp.code_at_step(secret.group(1), step)
    disabled = client.post("/account/totp/disable", data={"code": second, "csrf_token": token})
    assert disabled.status_code == 303
    db.expire_all()
    assert db.get(User, user.id).totp_enabled is False  # type: ignore[union-attr]
