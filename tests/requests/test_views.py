"""The requests' HTML pages: type chooser, generic form, detail, transitions, print, uploads."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from crossborder.auth.models import User
from crossborder.auth.permissions import Role
from crossborder.directory.models import Authority, LegalInstrument
from crossborder.evidence.models import Attachment
from crossborder.requests import catalogue, views
from crossborder.requests.models import CooperationRequest
from crossborder.settings import Settings
from tests.fixtures.web import build_app, csrf_for, make_client, post_login

Factory = Callable[..., Any]


@pytest.fixture
def app(settings: Settings, db: Session) -> FastAPI:
    """The real app; the requests pages are mounted here until app.py mounts them."""
    application = build_app(settings, db)
    paths = {getattr(route, "path", "") for route in application.routes}
    if "/requests/new" not in paths:
        application.include_router(views.router)
    return application


@pytest.fixture
def parties(make_authority: Factory) -> tuple[Authority, Authority, Authority]:
    """A Vietnamese sender, an Australian receiver and an unrelated Moroccan authority."""
    vn = make_authority("VN", name="VN Cyber Unit", short_name="VNCU", is_local=True)
    au = make_authority(
        "AU", name="AU Federal Police", short_name="AUFP", time_zone="Australia/Sydney"
    )
    ma = make_authority("MA", name="MA Police", short_name="MAP", time_zone="Africa/Casablanca")
    return vn, au, ma


@pytest.fixture
def legal_basis(
    make_instrument: Callable[..., LegalInstrument], make_party: Factory
) -> LegalInstrument:
    mou = make_instrument(
        "TEST-MOU",
        title="Test memorandum",
        kind="mou",
        articles={"*": "Clause 4"},
        conditions=[{"code": "USE_LIMITATION", "text": "Intelligence only, not evidence."}],
    )
    make_party(mou, "VN")
    make_party(mou, "AU")
    return mou


@pytest.fixture
def clients(app: FastAPI) -> Iterator[list[TestClient]]:
    opened: list[TestClient] = []
    yield opened
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def login(
    app: FastAPI, settings: Settings, make_user: Factory, clients: list[TestClient]
) -> Callable[..., tuple[TestClient, User]]:
    def _login(authority: Authority, *roles: Role) -> tuple[TestClient, User]:
        user = make_user(roles=roles or (Role.OFFICER,), authority_id=authority.id)
        c = make_client(app)
        c.__enter__()
        clients.append(c)
        assert post_login(c, settings, user.username).status_code == 303
        return c, user

    return _login


def preservation_form(receiver: Authority, **overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "request_type": "preservation",
        "receiver_authority_id": str(receiver.id),
        "channel": "point_of_contact_24_7",
        "urgency": "urgent",
        "urgency_justification": "Logs rotate in 7 days",
        "title": "Ransomware on a hospital",
        "summary_of_facts": "A hospital's servers were encrypted from a VPS abroad.",
        "offences.0.code": "DATA_INTERFERENCE",
        "offences.0.national_provision": "Penal Code Art 287",
        "offences.0.max_penalty_years": "7",
        "offences.1.code": "",
        "identifiers.0.kind": "ip",
        "identifiers.0.value": "203.0.113.45",
        "identifiers.0.window_start": "2026-03-01T10:00",
        "identifiers.0.window_end": "2026-03-01T12:00",
        "identifiers.0.time_zone": "Asia/Ho_Chi_Minh",
        "identifiers.1.value": "",
        "data_categories": ["traffic", "subscriber"],
        "confidentiality": "confidential",
        "details.data_to_preserve": "Connection logs of the VPS",
        "details.link_to_offence": "The attack came from this address",
        "details.custodian": "Example Hosting Pty Ltd",
        "details.why_needed": "Evidence of the intrusion",
        "details.mla_will_follow": "on",
        "details.no_user_notification": "on",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def post(c: TestClient, settings: Settings, url: str, data: dict[str, Any]) -> Any:
    return c.post(url, data={**data, "csrf_token": csrf_for(c, settings)})


def create(c: TestClient, settings: Settings, receiver: Authority, **overrides: Any) -> str:
    response = post(c, settings, "/requests/new", preservation_form(receiver, **overrides))
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    match = re.match(r"/requests/([^?]+)\?done=created", location)
    assert match, location
    return match.group(1)


def act(c: TestClient, settings: Settings, ref: str, action: str, **fields: Any) -> Any:
    page = c.get(f"/requests/{ref}")
    version = re.search(rf'data-action="{action}".*?name="version" value="(\d+)"', page.text, re.S)
    assert version, f"no {action} button on {ref}"
    return post(
        c,
        settings,
        f"/requests/{ref}/transition",
        {"action": action, "version": version.group(1), **fields},
    )


def count(db: Session, model: type[Any]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


# -- labels and the type chooser -----------------------------------------------------------


def test_every_details_field_of_every_type_has_a_label() -> None:
    missing = [
        f"{code}.{name}"
        for code, spec in catalogue.CATALOGUE.items()
        for name in spec.fields_model.model_fields
        if name not in views.FIELD_LABELS
    ]
    assert missing == []
    for code in catalogue.CATALOGUE:
        for field in views.detail_fields(code):
            if field.widget == "select":
                assert all(value in views.ENUM_VALUE_LABELS for value, _ in field.options)


def test_type_chooser_lists_all_fourteen_types(
    parties: tuple[Authority, ...], login: Callable[..., tuple[TestClient, User]]
) -> None:
    c, _ = login(parties[0])
    page = c.get("/requests/new")
    assert page.status_code == 200
    assert page.text.count('data-testid="type-card"') == len(catalogue.CATALOGUE) == 14
    assert "Expedited preservation of stored data" in page.text
    assert "UNCC Art 42" in page.text


def test_preservation_form_shows_only_preservation_fields(
    parties: tuple[Authority, ...], login: Callable[..., tuple[TestClient, User]]
) -> None:
    vn, au, _ = parties
    c, _ = login(vn)
    page = c.get("/requests/new?type=preservation")
    assert page.status_code == 200
    fields = set(re.findall(r'data-testid="detail-field" data-field="([a-z_0-9]+)"', page.text))
    assert fields == set(catalogue.PreservationFields.model_fields)
    assert 'name="details.person_name"' not in page.text  # an extradition field
    assert 'name="details.data_to_preserve"' in page.text
    assert '<textarea id="f-details-data_to_preserve"' in page.text
    assert 'type="checkbox" id="f-details-mla_will_follow"' in page.text
    # Receivers exclude the sender's own authority; channels are the type's own.
    assert f'<option value="{au.id}"' in page.text
    assert (
        f'<option value="{vn.id}"'
        not in page.text.split('id="f-receiver_authority_id"')[1].split("</select>")[0]
    )
    channels = re.findall(
        r'<option value="([a-z_0-9]+)"', page.text.split('id="f-channel"')[1].split("</select>")[0]
    )
    assert set(channels) == {"point_of_contact_24_7", "central_authority"}
    assert page.text.count('data-testid="offence-row"') == 3
    # A datetime detail field gets a zone select defaulting to the sender's zone.
    realtime = c.get("/requests/new?type=mla_realtime")
    zone_select = realtime.text.split('name="details.period_start__tz"')[1].split("</select>")[0]
    assert 'value="Asia/Ho_Chi_Minh" selected' in zone_select


def test_incomplete_form_shows_errors_next_to_fields_and_stores_nothing(
    parties: tuple[Authority, ...],
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
    db: Session,
) -> None:
    vn, au, _ = parties
    c, _ = login(vn)
    before = count(db, CooperationRequest)
    form = preservation_form(
        au,
        **{
            "details.custodian": "",
            "details.mla_will_follow": None,
            "offences.0.code": "",
            "offences.0.national_provision": "",
            "offences.0.max_penalty_years": "",
            "offences.2.code": "NOT_AN_OFFENCE",
            "title": "Keep this title",
        },
    )
    response = post(c, settings, "/requests/new", form)
    assert response.status_code == 422
    assert count(db, CooperationRequest) == before
    html = response.text
    assert 'data-testid="error-summary"' in html
    assert 'data-field="details.custodian"' in html
    assert 'data-field="details.mla_will_follow"' in html
    assert "Budapest Art 29(2)" in html  # the validator's own message
    # The invalid offence was in the third row: its error is next to that row.
    assert 'data-field="offences.2.code"' in html
    row = html.split('id="f-offences-2-code"')[1].split("</td>")[0]
    assert 'data-field="offences.2.code"' in row
    custodian = html.split('id="f-details-custodian"')[1].split("</div>")[0]
    assert 'data-testid="field-error"' in custodian
    assert 'value="Keep this title"' in html  # the user's input is kept
    assert "203.0.113.45" in html


def test_create_shows_draft_with_edit_and_submit(
    parties: tuple[Authority, ...],
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
) -> None:
    vn, au, _ = parties
    c, _ = login(vn)
    ref = create(c, settings, au)
    page = c.get(f"/requests/{ref}?done=created")
    assert page.status_code == 200
    assert 'data-status="draft"' in page.text
    assert 'data-testid="edit-draft"' in page.text
    assert 'data-testid="action-submit"' in page.text
    assert 'data-confirm="' in page.text
    assert "Connection logs of the VPS" in page.text
    assert "203.0.113.45" in page.text
    # The identifier window was read in Ho Chi Minh time: 10:00 there is 03:00 UTC.
    stored = c.get(f"/requests/{ref}/edit")
    assert 'value="2026-03-01T10:00"' in stored.text
    assert 'name="details.custodian" maxlength="200" value="Example Hosting Pty Ltd"' in stored.text


def test_stale_edit_shows_conflict_and_keeps_input(
    parties: tuple[Authority, ...],
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
) -> None:
    vn, au, _ = parties
    c, _ = login(vn)
    ref = create(c, settings, au)
    edit = c.get(f"/requests/{ref}/edit")
    version = re.search(r'name="version" value="(\d+)"', edit.text)
    assert version
    form = preservation_form(au, title="First edit", version=version.group(1))
    assert post(c, settings, f"/requests/{ref}/edit", form).status_code == 303
    stale = preservation_form(au, title="My stale edit", version=version.group(1))
    response = post(c, settings, f"/requests/{ref}/edit", stale)
    assert response.status_code == 409
    assert 'data-testid="conflict"' in response.text
    assert 'value="My stale edit"' in response.text
    assert "First edit" in c.get(f"/requests/{ref}").text


def test_submit_without_legal_basis_lists_the_reasons(
    parties: tuple[Authority, ...],
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
) -> None:
    vn, au, _ = parties
    c, _ = login(vn)
    ref = create(c, settings, au)
    response = act(c, settings, ref, "submit")
    assert response.status_code == 422
    assert "Cannot submit: no legal basis" in response.text
    assert 'data-testid="no-legal-basis-reason"' in response.text
    assert 'data-status="draft"' in response.text


def test_happy_path_submit_acknowledge_start_execute(
    parties: tuple[Authority, ...],
    legal_basis: LegalInstrument,
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
) -> None:
    vn, au, _ = parties
    sender, _ = login(vn)
    receiver, _ = login(au)
    ref = create(sender, settings, au)
    assert receiver.get(f"/requests/{ref}").status_code == 404  # drafts stay with the sender
    submitted = act(sender, settings, ref, "submit")
    assert submitted.status_code == 303, submitted.text
    page = sender.get(f"/requests/{ref}")
    assert 'data-status="submitted"' in page.text
    assert 'data-testid="legal-basis-code">TEST-MOU' in page.text
    assert "Conditions attached to this data" in page.text
    assert "Intelligence only, not evidence." in page.text
    clock = page.text.split('data-kind="acknowledgement"')[1].split("</tr>")[0]
    assert "Asia/Ho_Chi_Minh" in clock
    assert "Australia/Sydney" in clock

    listing = receiver.get("/requests")
    assert ref in listing.text
    assert "VNCU" in listing.text  # the partner is the other authority
    for action in ("acknowledge", "start"):
        assert act(receiver, settings, ref, action).status_code == 303
    done = act(receiver, settings, ref, "execute", preserved_until="2030-01-31")
    assert done.status_code == 303, done.text
    final = sender.get(f"/requests/{ref}")
    assert 'data-status="executed"' in final.text
    actions = re.findall(r'data-testid="timeline-event" data-action="([a-z_]+)"', final.text)
    assert actions[-4:] == ["submit", "acknowledge", "start", "execute"]
    assert 'data-kind="acknowledgement"' in final.text
    assert 'data-state="met"' in final.text
    assert 'data-kind="preservation_expiry"' in final.text
    assert 'data-testid="preserved-until"' in final.text
    printed = sender.get(f"/requests/{ref}/print")
    assert printed.status_code == 200
    assert "/static/print.css" in printed.text
    assert "TEST-MOU" in printed.text
    assert "203.0.113.45" in printed.text


def test_third_authority_gets_404_everywhere(
    parties: tuple[Authority, ...],
    legal_basis: LegalInstrument,
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
) -> None:
    vn, au, ma = parties
    sender, _ = login(vn)
    ref = create(sender, settings, au)
    upload = sender.post(
        f"/requests/{ref}/attachments",
        data={"csrf_token": csrf_for(sender, settings)},
        files={"file": ("logs.txt", b"connection logs\n", "text/plain")},
    )
    assert upload.status_code == 303, upload.text
    page = sender.get(f"/requests/{ref}")
    attachment = re.search(r'/attachments/([0-9a-f-]{36})"', page.text)
    assert attachment
    assert sender.get(f"/requests/{ref}/attachments/{attachment.group(1)}").content == (
        b"connection logs\n"
    )
    outsider, _ = login(ma)
    for url in (
        f"/requests/{ref}",
        f"/requests/{ref}/print",
        f"/requests/{ref}/edit",
        f"/requests/{ref}/attachments/{attachment.group(1)}",
    ):
        assert outsider.get(url).status_code == 404, url
    assert (
        post(outsider, settings, f"/requests/{ref}/transition", {"action": "submit"}).status_code
        == 404
    )


def test_analyst_sees_no_action_buttons(
    parties: tuple[Authority, ...],
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
) -> None:
    vn, au, _ = parties
    officer, _ = login(vn)
    ref = create(officer, settings, au)
    analyst, _ = login(vn, Role.ANALYST)
    page = analyst.get(f"/requests/{ref}")
    assert page.status_code == 200
    assert 'data-testid="action-form"' not in page.text
    assert 'data-testid="edit-draft"' not in page.text
    assert 'data-testid="upload-form"' not in page.text
    assert 'data-testid="new-request"' not in analyst.get("/requests").text


def test_refusal_needs_a_ground_of_the_type(
    parties: tuple[Authority, ...],
    legal_basis: LegalInstrument,
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
) -> None:
    vn, au, _ = parties
    sender, _ = login(vn)
    receiver, _ = login(au)
    ref = create(sender, settings, au)
    assert act(sender, settings, ref, "submit").status_code == 303
    page = receiver.get(f"/requests/{ref}")
    refuse = page.text.split('data-action="refuse"')[1].split("</form>")[0]
    offered = set(re.findall(r'<option value="([a-z_]+)"', refuse))
    spec = catalogue.CATALOGUE[catalogue.RequestType.PRESERVATION]
    assert offered == {g.value for g in spec.refusal_grounds}
    wrong = act(receiver, settings, ref, "refuse", ground="ne_bis_in_idem", reasons="Already tried")
    assert wrong.status_code == 422
    assert "is not a ground for refusing" in wrong.text
    assert 'data-status="submitted"' in wrong.text
    missing = act(receiver, settings, ref, "refuse", reasons="No ground given")
    assert missing.status_code == 422
    ok = act(
        receiver,
        settings,
        ref,
        "refuse",
        ground="political_offence",
        reasons="The offence is political.",
    )
    assert ok.status_code == 303
    assert 'data-status="refused"' in sender.get(f"/requests/{ref}").text


def test_stale_transition_is_a_conflict(
    parties: tuple[Authority, ...],
    legal_basis: LegalInstrument,
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
) -> None:
    vn, au, _ = parties
    sender, _ = login(vn)
    ref = create(sender, settings, au)
    response = post(
        sender, settings, f"/requests/{ref}/transition", {"action": "submit", "version": "99"}
    )
    assert response.status_code == 409
    assert "Someone else changed this request" in response.text


def test_upload_over_the_limit_stores_nothing(
    parties: tuple[Authority, ...],
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vn, au, _ = parties
    c, _ = login(vn)
    ref = create(c, settings, au)
    monkeypatch.setattr(settings, "max_attachment_bytes", 1024)  # the app's own settings
    before = count(db, Attachment)
    response = c.post(
        f"/requests/{ref}/attachments",
        data={"csrf_token": csrf_for(c, settings)},
        files={"file": ("big.bin", b"x" * 5000, "application/octet-stream")},
    )
    assert response.status_code == 413
    assert "The file is too large" in response.text
    assert count(db, Attachment) == before


def test_message_thread(
    parties: tuple[Authority, ...],
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
) -> None:
    vn, au, _ = parties
    c, _ = login(vn)
    ref = create(c, settings, au)
    assert (
        post(c, settings, f"/requests/{ref}/messages", {"body": "Note for the file"}).status_code
        == 303
    )
    assert "Note for the file" in c.get(f"/requests/{ref}").text
    assert post(c, settings, f"/requests/{ref}/messages", {"body": "  "}).status_code == 422


def test_list_filters_and_dashboard(
    parties: tuple[Authority, ...],
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
) -> None:
    vn, au, _ = parties
    c, _ = login(vn)
    ref = create(c, settings, au, title="Findable needle")
    assert ref in c.get("/requests", params={"q": "needle"}).text
    assert ref not in c.get("/requests", params={"q": "haystack"}).text
    assert ref in c.get("/requests", params={"type": "preservation", "partner": au.id}).text
    assert ref not in c.get("/requests", params={"type": "extradition"}).text
    assert ref not in c.get("/requests", params={"overdue": "1"}).text
    assert c.get("/requests/dashboard").status_code == 200


def test_post_without_csrf_token_is_refused(
    parties: tuple[Authority, ...],
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
    db: Session,
) -> None:
    vn, au, _ = parties
    c, _ = login(vn)
    before = count(db, CooperationRequest)
    response = c.post("/requests/new", data=preservation_form(au))
    assert response.status_code == 403
    assert count(db, CooperationRequest) == before


def test_every_type_form_renders_and_datetimes_are_read_in_the_chosen_zone(
    parties: tuple[Authority, ...],
    login: Callable[..., tuple[TestClient, User]],
    settings: Settings,
    db: Session,
) -> None:
    vn, au, _ = parties
    c, _ = login(vn, Role.SUPERVISOR)
    for code in catalogue.CATALOGUE:
        page = c.get(f"/requests/new?type={code}")
        assert page.status_code == 200, code
        assert f'data-type="{code}"' in page.text
    form = {
        "request_type": "mla_realtime",
        "receiver_authority_id": str(au.id),
        "channel": "central_authority",
        "title": "Real-time collection",
        "summary_of_facts": "Botnet command server.",
        "offences.0.code": "SYSTEM_INTERFERENCE",
        "details.data_sought": "Traffic data of the server",
        "details.link_to_offence": "It controls the botnet",
        "details.target": "198.51.100.7",
        "details.justification": "Only live data shows the operators",
        "details.period_start": "2026-05-01T09:00",
        "details.period_start__tz": "Australia/Sydney",
        "details.period_end": "2026-05-31T09:00",
        "details.period_end__tz": "Australia/Sydney",
    }
    ref = post(c, settings, "/requests/new", form).headers["location"].split("?")[0]
    req = db.scalar(
        select(CooperationRequest).where(CooperationRequest.reference == ref.rsplit("/", 1)[1])
    )
    assert req is not None
    assert req.details["period_start"].startswith("2026-04-30T23:00:00")  # 09:00 AEST in UTC
    assert c.get(ref).status_code == 200
    assert c.get(ref + "/print").status_code == 200
