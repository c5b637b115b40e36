"""The intelligence JSON API through the real application."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from stix2validator import ValidationOptions, validate_parsed_json

from crossborder.auth.models import ApiToken
from crossborder.auth.permissions import Principal
from crossborder.intel import bundles, service
from crossborder.intel.models import IntelObject
from tests.fixtures.web import TestClient
from tests.intel.conftest import Client, Scene
from tests.intel.factories import AMBER, CLEAR, GREEN, bundle, indicator, new_id, sco

STIX = "application/stix+json;version=2.1"


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def _post_bundle(client: TestClient, ref: str, body: bytes, media: str = STIX) -> httpx.Response:
    return client.post(
        f"/api/v1/intel/collections/{ref}/bundles", content=body, headers={"Content-Type": media}
    )


def test_collections_are_created_listed_and_granted(as_user: Client, scene: Scene) -> None:
    admin = as_user(scene.admin)
    made = admin.post("/api/v1/intel/collections", json={"title": "Phishing", "alias": "phish"})
    assert made.status_code == 201, made.text
    assert made.json()["alias"] == "phish"
    assert made.json()["owner_authority_id"] == scene.vn.id
    refused = as_user(scene.officer).post("/api/v1/intel/collections", json={"title": "Mine"})
    assert _problem(refused, 403)["detail"] == "this action needs the permission 'intel:manage'"
    _problem(admin.post("/api/v1/intel/collections", json={"title": "x", "alias": "phish"}), 409)
    _problem(admin.post("/api/v1/intel/collections", json={"title": ""}), 422)

    au = as_user(scene.au_officer)
    assert au.get("/api/v1/intel/collections").json() == {"items": []}
    granted = admin.post(
        "/api/v1/intel/collections/vn-feed/grants", json={"authority_id": scene.au.id}
    )
    assert granted.status_code == 201, granted.text
    [listed] = au.get("/api/v1/intel/collections").json()["items"]
    assert (listed["alias"], listed["can_read"], listed["can_write"]) == ("vn-feed", True, False)
    _problem(
        as_user(scene.au_admin).post(
            "/api/v1/intel/collections/vn-feed/grants", json={"authority_id": scene.au.id}
        ),
        404,
    )
    _problem(admin.post("/api/v1/intel/collections/vn-feed/grants", json={}), 422)


def test_import_a_bundle_then_export_it(as_user: Client, scene: Scene, db: Session) -> None:
    analyst = as_user(scene.analyst)
    objects = [
        indicator("198.51.100.30", marked=[CLEAR]),
        sco("ipv4-addr", "198.51.100.30", marked=[CLEAR]),
        indicator("198.51.100.31", marked=[AMBER]),
        {**indicator(), "id": "indicator--nope"},
    ]
    body = orjson.dumps(bundle(*objects))
    done = _post_bundle(analyst, "vn-feed", body)
    assert done.status_code == 200, done.text
    report = done.json()
    assert (report["total"], report["stored"], report["invalid"]) == (4, 3, 1)
    assert report["errors"][0].startswith("indicator--nope: id:")
    again = _post_bundle(analyst, scene.feed.public_id, body, "application/json").json()
    assert (again["stored"], again["already_present"], again["invalid"]) == (0, 3, 1)

    exported = analyst.get("/api/v1/intel/collections/vn-feed/bundle")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == STIX
    assert exported.headers["x-crossborder-left-out"] == "1"  # AMBER is not for the public
    data = exported.json()
    assert {o["id"] for o in data["objects"]} == {objects[0]["id"], objects[1]["id"], CLEAR}
    assert validate_parsed_json(data, ValidationOptions(version="2.1")).is_valid
    only = analyst.get(
        "/api/v1/intel/collections/vn-feed/bundle",
        params={"type": "indicator", "audience": "authority:AU-AFP"},
    ).json()
    assert {o["id"] for o in only["objects"]} == {objects[0]["id"], objects[2]["id"], CLEAR, AMBER}
    _problem(
        analyst.get("/api/v1/intel/collections/vn-feed/bundle", params={"audience": "mars"}), 422
    )
    _problem(as_user(scene.au_officer).get("/api/v1/intel/collections/vn-feed/bundle"), 404)
    _problem(_post_bundle(as_user(scene.officer), "vn-feed", body), 403)


def test_bad_bundles_are_problems(
    as_user: Client, scene: Scene, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyst = as_user(scene.analyst)
    good = orjson.dumps(bundle(indicator(marked=[GREEN])))
    _problem(_post_bundle(analyst, "vn-feed", good, "text/plain"), 415)
    assert "not JSON" in str(_problem(_post_bundle(analyst, "vn-feed", b"{oops"), 422)["detail"])
    not_bundle = orjson.dumps({"type": "indicator", "id": new_id("indicator")})
    _problem(_post_bundle(analyst, "vn-feed", not_bundle), 422)
    monkeypatch.setattr(bundles, "MAX_BUNDLE_BYTES", 100)
    _problem(_post_bundle(analyst, "vn-feed", good), 413)
    monkeypatch.undo()
    _problem(_post_bundle(analyst, "no-such-feed", good), 404)
    assert db.scalar(select(func.count()).select_from(IntelObject)) == 0


def test_a_partner_token_writes_its_inbox_and_reads_as_granted(
    db: Session,
    scene: Scene,
    partner: tuple[Principal, ApiToken, str],
    token_client: Callable[[str], TestClient],
) -> None:
    _principal, token, raw = partner
    inbox = service.create_collection(db, scene.admin, title="Acme inbox", alias="acme-inbox")
    service.grant(db, scene.admin, inbox, token_id=token.id, can_read=True, can_write=True)
    service.add_objects(db, scene.analyst, scene.feed, [indicator("192.0.2.40", marked=[AMBER])])
    client = token_client(raw)
    listed = client.get("/api/v1/intel/collections").json()["items"]
    assert [c["alias"] for c in listed] == ["acme-inbox"]
    body = orjson.dumps(bundle(indicator("192.0.2.41", marked=[GREEN])))
    assert _post_bundle(client, "acme-inbox", body).json()["stored"] == 1
    _problem(_post_bundle(client, "vn-feed", body), 404)
    service.grant(db, scene.admin, scene.feed, token_id=token.id, can_read=True, can_write=False)
    _problem(_post_bundle(client, "vn-feed", body), 403)
    exported = client.get(
        "/api/v1/intel/collections/vn-feed/bundle", params={"audience": "partner:someone"}
    )
    assert exported.status_code == 200
    assert exported.headers["x-crossborder-left-out"] == "1"  # AMBER: it may not pass it on
