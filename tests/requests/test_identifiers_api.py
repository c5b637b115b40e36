"""The identifiers JSON API through the real application: lookups, sets, import, denials."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.audit.models import AuditEvent
from crossborder.auth.permissions import Principal
from crossborder.requests import service
from crossborder.selectors.models import IdentOccurrence
from tests.fixtures.web import TestClient
from tests.requests.conftest import World, preservation_draft

Client = Callable[[Principal], TestClient]


def _draft(db: Session, world: World, value: str) -> str:
    data = preservation_draft(
        world.au,
        identifiers=[
            {
                "kind": "ip",
                "value": value,
                "window_start": datetime(2026, 10, 14, tzinfo=UTC),
                "window_end": datetime(2026, 10, 15, tzinfo=UTC),
            }
        ],
    )
    return service.create_draft(db, data, actor=world.linh).public_id


def test_lookup_shows_own_hits_and_names_others(db: Session, world: World, as_user: Client) -> None:
    ref = _draft(db, world, "103.27.12.7:40000")
    linh = as_user(world.linh).get(
        "/api/v1/identifiers/lookup",
        params={"type": "ip", "value": "103.27.12.7", "port": 40000},
    )
    assert linh.status_code == 200, linh.text
    [value] = linh.json()["values"]
    assert [h["scope_id"] for h in value["hits"]] == [ref]
    assert value["hits"][0]["strength"] == "match"
    other = as_user(world.yasmine).get(
        "/api/v1/identifiers/lookup", params={"type": "ip", "value": "103.27.12.7"}
    )
    [seen] = other.json()["values"]
    assert seen["hits"] == []
    assert [(h["authority_id"], h["records"]) for h in seen["held_elsewhere"]] == [(world.vn.id, 1)]
    assert ref not in other.text
    assert "Ransomware" not in other.text


def test_request_identifiers_need_to_know(db: Session, world: World, as_user: Client) -> None:
    ref = _draft(db, world, "103.27.12.7")
    ok = as_user(world.linh).get(f"/api/v1/requests/{ref}/identifiers")
    assert ok.status_code == 200, ok.text
    assert [i["canonical"] for i in ok.json()["items"]] == ["103.27.12.7"]
    denied = as_user(world.yasmine).get(f"/api/v1/requests/{ref}/identifiers")
    assert denied.status_code == 404
    assert denied.headers["content-type"].startswith("application/problem+json")


def test_bad_lookups_are_problems(world: World, as_user: Client) -> None:
    client = as_user(world.linh)
    bad = client.get("/api/v1/identifiers/lookup", params={"type": "phone", "value": "banana"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    unknown = client.get("/api/v1/identifiers/lookup", params={"type": "warp", "value": "x"})
    assert unknown.status_code == 422
    wide = client.get("/api/v1/identifiers/lookup", params={"type": "ip", "value": "0.0.0.0/0"})
    assert wide.status_code == 422


def test_administrators_may_not_correlate(
    world: World, as_user: Client, make_principal: Callable[..., Principal]
) -> None:
    admin = make_principal("administrator", authority_id=world.vn.id)
    response = as_user(admin).get(
        "/api/v1/identifiers/lookup", params={"type": "ip", "value": "103.27.12.7"}
    )
    assert response.status_code == 403


def test_sets_and_csv_import(db: Session, world: World, as_user: Client) -> None:
    ref = _draft(db, world, "103.27.12.7")
    minh = as_user(world.minh)
    created = minh.post("/api/v1/identifier-sets", json={"name": "Seized phone"})
    assert created.status_code == 201, created.text
    set_id = created.json()["id"]
    csv_body = "type,value\nip,103.27.12.7\nphone,0912 345 678\n"
    imported = minh.post(
        f"/api/v1/identifier-sets/{set_id}/import",
        content=csv_body.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    assert imported.json() == {
        "rows": 2,
        "stored": 2,
        "invalid": 0,
        "known_elsewhere": 1,  # the IP is in the draft
        "errors": [],
    }
    detail = minh.get(f"/api/v1/identifier-sets/{set_id}").json()
    assert sorted(i["canonical"] for i in detail["items"]) == ["+84912345678", "103.27.12.7"]
    ip = next(i for i in detail["items"] if i["canonical"] == "103.27.12.7")
    assert [h["scope_id"] for h in ip["correlation"]["hits"]] == [ref]
    listed = minh.get("/api/v1/identifier-sets").json()["items"]
    assert [(s["id"], s["identifiers"]) for s in listed] == [(set_id, 2)]
    # Another authority cannot read or fill it.
    jack = as_user(world.jack)
    assert jack.get(f"/api/v1/identifier-sets/{set_id}").status_code == 404
    assert (
        jack.post(
            f"/api/v1/identifier-sets/{set_id}/import",
            content=csv_body.encode(),
            headers={"Content-Type": "text/csv"},
        ).status_code
        == 404
    )


def test_a_bad_csv_stores_nothing(db: Session, world: World, as_user: Client) -> None:
    minh = as_user(world.minh)
    set_id = minh.post("/api/v1/identifier-sets", json={"name": "x"}).json()["id"]
    response = minh.post(
        f"/api/v1/identifier-sets/{set_id}/import",
        content=b"type,value\nip,103.27.12.7\nimei,123\n",
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 422
    assert "line 3" in response.json()["detail"]
    assert db.scalar(select(IdentOccurrence).where(IdentOccurrence.record_id == set_id)) is None
    wrong_type = minh.post(
        f"/api/v1/identifier-sets/{set_id}/import",
        content=b"{}",
        headers={"Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 422


def test_local_warning_list_is_for_administrators(
    db: Session, world: World, as_user: Client, make_principal: Callable[..., Principal]
) -> None:
    admin = make_principal("administrator", authority_id=world.vn.id)
    body = {"type": "ip", "value": "103.27.12.0/24", "reason": "our office NAT"}
    assert (
        as_user(world.linh).post("/api/v1/identifiers/warninglists/local", json=body).status_code
        == 403
    )
    added = as_user(admin).post("/api/v1/identifiers/warninglists/local", json=body)
    assert added.status_code == 201, added.text
    listing = as_user(world.linh).get("/api/v1/identifiers/warninglists").json()
    [local] = listing["local"]
    assert (local["type"], local["value"]) == ("ip", "103.27.12.0/24")
    assert local["reason"] == "our office NAT"
    assert local["added_by"].startswith(admin.username)
    assert any(item["slug"] == "public-dns-v4" for item in listing["lists"])
    _draft(db, world, "103.27.12.7")
    found = as_user(world.linh).get(
        "/api/v1/identifiers/lookup", params={"type": "ip", "value": "103.27.12.7"}
    )
    assert found.json()["values"][0]["warnings"] == ["local"]
    removed = as_user(admin).delete(
        "/api/v1/identifiers/warninglists/local", params={"type": "ip", "value": "103.27.12.0/24"}
    )
    assert removed.status_code == 204
    assert db.scalars(
        select(AuditEvent.action).where(AuditEvent.action.like("identifiers.warning_%"))
    ).all() == ["identifiers.warning_added", "identifiers.warning_removed"]
