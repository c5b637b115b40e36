"""The directory's JSON routes: thin over the service, errors as problems."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.audit.models import AuditEvent
from crossborder.auth.permissions import Principal, Role
from crossborder.directory.models import Authority, ContactPoint, LegalInstrument, State

Client = Callable[[Principal], TestClient]


def as_role(authority: Authority, role: Role) -> Principal:
    return Principal(
        user_id=1, username=role.value, authority_id=authority.id, roles=frozenset({role})
    )


@pytest.fixture
def admin_client(api_client: Client, local_authority: Authority) -> TestClient:
    return api_client(as_role(local_authority, Role.ADMINISTRATOR))


@pytest.fixture
def officer_client(api_client: Client, local_authority: Authority) -> TestClient:
    return api_client(as_role(local_authority, Role.OFFICER))


def afp(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "state": "AU",
        "name": "Australian Federal Police",
        "short_name": "AFP",
        "roles": ["police"],
        "languages": ["en"],
        "time_zone": "Australia/Sydney",
    }
    body.update(overrides)
    return body


def test_create_read_and_patch_an_authority(
    admin_client: TestClient, make_state: Callable[[str], State]
) -> None:
    make_state("AU")
    created = admin_client.post("/api/v1/directory/authorities", json=afp())
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["state"], body["version"]) == ("AU", 1)

    read = admin_client.get(f"/api/v1/directory/authorities/{body['id']}")
    assert read.json()["name"] == "Australian Federal Police"

    patched = admin_client.patch(
        f"/api/v1/directory/authorities/{body['id']}", json={"version": 1, "short_name": "AFP-HQ"}
    )
    assert patched.status_code == 200
    assert (patched.json()["short_name"], patched.json()["version"]) == ("AFP-HQ", 2)

    stale = admin_client.patch(
        f"/api/v1/directory/authorities/{body['id']}", json={"version": 1, "short_name": "late"}
    )
    assert stale.status_code == 409
    assert stale.headers["content-type"].startswith("application/problem+json")


def test_invalid_body_is_a_422_naming_the_field(
    admin_client: TestClient, make_state: Callable[[str], State], db: Session
) -> None:
    make_state("AU")
    response = admin_client.post("/api/v1/directory/authorities", json=afp(time_zone="Sydney"))
    assert response.status_code == 422
    assert "time_zone" in response.text
    unknown_state = admin_client.post("/api/v1/directory/authorities", json=afp(state="BR"))
    assert unknown_state.status_code == 422
    assert unknown_state.json()["errors"][0]["field"] == "state"
    assert db.scalar(select(Authority).where(Authority.short_name == "AFP")) is None


def test_officer_cannot_write(
    officer_client: TestClient, make_state: Callable[[str], State]
) -> None:
    make_state("AU")
    assert officer_client.post("/api/v1/directory/authorities", json=afp()).status_code == 403


def test_search_filters_and_pages(
    officer_client: TestClient, make_authority: Callable[..., Authority]
) -> None:
    make_authority("AU", name="Australian Federal Police", roles=["police"])
    make_authority("AU", name="Attorney-General's Department", roles=["central_authority_mla"])
    response = officer_client.get(
        "/api/v1/directory/authorities", params={"state": "AU", "role": "police"}
    )
    assert response.status_code == 200
    page = response.json()
    assert page["total"] == 1
    assert page["items"][0]["name"] == "Australian Federal Police"
    assert (
        officer_client.get("/api/v1/directory/authorities", params={"role": "sheriff"}).status_code
        == 422
    )
    assert (
        officer_client.get("/api/v1/directory/authorities", params={"limit": 1000}).status_code
        == 422
    )


def test_contact_points_with_local_time_and_audited_read(
    admin_client: TestClient,
    officer_client: TestClient,
    db: Session,
    make_authority: Callable[..., Authority],
) -> None:
    afp_row = make_authority("AU", name="AFP", time_zone="Australia/Sydney")
    created = admin_client.post(
        f"/api/v1/directory/authorities/{afp_row.id}/contact-points",
        json={"name": "24/7 desk", "is_desk": True, "is_24_7": True, "phone": "+61 2 6131 3000"},
    )
    assert created.status_code == 201, created.text
    listed = officer_client.get(f"/api/v1/directory/authorities/{afp_row.id}/contact-points")
    assert listed.status_code == 200
    [contact] = listed.json()
    assert contact["phone"] == "+61261313000"
    assert contact["availability"] == "24_7"
    assert contact["local_time"].endswith(("+10:00", "+11:00"))
    viewed = db.scalars(select(AuditEvent).where(AuditEvent.action == "directory.contacts.viewed"))
    assert [e.object_id for e in viewed] == [str(afp_row.id)]
    patched = admin_client.patch(
        f"/api/v1/directory/contact-points/{contact['id']}", json={"is_24_7": False}
    )
    assert patched.json()["availability"] in {"open", "closed"}
    assert db.get(ContactPoint, contact["id"]) is not None


def test_auditor_gets_403_on_contact_points(api_client: Client, local_authority: Authority) -> None:
    client = api_client(as_role(local_authority, Role.AUDITOR))
    response = client.get(f"/api/v1/directory/authorities/{local_authority.id}/contact-points")
    assert response.status_code == 403


def test_nodes(admin_client: TestClient) -> None:
    body = {"name": "au-node", "base_url": "https://node.afp.example", "fingerprint": "a" * 64}
    assert admin_client.post("/api/v1/directory/nodes", json=body).status_code == 201
    assert admin_client.post("/api/v1/directory/nodes", json=body).status_code == 409
    insecure = admin_client.post(
        "/api/v1/directory/nodes", json={**body, "base_url": "http://node.afp.example"}
    )
    assert insecure.status_code == 422
    assert [n["name"] for n in admin_client.get("/api/v1/directory/nodes").json()] == ["au-node"]


def test_instruments_parties_and_policy(
    admin_client: TestClient,
    officer_client: TestClient,
    make_state: Callable[[str], State],
    db: Session,
) -> None:
    make_state("VN")
    make_state("MA")
    mou = {
        "code": "VN-MA-TIP-MOU",
        "title": "MoU on trafficking in persons",
        "kind": "mou",
        "offences": ["TRAFFICKING_IN_PERSONS"],
        "channels": ["police"],
        "articles": {"police": "Art 3"},
        "conditions": [{"code": "ONLY_THIS_INVESTIGATION", "text": "Only this investigation."}],
    }
    assert admin_client.post("/api/v1/directory/instruments", json=mou).status_code == 201
    for state in ("VN", "MA"):
        put = admin_client.put(
            "/api/v1/directory/instruments/VN-MA-TIP-MOU/parties",
            json={"state": state, "status": "in_force"},
        )
        assert put.status_code == 200, put.text
    assert len(put.json()["parties"]) == 2
    listed = officer_client.get("/api/v1/directory/instruments").json()
    assert [i["code"] for i in listed] == ["VN-MA-TIP-MOU"]
    assert db.scalar(select(LegalInstrument.code)) == "VN-MA-TIP-MOU"

    query = {
        "sender_state": "VN",
        "receiver_state": "MA",
        "channel": "police",
        "offences": ["TRAFFICKING_IN_PERSONS"],
        "data_categories": ["subscriber"],
    }
    answer = officer_client.post("/api/v1/directory/policy/evaluate", json=query).json()
    assert [b["instrument_code"] for b in answer["bases"]] == ["VN-MA-TIP-MOU"]
    assert answer["bases"][0]["conditions"][0]["code"] == "ONLY_THIS_INVESTIGATION"

    fraud = officer_client.post(
        "/api/v1/directory/policy/evaluate", json={**query, "offences": ["THEFT_FRAUD"]}
    ).json()
    assert fraud["bases"] == []
    assert fraud["reasons"][0]["code"] == "OFFENCE_OUT_OF_SCOPE"
    assert fraud["reasons"][0]["subject"] == "THEFT_FRAUD"

    empty = officer_client.post("/api/v1/directory/policy/evaluate", json={**query, "offences": []})
    assert empty.status_code == 422


def test_states(admin_client: TestClient) -> None:
    assert admin_client.post("/api/v1/directory/states", json={"alpha2": "ma"}).status_code == 201
    states = admin_client.get("/api/v1/directory/states").json()
    assert {"alpha2": "MA", "alpha3": "MAR", "name": "Morocco"}.items() <= next(
        s for s in states if s["alpha2"] == "MA"
    ).items()
