"""Strict validation of directory input: every rejected value is named by its field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from crossborder.directory import schemas


def error_fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in err["loc"]) for err in exc.errors()}


def authority(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "state": "vn",
        "name": " Cybercrime Department ",
        "roles": ["police"],
        "languages": ["vi", "en-au", "zh-hans"],
        "time_zone": "Asia/Ho_Chi_Minh",
    }
    values.update(overrides)
    return values


def test_authority_is_normalised() -> None:
    parsed = schemas.AuthorityCreate.model_validate(authority())
    assert parsed.state == "VN"
    assert parsed.name == "Cybercrime Department"
    assert parsed.languages == ["vi", "en-AU", "zh-Hans"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("state", "XX"),
        ("state", "VNM"),
        ("time_zone", "GMT+7"),
        ("roles", []),
        ("roles", ["sheriff"]),
        ("languages", ["vietnamese"]),
        ("languages", ["qq"]),
        ("website", "ftp://example.org"),
        ("name", "   "),
        ("unexpected", "x"),
    ],
)
def test_authority_rejects(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        schemas.AuthorityCreate.model_validate(authority(**{field: value}))
    assert any(f.startswith(field) for f in error_fields(caught.value))


def test_contact_point_phone_and_email_are_normalised() -> None:
    cp = schemas.ContactPointCreate.model_validate(
        {
            "name": "Duty desk",
            "phone": "+84 24 3826 1234",
            "email": "Duty@Example.ORG",
            "office_hours": {"mon": [["08:00", "17:00"]]},
        }
    )
    assert cp.phone == "+842438261234"
    assert cp.email == "Duty@example.org"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "024 3826 1234"),  # no country code
        ("phone", "+84 12"),
        ("email", "not-an-address"),
        ("time_zone", "Mars/Olympus"),
        ("office_hours", {"mon": [["17:00", "08:00"]]}),
        ("office_hours", {"someday": []}),
    ],
)
def test_contact_point_rejects(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        schemas.ContactPointCreate.model_validate({"name": "Desk", field: value})
    assert field in error_fields(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://node.example.org/",
        "http://127.0.0.1:8001",
        "http://localhost:8002",
        "http://[::1]:8003",
    ],
)
def test_node_url_accepts_https_and_loopback_http(url: str) -> None:
    node = schemas.NodeCreate(name="n", base_url=url, fingerprint="AB:" * 31 + "AB")
    assert not node.base_url.endswith("/")
    assert node.fingerprint == "ab" * 32


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_url", "http://node.example.org"),
        ("base_url", "https://user:pw@node.example.org"),
        ("base_url", "node.example.org"),
        ("fingerprint", "abc"),
        ("fingerprint", "g" * 64),
    ],
)
def test_node_rejects(field: str, value: str) -> None:
    values = {"name": "n", "base_url": "https://n.example.org", "fingerprint": "a" * 64}
    values[field] = value
    with pytest.raises(ValidationError) as caught:
        schemas.NodeCreate.model_validate(values)
    assert field in error_fields(caught.value)


def test_instrument_scope_lists() -> None:
    inst = schemas.InstrumentCreate.model_validate(
        {
            "code": "VN-MA-TIP-MOU",
            "title": "MoU",
            "kind": "mou",
            "offences": ["TRAFFICKING_IN_PERSONS", "TRAFFICKING_IN_PERSONS"],
            "channels": ["police"],
            "articles": {"police": "Art 3"},
            "conditions": [{"code": "ONLY_THIS_INVESTIGATION", "text": "Only this case."}],
        }
    )
    assert inst.offences == ["TRAFFICKING_IN_PERSONS"]
    assert inst.data_categories == ["*"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code", "lower case"),
        ("kind", "treaty"),
        ("offences", ["*", "CSAM"]),
        ("offences", ["HACKING"]),
        ("channels", ["fax"]),
        ("articles", {"fax": "Art 1"}),
        ("conditions", [{"code": "BE_NICE", "text": "x"}]),
    ],
)
def test_instrument_rejects(field: str, value: Any) -> None:
    values: dict[str, Any] = {"code": "UNCC", "title": "UN Convention", "kind": "mou"}
    values[field] = value
    with pytest.raises(ValidationError) as caught:
        schemas.InstrumentCreate.model_validate(values)
    assert any(f.startswith(field) for f in error_fields(caught.value))


def test_instrument_dates_in_order() -> None:
    with pytest.raises(ValidationError, match="valid_until"):
        schemas.InstrumentCreate(
            code="X1",
            title="x",
            kind="mou",
            valid_from="2026-01-01",
            valid_until="2025-01-01",
        )


def test_party_needs_exactly_one_of_state_or_authority() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        schemas.PartySet.model_validate({"status": "in_force"})
    with pytest.raises(ValidationError, match="exactly one"):
        schemas.PartySet.model_validate({"status": "in_force", "state": "VN", "authority_id": 1})


def test_policy_query_accepts_offence_shorthand_and_needs_one_offence() -> None:
    q = schemas.PolicyQuery.model_validate(
        {
            "sender_state": "au",
            "receiver_state": "VN",
            "channel": "point_of_contact_24_7",
            "offences": ["DATA_INTERFERENCE", {"code": "SERIOUS_OTHER", "max_penalty_years": 5}],
            "data_categories": ["traffic"],
        }
    )
    assert q.sender_state == "AU"
    assert [o.code for o in q.offences] == ["DATA_INTERFERENCE", "SERIOUS_OTHER"]
    with pytest.raises(ValidationError) as caught:
        schemas.PolicyQuery.model_validate(
            {
                "sender_state": "AU",
                "receiver_state": "VN",
                "channel": "police",
                "offences": [],
            }
        )
    assert "offences" in error_fields(caught.value)


def test_authority_update_separates_version_from_changes() -> None:
    update = schemas.AuthorityUpdate.model_validate({"version": 3, "short_name": "C50"})
    changes = update.changes()
    assert changes.model_dump(exclude_unset=True) == {"short_name": "C50"}
