"""TAXII 2.1 conformance over HTTP: every endpoint, every error code, headers, paging, markings.

Section numbers (§) are those of the OASIS TAXII 2.1 specification (10 June 2021).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crossborder.app import body_limit
from crossborder.auth.models import ApiToken, User
from crossborder.auth.permissions import Principal
from crossborder.intel import service, stix, taxii
from crossborder.intel.models import IntelCollection, IntelObject, IntelStatus
from crossborder.settings import Settings
from tests.fixtures.web import TestClient, make_client
from tests.intel.conftest import Scene
from tests.intel.factories import AMBER, AMBER_STRICT, CLEAR, GREEN, RED, T0, T1, indicator, sdo

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"
ROOT = "/taxii2/api1/"
FIRST, LAST = "X-TAXII-Date-Added-First", "X-TAXII-Date-Added-Last"


Taxii = Callable[..., TestClient]


@pytest.fixture
def client_for(
    app: FastAPI, db: Session, make_token: Callable[..., tuple[ApiToken, str]]
) -> Iterator[Taxii]:
    """A TAXII client (Accept: TAXII 2.1) with a fresh API token of the principal's user."""
    clients: list[TestClient] = []

    def _client(who: Principal | str | None = None, **headers: str) -> TestClient:
        sent = {"Accept": TAXII}
        if isinstance(who, str):
            sent["Authorization"] = f"Bearer {who}"
        elif who is not None:
            user = db.get(User, who.user_id)
            assert user is not None
            _token, raw = make_token(user)
            sent["Authorization"] = f"Bearer {raw}"
        sent.update(headers)
        c = make_client(app, headers=sent)
        clients.append(c)
        return c

    yield _client
    for c in clients:
        c.close()


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    """Assert a TAXII answer (status and media type) and return its JSON body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == TAXII
    body: dict[str, Any] = response.json()
    return body


def error(response: Any, status: int) -> dict[str, Any]:
    """Assert a TAXII error message (§3.6.1) with this status."""
    body = ok(response, status)
    assert body["http_status"] == str(status)
    assert body["title"]
    assert isinstance(body.get("description"), str)
    return body


def url(collection: IntelCollection, tail: str = "") -> str:
    return f"{ROOT}collections/{collection.public_id}/{tail}"


def envelope(*objects: Any) -> bytes:
    return orjson.dumps({"objects": list(objects)})


def post(client: TestClient, collection: IntelCollection, *objects: Any) -> Any:
    return client.post(
        url(collection, "objects/"), content=envelope(*objects), headers={"Content-Type": TAXII}
    )


def store(db: Session, who: Principal, collection: IntelCollection, *objects: Any) -> None:
    status = service.add_objects(db, who, collection, list(objects))
    assert status.failure_count == 0, status.failures


def ids(body: dict[str, Any]) -> list[str]:
    return [o["id"] for o in body.get("objects", [])]


# --- discovery, API root, negotiation, authentication -----------------------------------------


def test_discovery_names_one_api_root_with_absolute_urls(client_for: Taxii, scene: Scene) -> None:
    body = ok(client_for(scene.officer).get("/taxii2/"))
    assert body["title"]
    assert body["api_roots"] == ["http://testserver/taxii2/api1/"]
    assert body["default"] == "http://testserver/taxii2/api1/"
    assert {"description", "contact"} <= set(body)


def test_api_root_information(client_for: Taxii, scene: Scene) -> None:
    body = ok(client_for(scene.officer).get(ROOT))
    assert body["versions"] == [TAXII]
    assert body["max_content_length"] == taxii.MAX_CONTENT_LENGTH > 1_000_000
    assert body["title"]


@pytest.mark.parametrize(
    "path",
    [
        "/taxii2",
        "/taxii2/api1",
        "/taxii2/api1/collections",
    ],
)
def test_endpoints_answer_without_their_trailing_slash(
    client_for: Taxii, scene: Scene, path: str
) -> None:
    ok(client_for(scene.officer).get(path))


def test_unknown_api_root_path_and_method_are_taxii_errors(client_for: Taxii, scene: Scene) -> None:
    client = client_for(scene.analyst)
    error(client.get("/taxii2/api2/"), 404)
    error(client.get("/taxii2/api2/collections/"), 404)
    error(client.get(f"{ROOT}nothing/here/"), 404)
    put = client.put(url(scene.feed, "objects/"), content=b"{}")
    error(put, 405)
    assert put.headers["allow"] == "GET, POST"
    error(client.post(url(scene.feed)), 405)


@pytest.mark.parametrize(
    "accept",
    [
        TAXII,
        "application/taxii+json",  # §1.6.8.2: no version = the latest the server supports
        "application/taxii+json; version=2.1",
        "Application/TAXII+json;version=2.1",
        "application/json, application/taxii+json;version=2.1;q=0.5",
        f"{TAXII},{STIX}",  # what §5.3 shows for the manifest
    ],
)
def test_accept_headers_naming_taxii_21_are_served(
    client_for: Taxii, scene: Scene, accept: str
) -> None:
    ok(client_for(scene.officer, Accept=accept).get(ROOT))


@pytest.mark.parametrize(
    "accept",
    [
        "",
        "*/*",
        "application/json",
        "application/taxii+json;version=2.0",
        "application/vnd.oasis.taxii+json; version=2.0",
        "application/taxii+json;version=2.1;q=0",
        STIX,
    ],
)
def test_other_accept_headers_are_406(client_for: Taxii, scene: Scene, accept: str) -> None:
    client = client_for(scene.analyst, Accept=accept)
    for response in (
        client.get("/taxii2/"),
        client.get(url(scene.feed, "objects/")),
        post(client, scene.feed, indicator()),
    ):
        error(response, 406)


def test_missing_or_bad_credentials_are_401_with_a_challenge(
    client_for: Taxii, scene: Scene
) -> None:
    for client in (
        client_for(None),
        client_for("cbt_0000000000000000_" + "a" * 43),
        client_for(None, Authorization="Bearer"),
        client_for(None, Authorization="Digest abc"),
        client_for(None, Authorization="Basic !!!"),
    ):
        for response in (client.get("/taxii2/"), client.get(url(scene.feed, "objects/"))):
            error(response, 401)
            assert "Bearer" in response.headers["www-authenticate"]
            assert "Basic" in response.headers["www-authenticate"]


def test_token_works_as_bearer_token_scheme_and_basic_password(
    client_for: Taxii,
    scene: Scene,
    db: Session,
    make_token: Callable[..., tuple[ApiToken, str]],
) -> None:
    user = db.get(User, scene.officer.user_id)
    assert user is not None
    _token, raw = make_token(user)
    basic = base64.b64encode(f"whoever:{raw}".encode()).decode()
    for header in (f"Bearer {raw}", f"Token {raw}", f"Basic {basic}"):
        ok(client_for(None, Authorization=header).get(ROOT))
    # A user's own password is not a TAXII credential (it has a second factor).
    password = base64.b64encode(f"{user.username}:correct horse battery staple".encode())
    error(client_for(None, Authorization=f"Basic {password.decode()}").get(ROOT), 401)


def test_session_cookies_do_not_authenticate_taxii(client_for: Taxii, scene: Scene) -> None:
    error(client_for(None, Cookie="cb_session=whatever").get("/taxii2/"), 401)


# --- collections --------------------------------------------------------------------------------


def test_collections_say_what_the_requester_may_do(
    client_for: Taxii, scene: Scene, db: Session
) -> None:
    def listed(who: Principal) -> dict[str, Any]:
        body = ok(client_for(who).get(f"{ROOT}collections/"))
        return {c["id"]: c for c in body.get("collections", [])}

    analyst = listed(scene.analyst)[scene.feed.public_id]
    assert (analyst["can_read"], analyst["can_write"]) == (True, True)
    assert analyst["media_types"] == [STIX]
    assert analyst["title"] == "VN ransomware feed"
    assert analyst["alias"] == "vn-feed"
    officer = listed(scene.officer)[scene.feed.public_id]
    assert (officer["can_read"], officer["can_write"]) == (True, False)
    # Not shared: the collections resource is empty (§5.1.1: no empty list).
    assert ok(client_for(scene.au_officer).get(f"{ROOT}collections/")) == {}
    service.grant(
        db, scene.admin, scene.feed, authority_id=scene.au.id, can_read=True, can_write=True
    )
    au = listed(scene.au_officer)[scene.feed.public_id]
    assert (au["can_read"], au["can_write"]) == (True, False)  # officers hold no intel:write
    au = listed(scene.au_analyst)[scene.feed.public_id]
    assert (au["can_read"], au["can_write"]) == (True, True)


def test_one_collection_by_id_or_alias(client_for: Taxii, scene: Scene) -> None:
    client = client_for(scene.officer)
    by_id = ok(client.get(url(scene.feed)))
    assert by_id["id"] == scene.feed.public_id
    assert (by_id["can_read"], by_id["can_write"]) == (True, False)
    assert ok(client.get(f"{ROOT}collections/vn-feed/"))["id"] == scene.feed.public_id
    error(client.get(f"{ROOT}collections/9b1f2d0e-0000-4000-8000-000000000000/"), 404)


def test_a_collection_not_shared_is_404_everywhere(client_for: Taxii, scene: Scene) -> None:
    stranger = client_for(scene.au_analyst)
    for response in (
        stranger.get(url(scene.feed)),
        stranger.get(url(scene.feed, "objects/")),
        stranger.get(url(scene.feed, "manifest/")),
        stranger.get(url(scene.feed, "objects/indicator--0f8ba2e6-6c1b-4b3f-9bd0-3c1e3a1d5d11/")),
        post(stranger, scene.feed, indicator()),
        stranger.delete(
            url(scene.feed, "objects/indicator--0f8ba2e6-6c1b-4b3f-9bd0-3c1e3a1d5d11/")
        ),
    ):
        error(response, 404)


def test_missing_rights_are_403(
    client_for: Taxii, scene: Scene, db: Session, make_user: Callable[..., User]
) -> None:
    officer = client_for(scene.officer)  # reads, may not write
    error(post(officer, scene.feed, indicator()), 403)
    # A grant to write only: reading is 403 (§5.4), and deleting needs both (§5.7).
    service.grant(
        db, scene.admin, scene.feed, authority_id=scene.au.id, can_read=False, can_write=True
    )
    writer = client_for(scene.au_analyst)
    body = ok(writer.get(url(scene.feed)))
    assert (body["can_read"], body["can_write"]) == (False, True)
    error(writer.get(url(scene.feed, "objects/")), 403)
    error(writer.get(url(scene.feed, "manifest/")), 403)
    status = ok(post(writer, scene.feed, indicator()), 202)
    assert status["success_count"] == 1
    target = status["successes"][0]["id"]
    error(writer.get(url(scene.feed, f"objects/{target}/")), 403)
    error(writer.get(url(scene.feed, f"objects/{target}/versions/")), 403)
    error(writer.delete(url(scene.feed, f"objects/{target}/")), 403)
    error(officer.delete(url(scene.feed, f"objects/{target}/")), 403)


def test_tokens_narrowed_to_read_cannot_write(
    client_for: Taxii,
    scene: Scene,
    db: Session,
    make_token: Callable[..., tuple[ApiToken, str]],
) -> None:
    user = db.get(User, scene.analyst.user_id)
    assert user is not None
    _token, raw = make_token(user, ["intel:read"])
    client = client_for(raw)
    body = ok(client.get(url(scene.feed)))
    assert (body["can_read"], body["can_write"]) == (True, False)
    error(post(client, scene.feed, indicator()), 403)


# --- adding objects and the status resource ---------------------------------------------------


def test_post_objects_is_202_with_a_status_that_can_be_read_back(
    client_for: Taxii, scene: Scene
) -> None:
    client = client_for(scene.analyst)
    first, second = indicator("198.51.100.1"), indicator("198.51.100.2")
    status = ok(post(client, scene.feed, first, second), 202)
    assert status["status"] == "complete"
    assert (status["total_count"], status["success_count"]) == (2, 2)
    assert (status["failure_count"], status["pending_count"]) == (0, 0)
    assert status["successes"] == [
        {"id": first["id"], "version": T0},
        {"id": second["id"], "version": T0},
    ]
    assert "failures" not in status
    assert "pendings" not in status
    assert status["request_timestamp"].endswith("Z")
    assert stix.parse_timestamp(status["request_timestamp"]) is not None
    again = ok(client.get(f"{ROOT}status/{status['id']}/"))
    assert again == status
    ok(client.get(f"{ROOT}status/{status['id']}"))  # as taxii2-client asks for it
    # Another reader of the collection sees the status; a stranger does not.
    ok(client_for(scene.officer).get(f"{ROOT}status/{status['id']}/"))
    error(client_for(scene.au_officer).get(f"{ROOT}status/{status['id']}/"), 404)
    error(client.get(f"{ROOT}status/6e0b7d3f-8e0e-4d43-9f53-1c4e8b2b0a11/"), 404)


def test_status_counts_invalid_objects_and_duplicates_as_failures(
    client_for: Taxii, scene: Scene, db: Session
) -> None:
    client = client_for(scene.analyst)
    kept = indicator("203.0.113.7")
    ok(post(client, scene.feed, kept), 202)
    fresh = indicator("203.0.113.8")
    newer = {**kept, "modified": T1, "name": "updated"}
    bad_id = {**indicator(), "id": "indicator--not-a-uuid"}
    no_type = {"id": "x"}
    status = ok(post(client, scene.feed, kept, fresh, fresh, bad_id, no_type, 42, newer), 202)
    assert status["total_count"] == 7
    assert status["success_count"] == 2  # fresh and the new version of kept
    assert status["failure_count"] == 5
    assert status["pending_count"] == 0
    assert len(status["successes"]) == 2
    assert len(status["failures"]) == 5
    assert {(s["id"], s["version"]) for s in status["successes"]} == {
        (fresh["id"], T0),
        (kept["id"], T1),
    }
    messages = [f["message"] for f in status["failures"]]
    assert messages.count(service.ALREADY_PRESENT) == 2  # kept again, fresh twice in one batch
    assert all(m for m in messages)
    assert all(f.get("version") is not None or "version" not in f for f in status["failures"])
    stored = db.scalar(
        select(func.count())
        .select_from(IntelObject)
        .where(IntelObject.collection_id == scene.feed.id)
    )
    assert stored == 3


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 415),
        ("application/stix+json;version=2.1", 415),
        ("application/taxii+json;version=2.0", 415),
        ("text/plain", 415),
        ("", 415),
        ("application/taxii+json", 202),  # §1.6.8.2: no version = 2.1
        ("application/taxii+json; version=2.1", 202),
    ],
)
def test_post_content_type(client_for: Taxii, scene: Scene, content_type: str, status: int) -> None:
    response = client_for(scene.analyst).post(
        url(scene.feed, "objects/"),
        content=envelope(indicator()),
        headers={"Content-Type": content_type},
    )
    if status == 202:
        ok(response, 202)
    else:
        error(response, status)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe{}",
        b"[]",
        b'"objects"',
        b"{}",
        b'{"objects": []}',
        b'{"objects": {"type": "indicator"}}',
        b'{"type": "bundle", "id": "bundle--1", "object": []}',
        b"",
    ],
)
def test_post_that_is_not_an_envelope_is_422_and_stores_nothing(
    client_for: Taxii, scene: Scene, db: Session, body: bytes
) -> None:
    response = client_for(scene.analyst).post(
        url(scene.feed, "objects/"), content=body, headers={"Content-Type": TAXII}
    )
    error(response, 422)
    assert db.scalar(select(func.count()).select_from(IntelStatus)) == 0


def test_oversized_bodies_are_413_and_store_nothing(
    client_for: Taxii, scene: Scene, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(taxii, "MAX_CONTENT_LENGTH", 2_000)
    client = client_for(scene.analyst)
    big = envelope(*(indicator(f"192.0.2.{i}") for i in range(20)))
    assert len(big) > 2_000
    error(post(client, scene.feed, *(indicator(f"192.0.2.{i}") for i in range(20))), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for start in range(0, len(big), 500):
            yield big[start : start + 500]

    streamed = client.post(
        url(scene.feed, "objects/"), content=chunks(), headers={"Content-Type": TAXII}
    )
    error(streamed, 413)
    assert db.scalar(select(func.count()).select_from(IntelObject)) == 0
    assert ok(client.get(ROOT))["max_content_length"] == 2_000
    ok(post(client, scene.feed, indicator()), 202)


def test_bodies_over_the_generic_limit_but_under_max_content_length_are_accepted(
    client_for: Taxii, scene: Scene, settings: Settings
) -> None:
    path = url(scene.feed, "objects/")
    if body_limit(settings, path) is not None:
        pytest.skip("app.body_limit does not exempt /taxii2/ yet")
    objects = [indicator(f"10.{i // 250}.{i % 250}.1", description="x" * 600) for i in range(2000)]
    data = envelope(*objects)
    assert settings.max_body_bytes < len(data) < taxii.MAX_CONTENT_LENGTH
    status = ok(post(client_for(scene.analyst), scene.feed, *objects), 202)
    assert status["success_count"] == 2000


def test_a_database_failure_half_way_stores_nothing(
    client_for: Taxii, scene: Scene, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(service, "_index", broken)
    response = post(client_for(scene.analyst), scene.feed, indicator(), indicator("192.0.2.9"))
    error(response, 500)
    assert "disk" not in response.text  # exception text may carry protected data
    assert db.scalar(select(func.count()).select_from(IntelObject)) == 0
    assert db.scalar(select(func.count()).select_from(IntelStatus)) == 0


# --- reading: objects, manifest, one object, versions ----------------------------------------


@pytest.fixture
def seven(db: Session, scene: Scene) -> list[dict[str, Any]]:
    """Seven objects added one by one: 5 indicators, a malware, and a new version of the first."""
    objects = [indicator(f"198.51.100.{i}") for i in range(5)]
    objects.append(sdo("malware", name="LockBit", is_family=True))
    objects.append({**objects[0], "modified": T1, "name": "first, updated"})
    for obj in objects:
        store(db, scene.analyst, scene.feed, obj)
    return objects


def test_get_objects_envelope_and_date_headers(
    client_for: Taxii, scene: Scene, seven: list[dict[str, Any]]
) -> None:
    client = client_for(scene.officer)
    response = client.get(url(scene.feed, "objects/"))
    body = ok(response)
    assert body["more"] is False
    assert "next" not in body
    # The latest version of each object, in the order they were added (§3.3, §3.4 version).
    assert ids(body) == [o["id"] for o in seven[1:]]
    assert body["objects"][-1]["modified"] == T1
    manifest = ok(client.get(url(scene.feed, "manifest/")))["objects"]
    assert response.headers[FIRST] == manifest[0]["date_added"]
    assert response.headers[LAST] == manifest[-1]["date_added"]
    for header in (FIRST, LAST):
        assert len(response.headers[header]) == len("2026-03-01T10:00:00.000000Z")


def test_empty_collection_is_an_empty_envelope(client_for: Taxii, scene: Scene) -> None:
    response = client_for(scene.officer).get(url(scene.feed, "objects/"))
    assert ok(response) == {"more": False}
    assert FIRST not in response.headers


def test_manifest_records(client_for: Taxii, scene: Scene, seven: list[dict[str, Any]]) -> None:
    response = client_for(scene.officer).get(
        url(scene.feed, "manifest/"), params={"match[version]": "all"}
    )
    body = ok(response)
    records = body["objects"]
    assert [r["id"] for r in records] == [o["id"] for o in seven]
    assert all(set(r) == {"id", "date_added", "version", "media_type"} for r in records)
    assert all(r["media_type"] == STIX for r in records)
    assert [r["version"] for r in records] == [T0] * 6 + [T1]
    dates = [r["date_added"] for r in records]
    assert dates == sorted(dates)
    assert len(set(dates)) == 7
    assert response.headers[FIRST] == dates[0]
    assert response.headers[LAST] == dates[-1]


def test_paging_with_next_across_pages(
    client_for: Taxii, scene: Scene, seven: list[dict[str, Any]]
) -> None:
    client = client_for(scene.officer)
    seen: list[str] = []
    params: dict[str, str] = {"limit": "2", "match[version]": "all"}
    pages = 0
    while True:
        response = client.get(url(scene.feed, "objects/"), params=params)
        body = ok(response)
        pages += 1
        assert len(body.get("objects", [])) <= 2
        seen += ids(body)
        if not body["more"]:
            assert "next" not in body
            break
        params = {"limit": "2", "match[version]": "all", "next": body["next"]}
    assert pages == 4
    assert seen == [o["id"] for o in seven]
    # The manifest pages the same way.
    first = ok(client.get(url(scene.feed, "manifest/"), params={"limit": "3"}))
    assert first["more"] is True
    assert len(first["objects"]) == 3
    rest = ok(
        client.get(url(scene.feed, "manifest/"), params={"limit": "3", "next": first["next"]})
    )
    assert [r["id"] for r in first["objects"] + rest["objects"]] == [o["id"] for o in seven[1:]]


def test_next_with_other_filters_or_garbage_is_400(
    client_for: Taxii, scene: Scene, seven: list[dict[str, Any]]
) -> None:
    client = client_for(scene.officer)
    first = ok(
        client.get(url(scene.feed, "objects/"), params={"limit": "2", "match[type]": "indicator"})
    )
    token = first["next"]
    # The same filters with another limit are fine (as_pages may shrink it).
    ok(
        client.get(
            url(scene.feed, "objects/"),
            params={"limit": "3", "match[type]": "indicator", "next": token},
        )
    )
    for params in (
        {"next": token},
        {"next": token, "match[type]": "malware"},
        {"next": token, "match[type]": "indicator", "added_after": T0},
        {"next": "garbage", "match[type]": "indicator"},
        {"next": token + "x", "match[type]": "indicator"},
    ):
        error(client.get(url(scene.feed, "objects/"), params=params), 400)


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "limit=",
        "limit=%C2%B2",
        "limit=2&limit=3",
        "added_after=yesterday",
        "added_after=2026-03-01",
        "added_after=" + T0 + "&added_after=" + T1,
        "match[version]=newest",
        "match[version]=all,last",
        "match[version]=last,last",
        "match[type]=",
        "match[type]=indicator,,malware",
        "match[type]=indicator&match[type]=malware",
        "match[spec_version]=two",
        "next=",
    ],
)
def test_malformed_filters_are_400(client_for: Taxii, scene: Scene, query: str) -> None:
    client = client_for(scene.officer)
    error(client.get(url(scene.feed, "objects/") + "?" + query), 400)
    error(client.get(url(scene.feed, "manifest/") + "?" + query), 400)


def test_a_limit_above_the_maximum_is_capped(
    client_for: Taxii, scene: Scene, seven: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(scene.officer)
    body = ok(client.get(url(scene.feed, "objects/"), params={"limit": "99999999999999999999"}))
    assert len(body["objects"]) == 6
    assert body["more"] is False
    assert ok(client.get(url(scene.feed, "objects/"), params={"limit": "0001"}))["more"] is True


def test_added_after_continues_from_the_last_date_header(
    client_for: Taxii, scene: Scene, seven: list[dict[str, Any]]
) -> None:
    client = client_for(scene.officer)
    first = client.get(url(scene.feed, "objects/"), params={"limit": "4", "match[version]": "all"})
    assert ok(first)["more"] is True
    rest = ok(
        client.get(
            url(scene.feed, "objects/"),
            params={"added_after": first.headers[LAST], "match[version]": "all"},
        )
    )
    assert ids(ok(first)) + ids(rest) == [o["id"] for o in seven]
    later = ok(
        client.get(url(scene.feed, "objects/"), params={"added_after": "2999-01-01T00:00:00Z"})
    )
    assert later == {"more": False}


def test_match_filters(client_for: Taxii, scene: Scene, seven: list[dict[str, Any]]) -> None:
    client = client_for(scene.officer)

    def get(**params: str) -> list[dict[str, Any]]:
        body = ok(
            client.get(
                url(scene.feed, "objects/"),
                params={
                    k.replace("_", "[", 1) + "]" if k.startswith("match_") else k: v
                    for k, v in params.items()
                },
            )
        )
        return list(body.get("objects", []))

    assert [o["type"] for o in get(match_type="malware")] == ["malware"]
    assert len(get(match_type="indicator,malware")) == 6
    assert get(match_type="campaign") == []  # §3.4.1: STIX types never an error
    wanted = f"{seven[1]['id']},{seven[2]['id']}"
    assert [o["id"] for o in get(match_id=wanted)] == [seven[1]["id"], seven[2]["id"]]
    first_id = seven[0]["id"]
    assert [o["modified"] for o in get(match_id=first_id)] == [T1]  # default: last
    assert [o["modified"] for o in get(match_id=first_id, match_version="first")] == [T0]
    assert [o["modified"] for o in get(match_id=first_id, match_version="all")] == [T0, T1]
    assert [o["modified"] for o in get(match_id=first_id, match_version="first,last")] == [T0, T1]
    assert [o["modified"] for o in get(match_id=first_id, match_version=T0)] == [T0]
    assert [o["modified"] for o in get(match_id=first_id, match_version=f"{T0},{T1}")] == [T0, T1]
    assert get(match_id=first_id, match_version="2020-01-01T00:00:00.000Z") == []
    assert len(get(match_spec_version="2.1")) == 6
    assert get(match_spec_version="2.0") == []
    assert len(get(match_unknown="whatever")) == 6  # §3.4: unknown fields may be ignored


def test_get_one_object(client_for: Taxii, scene: Scene, seven: list[dict[str, Any]]) -> None:
    client = client_for(scene.officer)
    first_id = seven[0]["id"]
    response = client.get(url(scene.feed, f"objects/{first_id}/"))
    body = ok(response)
    assert [o["modified"] for o in body["objects"]] == [T1]
    assert response.headers[FIRST] == response.headers[LAST]
    both = ok(client.get(url(scene.feed, f"objects/{first_id}/"), params={"match[version]": "all"}))
    assert [o["modified"] for o in both["objects"]] == [T0, T1]
    paged = ok(
        client.get(
            url(scene.feed, f"objects/{first_id}/"), params={"match[version]": "all", "limit": "1"}
        )
    )
    assert paged["more"] is True
    assert len(paged["objects"]) == 1
    # There, but the filters leave it out: an empty envelope (§5.6), not 404.
    empty = client.get(
        url(scene.feed, f"objects/{first_id}/"),
        params={"match[version]": "2020-01-01T00:00:00.000Z"},
    )
    assert ok(empty) == {"more": False}
    error(
        client.get(url(scene.feed, "objects/indicator--0f8ba2e6-6c1b-4b3f-9bd0-3c1e3a1d5d11/")), 404
    )
    error(client.get(url(scene.feed, "objects/not-an-id/")), 404)


def test_object_versions(client_for: Taxii, scene: Scene, seven: list[dict[str, Any]]) -> None:
    client = client_for(scene.officer)
    response = client.get(url(scene.feed, f"objects/{seven[0]['id']}/versions/"))
    body = ok(response)
    assert body == {"more": False, "versions": [T0, T1]}
    assert response.headers[FIRST] < response.headers[LAST]
    one = ok(client.get(url(scene.feed, f"objects/{seven[1]['id']}/versions")))
    assert one["versions"] == [T0]
    paged = ok(
        client.get(url(scene.feed, f"objects/{seven[0]['id']}/versions/"), params={"limit": "1"})
    )
    assert paged["more"] is True
    assert paged["versions"] == [T0]
    rest = ok(
        client.get(
            url(scene.feed, f"objects/{seven[0]['id']}/versions/"),
            params={"limit": "1", "next": paged["next"]},
        )
    )
    assert rest["versions"] == [T1]
    assert rest["more"] is False
    error(
        client.get(
            url(scene.feed, "objects/indicator--0f8ba2e6-6c1b-4b3f-9bd0-3c1e3a1d5d11/versions/")
        ),
        404,
    )
    error(
        client.get(url(scene.feed, f"objects/{seven[0]['id']}/versions/"), params={"limit": "0"}),
        400,
    )


def test_every_read_is_audited_with_what_was_shown(
    client_for: Taxii, scene: Scene, seven: list[dict[str, Any]], db: Session
) -> None:
    from crossborder.audit.models import AuditEvent

    client = client_for(scene.officer)
    page = ok(client.get(url(scene.feed, "objects/"), params={"limit": "2"}))
    ok(client.get(url(scene.feed, "manifest/"), params={"limit": "1"}))
    ok(client.get(url(scene.feed, f"objects/{seven[0]['id']}/")))
    ok(client.get(url(scene.feed, f"objects/{seven[0]['id']}/versions/")))
    db.expire_all()
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "intel.read").order_by(AuditEvent.seq)
    ).all()
    assert [e.details["via"] for e in events] == [
        "taxii",
        "taxii manifest",
        "taxii",
        "taxii versions",
    ]
    assert events[0].details["ids"] == [o["id"] for o in page["objects"]]
    assert events[0].details["objects"] == 2
    assert {e.object_id for e in events} == {scene.feed.public_id}


def test_delete_an_object(client_for: Taxii, scene: Scene, seven: list[dict[str, Any]]) -> None:
    client = client_for(scene.analyst)
    target = seven[0]["id"]
    missing = "2020-01-01T00:00:00.000Z"
    error(
        client.delete(url(scene.feed, f"objects/{target}/"), params={"match[version]": missing}),
        404,
    )
    error(client.delete(url(scene.feed, f"objects/{target}/"), params={"match[version]": "x"}), 400)
    response = client.delete(url(scene.feed, f"objects/{target}/"), params={"match[version]": T1})
    assert response.status_code == 200
    left = ok(client.get(url(scene.feed, f"objects/{target}/versions/")))
    assert left["versions"] == [T0]  # only the selected version went
    response = client.delete(url(scene.feed, f"objects/{target}/"))
    assert response.status_code == 200
    assert response.headers["content-type"] == TAXII
    error(client.get(url(scene.feed, f"objects/{target}/")), 404)
    error(client.get(url(scene.feed, f"objects/{target}/versions/")), 404)
    manifest = ok(client.get(url(scene.feed, "manifest/"), params={"match[version]": "all"}))
    assert target not in [r["id"] for r in manifest["objects"]]
    error(client.delete(url(scene.feed, f"objects/{target}/")), 404)
    assert (
        client.delete(
            url(scene.feed, f"objects/{seven[1]['id']}/"), params={"match[version]": "all"}
        ).status_code
        == 200
    )


# --- markings: an object the requester may not read is never returned ------------------------


def _everything(client: TestClient, collection: IntelCollection) -> set[str]:
    """Every id the requester can learn of through objects, manifest and paging."""
    found: set[str] = set()
    for tail in ("objects/", "manifest/"):
        params: dict[str, str] = {"match[version]": "all", "limit": "1"}
        while True:
            body = ok(client.get(url(collection, tail), params=params))
            found |= set(ids(body))
            if not body["more"]:
                break
            params = {**params, "next": body["next"]}
    return found


def test_markings_decide_what_each_reader_gets(
    client_for: Taxii,
    scene: Scene,
    db: Session,
    partner: tuple[Principal, ApiToken, str],
) -> None:
    _partner_principal, partner_token, partner_raw = partner
    service.grant(
        db, scene.admin, scene.feed, authority_id=scene.au.id, can_read=True, can_write=False
    )
    service.grant(
        db, scene.admin, scene.feed, token_id=partner_token.id, can_read=True, can_write=False
    )
    for_au = stix.handling_marking(codes=("H1",), recipients=(scene.au.id,))
    for_partner = stix.handling_marking(
        partner_recipients=(service.partner_name(partner_token.id),)
    )
    clear, green, amber = (
        indicator(f"192.0.2.{i}", marked=[m]) for i, m in enumerate((CLEAR, GREEN, AMBER))
    )
    strict = indicator("192.0.2.10", marked=[AMBER_STRICT])
    red = indicator("192.0.2.11", marked=[RED])
    red_au = indicator("192.0.2.12", marked=[RED, for_au["id"]])
    red_partner = indicator("192.0.2.13", marked=[RED, for_partner["id"]])
    unmarked = indicator("192.0.2.14")  # no TLP: read as AMBER
    objects = [clear, green, amber, strict, red, red_au, red_partner, unmarked]
    status = ok(post(client_for(scene.analyst), scene.feed, for_au, for_partner, *objects), 202)
    assert status["success_count"] == 10

    everyone = {o["id"] for o in (clear, green, amber, unmarked)}
    definitions = {for_au["id"], for_partner["id"]}
    assert _everything(client_for(scene.officer), scene.feed) == (
        everyone | definitions | {strict["id"], red["id"], red_au["id"], red_partner["id"]}
    )  # the originating authority reads all of its own
    au_sees = _everything(client_for(scene.au_officer), scene.feed)
    assert everyone | {red_au["id"]} <= au_sees
    assert not {strict["id"], red["id"], red_partner["id"]} & au_sees
    partner_sees = _everything(client_for(partner_raw), scene.feed)
    assert everyone | {red_partner["id"]} <= partner_sees
    assert not {strict["id"], red["id"], red_au["id"]} & partner_sees

    au = client_for(scene.au_officer)
    for hidden in (strict, red, red_partner):
        error(au.get(url(scene.feed, f"objects/{hidden['id']}/")), 404)
        error(au.get(url(scene.feed, f"objects/{hidden['id']}/versions/")), 404)
        body = ok(au.get(url(scene.feed, "objects/"), params={"match[id]": hidden["id"]}))
        assert body == {"more": False}
    ok(au.get(url(scene.feed, f"objects/{red_au['id']}/")))


def test_amber_strict_never_reaches_another_authority_even_with_write_access(
    client_for: Taxii, scene: Scene, db: Session
) -> None:
    service.grant(
        db, scene.admin, scene.feed, authority_id=scene.au.id, can_read=True, can_write=True
    )
    strict = indicator("192.0.2.50", marked=[AMBER_STRICT])
    store(db, scene.analyst, scene.feed, strict)
    au = client_for(scene.au_analyst)
    assert strict["id"] not in _everything(au, scene.feed)
    error(au.get(url(scene.feed, f"objects/{strict['id']}/")), 404)
    error(au.delete(url(scene.feed, f"objects/{strict['id']}/")), 404)
    # What AU posts under AMBER+STRICT stays AU's: VN (the collection's owner) cannot read it.
    mine = indicator("192.0.2.51", marked=[AMBER_STRICT])
    ok(post(au, scene.feed, mine), 202)
    assert mine["id"] in _everything(au, scene.feed)
    assert mine["id"] not in _everything(client_for(scene.officer), scene.feed)


def test_paging_fills_pages_past_hidden_objects(
    client_for: Taxii, scene: Scene, db: Session
) -> None:
    service.grant(
        db, scene.admin, scene.feed, authority_id=scene.au.id, can_read=True, can_write=False
    )
    visible = [indicator(f"198.18.0.{i}", marked=[GREEN]) for i in range(3)]
    hidden = [indicator(f"198.18.1.{i}", marked=[RED]) for i in range(5)]
    store(db, scene.analyst, scene.feed, visible[0], *hidden, visible[1], visible[2])
    body = ok(client_for(scene.au_officer).get(url(scene.feed, "objects/"), params={"limit": "2"}))
    assert ids(body) == [visible[0]["id"], visible[1]["id"]]
    assert body["more"] is True


# --- every response is TAXII ------------------------------------------------------------------


def test_every_route_without_slash_and_with_errors_speaks_taxii(
    client_for: Taxii, scene: Scene, seven: list[dict[str, Any]]
) -> None:
    client = client_for(scene.analyst)
    target = seven[1]["id"]
    for path in (
        "/taxii2",
        ROOT.rstrip("/"),
        f"{ROOT}collections",
        url(scene.feed).rstrip("/"),
        url(scene.feed, "manifest"),
        url(scene.feed, "objects"),
        url(scene.feed, f"objects/{target}"),
        url(scene.feed, f"objects/{target}/versions"),
    ):
        ok(client.get(path))
    ok(
        client.post(
            url(scene.feed, "objects"),
            content=envelope(indicator()),
            headers={"Content-Type": TAXII},
        ),
        202,
    )
    assert client.delete(url(scene.feed, f"objects/{target}")).headers["content-type"] == TAXII


def test_the_openapi_schema_still_builds(app: FastAPI) -> None:
    schema = app.openapi()
    assert "/taxii2/api1/collections/{collection_id}/objects/" not in schema["paths"]
    assert "/taxii2/{api_root}/collections/{collection_id}/objects/" in schema["paths"]
