"""The identifier pages: lookup, sets and CSV import, the record panel, the graph, warning lists.

Scene: Linh (Viet Nam, A05) drafts requests naming IP addresses; Yasmine (Morocco, BNPJ)
keeps an identifier set holding one of them. Neither may open the other's record, so each
is told only which authority to contact — and naming that authority is audited.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, DictLoader, FileSystemLoader
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from crossborder.audit.models import AuditEvent
from crossborder.auth.deps import web_principal
from crossborder.auth.permissions import Principal
from crossborder.deps import get_session
from crossborder.requests import service as requests_service
from crossborder.requests import views as request_views
from crossborder.selectors import service as selectors
from crossborder.selectors import sets, views
from crossborder.selectors.models import IdentLocalWarning, IdentOccurrence
from crossborder.settings import Settings
from crossborder.web import templating
from crossborder.web.templating import TEMPLATES_DIR as TEMPLATES
from tests.fixtures.web import build_app, csrf_for, make_client, post_login
from tests.requests import conftest as requests_conftest
from tests.requests.conftest import World, preservation_draft

world = requests_conftest.world  # the Viet Nam / Australia / Morocco scene of the requests tests

T0 = datetime(2026, 10, 14, tzinfo=UTC)
HTML = {"accept": "text/html"}
PANEL_PAGE = (
    '{% extends "base.html" %}{% import "identifiers/_panel.html" as ip with context %}'
    "{% block content %}{{ ip.panel(identifiers_panel) }}{% endblock %}"
)


@pytest.fixture
def app(settings: Settings, db: Session, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """The real app, with the identifier pages mounted if app.py does not mount them yet, and
    a test page embedding the panel exactly as the request page does."""
    application = build_app(settings, db)
    paths = {getattr(route, "path", "") for route in application.routes}
    if "/identifiers" not in paths:
        application.include_router(views.router)
    monkeypatch.setattr(
        templating.ENV,
        "loader",
        ChoiceLoader([DictLoader({"_test/panel.html": PANEL_PAGE}), FileSystemLoader(TEMPLATES)]),
    )

    @application.get("/_test/panel/{scope_type}/{scope_id}", response_class=HTMLResponse)
    def panel_page(
        scope_type: str,
        scope_id: str,
        request: Request,
        actor: Principal = Depends(web_principal),
        session: Session = Depends(get_session),
    ) -> HTMLResponse:
        panel = views.identifiers_panel(
            session, actor, request.app.state.settings, scope_type, scope_id
        )
        return templating.render(request, "_test/panel.html", {"identifiers_panel": panel})

    return application


@pytest.fixture
def clients(app: FastAPI) -> Iterator[list[TestClient]]:
    opened: list[TestClient] = []
    yield opened
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def login(
    app: FastAPI, settings: Settings, clients: list[TestClient]
) -> Callable[[Principal], TestClient]:
    def _login(who: Principal) -> TestClient:
        c = make_client(app)
        c.__enter__()
        clients.append(c)
        assert post_login(c, settings, who.username).status_code == 303
        return c

    return _login


def ip_entry(value: str, start: datetime = T0, hours: int = 48) -> dict[str, Any]:
    return {
        "kind": "ip",
        "value": value,
        "window_start": start,
        "window_end": start + timedelta(hours=hours),
        "time_zone": "Asia/Ho_Chi_Minh",
    }


def draft(db: Session, world: World, *entries: dict[str, Any], **overrides: Any) -> Any:
    data = preservation_draft(world.au, identifiers=list(entries), **overrides)
    return requests_service.create_draft(db, data, actor=world.linh)


def moroccan_set(db: Session, world: World, *values: str, name: str = "Seized laptop") -> Any:
    kept = sets.create_set(db, world.yasmine, name=name)
    selectors.index_record(
        db, sets.where_of(kept), [selectors.Entry("ip", v) for v in values], source="imported"
    )
    db.commit()
    return kept


def post(c: TestClient, settings: Settings, url: str, data: dict[str, Any], **kw: Any) -> Any:
    return c.post(url, data={**data, "csrf_token": csrf_for(c, settings)}, **kw)


def text_of(html: str) -> str:
    """The page's text, tags removed and whitespace collapsed (for sentence assertions)."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def events(db: Session, action: str) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# -- lookup ---------------------------------------------------------------------------------


def test_lookup_page_shows_the_form_and_the_authority_s_sets(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    moroccan_set(db, world, "103.27.12.7", name="Casablanca phones")
    c = login(world.yasmine)
    page = c.get("/identifiers")
    assert page.status_code == 200
    assert 'data-testid="lookup-form"' in page.text
    assert '<option value="crypto"' in page.text
    assert "Cryptocurrency address" in page.text
    assert 'type="datetime-local"' in page.text
    assert "(Africa/Casablanca)" in page.text  # the time is read in the authority's zone
    assert "Casablanca phones" in page.text
    assert 'href="/identifiers"' in page.text  # the nav entry
    # Another authority's user does not see the Moroccan set in their list.
    assert "Casablanca phones" not in login(world.linh).get("/identifiers").text


def test_a_withheld_hit_names_the_authority_to_contact_and_nothing_of_the_record(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    req = draft(db, world, ip_entry("103.27.12.23"), title="Secret op Lotus")
    c = login(world.yasmine)
    before = len(events(db, "identifiers.lookup"))
    page = c.get("/identifiers", params={"type": "ip", "value": "103.27.12.23"})
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    assert f"Another authority holds this — contact {world.vn.name}" in text
    assert f'href="/directory/authorities/{world.vn.id}"' in page.text
    assert req.reference not in page.text
    assert req.public_id not in page.text
    assert "Secret op Lotus" not in page.text
    assert len(events(db, "identifiers.lookup")) == before + 1


def test_the_contact_line_is_translated_and_escapes_the_authority_name(
    db: Session,
    world: World,
    make_authority: Callable[..., Any],
    make_principal: Callable[..., Principal],
    login: Callable[[Principal], TestClient],
) -> None:
    odd = make_authority("LA", name="Police <b>Unit</b>", time_zone="Asia/Vientiane")
    keeper = make_principal("officer", authority_id=odd.id)
    kept = sets.create_set(db, keeper, name="Lao list")
    selectors.index_record(
        db, sets.where_of(kept), [selectors.Entry("ip", "103.27.12.99")], source="imported"
    )
    db.commit()
    c = login(world.linh)
    c.cookies.set("cb_lang", "vi")
    page = c.get("/identifiers", params={"type": "ip", "value": "103.27.12.99"})
    assert page.status_code == 200
    assert "Police &lt;b&gt;Unit&lt;/b&gt;" in page.text
    assert "<b>Unit</b>" not in page.text
    assert "Một cơ quan khác đang nắm giữ giá trị này — hãy liên hệ Police <b>Unit</b>" in text_of(
        page.text
    )
    assert f'<a href="/directory/authorities/{odd.id}" data-testid="contact-link">' in page.text


def test_hits_show_relation_and_strength_and_other_sightings_apart(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    same = draft(db, world, ip_entry("103.27.12.7:40000"), title="Same subscriber")
    other = draft(db, world, ip_entry("103.27.12.7:40001"), title="Another subscriber")
    nothing = draft(db, world, ip_entry("103.27.12.7"), title="No port given")
    c = login(world.linh)
    page = c.get(
        "/identifiers",
        params={"type": "ip", "value": "103.27.12.7", "port": "40000", "time": "2026-10-14T12:00"},
    )
    assert page.status_code == 200, page.text
    hits = re.findall(r'data-testid="hit" data-strength="(\w+)" data-relation="(\w+)"', page.text)
    assert sorted(hits) == [("match", "same"), ("match", "same")]
    assert f'href="/requests/{same.public_id}"' in page.text
    assert f'href="/requests/{nothing.public_id}"' in page.text
    sightings = page.text.split('data-testid="other-sightings"')[1]
    assert f'href="/requests/{other.public_id}"' in sightings
    assert "different port or time: probably another subscriber" in text_of(sightings)


def test_a_cgnat_address_without_port_is_a_weak_hit(
    app: FastAPI,
    db: Session,
    world: World,
    settings: Settings,
    login: Callable[[Principal], TestClient],
) -> None:
    # Shared addresses are on the default warning lists (rfc6598): a node without lists.
    app.state.settings = settings.model_copy(update={"identifiers_warninglists": "none"})
    draft(db, world, ip_entry("100.64.3.9"))
    page = login(world.linh).get("/identifiers", params={"type": "ip", "value": "100.64.3.9"})
    assert 'data-testid="hit" data-strength="weak"' in page.text
    assert "no port or time to compare" in page.text
    assert "shared address (carrier-grade NAT)" in page.text  # the flag


def test_another_address_of_the_same_ipv6_64_is_a_weak_hit(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    draft(db, world, ip_entry("2405:4800:1:2::7"))
    page = login(world.linh).get("/identifiers", params={"type": "ip", "value": "2405:4800:1:2::8"})
    assert 'data-strength="weak" data-relation="prefix"' in page.text
    text = text_of(page.text)
    assert "same IPv6 /64" in text
    assert "another address in the same /64" in text
    assert "2405:4800:1:2::7" in text  # the address found there


def test_a_warning_listed_value_is_marked_and_not_correlated(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    draft(db, world, ip_entry("8.8.8.8"))
    page = login(world.linh).get("/identifiers", params={"type": "ip", "value": "8.8.8.8"})
    assert page.status_code == 200
    assert "On warning list: public-dns-v4 — not correlated" in text_of(page.text)
    assert 'data-testid="hit"' not in page.text


def test_a_value_over_the_correlation_limit_says_so(
    app: FastAPI,
    db: Session,
    world: World,
    settings: Settings,
    login: Callable[[Principal], TestClient],
) -> None:
    for _ in range(3):
        draft(db, world, ip_entry("103.27.12.50"))
    app.state.settings = settings.model_copy(update={"identifiers_correlation_limit": 2})
    page = login(world.linh).get("/identifiers", params={"type": "ip", "value": "103.27.12.50"})
    assert "Held in 3 records — over the correlation limit of 2, not correlated" in text_of(
        page.text
    )
    assert 'data-testid="hit"' not in page.text


def test_a_network_search_lists_every_address_found_inside(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    draft(db, world, ip_entry("103.27.12.7"))
    draft(db, world, ip_entry("103.27.12.200"))
    draft(db, world, ip_entry("103.27.13.1"))
    page = login(world.linh).get("/identifiers", params={"type": "ip", "value": "103.27.12.0/24"})
    assert page.status_code == 200
    values = re.findall(r'data-testid="lookup-value" data-canonical="([^"]+)"', page.text)
    assert sorted(values) == ["103.27.12.200", "103.27.12.7"]
    assert 'data-relation="network"' in page.text
    assert "in the network searched" in page.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"type": "phone", "value": "call me maybe"}, None),
        ({"type": "ip", "value": "0.0.0.0/0"}, "too wide"),
        ({"type": "warp-drive", "value": "x"}, "Choose one of the listed values."),
        ({"type": "ip", "value": ""}, "Enter a value to search for."),
        ({"type": "ip", "value": "103.27.12.7", "port": "99999"}, "from 1 to 65535"),
        ({"type": "ip", "value": "103.27.12.7", "time": "yesterday"}, "valid date and time"),
        ({"type": "email", "value": "a@example.com", "port": "80"}, "only an IP address"),
    ],
)
def test_invalid_input_is_a_readable_error_on_the_page(
    world: World,
    login: Callable[[Principal], TestClient],
    params: dict[str, str],
    message: str | None,
) -> None:
    page = login(world.linh).get("/identifiers", params=params, headers=HTML)
    assert page.status_code == 422
    assert 'data-testid="lookup-error"' in page.text
    assert 'data-testid="lookup-form"' in page.text  # the form is still there to correct
    if message:
        assert message in unescape(page.text)


def test_the_search_time_is_read_in_the_authority_s_zone(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    # Seen 14-16 October UTC. 06:30 on the 14th in Ho Chi Minh City is 23:30 UTC on the 13th:
    # outside the window, so another sighting; 07:30 local (00:30 UTC) is inside.
    draft(db, world, ip_entry("103.27.12.8"))
    c = login(world.linh)
    before = c.get(
        "/identifiers", params={"type": "ip", "value": "103.27.12.8", "time": "2026-10-14T06:30"}
    )
    inside = c.get(
        "/identifiers", params={"type": "ip", "value": "103.27.12.8", "time": "2026-10-14T07:30"}
    )
    assert 'data-testid="mismatch"' in before.text
    assert 'data-testid="hit"' not in before.text
    assert 'data-testid="hit" data-strength="match"' in inside.text


# -- sets and CSV import ----------------------------------------------------------------------


def test_create_a_set_then_import_a_csv_through_the_form(
    db: Session, world: World, settings: Settings, login: Callable[[Principal], TestClient]
) -> None:
    c = login(world.minh)
    created = post(c, settings, "/identifiers/sets", {"name": "Call records", "description": ""})
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    set_id = re.match(r"/identifiers/sets/([0-9a-f-]+)\?done=created", location)
    assert set_id, location
    page = c.get(location)
    assert "The identifier set was created." in page.text
    assert 'data-testid="import-form"' in page.text
    assert "crossborder identifiers import" in page.text
    assert "The web form takes files of up to 1 MB." in text_of(page.text)

    csv = b"type,value,port\nip,103.27.12.7,40000\nphone,+84 912 345 678,\nphone,0987 654 321,\n"
    done = post(
        c,
        settings,
        f"/identifiers/sets/{set_id.group(1)}/import",
        {},
        files={"file": ("calls.csv", csv, "text/csv")},
    )
    assert done.status_code == 303, done.text
    page = c.get(done.headers["location"])
    assert "3 identifiers stored from 3 rows" in page.text
    rows = re.findall(r'data-testid="record-identifier" data-kind="(\w+)"', page.text)
    assert sorted(rows) == ["ip", "phone", "phone"]
    assert "+84987654321" in page.text  # the authority's region filled the country code
    assert "line 2" in page.text  # where each value was found in the file
    assert events(db, "identifiers.imported")


def test_a_csv_with_a_bad_row_stores_nothing_and_names_the_line(
    db: Session, world: World, settings: Settings, login: Callable[[Principal], TestClient]
) -> None:
    kept = sets.create_set(db, world.minh, name="Wallets")
    db.commit()
    c = login(world.minh)
    csv = b"type,value\nip,103.27.12.7\nimei,490154203237519\n"
    url = f"/identifiers/sets/{kept.public_id}/import"
    failed = post(c, settings, url, {}, files={"file": ("w.csv", csv, "text/csv")})
    assert failed.status_code == 422
    assert 'data-testid="import-error"' in failed.text
    assert "line 3" in failed.text
    assert (
        db.scalar(
            select(func.count())
            .select_from(IdentOccurrence)
            .where(IdentOccurrence.scope_id == kept.public_id)
        )
        == 0
    )
    skipped = post(
        c,
        settings,
        url,
        {"skip_invalid": "true"},
        files={"file": ("w.csv", csv, "text/csv")},
    )
    assert skipped.status_code == 303
    page = c.get(skipped.headers["location"])
    assert "1 identifier stored from 2 rows" in page.text
    assert "(1 invalid row skipped)" in page.text
    missing = post(c, settings, url, {}, files={"file": ("", b"", "text/csv")})
    assert missing.status_code == 422
    assert "Choose a CSV file to import." in missing.text


def test_the_set_page_shows_withheld_hits_and_audits_them(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    req = draft(db, world, ip_entry("103.27.12.23"), title="Secret op Lotus")
    kept = moroccan_set(db, world, "103.27.12.23", "103.27.12.24")
    c = login(world.yasmine)
    page = c.get(f"/identifiers/sets/{kept.public_id}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert f"Another authority holds this — contact {world.vn.name}" in text
    assert "Found nowhere else." in text  # the second address
    assert req.reference not in page.text
    assert "Secret op Lotus" not in page.text
    [event] = events(db, "identifiers.viewed")
    assert event.actor_user_id == world.yasmine.user_id
    assert event.object_id == kept.public_id
    assert event.details["withheld"][0]["authorities"] == [world.vn.id]
    assert "103.27.12.23" not in str(event.details)


def test_no_audit_when_nothing_is_withheld(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    kept = moroccan_set(db, world, "103.27.12.77")
    assert login(world.yasmine).get(f"/identifiers/sets/{kept.public_id}").status_code == 200
    assert events(db, "identifiers.viewed") == []


# -- the panel a request page embeds ------------------------------------------------------------


def test_the_request_panel_lists_every_identifier_with_where_it_was_found(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    req = draft(
        db,
        world,
        ip_entry("103.27.12.23:51234"),
        {"kind": "phone", "value": "0912 345 678"},
        summary_of_facts="Victims paid to wallet TQrY8tryqsYVCYS3MFbtffiPp2ccyn4STm via Zalo.",
    )
    moroccan_set(db, world, "103.27.12.23")
    c = login(world.linh)
    page = c.get(f"/_test/panel/request/{req.public_id}")
    assert page.status_code == 200, page.text
    rows = dict(re.findall(r'data-kind="(\w+)" data-canonical="([^"]+)"', page.text))
    assert rows == {
        "ip": "103.27.12.23",
        "phone": "+84912345678",
        "crypto": "tron:TQrY8tryqsYVCYS3MFbtffiPp2ccyn4STm",
    }
    text = text_of(page.text)
    assert "0912 345 678" in text  # as written
    assert "summary of the facts" in text
    assert "found in the text" in text
    assert "port 51234" in text
    assert "Wed 14 Oct 2026 07:00" in text  # the window, in Linh's zone (Asia/Ho_Chi_Minh)
    assert "public address" in text
    assert f"Another authority holds this — contact {world.ma.name}" in text
    assert "Seized laptop" not in text  # the Moroccan set's name stays with Morocco
    assert f'href="/identifiers/graph?scope=request%3A{req.public_id}"' in page.text
    [event] = events(db, "identifiers.viewed")
    assert (event.object_type, event.object_id) == ("request", req.public_id)


def test_the_panel_is_not_drawn_for_a_user_without_identifiers_read(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    req = draft(db, world, ip_entry("103.27.12.23"))
    page = login(world.an).get(f"/_test/panel/request/{req.public_id}")  # an auditor
    assert page.status_code == 200
    assert 'data-testid="identifiers-panel"' not in page.text


@pytest.mark.skipif(
    "identifiers_panel" not in inspect.getsource(request_views),
    reason="requests/views.py does not embed the identifiers panel yet",
)
def test_the_request_page_embeds_the_panel(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    req = draft(db, world, ip_entry("103.27.12.23"))
    moroccan_set(db, world, "103.27.12.23")
    page = login(world.linh).get(f"/requests/{req.reference}")
    assert 'data-testid="identifiers-panel"' in page.text
    assert f"contact {world.ma.name}" in text_of(page.text)


# -- the graph ----------------------------------------------------------------------------------


def test_the_graph_draws_the_record_its_identifiers_and_their_links(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    req = draft(
        db,
        world,
        ip_entry("103.27.12.23"),
        ip_entry("103.27.12.24"),
        {"kind": "phone", "value": "+84 912 345 678"},
    )
    seen = draft(db, world, ip_entry("103.27.12.24"), title="Earlier case")
    moroccan_set(db, world, "103.27.12.23")
    c = login(world.linh)
    page = c.get("/identifiers/graph", params={"scope": f"request:{req.public_id}"})
    assert page.status_code == 200, page.text
    assert "<svg" in page.text
    assert "style=" not in page.text
    assert re.findall(r"<script(?![^>]*\ssrc=)", page.text) == []  # no inline script
    roles = re.findall(r'data-testid="graph-node" data-role="(\w+)"', page.text)
    assert sorted(roles) == ["centre", *["identifier"] * 3, "record", "withheld"]
    assert f"held by {world.ma.name}" in page.text
    assert f'<a href="/requests/{seen.public_id}">' in page.text
    assert 'data-strength="withheld"' in page.text
    assert 'data-strength="match"' in page.text
    assert page.text.count("<title>") >= len(roles)  # every node has a title
    table = page.text.split('data-testid="graph-table"')[1]
    assert table.count('data-testid="graph-row"') == 2
    assert f"Another authority holds this — contact {world.ma.name}" in text_of(table)
    assert [e.object_id for e in events(db, "identifiers.viewed")] == [req.public_id]


def test_the_graph_says_when_it_is_capped(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    kept = sets.create_set(db, world.linh, name="Many")
    selectors.index_record(
        db,
        sets.where_of(kept),
        [selectors.Entry("ip", f"103.27.14.{i}") for i in range(1, 71)],
        source="imported",
    )
    db.commit()
    page = login(world.linh).get("/identifiers/graph", params={"scope": f"set:{kept.public_id}"})
    assert page.status_code == 200
    assert 'data-testid="graph-capped"' in page.text
    assert "60 of 70 identifiers" in page.text


# -- warning lists ------------------------------------------------------------------------------


def test_the_noise_page_lists_the_warning_lists_and_the_limit(
    world: World, login: Callable[[Principal], TestClient]
) -> None:
    page = login(world.linh).get("/identifiers/noise")
    assert page.status_code == 200
    assert 'data-list="public-dns-v4"' in page.text
    assert "A value held in more than 50 records is not correlated." in page.text
    assert 'data-testid="warning-form"' not in page.text  # officers read, administrators edit


def test_an_administrator_adds_and_removes_a_local_warning(
    db: Session,
    world: World,
    settings: Settings,
    make_principal: Callable[..., Principal],
    login: Callable[[Principal], TestClient],
) -> None:
    admin = make_principal("administrator", authority_id=world.vn.id)
    c = login(admin)
    assert 'href="/identifiers/noise"' in c.get("/").text  # the nav entry for administrators
    assert c.get("/identifiers", headers=HTML).status_code == 403  # no casework for admins
    page = c.get("/identifiers/noise")
    assert 'data-testid="warning-form"' in page.text
    added = post(
        c,
        settings,
        "/identifiers/noise/local",
        {"type": "ip", "value": "103.27.12.0/24", "reason": "our own office"},
    )
    assert added.status_code == 303, added.text
    page = c.get(added.headers["location"])
    assert "The value was added to the node's warning list." in unescape(page.text)
    assert 'data-value="103.27.12.0/24"' in page.text
    assert db.scalars(select(IdentLocalWarning)).one().reason == "our own office"
    assert events(db, "identifiers.warning_added")

    # An officer's lookup of an address inside now says it is on the node's own list.
    draft(db, world, ip_entry("103.27.12.9"))
    lookup = login(world.linh).get("/identifiers", params={"type": "ip", "value": "103.27.12.9"})
    assert "On the node's own warning list — not correlated" in unescape(lookup.text)

    bad = post(c, settings, "/identifiers/noise/local", {"type": "ip", "value": "10.0.0.1/8"})
    assert bad.status_code == 422
    assert 'data-testid="warning-error"' in bad.text

    removed = post(
        c, settings, "/identifiers/noise/local/remove", {"type": "ip", "value": "103.27.12.0/24"}
    )
    assert removed.status_code == 303
    assert db.scalars(select(IdentLocalWarning)).all() == []
    assert events(db, "identifiers.warning_removed")
    again = post(
        c, settings, "/identifiers/noise/local/remove", {"type": "ip", "value": "103.27.12.0/24"}
    )
    assert again.status_code == 404
    assert "not on the node" in unescape(again.text)


# -- denials ------------------------------------------------------------------------------------


def test_a_user_without_identifiers_read_is_refused(
    db: Session, world: World, login: Callable[[Principal], TestClient]
) -> None:
    req = draft(db, world, ip_entry("103.27.12.23"))
    c = login(world.an)  # an auditor: reads requests, does not correlate
    assert 'href="/identifiers"' not in c.get("/").text
    for url in (
        "/identifiers",
        "/identifiers?type=ip&value=103.27.12.23",
        f"/identifiers/graph?scope=request:{req.public_id}",
        "/identifiers/noise",
    ):
        page = c.get(url, headers=HTML)
        assert page.status_code == 403, url
        assert "Forbidden" in page.text, url
        assert "<html" in page.text, url


def test_another_authority_s_set_and_graph_are_not_found(
    db: Session, world: World, settings: Settings, login: Callable[[Principal], TestClient]
) -> None:
    req = draft(db, world, ip_entry("103.27.12.23"))
    kept = moroccan_set(db, world, "103.27.12.23")
    jack = login(world.jack)
    assert jack.get(f"/identifiers/sets/{kept.public_id}", headers=HTML).status_code == 404
    assert jack.get(
        "/identifiers/graph", params={"scope": f"set:{kept.public_id}"}
    ).status_code == (404)
    # A draft is not yet the receiver's: its graph is not found either.
    graph = jack.get("/identifiers/graph", params={"scope": f"request:{req.public_id}"})
    assert graph.status_code == 404
    assert (
        login(world.yasmine)
        .get("/identifiers/graph", params={"scope": f"request:{req.public_id}"})
        .status_code
        == 404
    )
    for scope in ("", "request", "intel:1", f"request:{req.reference}"):
        assert jack.get("/identifiers/graph", params={"scope": scope}).status_code == 404, scope
    upload = post(
        jack,
        settings,
        f"/identifiers/sets/{kept.public_id}/import",
        {},
        files={"file": ("x.csv", b"type,value\nip,1.2.3.4\n", "text/csv")},
    )
    assert upload.status_code == 404


def test_posts_without_the_csrf_token_are_refused(
    db: Session,
    world: World,
    make_principal: Callable[..., Principal],
    login: Callable[[Principal], TestClient],
) -> None:
    kept = sets.create_set(db, world.linh, name="Mine")
    db.commit()
    c = login(world.linh)
    assert c.post("/identifiers/sets", data={"name": "No token"}).status_code == 403
    refused = c.post(
        f"/identifiers/sets/{kept.public_id}/import",
        files={"file": ("x.csv", b"type,value\nip,103.27.12.7\n", "text/csv")},
    )
    assert refused.status_code == 403
    admin = login(make_principal("administrator", authority_id=world.vn.id))
    added = admin.post(
        "/identifiers/noise/local", data={"type": "ip", "value": "103.27.12.7", "reason": "x"}
    )
    assert added.status_code == 403
    assert db.scalars(select(IdentLocalWarning)).all() == []
    assert [s.item.name for s in sets.list_sets(db, world.linh)] == ["Mine"]


def test_an_officer_may_not_edit_the_warning_list(
    world: World, settings: Settings, login: Callable[[Principal], TestClient]
) -> None:
    c = login(world.linh)
    added = post(
        c,
        settings,
        "/identifiers/noise/local",
        {"type": "ip", "value": "103.27.12.7", "reason": "mine"},
        headers=HTML,
    )
    assert added.status_code == 403


def test_an_auditor_may_not_create_a_set(
    world: World, settings: Settings, login: Callable[[Principal], TestClient]
) -> None:
    c = login(world.an)
    assert post(c, settings, "/identifiers/sets", {"name": "x"}).status_code == 403
