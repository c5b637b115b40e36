"""The intelligence pages: collections, objects under their markings, upload, export, grants.

Scene (tests/intel/conftest.py): Viet Nam's A05 owns the collection "vn-feed"; Australia's AFP
and Morocco's BNPJ are granted read. A TLP:RED object names the AFP only; a TLP:AMBER+STRICT
object never leaves A05; TLP:AMBER is read by every grantee but passed on by A05 alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.routing import NoMatchFound
from starlette.testclient import TestClient

from crossborder.auth.models import User
from crossborder.auth.permissions import Principal
from crossborder.intel import feeds, service, stix, views
from crossborder.intel.models import IntelObject
from crossborder.settings import Settings
from tests.fixtures.web import build_app, csrf_for, make_client, post_login
from tests.intel.conftest import Scene
from tests.intel.factories import (
    AMBER,
    AMBER_STRICT,
    CLEAR,
    GREEN,
    RED,
    bundle,
    indicator,
    new_id,
    sco,
)

HTML = {"accept": "text/html"}
FEED = "/intel/collections/vn-feed"


@pytest.fixture
def app(settings: Settings, db: Session) -> FastAPI:
    """The real app, with the intelligence pages mounted if app.py does not mount them yet."""
    application = build_app(settings, db)
    try:
        application.url_path_for("intel_index")
    except NoMatchFound:
        application.include_router(views.router)
    return application


@pytest.fixture
def login(app: FastAPI, settings: Settings) -> Iterator[Callable[[Principal], TestClient]]:
    opened: list[TestClient] = []

    def _login(who: Principal) -> TestClient:
        c = make_client(app)
        c.__enter__()
        opened.append(c)
        assert post_login(c, settings, who.username).status_code == 303
        return c

    yield _login
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def shared(db: Session, scene: Scene) -> Scene:
    """vn-feed, readable by the AFP and the BNPJ too."""
    for other in (scene.au, scene.ma):
        service.grant(
            db, scene.admin, scene.feed, authority_id=other.id, can_read=True, can_write=False
        )
    return scene


@pytest.fixture
def marked(db: Session, shared: Scene) -> dict[str, dict[str, Any]]:
    """One object per marking, stored by a VN analyst (A05 is their originator)."""
    to_au = stix.handling_marking(recipients=(shared.au.id,))
    h1 = stix.handling_marking(codes=("H1",), source_reliability="B", information_accuracy="2")
    objects = {
        "clear": indicator("198.51.100.10", marked=[CLEAR], name="Clear C2"),
        "green": indicator("198.51.100.11", marked=[GREEN], name="Green C2"),
        "amber": indicator("198.51.100.12", marked=[AMBER], name="Amber C2"),
        "strict": indicator("198.51.100.13", marked=[AMBER_STRICT], name="Strict C2"),
        "red": indicator("198.51.100.14", marked=[RED, to_au["id"]], name="Red C2"),
        "h1": indicator("198.51.100.15", marked=[GREEN, h1["id"]], name="Graded C2"),
        "to_au": to_au,
        "h1_marking": h1,
    }
    status = service.add_objects(db, shared.analyst, shared.feed, list(objects.values()))
    assert status.success_count == len(objects), status.failures
    db.commit()
    return objects


def post(c: TestClient, settings: Settings, url: str, data: dict[str, Any], **kw: Any) -> Any:
    return c.post(url, data={**data, "csrf_token": csrf_for(c, settings)}, **kw)


def upload(c: TestClient, settings: Settings, body: bytes, ref: str = "vn-feed") -> Any:
    files = {"file": ("bundle.json", body, "application/json")}
    return post(c, settings, f"/intel/collections/{ref}/bundles", {}, files=files)


def text_of(html: str) -> str:
    """The page's text, tags removed and whitespace collapsed (for sentence assertions)."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def listed_ids(html: str) -> set[str]:
    return set(re.findall(r'data-testid="object-row" data-id="([^"]+)"', html))


def stored(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(IntelObject)) or 0


# -- reading under the markings ---------------------------------------------------------------


def test_red_is_shown_to_its_named_recipient_and_hidden_from_another_grantee(
    shared: Scene, marked: dict[str, dict[str, Any]], login: Callable[[Principal], TestClient]
) -> None:
    red = marked["red"]["id"]
    ma = login(shared.ma_officer)
    page = ma.get(FEED, headers=HTML)
    assert page.status_code == 200
    assert red not in page.text
    assert "Red C2" not in page.text
    assert marked["green"]["id"] in listed_ids(page.text)
    assert ma.get(f"{FEED}/objects/{red}", headers=HTML).status_code == 404

    au = login(shared.au_officer)
    page = au.get(FEED, headers=HTML)
    assert red in listed_ids(page.text)
    assert 'data-tlp="red"' in page.text
    detail = au.get(f"{FEED}/objects/{red}", headers=HTML)
    assert detail.status_code == 200
    assert 'data-testid="recipients"' in detail.text
    assert shared.au.name in text_of(detail.text)


def test_amber_strict_never_reaches_another_authority(
    shared: Scene, marked: dict[str, dict[str, Any]], login: Callable[[Principal], TestClient]
) -> None:
    strict = marked["strict"]["id"]
    for other in (shared.au_officer, shared.au_analyst, shared.ma_officer):
        c = login(other)
        assert strict not in c.get(FEED, headers=HTML).text
        assert c.get(f"{FEED}/objects/{strict}", headers=HTML).status_code == 404
    own = login(shared.officer)
    assert strict in listed_ids(own.get(FEED, headers=HTML).text)
    detail = own.get(f"{FEED}/objects/{strict}", headers=HTML)
    assert detail.status_code == 200
    assert "your organisation only" in text_of(detail.text)
    assert "you may not pass it on (it stays within the originating authority)" in text_of(
        detail.text
    )


def test_the_index_counts_only_what_each_reader_may_see(
    shared: Scene, marked: dict[str, dict[str, Any]], login: Callable[[Principal], TestClient]
) -> None:
    def count(who: Principal) -> str:
        page = login(who).get("/intel", headers=HTML)
        assert page.status_code == 200
        found = re.search(r'data-testid="visible-count">([^<]*)<', page.text)
        assert found is not None
        return found.group(1)

    assert count(shared.officer) == str(len(marked))
    assert count(shared.au_officer) == str(len(marked) - 1)  # not AMBER+STRICT
    assert count(shared.ma_officer) == str(len(marked) - 2)  # nor RED


def test_the_pass_on_wording_differs_for_originator_and_recipient(
    shared: Scene, marked: dict[str, dict[str, Any]], login: Callable[[Principal], TestClient]
) -> None:
    url = f"{FEED}/objects/{marked['amber']['id']}"
    mine = text_of(login(shared.analyst).get(url, headers=HTML).text)
    theirs = text_of(login(shared.au_officer).get(url, headers=HTML).text)
    meaning = "TLP:AMBER — your organisation and its clients on a need-to-know basis;"
    assert meaning in mine
    assert meaning in theirs
    assert "you may pass it on to other authorities and partners, not to the public" in mine
    assert "you may not pass it on (only its originator may pass it on)" in theirs
    assert "you may pass it on to other" not in theirs

    # GREEN with H1: the community may read it, only the originator passes it on.
    graded = f"{FEED}/objects/{marked['h1']['id']}"
    au_page = login(shared.au_officer).get(graded, headers=HTML).text
    assert "you may not pass it on (handling code H1" in text_of(au_page)
    assert "B — usually reliable" in text_of(au_page)
    assert "2 — known personally to the source but not to the officer" in text_of(au_page)
    own_page = text_of(login(shared.officer).get(graded, headers=HTML).text)
    assert "you may pass it on to other authorities and partners" in own_page

    # RED: its originator passes it on to the named recipients only; they do not.
    red = f"{FEED}/objects/{marked['red']['id']}"
    assert "you may pass it on to its named recipients only" in text_of(
        login(shared.analyst).get(red, headers=HTML).text
    )
    assert "you may not pass it on" in text_of(login(shared.au_officer).get(red, headers=HTML).text)
    clear = f"{FEED}/objects/{marked['clear']['id']}"
    assert "you may pass it on, to anyone" in text_of(
        login(shared.au_officer).get(clear, headers=HTML).text
    )


def test_an_object_page_shows_versions_json_and_identifier_links(
    db: Session, shared: Scene, login: Callable[[Principal], TestClient]
) -> None:
    first = indicator("203.0.113.77", marked=[GREEN], name="Phishing kit host")
    newer = {**first, "modified": "2026-03-05T10:00:00.000Z", "name": "Phishing kit host v2"}
    service.add_objects(db, shared.analyst, shared.feed, [first, newer])
    db.commit()
    c = login(shared.officer)
    page = c.get(f"{FEED}/objects/{first['id']}", headers=HTML)
    assert page.status_code == 200
    assert "Phishing kit host v2" in page.text
    assert page.text.count('data-testid="version"') == 2
    assert "/identifiers?type=ip&amp;value=203.0.113.77" in page.text
    assert '"pattern": "[ipv4-addr:value = ' in unescape(page.text)
    older = re.search(r'href="([^"]+\?version=2026-03-01T10%3A00%3A00.000Z)"', page.text)
    assert older is not None
    old_page = c.get(unescape(older.group(1)), headers=HTML)
    assert old_page.status_code == 200
    assert 'data-testid="older-version"' in old_page.text
    assert (
        c.get(f"{FEED}/objects/{first['id']}?version=2020-01-01T00:00:00.000Z").status_code == 404
    )
    assert c.get(f"{FEED}/objects/indicator--{'0' * 8}", headers=HTML).status_code == 404
    assert c.get(f"{FEED}/objects/{new_id('indicator')}", headers=HTML).status_code == 404


def test_handling_conditions_are_shown_in_words(
    db: Session, shared: Scene, login: Callable[[Principal], TestClient]
) -> None:
    h3 = stix.handling_marking(
        codes=("H2", "H3"), conditions="Ask A05 before any arrest", information_accuracy="4"
    )
    obj = indicator("203.0.113.88", marked=[GREEN, h3["id"]], name="Money mule wallet")
    service.add_objects(db, shared.analyst, shared.feed, [h3, obj])
    db.commit()
    page = login(shared.au_officer).get(f"{FEED}/objects/{obj['id']}", headers=HTML)
    words = text_of(page.text)
    assert "H2 not to be used as evidence in judicial proceedings" in words
    assert "H3 other restrictions apply: Ask A05 before any arrest" in words
    assert "4 — cannot be judged" in words
    assert "[ipv4-addr:value = '203.0.113.88']" in words  # the pattern beside the name
    listing = login(shared.au_officer).get(FEED, headers=HTML).text
    assert re.search(r'data-testid="handling-code"[^>]*>H3<', listing)


def test_the_type_filter_and_paging(
    db: Session, shared: Scene, login: Callable[[Principal], TestClient]
) -> None:
    many = [sco("ipv4-addr", f"198.51.101.{i}", marked=[GREEN]) for i in range(views.PAGE_SIZE)]
    service.add_objects(db, shared.analyst, shared.feed, [indicator(marked=[GREEN]), *many])
    db.commit()
    c = login(shared.officer)
    first = c.get(FEED, headers=HTML)
    assert len(listed_ids(first.text)) == views.PAGE_SIZE
    more = re.search(r'href="([^"]+)" data-testid="next-page"', first.text)
    assert more is not None
    second = c.get(unescape(more.group(1)), headers=HTML)
    assert len(listed_ids(second.text)) == 1
    assert 'data-testid="first-page"' in second.text
    only = c.get(f"{FEED}?type=indicator", headers=HTML)
    assert len(listed_ids(only.text)) == 1
    assert c.get(f"{FEED}?type=Not%20a%20type", headers=HTML).status_code == 422
    assert c.get(f"{FEED}?next=garbage", headers=HTML).status_code == 422


# -- upload -------------------------------------------------------------------------------------


def test_upload_a_bundle_through_the_form_and_see_the_counts(
    db: Session, scene: Scene, settings: Settings, login: Callable[[Principal], TestClient]
) -> None:
    c = login(scene.analyst)
    page = c.get(FEED, headers=HTML)
    assert 'data-testid="upload-form"' in page.text
    assert "crossborder intel import" in page.text
    assert "1 MB" in text_of(page.text)
    body = orjson.dumps(
        bundle(
            indicator("198.51.100.40", marked=[GREEN]),
            sco("ipv4-addr", "198.51.100.40", marked=[GREEN]),
            {**indicator(), "id": "indicator--nope"},
        )
    )
    done = upload(c, settings, body)
    assert done.status_code == 303, done.text
    assert parse_qs(urlsplit(done.headers["location"]).query)["done"] == ["imported"]
    report = c.get(done.headers["location"], headers=HTML)
    assert 'data-testid="import-report"' in report.text
    assert re.search(r'data-testid="import-stored">2<', report.text)
    assert re.search(r'data-testid="import-present">0<', report.text)
    assert re.search(r'data-testid="import-invalid">1<', report.text)
    assert "indicator--nope: id:" in unescape(report.text)

    again = c.get(upload(c, settings, body).headers["location"], headers=HTML)
    assert re.search(r'data-testid="import-stored">0<', again.text)
    assert re.search(r'data-testid="import-present">2<', again.text)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "not JSON"),
        (b'{"type": "report"}', "not a STIX bundle"),
        (b"", ""),
    ],
)
def test_a_bad_bundle_shows_a_readable_error_and_stores_nothing(
    db: Session,
    scene: Scene,
    settings: Settings,
    login: Callable[[Principal], TestClient],
    body: bytes,
    detail: str,
) -> None:
    c = login(scene.analyst)
    before = stored(db)
    failed = upload(c, settings, body)
    assert failed.status_code == 422
    assert 'data-testid="upload-error"' in failed.text
    if detail:
        assert "Nothing was imported: the file is not a STIX 2.1 bundle." in text_of(failed.text)
        assert detail in text_of(failed.text)
    assert stored(db) == before


def test_no_file_and_a_file_over_the_web_limit_are_refused(
    db: Session,
    scene: Scene,
    settings: Settings,
    login: Callable[[Principal], TestClient],
) -> None:
    c = login(scene.analyst)
    missing = post(c, settings, f"{FEED}/bundles", {}, files={"file": ("", b"", "text/plain")})
    assert missing.status_code == 422
    assert "Choose a STIX 2.1 bundle" in missing.text
    big = b" " * (settings.max_body_bytes + 10)
    assert upload(c, settings, big).status_code == 413  # the body limit, before the view


def test_only_writers_upload(
    db: Session,
    shared: Scene,
    settings: Settings,
    login: Callable[[Principal], TestClient],
) -> None:
    body = orjson.dumps(bundle(indicator(marked=[GREEN])))
    officer = login(shared.officer)  # intel:read only
    assert 'data-testid="upload-form"' not in officer.get(FEED, headers=HTML).text
    assert upload(officer, settings, body).status_code == 403
    au = login(shared.au_analyst)  # a read grant
    assert upload(au, settings, body).status_code == 403
    assert upload(login(shared.ma_officer), settings, body, "nope").status_code == 404


# -- export -------------------------------------------------------------------------------------


def test_export_downloads_only_what_may_be_passed_on(
    shared: Scene, marked: dict[str, dict[str, Any]], login: Callable[[Principal], TestClient]
) -> None:
    def ids(c: TestClient, audience: str, **params: str) -> tuple[set[str], int]:
        got = c.get(f"{FEED}/export", params={"audience": audience, **params})
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("application/stix+json")
        assert got.headers["content-disposition"].startswith("attachment; filename=")
        return {o["id"] for o in got.json()["objects"]}, int(got.headers["x-crossborder-left-out"])

    analyst = login(shared.analyst)
    page = analyst.get(FEED, headers=HTML)
    assert 'data-testid="export-form"' in page.text
    assert f'value="authority:{shared.ma.id}"' in page.text

    to_ma, left = ids(analyst, f"authority:{shared.ma.id}")
    want = {marked[k]["id"] for k in ("clear", "green", "amber", "h1")}
    assert want <= to_ma
    assert marked["strict"]["id"] not in to_ma
    assert marked["red"]["id"] not in to_ma
    assert left == 2
    to_au, _ = ids(analyst, "authority:AU-AFP")
    assert marked["red"]["id"] in to_au
    assert marked["to_au"]["id"] in to_au
    public, _ = ids(analyst, "public")
    assert marked["clear"]["id"] in public
    assert not {marked[k]["id"] for k in ("green", "amber", "strict", "red")} & public
    partner, _ = ids(analyst, "partner", partner="token:99")
    assert marked["amber"]["id"] in partner

    # A recipient passes on CLEAR and GREEN (without H1) only.
    au = login(shared.au_officer)
    from_au, _ = ids(au, f"authority:{shared.ma.id}")
    assert marked["clear"]["id"] in from_au
    assert marked["green"]["id"] in from_au
    assert not {marked[k]["id"] for k in ("amber", "strict", "red", "h1")} & from_au
    assert au.get(f"{FEED}/export", params={"audience": "nobody"}).status_code == 422


# -- grants, collections, feeds, refusals -------------------------------------------------------


def test_grants_are_for_the_owning_administrators_only(
    db: Session, scene: Scene, settings: Settings, login: Callable[[Principal], TestClient]
) -> None:
    admin = login(scene.admin)
    page = admin.get(FEED, headers=HTML)
    assert page.status_code == 200
    assert 'data-testid="grant-form"' in page.text
    assert f'<option value="{scene.au.id}"' in page.text
    assert f'<option value="{scene.vn.id}"' not in page.text  # the owner always has access
    assert 'data-testid="objects"' not in page.text  # administrators manage, do not read

    analyst = login(scene.analyst)
    assert 'data-testid="grant-form"' not in analyst.get(FEED, headers=HTML).text
    grant = {"authority_id": str(scene.au.id), "can_read": "true"}
    assert post(analyst, settings, f"{FEED}/grants", grant).status_code == 403
    assert post(login(scene.au_admin), settings, f"{FEED}/grants", grant).status_code == 404

    au = login(scene.au_officer)
    assert au.get(FEED, headers=HTML).status_code == 404
    done = post(admin, settings, f"{FEED}/grants", grant)
    assert done.status_code == 303, done.text
    shown = admin.get(done.headers["location"], headers=HTML)
    assert "Access was granted." in shown.text
    assert f'data-testid="grant-row" data-authority="{scene.au.id}"' in shown.text
    assert au.get(FEED, headers=HTML).status_code == 200
    assert 'data-alias="vn-feed"' in au.get("/intel", headers=HTML).text

    both = post(admin, settings, f"{FEED}/grants", {"authority_id": str(scene.au.id)})
    assert both.status_code == 303
    assert "Access was taken away." in admin.get(both.headers["location"], headers=HTML).text
    assert au.get(FEED, headers=HTML).status_code == 404

    neither = post(admin, settings, f"{FEED}/grants", {"can_read": "true"})
    assert neither.status_code == 422
    assert "grant to exactly one authority or one API token" in neither.text
    bad = post(admin, settings, f"{FEED}/grants", {"token_id": "x", "can_read": "true"})
    assert bad.status_code == 422
    assert post(admin, settings, f"{FEED}/grants", {"token_id": "99999"}).status_code == 404


def test_administrators_create_collections_through_the_form(
    db: Session, scene: Scene, settings: Settings, login: Callable[[Principal], TestClient]
) -> None:
    admin = login(scene.admin)
    index = admin.get("/intel", headers=HTML)
    assert 'data-testid="collection-form"' in index.text
    assert 'data-alias="vn-feed"' in index.text  # owned, managed, not readable
    form = {"title": "Phishing kits", "alias": "vn-phish"}
    made = post(admin, settings, "/intel/collections", form)
    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/intel/collections/vn-phish?done=created"
    assert "The collection was created." in admin.get(made.headers["location"], headers=HTML).text
    taken = post(admin, settings, "/intel/collections", form)
    assert taken.status_code == 409
    assert "the alias &#39;vn-phish&#39; is taken" in taken.text
    assert 'value="Phishing kits"' in taken.text
    assert post(admin, settings, "/intel/collections", {"title": " "}).status_code == 422

    analyst = login(scene.analyst)
    assert 'data-testid="collection-form"' not in analyst.get("/intel", headers=HTML).text
    assert post(analyst, settings, "/intel/collections", {"title": "Mine"}).status_code == 403


def test_forms_without_the_csrf_token_are_refused(
    db: Session, scene: Scene, login: Callable[[Principal], TestClient]
) -> None:
    before = stored(db)
    analyst = login(scene.analyst)
    body = orjson.dumps(bundle(indicator(marked=[GREEN])))
    files = {"file": ("bundle.json", body, "application/json")}
    assert analyst.post(f"{FEED}/bundles", files=files).status_code == 403
    assert (
        analyst.post(f"{FEED}/bundles", data={"csrf_token": "forged"}, files=files).status_code
        == 403
    )
    assert stored(db) == before
    admin = login(scene.admin)
    assert admin.post("/intel/collections", data={"title": "X"}).status_code == 403
    grant = {"authority_id": str(scene.au.id), "can_read": "true"}
    assert admin.post(f"{FEED}/grants", data=grant).status_code == 403
    assert service.list_grants(db, scene.admin, scene.feed) == []


def test_without_access_the_pages_answer_403_or_404(
    db: Session,
    scene: Scene,
    make_user: Callable[..., User],
    login: Callable[[Principal], TestClient],
) -> None:
    from crossborder.auth import service as auth_service

    auditor = auth_service.principal_for(make_user(roles=("auditor",), authority_id=scene.vn.id))
    c = login(auditor)
    home = c.get("/intel", headers=HTML)
    assert home.status_code == 403
    assert 'href="/intel"' not in home.text  # no nav entry without the permissions
    assert c.get(FEED, headers=HTML).status_code == 404
    assert c.get(f"{FEED}/export").status_code == 404
    assert c.get("/intel/feeds", headers=HTML).status_code == 403

    ma = login(scene.ma_officer)  # no grant
    index = ma.get("/intel", headers=HTML)
    assert index.status_code == 200
    assert 'href="/intel"' in index.text
    assert 'data-testid="no-collections"' in index.text
    assert ma.get(FEED, headers=HTML).status_code == 404
    assert ma.get(f"{FEED}/export").status_code == 404
    some = new_id("indicator")
    assert ma.get(f"{FEED}/objects/{some}", headers=HTML).status_code == 404
    assert ma.get("/intel/collections/nope", headers=HTML).status_code == 404
    assert login(scene.admin).get(f"{FEED}/export").status_code == 403  # manages, reads not


def test_the_feeds_page_lists_feeds_without_their_secrets(
    db: Session, scene: Scene, settings: Settings, login: Callable[[Principal], TestClient]
) -> None:
    feeds.add_feed(
        db,
        scene.admin,
        secret_key=settings.secret_key,
        name="acme",
        direction="pull",
        api_root_url="https://taxii.acme.example/api1/",
        remote_collection_id="91a7b528",
        collection=scene.feed,
        auth_kind="basic",
        user="crossborder",
        secret="hunter2-very-secret",
        interval_minutes=30,
    )
    db.commit()
    admin = login(scene.admin)
    page = admin.get("/intel/feeds", headers=HTML)
    assert page.status_code == 200
    assert 'data-feed="acme"' in page.text
    assert "https://taxii.acme.example/api1/" in page.text
    assert "every 30 minutes" in page.text
    assert "crossborder intel feed add" in page.text
    assert "hunter2" not in page.text
    assert "<form" not in page.text.split("<main", 1)[1]  # read only
    assert 'data-testid="feeds-link"' in admin.get("/intel", headers=HTML).text
    assert login(scene.analyst).get("/intel/feeds", headers=HTML).status_code == 403


def test_the_pages_are_translated(
    shared: Scene, marked: dict[str, dict[str, Any]], login: Callable[[Principal], TestClient]
) -> None:
    c = login(shared.au_officer)
    c.cookies.set("cb_lang", "vi")
    page = c.get(f"{FEED}/objects/{marked['amber']['id']}", headers=HTML)
    assert page.status_code == 200
    assert "you may not pass it on" not in page.text
    assert "TLP:AMBER" in page.text
