"""A Viet Nam → Australia setting with a legal basis, and users on both sides and outside."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from crossborder.auth import service as auth_service
from crossborder.auth.models import User
from crossborder.auth.permissions import Principal
from crossborder.directory.models import Authority, LegalInstrument
from crossborder.requests import schemas
from tests.fixtures.web import TestClient, make_client


@dataclass
class World:
    vn: Authority
    au: Authority
    ma: Authority
    linh: Principal  # VN officer (sender)
    minh: Principal  # VN supervisor
    jack: Principal  # AU officer (receiver)
    olivia: Principal  # AU supervisor
    yasmine: Principal  # MA officer: a third authority, no need-to-know
    hoa: Principal  # VN analyst: reads, never acts
    an: Principal  # VN auditor
    mou: LegalInstrument


@pytest.fixture
def world(
    make_authority: Callable[..., Authority],
    make_instrument: Callable[..., LegalInstrument],
    make_party: Callable[..., Any],
    make_user: Callable[..., User],
) -> World:
    vn = make_authority(
        "VN", name="A05", short_name="VN-A05", roles=["point_of_contact_24_7", "police"]
    )
    au = make_authority(
        "AU",
        name="AFP",
        short_name="AU-AFP",
        roles=["point_of_contact_24_7", "police"],
        time_zone="Australia/Sydney",
    )
    ma = make_authority("MA", name="BNPJ", short_name="MA-BNPJ", time_zone="Africa/Casablanca")
    mou = make_instrument(
        "AU-VN-POLICE-MOU",
        kind="mou",
        channels=["point_of_contact_24_7", "police"],
        conditions=[{"code": "CONFIDENTIALITY", "text": "Police information only."}],
        articles={"point_of_contact_24_7": "Clause 4"},
    )
    make_party(mou, "VN")
    make_party(mou, "AU")

    def person(authority: Authority, *roles: str) -> Principal:
        user = make_user(roles=roles, authority_id=authority.id)
        return auth_service.principal_for(user)

    return World(
        vn=vn,
        au=au,
        ma=ma,
        mou=mou,
        linh=person(vn, "officer"),
        minh=person(vn, "supervisor"),
        jack=person(au, "officer"),
        olivia=person(au, "supervisor"),
        yasmine=person(ma, "officer"),
        hoa=person(vn, "analyst"),
        an=person(vn, "auditor"),
    )


def preservation_draft(receiver: Authority, **overrides: Any) -> schemas.DraftCreate:
    values: dict[str, Any] = {
        "request_type": "preservation",
        "receiver_authority_id": receiver.id,
        "channel": "point_of_contact_24_7",
        "urgency": "urgent",
        "title": "Ransomware C2 at 203.0.113.45",
        "summary_of_facts": "A ransomware group's command server is hosted by a provider.",
        "offences": [
            {"code": "DATA_INTERFERENCE", "national_provision": "Art. 287", "max_penalty_years": 12}
        ],
        "identifiers": [
            {
                "kind": "ip",
                "value": "203.0.113.45",
                "window_start": datetime(2026, 10, 14, tzinfo=UTC),
                "window_end": datetime(2026, 10, 16, tzinfo=UTC),
                "time_zone": "Asia/Ho_Chi_Minh",
            }
        ],
        "data_categories": ["traffic"],
        "details": {
            "data_to_preserve": "Traffic data for 203.0.113.45, 14-16 October",
            "link_to_offence": "The server controls the encryption of victims' files",
            "custodian": "Example Hosting JSC",
            "why_needed": "The provider keeps logs for 90 days only",
            "mla_will_follow": True,
        },
    }
    values.update(overrides)
    return schemas.DraftCreate.model_validate(values)


@pytest.fixture
def as_user(
    app: FastAPI, db: Session, make_token: Callable[..., tuple[object, str]]
) -> Iterator[Callable[[Principal], TestClient]]:
    clients: list[TestClient] = []

    def _client(principal: Principal) -> TestClient:
        user = db.get(User, principal.user_id)
        assert user is not None
        _token, raw = make_token(user)
        c = make_client(app, headers={"Authorization": f"Bearer {raw}"})
        clients.append(c)
        return c

    yield _client
    for c in clients:
        c.close()
