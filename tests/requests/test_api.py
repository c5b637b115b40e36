"""The requests JSON API through the real application: problems, need-to-know, uploads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session

from crossborder.auth.models import User
from crossborder.auth.permissions import Principal
from crossborder.federation.identity import ensure_identity
from crossborder.settings import Settings
from tests.fixtures.web import TestClient, csrf_for, make_client, post_login
from tests.requests.conftest import World, preservation_draft


def draft_body(world: World, **overrides: Any) -> dict[str, Any]:
    return preservation_draft(world.au, **overrides).model_dump(mode="json")


def test_create_then_submit_then_acknowledge(
    world: World, as_user: Callable[[Principal], TestClient]
) -> None:
    linh, jack = as_user(world.linh), as_user(world.jack)
    created = linh.post("/api/v1/requests", json=draft_body(world))
    assert created.status_code == 201, created.text
    ref = created.json()["public_id"]
    assert created.json()["available_actions"] == ["submit", "withdraw"]
    submitted = linh.post(f"/api/v1/requests/{ref}/transitions", json={"action": "submit"})
    assert submitted.status_code == 200, submitted.text
    body = submitted.json()
    assert body["legal_basis"]["instrument_code"] == "AU-VN-POLICE-MOU"
    clock = body["clocks"][0]
    assert clock["due_at_sender_local"].endswith("+07:00")
    assert clock["due_at_receiver_local"][-6:] in {"+10:00", "+11:00"}
    ack = jack.post(f"/api/v1/requests/{ref}/transitions", json={"action": "acknowledge"})
    assert ack.status_code == 200
    assert ack.json()["status"] == "acknowledged"
    assert [e["action"] for e in ack.json()["timeline"]] == ["created", "submit", "acknowledge"]


def test_field_errors_are_422_problems_naming_the_fields(
    world: World, as_user: Callable[[Principal], TestClient]
) -> None:
    body = draft_body(world)
    body["details"] = {"custodian": "X", "mla_will_follow": True}
    response = as_user(world.linh).post("/api/v1/requests", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in response.json()["errors"]}
    assert "details.data_to_preserve" in fields


def test_illegal_transition_is_a_409_problem(
    world: World, as_user: Callable[[Principal], TestClient]
) -> None:
    linh = as_user(world.linh)
    ref = linh.post("/api/v1/requests", json=draft_body(world)).json()["public_id"]
    response = linh.post(f"/api/v1/requests/{ref}/transitions", json={"action": "execute"})
    assert response.status_code in (403, 409)
    assert response.headers["content-type"] == "application/problem+json"
    assert linh.get(f"/api/v1/requests/{ref}").json()["status"] == "draft"


def test_no_legal_basis_is_a_422_with_the_reasons(
    world: World, as_user: Callable[[Principal], TestClient]
) -> None:
    linh = as_user(world.linh)
    body = draft_body(world, receiver_authority_id=world.ma.id)
    ref = linh.post("/api/v1/requests", json=body).json()["public_id"]
    response = linh.post(f"/api/v1/requests/{ref}/transitions", json={"action": "submit"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/no-legal-basis")
    assert problem["errors"]


def test_third_authority_gets_404_everywhere(
    world: World, as_user: Callable[[Principal], TestClient]
) -> None:
    linh, yasmine = as_user(world.linh), as_user(world.yasmine)
    ref = linh.post("/api/v1/requests", json=draft_body(world)).json()["public_id"]
    linh.post(f"/api/v1/requests/{ref}/transitions", json={"action": "submit"})
    assert yasmine.get(f"/api/v1/requests/{ref}").status_code == 404
    assert yasmine.post(f"/api/v1/requests/{ref}/messages", json={"body": "x"}).status_code == 404
    assert (
        yasmine.post(
            f"/api/v1/requests/{ref}/transitions", json={"action": "acknowledge"}
        ).status_code
        == 404
    )
    assert yasmine.get("/api/v1/requests").json()["total"] == 0


def test_token_without_requests_scope_is_refused(
    world: World, app: FastAPI, db: Session, make_token: Callable[..., tuple[object, str]]
) -> None:
    user = db.get(User, world.linh.user_id)
    _t, raw = make_token(user, ["directory:read"])
    with make_client(app, headers={"Authorization": f"Bearer {raw}"}) as c:
        assert c.get("/api/v1/requests").status_code == 403


def test_upload_stream_download_and_export(
    world: World, as_user: Callable[[Principal], TestClient], settings: Settings
) -> None:
    ensure_identity(settings.data_dir)
    linh, jack = as_user(world.linh), as_user(world.jack)
    ref = linh.post("/api/v1/requests", json=draft_body(world)).json()["public_id"]
    linh.post(f"/api/v1/requests/{ref}/transitions", json={"action": "submit"})
    content = b"2026-10-14T02:40:00+07:00,203.0.113.45,51234\n" * 1000
    up = jack.post(
        f"/api/v1/requests/{ref}/attachments",
        params={"filename": "logs.csv"},
        content=content,
        headers={"Content-Type": "text/csv"},
    )
    assert up.status_code == 201, up.text
    att = up.json()
    assert att["sha256"] == hashlib.sha256(content).hexdigest()
    down = linh.get(f"/api/v1/requests/{ref}/attachments/{att['public_id']}")
    assert down.status_code == 200
    assert down.content == content
    assert down.headers["x-content-sha256"] == att["sha256"]
    export = linh.post(f"/api/v1/requests/{ref}/export")
    assert export.status_code == 200
    assert export.headers["content-type"] == "application/zip"
    assert export.content[:2] == b"PK"


def test_upload_over_the_limit_is_413_and_stores_nothing(
    world: World, as_user: Callable[[Principal], TestClient], settings: Settings
) -> None:
    settings.max_attachment_bytes = 1024
    linh = as_user(world.linh)
    ref = linh.post("/api/v1/requests", json=draft_body(world)).json()["public_id"]
    up = linh.post(
        f"/api/v1/requests/{ref}/attachments", params={"filename": "big.bin"}, content=b"x" * 5000
    )
    assert up.status_code == 413
    assert linh.get(f"/api/v1/requests/{ref}").json()["attachments"] == []


def test_auditor_reads_but_cannot_act(
    world: World,
    as_user: Callable[[Principal], TestClient],
    app: FastAPI,
    db: Session,
    settings: Settings,
) -> None:
    linh = as_user(world.linh)
    ref = linh.post("/api/v1/requests", json=draft_body(world)).json()["public_id"]
    linh.post(f"/api/v1/requests/{ref}/transitions", json={"action": "submit"})
    auditor = db.get(User, world.an.user_id)
    assert auditor is not None
    with make_client(app) as an:  # auditors get no API tokens: a browser session then
        assert post_login(an, settings, auditor.username).status_code == 303
        seen = an.get(f"/api/v1/requests/{ref}")
        assert seen.status_code == 200
        assert seen.json()["available_actions"] == []
        refused = an.post(
            f"/api/v1/requests/{ref}/messages",
            json={"body": "x"},
            headers={"X-CSRF-Token": csrf_for(an, settings)},
        )
        assert refused.status_code == 403
