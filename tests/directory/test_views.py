"""The directory's HTML pages render the data with stable test ids."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from crossborder.auth.permissions import Principal, Role
from crossborder.directory.models import (
    Authority,
    ContactPoint,
    InstrumentParty,
    LegalInstrument,
)

Client = Callable[[Principal], TestClient]


@pytest.fixture
def officer_client(api_client: Client, local_authority: Authority) -> TestClient:
    return api_client(
        Principal(
            user_id=1,
            username="linh",
            authority_id=local_authority.id,
            roles=frozenset({Role.OFFICER}),
        )
    )


def test_search_page_lists_matching_authorities(
    officer_client: TestClient, make_authority: Callable[..., Authority]
) -> None:
    make_authority("AU", name="Australian Federal Police", short_name="AFP", roles=["police"])
    make_authority("MA", name="Sûreté Nationale", roles=["police"])
    page = officer_client.get("/directory", params={"q": "federal"})
    assert page.status_code == 200
    assert page.text.count('data-testid="authority-row"') == 1
    assert "Australian Federal Police" in page.text
    assert "Australia" in page.text  # the state's CLDR name in the interface language
    vietnamese = officer_client.get(
        "/directory", params={"q": "federal"}, headers={"Accept-Language": "vi"}
    )
    assert "Úc" in vietnamese.text
    everyone = officer_client.get("/directory", params={"role": "police", "state": "MA"})
    assert everyone.text.count('data-testid="authority-row"') == 1
    assert "Sûreté Nationale" in everyone.text


def test_authority_page_shows_contact_local_time_and_availability(
    officer_client: TestClient,
    make_authority: Callable[..., Authority],
    make_contact_point: Callable[..., ContactPoint],
) -> None:
    afp = make_authority("AU", name="AFP", time_zone="Australia/Sydney")
    make_contact_point(afp, name="AFP 24/7 desk", is_24_7=True, phone="+61261313000")
    page = officer_client.get(f"/directory/authorities/{afp.id}")
    assert page.status_code == 200
    assert 'data-testid="contact-local-time"' in page.text
    assert 'data-availability="24_7"' in page.text
    assert "+61261313000" in page.text
    assert officer_client.get("/directory/authorities/999999").status_code == 404


def test_authority_page_hides_contacts_from_auditors(
    api_client: Client, local_authority: Authority
) -> None:
    client = api_client(
        Principal(
            user_id=3,
            username="an",
            authority_id=local_authority.id,
            roles=frozenset({Role.AUDITOR}),
        )
    )
    page = client.get(f"/directory/authorities/{local_authority.id}")
    assert page.status_code == 200
    assert 'data-testid="contacts-hidden"' in page.text


def test_legal_basis_page_shows_bases_and_reasons(
    officer_client: TestClient,
    make_instrument: Callable[..., LegalInstrument],
    make_party: Callable[..., InstrumentParty],
) -> None:
    mou = make_instrument(
        "VN-MA-TIP-MOU",
        kind="mou",
        title="MoU on trafficking in persons",
        offences=["TRAFFICKING_IN_PERSONS"],
        channels=["police"],
        articles={"police": "Art 3"},
        conditions=[{"code": "ONLY_THIS_INVESTIGATION", "text": "Only this investigation."}],
    )
    make_party(mou, "VN")
    make_party(mou, "MA")
    form = officer_client.get("/directory/legal-basis")
    assert form.status_code == 200
    assert 'data-testid="policy-form"' in form.text

    params = {
        "sender_state": "VN",
        "receiver_state": "MA",
        "channel": "police",
        "offences": "TRAFFICKING_IN_PERSONS",
        "data_categories": "subscriber",
    }
    ok = officer_client.get("/directory/legal-basis", params=params)
    assert 'data-testid="policy-basis"' in ok.text
    assert 'data-code="ONLY_THIS_INVESTIGATION"' in ok.text
    assert "Art 3" in ok.text

    refused = officer_client.get(
        "/directory/legal-basis", params={**params, "offences": "THEFT_FRAUD"}
    )
    assert 'data-testid="policy-basis"' not in refused.text
    assert 'data-testid="policy-reason" data-code="OFFENCE_OUT_OF_SCOPE"' in refused.text

    invalid = officer_client.get(
        "/directory/legal-basis", params={**params, "receiver_state": "XX"}
    )
    assert invalid.status_code == 422
    assert 'data-testid="policy-errors"' in invalid.text


def test_pages_have_no_inline_script_or_style(
    officer_client: TestClient, local_authority: Authority
) -> None:
    for url in (
        "/directory",
        f"/directory/authorities/{local_authority.id}",
        "/directory/legal-basis",
    ):
        html = officer_client.get(url).text
        assert "<script>" not in html
        assert " style=" not in html
        assert "<style" not in html
