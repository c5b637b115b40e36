"""The request catalogue: every type is complete, grounds follow the treaties, fields validate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from crossborder.auth.permissions import Role
from crossborder.core.errors import InvalidInput
from crossborder.directory.taxonomy import Channel
from crossborder.requests.catalogue import (
    CATALOGUE,
    FORBIDDEN_GROUNDS,
    INTERCEPTION_MAX_DAYS,
    LINK_KIND_LABELS,
    NON_EXECUTION_LABELS,
    REFUSAL_GROUNDS,
    URGENCY_LABELS,
    FieldErrors,
    LinkKind,
    NonExecutionReason,
    PreservationFields,
    RefusalGround,
    RequestType,
    Urgency,
    check_link,
    check_urgency,
    missing_links,
    validate_fields,
)

START = "2026-03-01T00:00:00+07:00"
END = "2026-03-31T00:00:00+07:00"
REALTIME = {
    "data_sought": "Source IP and port of connections to the C2 server",
    "link_to_offence": "The server controls the ransomware",
    "target": "VPS 203.0.113.7 at Example Hosting",
    "justification": "Identify the operators",
    "period_start": START,
    "period_end": END,
}
MLA_COMMON = {
    "investigative_authority": "Cybercrime Department, MPS",
    "domestic_legal_basis": "Criminal Procedure Code Art 194",
    "link_to_offence": "The account received the ransom",
}

VALID: dict[RequestType, dict[str, Any]] = {
    RequestType.PRESERVATION: {
        "data_to_preserve": "Subscriber and login records of account x@example.com",
        "link_to_offence": "Account used to send the phishing e-mails",
        "custodian": "Example Mail Inc.",
        "custodian_country": "us",
        "why_needed": "Logs are deleted after 30 days",
        "mla_will_follow": True,
    },
    RequestType.TRAFFIC_DISCLOSURE: {
        "preservation_reference": "VN-24/7-2026-0012",
        "data_sought": "Originating IP address of the session",
    },
    RequestType.MLA_STORED: {
        **MLA_COMMON,
        "assistance_sought": "Disclosure",
        "data_sought": "Content of the mailbox",
    },
    RequestType.MLA_SUBSCRIBER: {
        **MLA_COMMON,
        "identifiers_justification": "Each IP and port was used to log in to the victim account",
    },
    RequestType.MLA_REALTIME: REALTIME,
    RequestType.MLA_INTERCEPTION: REALTIME,
    RequestType.MLA_GENERAL: {"assistance_sought": "Witness statement", "purpose": "Trial"},
    RequestType.POLICE_INFORMATION: {
        "questions": ["Is this person known to you?"],
        "purpose": "Identify a scam-centre recruiter",
        "intelligence_only_acknowledged": True,
    },
    RequestType.SPONTANEOUS: {
        "information_summary": "A scam centre moved across the border",
        "reason_for_sharing": "Your nationals are among the victims",
    },
    RequestType.EMERGENCY_DISCLOSURE: {
        "nature_of_emergency": "Kidnapping with ransom demand",
        "imminent_danger_to": "life",
        "data_sought": "Location data of the caller",
        "provider": "Example Telecom",
        "why_no_mla_in_time": "The victim may be killed within hours",
    },
    RequestType.JIT_PROPOSAL: {
        "purpose": "Dismantle a cross-border investment-fraud network",
        "proposed_duration_days": 365,
        "participating_authorities": ["MPS Viet Nam", "AFP"],
    },
    RequestType.EXTRADITION: {
        "person_name": "NGUYEN Van A",
        "person_birth_date": "1990-05-01",
        "warrant_or_judgment_reference": "Arrest warrant 12/2026",
        "penalty_years": 12,
    },
    RequestType.FREEZE_CONFISCATION: {
        "measure": "freeze",
        "property_description": "USDT-TRC20 held at exchange X",
        "property_location": "Exchange X, Singapore",
        "estimated_value": "125000.50",
        "currency": "usd",
    },
    RequestType.INTERPOL_NOTICE: {
        "kind": "notice",
        "colour": "red",
        "subject_name": "NGUYEN Van A",
        "purpose": "Locate and arrest pending extradition",
        "article3_checked": True,
    },
}

TYPES = list(RequestType)


def errors_of(request_type: RequestType, raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(FieldErrors) as caught:
        validate_fields(request_type, raw)
    assert caught.value.status == 422
    assert caught.value.extra["errors"] == caught.value.errors
    return {e["field"]: e["message"] for e in caught.value.errors}


# -- completeness --------------------------------------------------------------------------


@pytest.mark.parametrize("request_type", TYPES)
def test_every_type_has_a_complete_spec(request_type: RequestType) -> None:
    spec = CATALOGUE[request_type]
    assert spec.code is request_type
    assert spec.label
    assert spec.description
    assert spec.legal_refs, "at least one legal reference"
    assert spec.channels
    assert issubclass(spec.fields_model, BaseModel)
    assert spec.fields_model.model_config.get("extra") == "forbid"
    assert spec.submit_roles <= set(Role)
    assert spec.required_links <= spec.link_kinds


def test_un_references_are_marked_recalled_and_budapest_verified() -> None:
    refs = [ref for spec in CATALOGUE.values() for ref in spec.legal_refs]
    assert all(not ref.verified for ref in refs if ref.instrument == "UNCC")
    assert all(ref.verified for ref in refs if ref.instrument == "BUDAPEST")
    assert str(CATALOGUE[RequestType.PRESERVATION].legal_refs[1]) == "BUDAPEST Art 29"


@pytest.mark.parametrize(
    ("request_type", "channel"),
    [
        (RequestType.PRESERVATION, Channel.POINT_OF_CONTACT_24_7),
        (RequestType.PRESERVATION, Channel.CENTRAL_AUTHORITY),
        (RequestType.MLA_STORED, Channel.JUDICIAL),
        (RequestType.POLICE_INFORMATION, Channel.BORDER_LIAISON),
        (RequestType.POLICE_INFORMATION, Channel.INTERPOL),
        (RequestType.INTERPOL_NOTICE, Channel.INTERPOL),
        (RequestType.EXTRADITION, Channel.CENTRAL_AUTHORITY),
    ],
)
def test_channels_allowed(request_type: RequestType, channel: Channel) -> None:
    assert channel in CATALOGUE[request_type].channels


@pytest.mark.parametrize(
    ("request_type", "channel"),
    [
        (RequestType.MLA_STORED, Channel.POLICE),
        (RequestType.EXTRADITION, Channel.POLICE),
        (RequestType.INTERPOL_NOTICE, Channel.POLICE),
        (RequestType.PRESERVATION, Channel.BORDER_LIAISON),
    ],
)
def test_channels_refused(request_type: RequestType, channel: Channel) -> None:
    assert channel not in CATALOGUE[request_type].channels


@pytest.mark.parametrize(
    ("request_type", "role"),
    [
        (RequestType.PRESERVATION, Role.OFFICER),
        (RequestType.POLICE_INFORMATION, Role.OFFICER),
        (RequestType.EMERGENCY_DISCLOSURE, Role.OFFICER),
        (RequestType.MLA_STORED, Role.SUPERVISOR),
        (RequestType.EXTRADITION, Role.SUPERVISOR),
        (RequestType.FREEZE_CONFISCATION, Role.SUPERVISOR),
        (RequestType.JIT_PROPOSAL, Role.SUPERVISOR),
    ],
)
def test_submit_roles(request_type: RequestType, role: Role) -> None:
    assert CATALOGUE[request_type].submit_roles == {role}


def test_response_and_extension_flags() -> None:
    assert [t for t in TYPES if not CATALOGUE[t].expects_response] == [RequestType.SPONTANEOUS]
    assert [t for t in TYPES if CATALOGUE[t].can_extend] == [RequestType.PRESERVATION]


def test_labels_cover_every_code() -> None:
    assert set(REFUSAL_GROUNDS) == set(RefusalGround)
    assert set(LINK_KIND_LABELS) == set(LinkKind)
    assert set(URGENCY_LABELS) == set(Urgency)
    assert set(NON_EXECUTION_LABELS) == set(NonExecutionReason)


# -- refusal grounds -------------------------------------------------------------------------


@pytest.mark.parametrize("request_type", TYPES)
def test_no_type_allows_a_forbidden_ground(request_type: RequestType) -> None:
    allowed = {str(g) for g in CATALOGUE[request_type].refusal_grounds}
    assert not allowed & set(FORBIDDEN_GROUNDS)


def test_forbidden_grounds_are_not_refusal_grounds_at_all() -> None:
    assert {"bank_secrecy", "fiscal_matters"} == set(FORBIDDEN_GROUNDS)
    assert not {str(g) for g in RefusalGround} & set(FORBIDDEN_GROUNDS)


def test_preservation_and_traffic_disclosure_only_restricted_grounds() -> None:
    # Budapest Arts 29(5), 30(2); dual criminality for preservation under a 29(4) reservation.
    restricted = {RefusalGround.POLITICAL_OFFENCE, RefusalGround.SOVEREIGNTY_SECURITY_ORDRE_PUBLIC}
    assert CATALOGUE[RequestType.TRAFFIC_DISCLOSURE].refusal_grounds == restricted
    assert CATALOGUE[RequestType.PRESERVATION].refusal_grounds == restricted | {
        RefusalGround.DUAL_CRIMINALITY_LACKING
    }


def test_extradition_only_grounds_stay_with_extradition() -> None:
    only = {
        RefusalGround.DEATH_PENALTY_NO_ASSURANCE,
        RefusalGround.NATIONALITY_OF_PERSON,
        RefusalGround.INSUFFICIENT_EVIDENCE,
    }
    assert only <= CATALOGUE[RequestType.EXTRADITION].refusal_grounds
    for request_type in set(TYPES) - {RequestType.EXTRADITION}:
        assert not only & CATALOGUE[request_type].refusal_grounds


def test_spontaneous_cannot_be_refused_and_interpol_uses_article_3() -> None:
    assert CATALOGUE[RequestType.SPONTANEOUS].refusal_grounds == frozenset()
    assert (
        RefusalGround.INTERPOL_ARTICLE_3 in CATALOGUE[RequestType.INTERPOL_NOTICE].refusal_grounds
    )


# -- typed fields ----------------------------------------------------------------------------


@pytest.mark.parametrize("request_type", TYPES)
def test_valid_example_passes(request_type: RequestType) -> None:
    model = validate_fields(request_type, VALID[request_type])
    assert isinstance(model, CATALOGUE[request_type].fields_model)


@pytest.mark.parametrize("request_type", TYPES)
def test_unknown_field_is_refused(request_type: RequestType) -> None:
    errors = errors_of(request_type, {**VALID[request_type], "colour_of_sky": "blue"})
    assert "details.colour_of_sky" in errors


@pytest.mark.parametrize("request_type", TYPES)
def test_empty_details_name_every_required_field(request_type: RequestType) -> None:
    errors = errors_of(request_type, {})
    required = {
        f"details.{name}"
        for name, field in CATALOGUE[request_type].fields_model.model_fields.items()
        if field.is_required()
    }
    assert required
    assert required <= set(errors)


def test_preservation_required_fields_are_named() -> None:
    raw = {**VALID[RequestType.PRESERVATION]}
    del raw["data_to_preserve"]
    raw["custodian"] = "   "
    errors = errors_of(RequestType.PRESERVATION, raw)
    assert set(errors) == {"details.data_to_preserve", "details.custodian"}
    assert "required" in errors["details.data_to_preserve"].lower()


def test_preservation_strips_and_defaults() -> None:
    raw = {**VALID[RequestType.PRESERVATION], "custodian": "  Example Mail Inc. \n"}
    fields = validate_fields(RequestType.PRESERVATION, raw)
    assert isinstance(fields, PreservationFields)
    assert fields.custodian == "Example Mail Inc."
    assert fields.custodian_country == "US"
    assert fields.no_user_notification is True
    assert fields.partial_disclosure_requested is False


def test_preservation_without_mla_following_is_refused() -> None:
    errors = errors_of(
        RequestType.PRESERVATION, {**VALID[RequestType.PRESERVATION], "mla_will_follow": False}
    )
    assert "Art 29(2)" in errors["details.mla_will_follow"]


def test_preservation_extension_needs_previous_reference() -> None:
    raw = {**VALID[RequestType.PRESERVATION], "is_extension": True}
    assert set(errors_of(RequestType.PRESERVATION, raw)) == {"details.previous_reference"}
    assert set(errors_of(RequestType.PRESERVATION, {**raw, "previous_reference": " "})) == {
        "details.previous_reference"
    }
    fields = validate_fields(RequestType.PRESERVATION, {**raw, "previous_reference": "PR-1"})
    assert isinstance(fields, PreservationFields)
    assert fields.previous_reference == "PR-1"


def test_bad_country_and_overlong_text() -> None:
    raw = {**VALID[RequestType.PRESERVATION], "custodian_country": "XX", "custodian": "a" * 201}
    assert set(errors_of(RequestType.PRESERVATION, raw)) == {
        "details.custodian_country",
        "details.custodian",
    }


def test_expedited_mla_needs_a_reason() -> None:
    raw = {**VALID[RequestType.MLA_STORED], "expedited": True}
    assert set(errors_of(RequestType.MLA_STORED, raw)) == {"details.expedited_reason"}
    validate_fields(RequestType.MLA_STORED, {**raw, "expedited_reason": "Logs rotate weekly"})


@pytest.mark.parametrize("request_type", [RequestType.MLA_REALTIME, RequestType.MLA_INTERCEPTION])
def test_period_must_end_after_it_starts(request_type: RequestType) -> None:
    raw = {**VALID[request_type], "period_end": START}
    assert "details.period_end" in errors_of(request_type, raw)


@pytest.mark.parametrize("request_type", [RequestType.MLA_REALTIME, RequestType.MLA_INTERCEPTION])
def test_period_must_be_timezone_aware(request_type: RequestType) -> None:
    raw = {**VALID[request_type], "period_start": "2026-03-01T00:00:00"}
    assert "details.period_start" in errors_of(request_type, raw)


def test_period_is_stored_in_utc() -> None:
    fields = validate_fields(RequestType.MLA_REALTIME, VALID[RequestType.MLA_REALTIME])
    assert fields.model_dump()["period_start"] == datetime(2026, 2, 28, 17, tzinfo=UTC)


def test_interception_longer_than_the_maximum_needs_a_justification() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    at_max = {
        **REALTIME,
        "period_start": start,
        "period_end": start + timedelta(days=INTERCEPTION_MAX_DAYS),
    }
    validate_fields(RequestType.MLA_INTERCEPTION, at_max)
    longer = {**at_max, "period_end": start + timedelta(days=INTERCEPTION_MAX_DAYS, seconds=1)}
    errors = errors_of(RequestType.MLA_INTERCEPTION, longer)
    assert set(errors) == {"details.longer_period_justification"}
    validate_fields(
        RequestType.MLA_INTERCEPTION,
        {**longer, "longer_period_justification": "Court authorised 120 days"},
    )
    # Real-time traffic data has no such cap.
    validate_fields(RequestType.MLA_REALTIME, longer)


def test_police_information_needs_the_intelligence_acknowledgement_and_a_question() -> None:
    raw = {**VALID[RequestType.POLICE_INFORMATION], "intelligence_only_acknowledged": False}
    assert set(errors_of(RequestType.POLICE_INFORMATION, {**raw, "questions": []})) == {
        "details.intelligence_only_acknowledged",
        "details.questions",
    }


def test_emergency_disclosure_names_the_danger() -> None:
    raw = {**VALID[RequestType.EMERGENCY_DISCLOSURE], "imminent_danger_to": "property"}
    assert set(errors_of(RequestType.EMERGENCY_DISCLOSURE, raw)) == {"details.imminent_danger_to"}


def test_extradition_penalty_of_at_least_one_year() -> None:
    raw = {**VALID[RequestType.EXTRADITION], "penalty_years": 0}
    assert set(errors_of(RequestType.EXTRADITION, raw)) == {"details.penalty_years"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"currency": "XYZ"}, "details.currency"),
        ({"estimated_value": "-1"}, "details.estimated_value"),
        ({"measure": "confiscate"}, "details.order_reference"),
        ({"measure": "burn"}, "details.measure"),
    ],
)
def test_freeze_confiscation_rules(changes: dict[str, Any], field: str) -> None:
    raw = {**VALID[RequestType.FREEZE_CONFISCATION], **changes}
    assert field in errors_of(RequestType.FREEZE_CONFISCATION, raw)


def test_freeze_confiscation_normalises() -> None:
    fields = validate_fields(
        RequestType.FREEZE_CONFISCATION,
        {
            **VALID[RequestType.FREEZE_CONFISCATION],
            "measure": "confiscate",
            "order_reference": "O-1",
        },
    ).model_dump()
    assert fields["currency"] == "USD"
    assert fields["estimated_value"] == Decimal("125000.50")


def test_interpol_notice_rules() -> None:
    raw = {**VALID[RequestType.INTERPOL_NOTICE], "article3_checked": False}
    assert set(errors_of(RequestType.INTERPOL_NOTICE, raw)) == {"details.article3_checked"}
    unnamed = {**VALID[RequestType.INTERPOL_NOTICE], "subject_name": ""}
    assert set(errors_of(RequestType.INTERPOL_NOTICE, unnamed)) == {"details.subject_name"}
    validate_fields(RequestType.INTERPOL_NOTICE, {**unnamed, "colour": "black"})


def test_field_errors_is_an_invalid_input_with_a_readable_detail() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_fields(RequestType.SPONTANEOUS, {"information_summary": "x"})
    assert "details.reason_for_sharing" in caught.value.detail


# -- urgency and links -----------------------------------------------------------------------


def test_emergency_needs_a_justification() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_urgency(Urgency.EMERGENCY, "  ")
    assert caught.value.field == "urgency_justification"
    assert check_urgency(Urgency.EMERGENCY, " child at risk ") == "child at risk"
    assert check_urgency(Urgency.ROUTINE, None) is None
    assert check_urgency(Urgency.URGENT, "") is None


def test_emergency_disclosure_must_be_an_emergency() -> None:
    with pytest.raises(InvalidInput):
        check_urgency(Urgency.URGENT, "x", request_type=RequestType.EMERGENCY_DISCLOSURE)
    check_urgency(Urgency.EMERGENCY, "x", request_type=RequestType.EMERGENCY_DISCLOSURE)


def test_traffic_disclosure_requires_a_preservation_link() -> None:
    assert missing_links(RequestType.TRAFFIC_DISCLOSURE, []) == {LinkKind.FOLLOWS_PRESERVATION}
    assert not missing_links(RequestType.TRAFFIC_DISCLOSURE, [LinkKind.FOLLOWS_PRESERVATION])
    assert not missing_links(RequestType.MLA_STORED, [])


def test_a_preservation_extension_requires_an_extends_link() -> None:
    raw = {**VALID[RequestType.PRESERVATION], "is_extension": True, "previous_reference": "P"}
    fields = validate_fields(RequestType.PRESERVATION, raw)
    assert missing_links(RequestType.PRESERVATION, [], fields) == {LinkKind.EXTENDS}
    plain = validate_fields(RequestType.PRESERVATION, VALID[RequestType.PRESERVATION])
    assert not missing_links(RequestType.PRESERVATION, [], plain)


@pytest.mark.parametrize(
    ("source", "kind", "target", "ok"),
    [
        (RequestType.MLA_STORED, LinkKind.FOLLOWS_PRESERVATION, RequestType.PRESERVATION, True),
        (RequestType.MLA_SUBSCRIBER, LinkKind.FOLLOWS_PRESERVATION, RequestType.PRESERVATION, True),
        (RequestType.MLA_STORED, LinkKind.FOLLOWS_PRESERVATION, RequestType.MLA_GENERAL, False),
        (RequestType.PRESERVATION, LinkKind.EXTENDS, RequestType.PRESERVATION, True),
        (RequestType.MLA_STORED, LinkKind.EXTENDS, RequestType.PRESERVATION, False),
        (RequestType.EXTRADITION, LinkKind.FOLLOWS_PRESERVATION, RequestType.PRESERVATION, False),
        (RequestType.EXTRADITION, LinkKind.FOLLOWS_UP, RequestType.INTERPOL_NOTICE, True),
        (RequestType.SPONTANEOUS, LinkKind.RELATED, RequestType.POLICE_INFORMATION, True),
    ],
)
def test_check_link(source: RequestType, kind: LinkKind, target: RequestType, ok: bool) -> None:
    if ok:
        check_link(source, kind, target)
    else:
        with pytest.raises(InvalidInput):
            check_link(source, kind, target)
