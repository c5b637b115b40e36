"""The JSON API: bearer tokens, cookie sessions with the CSRF header, scopes, audit listing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.audit.models import AuditEvent
from crossborder.auth.models import ApiToken, User
from crossborder.auth.permissions import Role
from crossborder.core.clock import utc_now
from crossborder.settings import Settings
from tests.fixtures.web import TestClient, csrf_for

MakeUser = Callable[..., User]
MakeToken = Callable[..., tuple[ApiToken, str]]


def bearer(raw: str) -> dict[str, str]:
    return {"authorization": f"Bearer {raw}"}


def test_me_with_token(client: TestClient, make_user: MakeUser, make_token: MakeToken) -> None:
    user = make_user(roles=[Role.ANALYST])
    token, raw = make_token(user, ["directory:read", "policy:evaluate"])
    response = client.get("/api/v1/me", headers=bearer(raw))
    assert response.status_code == 200
    body = response.json()
    assert body["via"] == "token"
    assert body["token_id"] == token.id
    assert body["permissions"] == ["directory:read", "policy:evaluate"]
    assert body["roles"] == ["analyst"]


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer cbt_0000000000000000_" + "A" * 43],
)
def test_bad_credentials_are_401_problems(client: TestClient, header: str) -> None:
    response = client.get("/api/v1/me", headers={"authorization": header})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"


def test_no_credentials_is_401(client: TestClient) -> None:
    assert client.get("/api/v1/me").status_code == 401


def test_expired_and_revoked_tokens_are_401(
    client: TestClient, db: Session, make_user: MakeUser, make_token: MakeToken
) -> None:
    user = make_user()
    expired, expired_raw = make_token(user, ["directory:read"])
    expired.expires_at = utc_now() - timedelta(seconds=1)
    db.flush()
    assert client.get("/api/v1/me", headers=bearer(expired_raw)).status_code == 401
    revoked, revoked_raw = make_token(user, ["directory:read"])
    revoked.revoked_at = utc_now()
    db.flush()
    assert client.get("/api/v1/me", headers=bearer(revoked_raw)).status_code == 401


def test_token_scopes_narrower_than_roles_are_enforced(
    client: TestClient, make_user: MakeUser, make_token: MakeToken
) -> None:
    admin = make_user(roles=[Role.ADMINISTRATOR])
    _, narrow = make_token(admin, ["directory:read"])
    assert client.get("/api/v1/audit/events", headers=bearer(narrow)).status_code == 403
    _, wide = make_token(admin, ["audit:read"])
    assert client.get("/api/v1/audit/events", headers=bearer(wide)).status_code == 200
    _, no_tokens = make_token(admin, ["directory:read"])
    assert client.get("/api/v1/tokens", headers=bearer(no_tokens)).status_code == 403


def test_cookie_session_json_post_needs_csrf_header(
    client: TestClient, settings: Settings, logged_in: Callable[..., User]
) -> None:
    logged_in()
    body = {"name": "script", "scopes": ["directory:read"], "expires_in_days": 7}
    assert client.get("/api/v1/me").status_code == 200  # safe methods need no header
    assert client.post("/api/v1/tokens", json=body).status_code == 403
    wrong = client.post("/api/v1/tokens", json=body, headers={"x-csrf-token": "0" * 64})
    assert wrong.status_code == 403
    ok = client.post(
        "/api/v1/tokens", json=body, headers={"x-csrf-token": csrf_for(client, settings)}
    )
    assert ok.status_code == 201, ok.text
    created = ok.json()
    assert created["token"].startswith(f"cbt_{created['public_id']}_")
    listed = client.get("/api/v1/tokens").json()
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]
    assert "secret_hash" not in listed[0]
    delete = client.delete(
        f"/api/v1/tokens/{created['id']}", headers={"x-csrf-token": csrf_for(client, settings)}
    )
    assert delete.status_code == 204
    assert client.get("/api/v1/me", headers=bearer(created["token"])).status_code == 401


def test_token_api_refuses_scopes_beyond_permissions_and_token_minting(
    client: TestClient, settings: Settings, logged_in: Callable[..., User], make_token: MakeToken
) -> None:
    user = logged_in(roles=[Role.OFFICER])
    header = {"x-csrf-token": csrf_for(client, settings)}
    too_wide = {"name": "x", "scopes": ["audit:read"], "expires_in_days": 7}
    assert client.post("/api/v1/tokens", json=too_wide, headers=header).status_code == 403
    too_long = {"name": "x", "scopes": ["directory:read"], "expires_in_days": 366}
    assert client.post("/api/v1/tokens", json=too_long, headers=header).status_code == 422
    _, raw = make_token(user, ["tokens:manage-own"])
    body = {"name": "child", "scopes": ["tokens:manage-own"], "expires_in_days": 7}
    assert client.post("/api/v1/tokens", json=body, headers=bearer(raw)).status_code == 403


def test_cannot_delete_someone_elses_token(
    client: TestClient, make_user: MakeUser, make_token: MakeToken, db: Session
) -> None:
    alice, bob = make_user(), make_user()
    alice_token, _ = make_token(alice, ["directory:read"])
    _, bob_raw = make_token(bob, ["tokens:manage-own"])
    response = client.delete(f"/api/v1/tokens/{alice_token.id}", headers=bearer(bob_raw))
    assert response.status_code == 404
    db.refresh(alice_token)
    assert alice_token.revoked_at is None


def test_audit_listing_is_itself_audited(
    client: TestClient, db: Session, make_user: MakeUser, make_token: MakeToken
) -> None:
    officer = make_user(roles=[Role.OFFICER])
    # Auditors cannot mint tokens (no tokens:manage-own); an administrator's token reads here.
    admin = make_user(roles=[Role.ADMINISTRATOR])
    _, admin_raw = make_token(admin, ["audit:read"])
    response = client.get(
        "/api/v1/audit/events?limit=5&action=auth.token.created", headers=bearer(admin_raw)
    )
    assert response.status_code == 200
    events = response.json()
    assert events
    assert all(e["action"] == "auth.token.created" for e in events)
    assert "cbt_" not in json.dumps([e["details"] for e in events])
    _, officer_raw = make_token(officer, ["directory:read"])
    assert client.get("/api/v1/audit/events", headers=bearer(officer_raw)).status_code == 403
    viewed = list(
        db.scalars(
            select(AuditEvent).where(AuditEvent.action == "audit.viewed").order_by(AuditEvent.seq)
        )
    )
    assert [(e.actor_user_id, e.outcome) for e in viewed[-2:]] == [
        (admin.id, "ok"),
        (officer.id, "denied"),
    ]
