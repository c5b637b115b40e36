"""The real taxii2-client (``taxii2client.v21``) against a real server on a loopback socket.

The node runs under uvicorn in a background thread, on a fresh database of the run's backend
(SQLite, or PostgreSQL when ``CROSSBORDER_TEST_DATABASE_URL`` says so), migrated like a real
node. The scene (authorities, users, API tokens, a collection and its grants) is written
through the services, committed, before the client connects.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from requests.auth import AuthBase
from sqlalchemy.orm import Session, sessionmaker
from taxii2client import v20
from taxii2client.common import TokenAuth
from taxii2client.exceptions import AccessError
from taxii2client.v21 import ApiRoot, Collection, Server, Status, as_pages

import requests
from crossborder.app import body_limit, create_app
from crossborder.auth import service as auth_service
from crossborder.auth.permissions import SYSTEM, Principal
from crossborder.db.session import make_engine, make_session_factory, unit_of_work
from crossborder.directory.models import Authority
from crossborder.intel import service, stix, taxii
from crossborder.settings import Settings
from tests.intel.factories import AMBER_STRICT, GREEN, RED, T0, T1, indicator, sdo

TAXII = "application/taxii+json;version=2.1"


class Bearer(AuthBase):
    """``Authorization: Bearer <token>`` for requests (taxii2-client's ``auth=``)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


@dataclass
class Live:
    base: str  # http://127.0.0.1:<port>
    settings: Settings
    collection_id: str
    analyst: str  # VN analyst's token: reads and writes the collection
    officer: str  # VN officer's token: reads
    au_officer: str  # AU officer's token: reads through a grant to AU
    partner: str  # a token with its own read grant (a private partner)
    partner_token_id: int

    @property
    def discovery(self) -> str:
        return f"{self.base}/taxii2/"

    def server(self, token: str) -> Server:
        return Server(self.discovery, auth=Bearer(token))

    def collection(self, token: str) -> Collection:
        root = self.server(token).default
        assert isinstance(root, ApiRoot)
        found = [c for c in root.collections if c.id == self.collection_id]
        assert len(found) == 1
        return found[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _migrate(url: str) -> None:
    if os.environ.get("CROSSBORDER_TEST_SCHEMA") == "create_all":
        import crossborder.models  # noqa: F401
        from crossborder.db.base import Base

        engine = make_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
    else:
        from crossborder.db.migrate import upgrade

        upgrade(url)


def _scene(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Two authorities, their users and tokens, VN's collection shared with AU and a partner."""
    with factory() as session, unit_of_work(session):
        vn = Authority(
            name="A05", short_name="VN-A05", roles=["police"], languages=["en"], time_zone="UTC"
        )
        au = Authority(
            name="AFP", short_name="AU-AFP", roles=["police"], languages=["en"], time_zone="UTC"
        )
        session.add_all([vn, au])
        session.flush()

        def person(authority: Authority, role: str) -> Principal:
            user = auth_service.create_user(
                session,
                actor=SYSTEM,
                username=f"{role}-{authority.short_name}-{uuid.uuid4().hex[:6]}".lower(),
                password="correct horse battery staple",
                authority_id=authority.id,
                roles=(role,),
                display_name=role.title(),
                bootstrap=True,
            )
            return auth_service.principal_for(user)

        def token(principal: Principal, name: str = "taxii") -> tuple[int, str]:
            scopes = sorted(p.value for p in principal.permissions)
            row, raw = auth_service.create_token(
                session, actor=principal, name=name, scopes=scopes, expires_in_days=1
            )
            return row.id, raw

        admin = person(vn, "administrator")
        collection = service.create_collection(
            session, admin, title="VN ransomware feed", alias="vn-feed", description="IOCs"
        )
        partner_id, partner_raw = token(person(vn, "analyst"), "acme")
        service.grant(
            session, admin, collection, authority_id=au.id, can_read=True, can_write=False
        )
        service.grant(
            session, admin, collection, token_id=partner_id, can_read=True, can_write=False
        )
        return {
            "collection_id": collection.public_id,
            "analyst": token(person(vn, "analyst"))[1],
            "officer": token(person(vn, "officer"))[1],
            "au_officer": token(person(au, "officer"))[1],
            "partner": partner_raw,
            "partner_token_id": partner_id,
        }


@pytest.fixture
def live(
    tmp_path: Path, fresh_database_url: str, fast_password_hashing: PasswordHasher
) -> Iterator[Live]:
    _migrate(fresh_database_url)
    settings = Settings(
        environment="test",  # type: ignore[arg-type]
        data_dir=tmp_path / "node",
        database_url=fresh_database_url,
        secret_key="test-secret-key-" + "x" * 40,
        cookie_secure=False,
        node_name="taxii test node",
    )
    settings.data_dir.mkdir()
    engine = make_engine(fresh_database_url)
    scene = _scene(make_session_factory(engine, data_dir=settings.data_dir))
    engine.dispose()

    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="taxii-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the TAXII server did not start")
        time.sleep(0.05)
    try:
        yield Live(base=f"http://127.0.0.1:{port}", settings=settings, **scene)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        app.state.engine.dispose()


def test_discovery_api_root_and_collections(live: Live) -> None:
    server = live.server(live.analyst)
    assert server.title == "taxii test node — TAXII 2.1"
    assert [r.url for r in server.api_roots] == [f"{live.base}/taxii2/api1/"]
    root = server.default
    assert isinstance(root, ApiRoot)
    assert root.versions == [TAXII]
    assert root.max_content_length == taxii.MAX_CONTENT_LENGTH
    (collection,) = root.collections
    assert collection.id == live.collection_id
    assert collection.title == "VN ransomware feed"
    assert collection.alias == "vn-feed"
    assert (collection.can_read, collection.can_write) == (True, True)
    assert collection.media_types == ["application/stix+json;version=2.1"]
    officer = live.collection(live.officer)
    assert (officer.can_read, officer.can_write) == (True, False)
    with pytest.raises(AccessError):  # the client itself refuses, from can_write
        officer.add_objects({"objects": [indicator()]})


def test_add_read_page_version_and_delete_through_the_client(live: Live) -> None:
    col = live.collection(live.analyst)
    objects = [indicator(f"10.0.{i // 200}.{i % 200 + 1}") for i in range(250)]
    status = col.add_objects({"objects": objects})
    assert isinstance(status, Status)
    assert status.status == "complete"
    assert (status.total_count, status.success_count, status.failure_count) == (250, 250, 0)
    assert status.pending_count == 0
    status.refresh()  # the client asks for ../../status/<id> without the trailing slash
    assert status.success_count == 250
    root = live.server(live.analyst).default
    again = root.get_status(status.id)
    assert (again.id, again.total_count, again.success_count) == (status.id, 250, 250)

    first = col.get_objects()
    assert first["more"] is True
    assert len(first["objects"]) == taxii.DEFAULT_PAGE
    pages = list(as_pages(col.get_objects, per_request=100))
    assert [len(p.get("objects", [])) for p in pages] == [100, 100, 50]
    assert [o["id"] for p in pages for o in p["objects"]] == [o["id"] for o in objects]
    typed = list(as_pages(col.get_manifest, per_request=60, type="indicator"))
    assert sum(len(p.get("objects", [])) for p in typed) == 250
    assert all(
        r["media_type"] == "application/stix+json;version=2.1" for p in typed for r in p["objects"]
    )
    assert list(as_pages(col.get_objects, per_request=100, type="malware")) == [{"more": False}]

    target = objects[0]
    newer = {**target, "modified": T1, "name": "updated"}
    assert col.add_objects({"objects": [newer]}).success_count == 1
    assert [o["modified"] for o in col.get_object(target["id"])["objects"]] == [T1]
    assert [o["modified"] for o in col.get_object(target["id"], version="all")["objects"]] == [
        T0,
        T1,
    ]
    assert [o["modified"] for o in col.get_object(target["id"], version=T0)["objects"]] == [T0]
    assert col.object_versions(target["id"])["versions"] == [T0, T1]
    added_after = col.get_objects(added_after=T0, type="indicator", limit=1)
    assert added_after["more"] is True

    col.delete_object(target["id"])
    with pytest.raises(requests.HTTPError) as missing:
        col.get_object(target["id"])
    assert missing.value.response.status_code == 404
    assert missing.value.response.headers["Content-Type"] == TAXII
    assert target["id"] not in {r["id"] for r in col.get_manifest(limit=1000)["objects"]}


def test_failures_are_counted_in_the_status(live: Live) -> None:
    col = live.collection(live.analyst)
    kept = indicator("192.0.2.1")
    assert col.add_objects({"objects": [kept]}).success_count == 1
    bad = {**indicator(), "pattern": "[this is not a pattern"}
    status = col.add_objects({"objects": [kept, bad, sdo("malware", name="x", is_family=True)]})
    # The client checks that the counts add up and match the lists.
    assert (status.total_count, status.success_count, status.failure_count) == (3, 1, 2)
    assert {f["id"] for f in status.failures} == {kept["id"], bad["id"]}
    assert all(f["message"] for f in status.failures)


def test_markings_through_the_client(live: Live) -> None:
    writer = live.collection(live.analyst)
    green = indicator("192.0.2.20", marked=[GREEN])
    red = indicator("192.0.2.21", marked=[RED])
    strict = indicator("192.0.2.22", marked=[AMBER_STRICT])
    named = stix.handling_marking(partner_recipients=(service.partner_name(live.partner_token_id),))
    red_partner = indicator("192.0.2.23", marked=[RED, named["id"]])
    status = writer.add_objects({"objects": [named, green, red, strict, red_partner]})
    assert status.success_count == 5

    def seen(token: str) -> set[str]:
        col = live.collection(token)
        return {
            o["id"] for p in as_pages(col.get_objects, per_request=2) for o in p.get("objects", [])
        }

    assert {green["id"], red["id"], strict["id"], red_partner["id"]} <= seen(live.officer)
    au = seen(live.au_officer)
    assert green["id"] in au
    assert not {red["id"], strict["id"], red_partner["id"]} & au
    partner = seen(live.partner)
    assert {green["id"], red_partner["id"]} <= partner
    assert not {red["id"], strict["id"]} & partner
    with pytest.raises(requests.HTTPError) as hidden:
        live.collection(live.au_officer).get_object(red["id"])
    assert hidden.value.response.status_code == 404


def test_other_credentials_the_client_knows(live: Live) -> None:
    assert Server(live.discovery, auth=TokenAuth(live.officer)).title
    assert Server(live.discovery, user="acme", password=live.partner).title  # HTTP Basic
    with pytest.raises(requests.HTTPError) as refused:
        Server(live.discovery, user="acme", password="wrong").refresh()
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["Content-Type"] == TAXII
    assert "Basic" in refused.value.response.headers["WWW-Authenticate"]


def test_a_taxii_20_client_is_told_406(live: Live) -> None:
    with pytest.raises(requests.HTTPError) as refused:
        v20.Server(live.discovery, auth=Bearer(live.officer)).refresh()
    assert refused.value.response.status_code == 406
    assert refused.value.response.json()["http_status"] == "406"


def test_raw_http_errors_on_the_real_socket(live: Live) -> None:
    headers = {"Authorization": f"Bearer {live.analyst}", "Accept": TAXII}
    objects = f"{live.base}/taxii2/api1/collections/{live.collection_id}/objects/"
    with httpx.Client(headers=headers, timeout=30) as client:
        wrong_type = client.post(
            objects, content=b'{"objects": []}', headers={"Content-Type": "application/json"}
        )
        assert (wrong_type.status_code, wrong_type.headers["content-type"]) == (415, TAXII)
        not_envelope = client.post(objects, content=b"[1, 2]", headers={"Content-Type": TAXII})
        assert (not_envelope.status_code, not_envelope.headers["content-type"]) == (422, TAXII)
        limit = client.get(objects, params={"limit": "0"})
        assert (limit.status_code, limit.headers["content-type"]) == (400, TAXII)
        if body_limit(live.settings, "/taxii2/api1/collections/x/objects/") is None:
            too_big = client.post(
                objects,
                content=b" " * (taxii.MAX_CONTENT_LENGTH + 1),
                headers={"Content-Type": TAXII},
            )
            assert (too_big.status_code, too_big.headers["content-type"]) == (413, TAXII)
            assert too_big.json()["http_status"] == "413"
