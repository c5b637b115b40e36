"""The hit/no-hit pages: the queries, the form that asks partners, a query's answers and hits,
the administrators' page, and the toggle on request and identifier-set pages.

Scene (tests/matching/test_api.py): A05 asks; the AFP (police MoU) and the BNPJ (nothing in
force) are served by other nodes; the SPP is a second authority of this node.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.auth import service as auth_service
from crossborder.auth.permissions import SYSTEM, Principal
from crossborder.db.session import unit_of_work
from crossborder.federation.models import OutboxMessage
from crossborder.matching import responder, service
from crossborder.matching.models import MatchQuery
from crossborder.requests.models import CooperationRequest
from crossborder.selectors import sets
from crossborder.settings import Settings
from tests.fixtures.auth import DEFAULT_PASSWORD
from tests.fixtures.web import TestClient, csrf_for, make_client, post_login
from tests.matching.test_api import PURPOSE, SECRETS, Scene, answered_query, scene
from tests.requests.conftest import preservation_draft

__all__ = ["scene"]

HTML = {"accept": "text/html"}
IDENTIFIERS = (
    "phone +84 91 234 5678\n"
    "email,shop.owner@example.com\n"
    "ip,103.27.12.7,51234,2026-11-20T10:05:00+00:00,2026-11-20T10:20:00+00:00\n"
)


@pytest.fixture
def login(
    app: FastAPI, settings: Settings, scene: Scene
) -> Iterator[Callable[[Principal], TestClient]]:
    opened: list[TestClient] = []

    def _login(who: Principal) -> TestClient:
        c = make_client(app)
        c.__enter__()
        opened.append(c)
        assert post_login(c, settings, scene.users[who.user_id].username).status_code == 303
        return c

    yield _login
    for c in opened:
        c.__exit__(None, None, None)


def post(c: TestClient, settings: Settings, url: str, data: dict[str, Any], **kw: Any) -> Any:
    return c.post(url, data={**data, "csrf_token": csrf_for(c, settings)}, **kw)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def form_data(scene: Scene, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "purpose": PURPOSE,
        "case_reference": "A05-2026-0117",
        "offences": ["THEFT_FRAUD"],
        "max_penalty_years": "10",
        "identifiers": IDENTIFIERS,
        "partners": [str(scene.au.id)],
        "slack_seconds": "0",
        "action": "send",
    }
    data.update(overrides)
    return data


def partner_boxes(html: str) -> dict[str, str]:
    """Partner id → 'yes'/'no' (may be asked), from the form's partner list."""
    return dict(re.findall(r'data-partner="(\d+)" data-may-ask="(yes|no)"', html))


def test_an_officer_asks_partners_and_sees_the_partner_waiting(
    login: Callable[[Principal], TestClient], settings: Settings, scene: Scene, db: Session
) -> None:
    linh = login(scene.linh)
    index = linh.get("/matching")
    assert index.status_code == 200
    assert 'data-testid="no-queries"' in index.text
    assert 'href="/matching/new"' in index.text
    assert 'href="/matching"' in linh.get("/").text  # the navigation link

    blank = linh.get("/matching/new")
    assert blank.status_code == 200
    assert partner_boxes(blank.text) == {str(scene.au.id): "yes", str(scene.ma.id): "yes"}
    assert 'data-testid="partners-unchecked"' in blank.text

    checked = post(linh, settings, "/matching/new", form_data(scene, action="check"))
    assert checked.status_code == 200
    assert partner_boxes(checked.text) == {str(scene.au.id): "yes", str(scene.ma.id): "no"}
    assert "AU-VN-POLICE-MOU" in checked.text
    assert re.search(rf'id="mq-partner-{scene.ma.id}"[^>]*disabled', checked.text)
    assert "A05-2026-0117" in checked.text  # the input is kept

    sent = post(linh, settings, "/matching/new", form_data(scene))
    assert sent.status_code == 303, text_of(sent.text)
    location = sent.headers["location"]
    assert re.fullmatch(r"/matching/queries/[0-9a-f-]{36}\?done=sent&not_asked=0", location)
    page = linh.get(location)
    assert page.status_code == 200
    assert 'data-testid="target-row"' in page.text
    assert f'data-partner="{scene.au.id}" data-status="sent"' in page.text
    text = text_of(page.text)
    assert "waiting" in text
    assert "The query was sent." in text
    assert "AU-VN-POLICE-MOU" in text
    assert 'data-testid="no-hits"' in page.text

    [message] = db.scalars(select(OutboxMessage).where(OutboxMessage.type == "match.query"))
    assert message.to_node_id == scene.node.id
    for secret in SECRETS:
        assert secret not in str(message.body)
    [query] = db.scalars(select(MatchQuery))
    assert (query.item_count, query.case_reference) == (3, "A05-2026-0117")
    listed = linh.get("/matching").text
    assert f'data-query="{query.public_id}"' in listed
    assert re.search(r'data-testid="waiting">1<', listed)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"purpose": ""}, "Purpose: say why you ask"),
        ({"case_reference": ""}, "Case reference: the case reference is required"),
        ({"offences": []}, "Offences: name at least one offence"),
        ({"offences": ["SHOPLIFTING"]}, "Choose offences from the list."),
        ({"max_penalty_years": "many"}, "The maximum penalty is a number of years"),
        ({"identifiers": "phone +84 91 234 5678\nnonsense"}, "Line 2: write kind,value"),
        ({"identifiers": "shoe,42"}, "Line 1: unknown kind shoe."),
        ({"identifiers": "ip,1.2.3.4,99999"}, "Line 1: the port is a number from 1 to 65535."),
        ({"identifiers": "ip,1.2.3.4,80,yesterday"}, "Line 1: yesterday is not a date and time."),
        ({"identifiers": "phone,not a phone"}, "Identifiers: identifier 1:"),
        ({"identifiers": ""}, "Identifiers: no identifiers to ask about"),
        ({"partners": []}, "Choose at least one partner to ask."),
        ({"slack_seconds": "7200"}, "The clock slack is a whole number of seconds"),
    ],
)
def test_bad_input_shows_the_form_again_with_the_input_kept(
    login: Callable[[Principal], TestClient],
    settings: Settings,
    scene: Scene,
    db: Session,
    change: dict[str, Any],
    message: str,
) -> None:
    linh = login(scene.linh)
    data = form_data(scene, **{"case_reference": "CASE-KEPT-1", **change})
    shown = post(linh, settings, "/matching/new", data)
    assert shown.status_code == 422, text_of(shown.text)
    errors = re.search(r'data-testid="query-errors">(.*?)</div>', shown.text, re.S)
    assert errors is not None
    assert message in text_of(errors.group(1))
    if change.get("case_reference") is None:
        assert 'value="CASE-KEPT-1"' in shown.text
    if data["identifiers"]:
        assert unescape(data["identifiers"].split("\n")[0]) in unescape(shown.text)
    assert db.scalars(select(OutboxMessage)).all() == []


def test_no_legal_basis_for_any_partner_chosen(
    login: Callable[[Principal], TestClient], settings: Settings, scene: Scene
) -> None:
    linh = login(scene.linh)
    shown = post(linh, settings, "/matching/new", form_data(scene, partners=[str(scene.ma.id)]))
    assert shown.status_code == 422
    assert "Partners: no partner may be asked (no legal basis" in text_of(shown.text)


def test_the_form_asks_a_request_or_a_set_too(
    login: Callable[[Principal], TestClient], settings: Settings, scene: Scene, db: Session
) -> None:
    from crossborder.requests import service as requests_service

    req = requests_service.create_draft(db, preservation_draft(scene.au), actor=scene.linh)
    linh = login(scene.linh)
    prefilled = linh.get(f"/matching/new?request={req.reference}")
    assert prefilled.status_code == 200
    assert f'name="case_reference" maxlength="200" required value="{req.reference}"' in (
        prefilled.text
    )
    assert '<option value="DATA_INTERFERENCE" selected>' in prefilled.text
    assert 'value="12"' in prefilled.text  # the request's maximum penalty
    assert 'data-scope="request"' in prefilled.text
    assert partner_boxes(prefilled.text)[str(scene.ma.id)] == "no"  # offences known: checked
    sent = post(
        linh,
        settings,
        "/matching/new",
        form_data(scene, identifiers="", request=req.reference, offences=["DATA_INTERFERENCE"]),
    )
    assert sent.status_code == 303, text_of(sent.text)
    query = db.scalars(select(MatchQuery)).one()
    assert (query.request_id, query.item_count) == (req.id, 1)

    kept = sets.create_set(db, scene.linh, name="Wallets of the ring")
    rows = "type,value\nphone,+84 91 234 5678\nphone,+84 91 234 5679\n"
    sets.import_csv(db, scene.linh, kept, lambda: io.StringIO(rows))
    from_set = linh.get(f"/matching/new?set={kept.public_id}")
    assert "The 2 identifiers of the set Wallets of the ring are asked too." in text_of(
        from_set.text
    )
    assert linh.get("/matching/new?set=nope").status_code == 404
    assert login(scene.thu).get(f"/matching/new?request={req.reference}").status_code == 404
    assert login(scene.thu).get(f"/matching/new?set={kept.public_id}").status_code == 404


def test_who_may_open_what(
    login: Callable[[Principal], TestClient], settings: Settings, scene: Scene, db: Session
) -> None:
    sent = service.send_query(
        db,
        scene.linh,
        settings.data_dir,
        purpose=PURPOSE,
        case_reference="A05-1",
        offences=[{"code": "CSAM"}],
        identifiers=[service.ItemIn("phone", "+84912345678")],
    )
    url = f"/matching/queries/{sent.query.public_id}"
    assert login(scene.minh).get(url).status_code == 200  # the same authority
    thu = login(scene.thu)
    assert thu.get(url, headers=HTML).status_code == 404
    assert sent.query.public_id not in thu.get("/matching").text
    for who in (scene.an, scene.hoa):
        c = login(who)
        assert c.get("/matching", headers=HTML).status_code == 403
        assert c.get("/matching/new", headers=HTML).status_code == 403
        assert post(c, settings, "/matching/new", form_data(scene)).status_code == 403
        assert 'href="/matching' not in c.get("/").text
    admin = login(scene.admin)
    index = admin.get("/matching")
    assert (index.status_code, index.headers["location"]) == (303, "/matching/admin")
    assert admin.get("/matching/new", headers=HTML).status_code == 403
    assert admin.get(url, headers=HTML).status_code == 403
    assert 'href="/matching/admin"' in admin.get("/").text
    linh = login(scene.linh)
    assert linh.get("/matching/admin", headers=HTML).status_code == 403
    assert post(linh, settings, f"/matching/admin/{scene.vn.id}/refresh", {}).status_code == 403
    assert linh.get("/matching/queries/no-such-query", headers=HTML).status_code == 404


def test_forms_without_the_csrf_token_are_refused(
    login: Callable[[Principal], TestClient], scene: Scene, db: Session
) -> None:
    kept = sets.create_set(db, scene.linh, name="case")
    linh = login(scene.linh)
    assert linh.post("/matching/new", data=form_data(scene)).status_code == 403
    forged = {**form_data(scene), "csrf_token": "forged"}
    assert linh.post("/matching/new", data=forged).status_code == 403
    optout = {"scope_type": "set", "scope_id": kept.public_id, "next": "/"}
    assert linh.post("/matching/optouts", data=optout).status_code == 403
    assert linh.post(
        "/matching/hits/1/draft", data={"request_type": "preservation"}
    ).status_code == (403)
    admin = login(scene.admin)
    policy = {"answers": "no", "max_query_elements": "10", "daily_queries": "1"}
    assert admin.post(f"/matching/admin/{scene.vn.id}/policy", data=policy).status_code == 403
    assert admin.post(f"/matching/admin/{scene.vn.id}/refresh").status_code == 403
    assert db.scalars(select(OutboxMessage)).all() == []
    assert not responder.is_opted_out(db, "set", kept.public_id)
    assert responder.policy_of(db, scene.vn.id).answers is True


def test_a_record_is_kept_out_from_its_page_and_put_back(
    login: Callable[[Principal], TestClient], settings: Settings, scene: Scene, db: Session
) -> None:
    from crossborder.requests import service as requests_service

    req = requests_service.create_draft(db, preservation_draft(scene.au), actor=scene.linh)
    kept = sets.create_set(db, scene.linh, name="Informant's numbers")
    linh = login(scene.linh)
    page = linh.get(f"/requests/{req.reference}")
    assert f'href="/matching/new?request={req.reference}"' in page.text
    assert 'data-testid="optout-form"' in page.text
    back = f"/requests/{req.reference}"
    done = post(
        linh,
        settings,
        "/matching/optouts",
        {"scope_type": "request", "scope_id": req.public_id, "reason": "source", "next": back},
    )
    assert (done.status_code, done.headers["location"]) == (303, back)
    assert responder.is_opted_out(db, "request", req.public_id)
    page = linh.get(back)
    assert 'data-testid="kept-out"' in page.text
    assert 'data-testid="optin-form"' in page.text

    set_page = linh.get(f"/identifiers/sets/{kept.public_id}")
    assert f'href="/matching/new?set={kept.public_id}"' in set_page.text
    set_back = f"/identifiers/sets/{kept.public_id}"
    post(
        linh,
        settings,
        "/matching/optouts",
        {"scope_type": "set", "scope_id": kept.public_id, "next": set_back},
    )
    assert 'data-testid="kept-out"' in linh.get(set_back).text
    evil = post(
        linh,
        settings,
        "/matching/optouts/remove",
        {"scope_type": "set", "scope_id": kept.public_id, "next": "https://evil.example/"},
    )
    assert (evil.status_code, evil.headers["location"]) == (303, "/matching")
    assert not responder.is_opted_out(db, "set", kept.public_id)
    assert 'data-testid="optout-form"' in linh.get(set_back).text

    thu = login(scene.thu)
    refused = post(
        thu,
        settings,
        "/matching/optouts",
        {"scope_type": "request", "scope_id": req.public_id, "next": "/"},
        headers=HTML,
    )
    assert refused.status_code == 404
    analyst = login(scene.hoa)  # reads requests, may not use hit/no-hit
    assert 'data-testid="matching-record"' not in analyst.get(back).text

    admin = login(scene.admin)
    shown = admin.get("/matching/admin")
    assert f'data-scope="request:{req.public_id}"' in shown.text
    put_back = post(
        admin,
        settings,
        "/matching/optouts/remove",
        {
            "scope_type": "request",
            "scope_id": req.public_id,
            "next": f"/matching/admin#authority-{scene.vn.id}",
        },
    )
    assert put_back.headers["location"] == f"/matching/admin?done=optin#authority-{scene.vn.id}"
    assert not responder.is_opted_out(db, "request", req.public_id)
    assert "The record is offered again" in text_of(admin.get("/matching/admin?done=optin").text)


def test_the_administrators_page(
    login: Callable[[Principal], TestClient], settings: Settings, scene: Scene, db: Session
) -> None:
    kept = sets.create_set(db, scene.linh, name="case")
    sets.import_csv(db, scene.linh, kept, lambda: io.StringIO("type,value\nphone,+84912345678\n"))
    admin = login(scene.admin)
    page = admin.get("/matching/admin")
    assert page.status_code == 200
    sections = re.findall(r'data-testid="authority-section" data-authority="(\d+)"', page.text)
    assert {str(scene.vn.id), str(scene.spp.id)} <= set(sections)
    assert str(scene.au.id) not in sections
    assert "The defaults apply" in page.text
    assert f'data-partner="{scene.au.id}" data-blocked="no"' in page.text

    url = f"/matching/admin/{scene.vn.id}"
    policy = {
        "answers": "no",
        "excluded_kinds": ["phone", "email"],
        "max_query_elements": "5000",
        "daily_queries": "7",
        "daily_elements": "70000",
    }
    saved = post(admin, settings, f"{url}/policy", policy)
    assert saved.headers["location"] == f"/matching/admin?done=policy#authority-{scene.vn.id}"
    current = responder.policy_of(db, scene.vn.id)
    assert (current.answers, current.excluded_kinds, current.daily_queries) == (
        False,
        ["email", "phone"],
        7,
    )
    assert "The policy was saved." in admin.get(saved.headers["location"]).text
    bad = post(admin, settings, f"{url}/policy", {**policy, "daily_queries": "lots"})
    assert bad.status_code == 422
    assert "Queries per partner in 24 hours: a whole number" in text_of(bad.text)
    assert 'value="lots"' in bad.text
    kinds = post(admin, settings, f"{url}/policy", {**policy, "excluded_kinds": ["shoe"]})
    assert kinds.status_code == 422
    assert "unknown identifier kinds: shoe" in text_of(kinds.text)

    rule = post(
        admin,
        settings,
        f"{url}/partners",
        {"partner_id": str(scene.au.id), "blocked": "true", "daily_queries": "3"},
    )
    assert rule.status_code == 303
    assert f'data-partner="{scene.au.id}" data-blocked="yes"' in admin.get("/matching/admin").text
    grant = responder.allowance(db, scene.vn.id, scene.au.id)
    assert (grant.blocked, grant.daily_queries, grant.daily_elements) == (True, 3, 70000)
    local = post(admin, settings, f"{url}/partners", {"partner_id": str(scene.spp.id)})
    assert local.status_code == 422
    assert "a partner is an authority of another node" in text_of(local.text)

    refreshed = post(admin, settings, f"{url}/refresh", {})
    assert refreshed.status_code == 303
    location = refreshed.headers["location"]
    assert "done=refreshed" in location
    shown = text_of(admin.get(location).text)
    assert "The set was refreshed: 0 elements (0 added, 0 removed)" in shown  # phone excluded
    assert post(admin, settings, f"/matching/admin/{scene.au.id}/refresh", {}).status_code == 404


@pytest.fixture
def vn_browser(pair: dict[str, Any], fast_password_hashing: PasswordHasher) -> Iterator[TestClient]:
    """A logged-in browser of a VN officer on the asking node of ``pair``."""
    from crossborder.app import create_app

    vn = pair["vn"]
    with vn.session() as s, unit_of_work(s):
        auth_service.create_user(
            s,
            actor=SYSTEM,
            username="linh-web",
            password=DEFAULT_PASSWORD,
            authority_id=pair["vn_ids"]["local"],
            roles=["officer"],
            display_name="Linh",
            require_totp=False,
            bootstrap=True,
        )
    app = create_app(vn.settings, session_factory=vn.factory)  # type: ignore[arg-type]
    with make_client(app) as client:
        assert post_login(client, vn.settings, "linh-web").status_code == 303
        client.headers["X-CSRF-Token"] = csrf_for(client, vn.settings)
        yield client


def test_hits_are_shown_and_open_draft_requests(
    pair: dict[str, Any], vn_browser: TestClient
) -> None:
    settings = pair["vn"].settings
    query_id = answered_query(pair, vn_browser)
    page = vn_browser.get(f"/matching/queries/{query_id}")
    assert page.status_code == 200
    assert 'data-status="answered"' in page.text
    found = re.findall(r'data-strength="(\w+)" data-canonical="([^"]+)"', page.text)
    assert {c: s for s, c in found} == {"+84912345678": "match", "103.27.12.7": "match"}
    hits = re.findall(r'data-testid="hit-row" data-hit="(\d+)"', page.text)
    assert len(hits) == 2
    text = text_of(page.text)
    assert "the same value" in text
    assert "Draft a police information request" in text
    assert "Draft a preservation request" in text
    assert "20 Nov 2026 17:00" in text  # the IP's hour, in Asia/Ho_Chi_Minh
    drafted = post(
        vn_browser,
        settings,
        f"/matching/hits/{hits[0]}/draft",
        {"request_type": "police_information", "query": query_id},
    )
    assert drafted.status_code == 303, text_of(drafted.text)
    location = drafted.headers["location"]
    with pair["vn"].session() as s:
        req = s.scalars(select(CooperationRequest)).one()
        assert (req.request_type, req.status) == ("police_information", "draft")
    assert location == f"/requests/{req.reference}?done=created"
    assert vn_browser.get(location).status_code == 200
    again = vn_browser.get(f"/matching/queries/{query_id}")
    assert f'href="/requests/{req.reference}" data-testid="open-draft"' in again.text
    bad = post(
        vn_browser,
        settings,
        f"/matching/hits/{hits[1]}/draft",
        {"request_type": "extradition", "query": query_id},
    )
    assert bad.status_code == 422
    assert 'data-testid="draft-error"' in bad.text
