"""The hit/no-hit JSON API through the real application.

Single node: Viet Nam's A05 (local) asks; Australia's AFP and Morocco's BNPJ are served by
other nodes, and a police MoU in force covers VN-AU only. Hits come from the two-node flow
(``pair``, tests/matching/conftest.py) with the app mounted on the asking node.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.auth import service as auth_service
from crossborder.auth.models import User
from crossborder.auth.permissions import SYSTEM, Principal
from crossborder.db.session import unit_of_work
from crossborder.directory.models import Authority, LegalInstrument, Node
from crossborder.federation.models import OutboxMessage
from crossborder.matching import responder, schemas, service
from crossborder.matching.models import MatchInbound
from crossborder.selectors import sets
from crossborder.settings import Settings
from tests.fixtures.auth import DEFAULT_PASSWORD
from tests.fixtures.web import TestClient, build_app, csrf_for, make_client, post_login
from tests.requests.conftest import as_user, preservation_draft

__all__ = ["Scene", "as_user", "scene"]

OFFENCES = [{"code": "THEFT_FRAUD", "max_penalty_years": 10}]
PURPOSE = "Investment fraud ring: who else knows these identifiers?"
SECRETS = ("84912345678", "234 5678", "shop.owner@example.com", "103.27.12.7")


@dataclass
class Scene:
    vn: Authority  # local: asks
    spp: Authority  # local too: another authority of this node
    au: Authority  # served by a partner node, police MoU with VN
    ma: Authority  # served by a partner node, no instrument
    node: Node
    mou: LegalInstrument
    linh: Principal  # VN officer
    minh: Principal  # VN supervisor
    hoa: Principal  # VN analyst
    an: Principal  # VN auditor
    admin: Principal  # node administrator (of VN)
    thu: Principal  # SPP officer
    users: dict[int, User]


@pytest.fixture
def scene(
    make_authority: Callable[..., Authority],
    make_node: Callable[..., Node],
    make_instrument: Callable[..., LegalInstrument],
    make_party: Callable[..., Any],
    make_user: Callable[..., User],
) -> Scene:
    vn = make_authority("VN", name="A05", short_name="VN-A05", is_local=True)
    spp = make_authority("VN", name="SPP", short_name="VN-SPP", is_local=True)
    au_node = make_node(name="au-afp")
    ma_node = make_node(name="ma-dgsn")
    au = make_authority(
        "AU", name="AFP", short_name="AU-AFP", time_zone="Australia/Sydney", node_id=au_node.id
    )
    ma = make_authority(
        "MA", name="BNPJ", short_name="MA-BNPJ", time_zone="Africa/Casablanca", node_id=ma_node.id
    )
    mou = make_instrument(
        "AU-VN-POLICE-MOU", kind="mou", channels=["police", "point_of_contact_24_7"]
    )
    make_party(mou, "VN")
    make_party(mou, "AU")
    users: dict[int, User] = {}

    def person(authority: Authority, role: str) -> Principal:
        user = make_user(roles=(role,), authority_id=authority.id)
        users[user.id] = user
        return auth_service.principal_for(user)

    return Scene(
        vn=vn,
        spp=spp,
        au=au,
        ma=ma,
        node=au_node,
        mou=mou,
        linh=person(vn, "officer"),
        minh=person(vn, "supervisor"),
        hoa=person(vn, "analyst"),
        an=person(vn, "auditor"),
        admin=person(vn, "administrator"),
        thu=person(spp, "officer"),
        users=users,
    )


Client = Callable[[Principal], TestClient]


@pytest.fixture
def as_session(
    app: FastAPI, settings: Settings, scene: Scene
) -> Iterator[Callable[[Principal], TestClient]]:
    """A browser-session client (auditors hold no API token) that sends the CSRF header."""
    opened: list[TestClient] = []

    def _client(who: Principal) -> TestClient:
        c = make_client(app)
        c.__enter__()
        opened.append(c)
        assert post_login(c, settings, scene.users[who.user_id].username).status_code == 303
        c.headers["X-CSRF-Token"] = csrf_for(c, settings)
        return c

    yield _client
    for c in opened:
        c.__exit__(None, None, None)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def fields_of(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body.get("errors", [])]


def query_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "purpose": PURPOSE,
        "case_reference": "A05-2026-0117",
        "offences": OFFENCES,
        "identifiers": [
            {"kind": "phone", "value": "+84 91 234 5678"},
            {"kind": "email", "value": "shop.owner@example.com"},
            {
                "kind": "ip",
                "value": "103.27.12.7",
                "port": 51234,
                "seen_from": "2026-11-20T10:05:00+00:00",
                "seen_until": "2026-11-20T10:20:00+00:00",
            },
        ],
    }
    body.update(overrides)
    return body


def test_a_query_goes_to_the_partners_with_a_basis_and_never_in_clear(
    as_user: Client, scene: Scene, db: Session
) -> None:
    linh = as_user(scene.linh)
    sent = linh.post("/api/v1/matching/queries", json=query_body())
    assert sent.status_code == 201, sent.text
    data = sent.json()
    assert (data["identifiers"], data["case_reference"]) == (3, "A05-2026-0117")
    [target] = data["targets"]
    assert (target["partner"]["short_name"], target["status"], target["legal_basis"]) == (
        "AU-AFP",
        "sent",
        "AU-VN-POLICE-MOU",
    )
    assert target["elements"] == data["elements"] > 3  # the IP's hour buckets count too
    [not_asked] = data["not_asked"]
    assert (not_asked["partner"]["id"], not_asked["may_ask"]) == (scene.ma.id, False)
    assert not_asked["reason"]

    [message] = db.scalars(select(OutboxMessage).where(OutboxMessage.type == "match.query"))
    assert message.to_node_id == scene.node.id
    assert message.body["case_reference"] == "A05-2026-0117"
    assert message.body["purpose"] == PURPOSE
    wire = orjson.dumps(message.body).decode()
    for secret in SECRETS:
        assert secret not in wire

    [listed] = linh.get("/api/v1/matching/queries").json()["items"]
    assert (listed["id"], listed["partners"], listed["waiting"], listed["hit_count"]) == (
        data["id"],
        1,
        1,
        0,
    )
    detail = as_user(scene.minh).get(f"/api/v1/matching/queries/{data['id']}")
    assert detail.status_code == 200, detail.text
    shown = detail.json()
    assert [t["status"] for t in shown["targets"]] == ["sent"]
    assert shown["hits"] == []
    assert shown["purpose"] == PURPOSE
    problem(as_user(scene.thu).get(f"/api/v1/matching/queries/{data['id']}"), 404)
    assert as_user(scene.thu).get("/api/v1/matching/queries").json() == {"items": []}


def test_only_the_chosen_partners_are_asked(as_user: Client, scene: Scene) -> None:
    linh = as_user(scene.linh)
    refused = problem(
        linh.post("/api/v1/matching/queries", json=query_body(partners=[scene.ma.id])), 422
    )
    assert fields_of(refused) == ["partners"]
    assert "no legal basis" in refused["detail"]
    chosen = linh.post("/api/v1/matching/queries", json=query_body(partners=[scene.au.id]))
    assert chosen.status_code == 201, chosen.text
    assert chosen.json()["not_asked"] == []
    unknown = linh.post("/api/v1/matching/queries", json=query_body(partners=[scene.spp.id]))
    assert fields_of(problem(unknown, 422)) == ["partners"]


def test_who_may_be_asked(as_user: Client, as_session: Client, scene: Scene) -> None:
    linh = as_user(scene.linh)
    found = linh.get("/api/v1/matching/partners", params={"offences": "THEFT_FRAUD"})
    assert found.status_code == 200, found.text
    by_id = {i["partner"]["id"]: i for i in found.json()["items"]}
    assert set(by_id) == {scene.au.id, scene.ma.id}
    assert (by_id[scene.au.id]["may_ask"], by_id[scene.au.id]["legal_basis"]) == (
        True,
        "AU-VN-POLICE-MOU",
    )
    assert by_id[scene.ma.id]["may_ask"] is False
    assert by_id[scene.ma.id]["reason"]
    two = linh.get("/api/v1/matching/partners", params={"offences": "THEFT_FRAUD,CSAM"})
    assert two.status_code == 200
    assert fields_of(
        problem(linh.get("/api/v1/matching/partners", params={"offences": "NOPE"}), 422)
    ) == ["offences"]
    problem(linh.get("/api/v1/matching/partners"), 422)
    problem(as_session(scene.an).get("/api/v1/matching/partners", params={"offences": "CSAM"}), 403)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"purpose": ""}, "purpose"),
        ({"purpose": "too short"}, "purpose"),
        ({"case_reference": " "}, "case_reference"),
        ({"case_reference": "x" * 201}, "case_reference"),
        ({"offences": []}, "offences"),
        ({"offences": [{"code": "SHOPLIFTING"}]}, "offences.0.code"),
        (
            {"offences": [{"code": "CSAM", "max_penalty_years": 101}]},
            "offences.0.max_penalty_years",
        ),
        ({"offences": [{"code": "CSAM"}] * 21}, "offences"),
        ({"identifiers": [{"kind": "shoe", "value": "42"}]}, "identifiers.0.kind"),
        ({"identifiers": [{"kind": "ip", "value": ""}]}, "identifiers.0.value"),
        (
            {"identifiers": [{"kind": "ip", "value": "1.2.3.4", "port": 70000}]},
            "identifiers.0.port",
        ),
        (
            {"identifiers": [{"kind": "ip", "value": "1.2.3.4", "seen_from": "2026-11-20T10:05"}]},
            "identifiers.0.seen_from",
        ),
        ({"slack_seconds": 3601}, "slack_seconds"),
        ({"partners": []}, "partners"),
        ({"colour": "red"}, "colour"),
        ({"identifiers": [{"kind": "phone", "value": "not a phone"}]}, "identifiers.0.value"),
        ({"identifiers": []}, "identifiers"),
        ({"set": "no-such-set"}, None),
    ],
)
def test_bad_queries_are_problems_naming_the_field(
    as_user: Client, scene: Scene, db: Session, change: dict[str, Any], field: str | None
) -> None:
    response = as_user(scene.linh).post("/api/v1/matching/queries", json=query_body(**change))
    if field is None:
        problem(response, 404)
    else:
        assert field in fields_of(problem(response, 422))
    assert db.scalars(select(OutboxMessage)).all() == []


def test_more_than_100000_identifiers_are_refused(
    settings: Settings, db: Session, scene: Scene, make_token: Callable[..., Any]
) -> None:
    roomy = build_app(settings.model_copy(update={"max_body_bytes": 20_000_000}), db)
    _token, raw = make_token(scene.users[scene.linh.user_id])
    many = [{"kind": "ip", "value": "10.0.0.1"}] * (service.MAX_QUERY_ITEMS + 1)
    with make_client(roomy, headers={"Authorization": f"Bearer {raw}"}) as c:
        response = c.post("/api/v1/matching/queries", json=query_body(identifiers=many))
    assert "identifiers" in fields_of(problem(response, 422))
    with pytest.raises(ValidationError):
        schemas.QueryIn.model_validate(query_body(identifiers=many))
    assert schemas.QueryIn.model_validate(query_body(identifiers=many[:-1])).identifiers


def test_who_may_not_ask(
    as_session: Client, scene: Scene, app: FastAPI, settings: Settings, make_token: Any
) -> None:
    for who in (scene.an, scene.admin, scene.hoa):
        c = as_session(who)
        refused = problem(c.post("/api/v1/matching/queries", json=query_body()), 403)
        assert "matching:query" in refused["detail"]
        problem(c.get("/api/v1/matching/queries"), 403)
    _token, raw = make_token(scene.users[scene.linh.user_id], ["requests:read"])
    with make_client(app, headers={"Authorization": f"Bearer {raw}"}) as narrow:
        problem(narrow.post("/api/v1/matching/queries", json=query_body()), 403)
    with make_client(app) as browser:
        assert (
            post_login(browser, settings, scene.users[scene.linh.user_id].username).status_code
            == 303
        )
        refused = problem(browser.post("/api/v1/matching/queries", json=query_body()), 403)
        assert "CSRF" in refused["detail"]
        token = csrf_for(browser, settings)
        sent = browser.post(
            "/api/v1/matching/queries", json=query_body(), headers={"X-CSRF-Token": token}
        )
        assert sent.status_code == 201, sent.text
    problem(make_client(app).get("/api/v1/matching/queries"), 401)


def test_an_administrator_sets_the_policy_and_partner_rules(as_user: Client, scene: Scene) -> None:
    admin = as_user(scene.admin)
    url = f"/api/v1/matching/authorities/{scene.vn.id}"
    defaults = admin.get(f"{url}/policy").json()
    assert defaults == {
        "authority_id": scene.vn.id,
        "answers": True,
        "excluded_kinds": [],
        "max_query_elements": responder.DEFAULT_MAX_QUERY_ELEMENTS,
        "daily_queries": responder.DEFAULT_DAILY_QUERIES,
        "daily_elements": responder.DEFAULT_DAILY_ELEMENTS,
        "updated_by": None,
        "updated_at": None,
    }
    saved = admin.put(
        f"{url}/policy", json={"answers": False, "excluded_kinds": ["phone"], "daily_queries": 5}
    )
    assert saved.status_code == 200, saved.text
    got = admin.get(f"{url}/policy").json()
    assert (got["answers"], got["excluded_kinds"], got["daily_queries"]) == (False, ["phone"], 5)
    assert got["daily_elements"] == responder.DEFAULT_DAILY_ELEMENTS
    assert got["updated_by"]
    assert "excluded_kinds.0" in fields_of(
        problem(admin.put(f"{url}/policy", json={"excluded_kinds": ["shoe"]}), 422)
    )
    assert "max_query_elements" in fields_of(
        problem(admin.put(f"{url}/policy", json={"max_query_elements": 0}), 422)
    )
    problem(admin.get(f"/api/v1/matching/authorities/{scene.au.id}/policy"), 404)
    problem(admin.get("/api/v1/matching/authorities/999999/policy"), 404)
    problem(as_user(scene.linh).get(f"{url}/policy"), 403)
    problem(as_user(scene.linh).put(f"{url}/policy", json={"answers": True}), 403)

    rule = admin.put(
        f"{url}/partners/{scene.au.id}", json={"blocked": True, "daily_elements": 1000}
    )
    assert rule.status_code == 200, rule.text
    assert (rule.json()["blocked"], rule.json()["daily_elements"]) == (True, 1000)
    assert fields_of(problem(admin.put(f"{url}/partners/{scene.spp.id}", json={}), 422)) == [
        "partner"
    ]
    problem(as_user(scene.minh).put(f"{url}/partners/{scene.au.id}", json={}), 403)

    status = admin.get(f"{url}/status").json()
    usage = {u["partner"]["id"]: u for u in status["usage"]}
    assert usage[scene.au.id]["blocked"] is True
    assert usage[scene.au.id]["daily_elements"] == 1000
    assert usage[scene.au.id]["daily_queries"] == 5
    assert (usage[scene.ma.id]["queries_24h"], usage[scene.ma.id]["elements_24h"]) == (0, 0)
    assert (status["elements"], status["segments"], status["built_at"]) == (0, 0, None)


def test_refresh_builds_the_set_and_inbound_lists_partners_queries(
    as_user: Client, scene: Scene, db: Session
) -> None:
    rows = "type,value\nphone,+84 91 234 5678\nemail,shop.owner@example.com\n"
    kept = sets.create_set(db, scene.linh, name="case")
    sets.import_csv(db, scene.linh, kept, lambda: io.StringIO(rows))
    admin = as_user(scene.admin)
    url = f"/api/v1/matching/authorities/{scene.vn.id}"
    done = admin.post(f"{url}/refresh")
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["elements"] == result["added"] >= 2
    assert (result["removed"], result["segments_built"], result["segments"]) == (0, 1, 1)
    status = admin.get(f"{url}/status").json()
    assert status["elements"] == result["elements"]
    assert status["bytes"] > 0
    assert status["built_at"] is not None
    problem(as_user(scene.linh).post(f"{url}/refresh"), 403)

    db.add(
        MatchInbound(
            query_ref="6f0d7a8e-1111-4222-8333-944455556666",
            partner_authority_id=scene.au.id,
            authority_id=scene.vn.id,
            node_name="au-afp",
            asked_by_label="jack",
            purpose="Who holds this wallet?",
            case_reference="AFP-77",
            offences=OFFENCES,
            elements=12,
            outcome="refused",
            reason_code="DAILY_QUERIES",
            reason="at most 5 queries in 24 hours",
        )
    )
    db.commit()
    [row] = admin.get("/api/v1/matching/inbound").json()["items"]
    assert (row["partner"]["short_name"], row["case_reference"], row["reason_code"]) == (
        "AU-AFP",
        "AFP-77",
        "DAILY_QUERIES",
    )
    only = admin.get("/api/v1/matching/inbound", params={"authority": scene.spp.id}).json()
    assert only == {"items": []}
    problem(admin.get("/api/v1/matching/inbound", params={"authority": scene.au.id}), 404)
    problem(as_user(scene.linh).get("/api/v1/matching/inbound"), 403)


def test_records_are_kept_out_and_put_back(
    as_user: Client, as_session: Client, scene: Scene, db: Session
) -> None:
    from crossborder.requests import service as requests_service

    kept = sets.create_set(db, scene.linh, name="informant's numbers")
    req = requests_service.create_draft(db, preservation_draft(scene.au), actor=scene.linh)
    linh = as_user(scene.linh)
    out = linh.post(
        "/api/v1/matching/optouts",
        json={"scope_type": "set", "scope_id": kept.public_id, "reason": "informant"},
    )
    assert out.status_code == 201, out.text
    assert (out.json()["authority_id"], out.json()["reason"]) == (scene.vn.id, "informant")
    by_ref = linh.post(
        "/api/v1/matching/optouts", json={"scope_type": "request", "scope_id": req.reference}
    )
    assert by_ref.status_code == 201, by_ref.text
    assert by_ref.json()["scope_id"] == req.public_id
    assert responder.is_opted_out(db, "request", req.public_id)
    listed = {
        (i["scope_type"], i["scope_id"])
        for i in linh.get("/api/v1/matching/optouts").json()["items"]
    }
    assert listed == {("set", kept.public_id), ("request", req.public_id)}
    assert len(as_user(scene.admin).get("/api/v1/matching/optouts").json()["items"]) == 2
    assert as_user(scene.thu).get("/api/v1/matching/optouts").json() == {"items": []}
    problem(
        as_user(scene.thu).post(
            "/api/v1/matching/optouts", json={"scope_type": "set", "scope_id": kept.public_id}
        ),
        404,
    )
    problem(
        as_session(scene.an).post(
            "/api/v1/matching/optouts", json={"scope_type": "set", "scope_id": kept.public_id}
        ),
        403,
    )
    assert fields_of(
        problem(
            linh.post("/api/v1/matching/optouts", json={"scope_type": "intel", "scope_id": "x"}),
            422,
        )
    ) == ["scope_type"]
    body = {"scope_type": "set", "scope_id": kept.public_id}
    problem(as_user(scene.thu).request("DELETE", "/api/v1/matching/optouts", json=body), 404)
    assert linh.request("DELETE", "/api/v1/matching/optouts", json=body).status_code == 204
    problem(linh.request("DELETE", "/api/v1/matching/optouts", json=body), 404)
    assert not responder.is_opted_out(db, "set", kept.public_id)


# -- hits, through two real nodes -----------------------------------------------------------------


@pytest.fixture
def vn_client(pair: dict[str, Any], fast_password_hashing: PasswordHasher) -> Iterator[TestClient]:
    """An API client of a VN officer on the asking node of ``pair``."""
    from crossborder.app import create_app

    vn = pair["vn"]
    with vn.session() as s, unit_of_work(s):
        user = auth_service.create_user(
            s,
            actor=SYSTEM,
            username="linh-api",
            password=DEFAULT_PASSWORD,
            authority_id=pair["vn_ids"]["local"],
            roles=["officer"],
            display_name="Linh",
            bootstrap=True,
        )
        principal = auth_service.principal_for(user)
        _token, raw = auth_service.create_token(
            s,
            actor=principal,
            name="test",
            scopes=sorted(p.value for p in principal.permissions),
            expires_in_days=1,
        )
    app = create_app(vn.settings, session_factory=vn.factory)  # type: ignore[arg-type]
    with make_client(app, headers={"Authorization": f"Bearer {raw}"}) as client:
        yield client


def answered_query(pair: dict[str, Any], client: TestClient) -> str:
    """A query asked through the API and answered by AU, which holds two of its values."""
    from tests.matching.conftest import fill_set

    fill_set(
        pair["au"],
        pair["jack"],
        [
            "phone,+84 91 234 5678,,,",
            "ip,103.27.12.7,51234,2026-11-20T10:05:00+00:00,2026-11-20T10:20:00+00:00",
        ],
    )
    sent = client.post(
        "/api/v1/matching/queries",
        json=query_body(
            identifiers=[
                {"kind": "phone", "value": "+84912345678"},
                {"kind": "domain", "value": "example.org"},
                {
                    "kind": "ip",
                    "value": "103.27.12.7",
                    "port": 51234,
                    "seen_from": "2026-11-20T10:30:00+00:00",
                    "seen_until": "2026-11-20T10:40:00+00:00",
                },
            ]
        ),
    )
    assert sent.status_code == 201, sent.text
    assert pair["vn"].deliver(pair["t"]).delivered == 1
    assert pair["au"].deliver(pair["t"]).delivered >= 1
    query_id: str = sent.json()["id"]
    return query_id


def test_hits_are_shown_and_become_draft_requests(
    pair: dict[str, Any], vn_client: TestClient
) -> None:
    query_id = answered_query(pair, vn_client)
    detail = vn_client.get(f"/api/v1/matching/queries/{query_id}").json()
    [target] = detail["targets"]
    assert (target["status"], target["hit_count"]) == ("answered", 2)
    assert target["set_size"] >= 2  # elements: the IP counts with its hour too
    assert target["bytes_received"] > 0
    assert target["answered_at"] is not None
    assert detail["hit_count"] == 2
    hits = {h["identifier"]["canonical"]: h for h in detail["hits"]}
    assert set(hits) == {"+84912345678", "103.27.12.7"}
    phone, ip = hits["+84912345678"], hits["103.27.12.7"]
    assert (phone["strength"], phone["matched"], phone["hours"]) == ("match", ["value"], [])
    assert phone["identifier"]["raw"] == "+84912345678"
    assert phone["partner"]["short_name"] == "AU-AFP"
    assert ip["strength"] == "match"
    assert ip["hours"] == ["2026-11-20T10:00:00+00:00"]
    assert ip["identifier"]["port"] == 51234

    drafted = vn_client.post(
        f"/api/v1/matching/hits/{phone['id']}/draft", json={"request_type": "preservation"}
    )
    assert drafted.status_code == 201, drafted.text
    ref = drafted.json()["request"]
    assert drafted.json()["url"] == f"/requests/{ref}"
    again = vn_client.post(f"/api/v1/matching/hits/{phone['id']}/draft")
    assert again.json()["request"] == ref
    shown = vn_client.get(f"/api/v1/requests/{ref}").json()
    assert shown["request_type"] == "preservation"
    assert shown["status"] == "draft"
    after = vn_client.get(f"/api/v1/matching/queries/{query_id}").json()
    assert {h["identifier"]["canonical"]: h["draft_request"] for h in after["hits"]} == {
        "+84912345678": ref,
        "103.27.12.7": None,
    }
    assert "request_type" in fields_of(
        problem(
            vn_client.post(
                f"/api/v1/matching/hits/{ip['id']}/draft", json={"request_type": "extradition"}
            ),
            422,
        )
    )
    problem(vn_client.post("/api/v1/matching/hits/999999/draft"), 404)
