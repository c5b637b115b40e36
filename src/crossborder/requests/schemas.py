"""What comes in and goes out of the requests API (Pydantic v2).

The common fields of every request are validated here; the type-specific ``details`` are
validated by the type's own model in ``catalogue`` (the service calls it), so an error on
``details.data_to_preserve`` names that field just like an error on ``summary_of_facts``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from crossborder.directory.taxonomy import N_, Channel, ConditionCode, DataCategory, Offence
from crossborder.requests.catalogue import LinkKind, RequestType, Urgency
from crossborder.requests.lifecycle import Action


class Confidentiality(StrEnum):
    NORMAL = "normal"
    CONFIDENTIAL = "confidential"  # do not disclose beyond what executing the request needs
    STRICT = "strict"  # not even the existence of the request (e.g. no user notification)


CONFIDENTIALITY_LABELS = {
    Confidentiality.NORMAL: N_("Normal"),
    Confidentiality.CONFIDENTIAL: N_("Confidential"),
    Confidentiality.STRICT: N_("Strictly confidential: do not disclose the request's existence"),
}


class IdentifierKind(StrEnum):
    """Kinds of identifiers a request names (normalised by the selectors capability later)."""

    IP = "ip"
    EMAIL = "email"
    PHONE = "phone"
    DOMAIN = "domain"
    URL = "url"
    CRYPTO = "crypto"
    BANK_ACCOUNT = "bank_account"
    SOCIAL_MEDIA = "social_media"
    IMEI = "imei"
    IMSI = "imsi"
    FILE_HASH = "file_hash"
    VEHICLE_PLATE = "vehicle_plate"
    PASSPORT = "passport"
    OTHER = "other"


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{value}' is not an IANA time zone") from None
    return value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_zone)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OffenceEntry(_In):
    code: Offence
    national_provision: Annotated[str, StringConstraints(max_length=300)] = ""
    max_penalty_years: float | None = Field(default=None, ge=0, le=100)


class IdentifierEntry(_In):
    """An identifier with the time window it matters in, and the zone the times were read in."""

    kind: IdentifierKind
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    time_zone: TimeZoneName = "UTC"
    note: Annotated[str, StringConstraints(max_length=500)] = ""

    @model_validator(mode="after")
    def _window(self) -> IdentifierEntry:
        if self.window_start and self.window_end and self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        return self


class UseCondition(_In):
    code: ConditionCode
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class LinkIn(_In):
    request: Annotated[
        str, StringConstraints(min_length=1, max_length=60)
    ]  # public id or reference
    kind: LinkKind


class DraftFields(_In):
    """Fields common to every request type (all optional here; DraftCreate requires some)."""

    channel: Channel | None = None
    urgency: Urgency | None = None
    urgency_justification: Annotated[str, StringConstraints(max_length=5000)] | None = None
    title: Line | None = None
    summary_of_facts: Text | None = None
    offences: list[OffenceEntry] | None = Field(default=None, max_length=20)
    identifiers: list[IdentifierEntry] | None = Field(default=None, max_length=500)
    data_categories: list[DataCategory] | None = Field(default=None, max_length=10)
    confidentiality: Confidentiality | None = None
    use_conditions: list[UseCondition] | None = Field(default=None, max_length=20)
    details: dict[str, Any] | None = None
    requested_response_by: AwareDatetime | None = None
    eu_production_order: bool | None = None
    sender_contact_id: int | None = None
    receiver_contact_id: int | None = None


class DraftCreate(DraftFields):
    request_type: RequestType
    receiver_authority_id: int
    channel: Channel
    urgency: Urgency = Urgency.ROUTINE
    title: Line
    summary_of_facts: Text
    offences: list[OffenceEntry] = Field(min_length=1, max_length=20)
    identifiers: list[IdentifierEntry] = Field(default_factory=list, max_length=500)
    data_categories: list[DataCategory] = Field(default_factory=list, max_length=10)
    confidentiality: Confidentiality = Confidentiality.CONFIDENTIAL
    use_conditions: list[UseCondition] = Field(default_factory=list, max_length=20)
    details: dict[str, Any] = Field(default_factory=dict)
    eu_production_order: bool = False
    links: list[LinkIn] = Field(default_factory=list, max_length=10)


class DraftUpdate(DraftFields):
    version: int = Field(ge=1)


class TransitionIn(_In):
    action: Action
    ground: Annotated[str, StringConstraints(max_length=60)] | None = None
    reasons: Annotated[str, StringConstraints(max_length=20_000)] | None = None
    until: AwareDatetime | None = None
    preserved_until: AwareDatetime | None = None
    version: int | None = Field(default=None, ge=1)


class MessageIn(_In):
    body: Text


class ClockRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    due_at: datetime
    warn_at: datetime
    state: str
    met_at: datetime | None
    basis: str
    verified: bool
    due_at_sender_local: str = ""
    due_at_receiver_local: str = ""


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor_label: str
    actor_authority_id: int | None
    action: str
    from_status: str | None
    to_status: str | None
    ground: str | None
    note: str | None


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    author_label: str
    author_authority_id: int
    body: str
    created_at: datetime


class AttachmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    public_id: str
    filename: str
    media_type: str
    size: int
    sha256: str
    created_at: datetime


class RequestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    public_id: str
    reference: str
    request_type: str
    status: str
    channel: str
    urgency: str
    urgency_justification: str | None
    sender_authority_id: int
    receiver_authority_id: int
    title: str
    summary_of_facts: str
    offences: list[dict[str, Any]]
    identifiers: list[dict[str, Any]]
    data_categories: list[str]
    confidentiality: str
    use_conditions: list[dict[str, Any]]
    details: dict[str, Any]
    requested_response_by: datetime | None
    eu_production_order: bool
    legal_basis: dict[str, Any] | None
    conditions: list[dict[str, Any]]
    outcome: str | None
    refusal_ground: str | None
    outcome_reasons: str | None
    postponed_until: datetime | None
    preserved_at: datetime | None
    preserved_until: datetime | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    closed_at: datetime | None
    version: int
    clocks: list[ClockRead] = []


class RequestDetail(RequestRead):
    timeline: list[EventRead]
    messages: list[MessageRead]
    attachments: list[AttachmentRead]
    links: list[dict[str, str]]
    available_actions: list[str]


class RequestPage(BaseModel):
    items: list[RequestRead]
    total: int
    limit: int
    offset: int


class DashboardRow(BaseModel):
    public_id: str
    reference: str
    title: str
    request_type: str
    status: str
    clock: ClockRead
