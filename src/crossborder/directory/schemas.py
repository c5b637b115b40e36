"""Pydantic shapes of the directory: what the API accepts and returns, validated strictly.

Format rules live here, once, as annotated types (ISO 3166 codes through pycountry, IANA time
zones through zoneinfo, E.164 phone numbers through phonenumbers, e-mail addresses through
email-validator, BCP 47 language tags, node URLs, key fingerprints, weekly office hours), so
that the API, the HTML forms, the CLI and the demo seed all reject the same inputs with the
same field names. Rules that need the database (does the state exist, is the name taken, is
the version current) are the service's.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from crossborder.directory import hours
from crossborder.directory.hours import Availability
from crossborder.directory.policy import PolicyResult
from crossborder.directory.taxonomy import (
    ALL,
    AuthorityRole,
    Channel,
    ConditionCode,
    DataCategory,
    InstrumentKind,
    Offence,
    PartyStatus,
)

# -- field types ------------------------------------------------------------------------


def _alpha2(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return code


def _alpha3(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or pycountry.countries.get(alpha_3=code) is None:
        raise ValueError("not an ISO 3166-1 alpha-3 country code")
    return code


_LANG_RE = re.compile(r"^([a-zA-Z]{2,3})(-[A-Za-z]{4})?(-(?:[A-Za-z]{2}|\d{3}))?$")


def _language_tag(value: str) -> str:
    """A BCP 47 tag limited to language[-Script][-REGION], canonically cased."""
    match = _LANG_RE.match(value.strip())
    if not match:
        raise ValueError("not a BCP 47 language tag such as 'vi', 'en-AU' or 'zh-Hans'")
    language = match.group(1).lower()
    found = (
        pycountry.languages.get(alpha_2=language)
        if len(language) == 2
        else pycountry.languages.get(alpha_3=language)
    )
    if found is None:
        raise ValueError(f"unknown language subtag {language!r}")
    script = (match.group(2) or "").title()
    region = (match.group(3) or "").upper()
    return f"{language}{script}{region}"


def _phone(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(
            "not an international phone number (write it as +<country><number>)"
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from exc


def _web_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    return value.strip()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _node_url(value: str) -> str:
    """Peers are reached over HTTPS; plain HTTP only on loopback (several nodes on one machine)."""
    parts = urlsplit(value.strip())
    if not parts.hostname or parts.scheme not in {"http", "https"}:
        raise ValueError("must be an https URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("must use https (plain http is allowed only on loopback)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not carry credentials, a query or a fragment")
    return value.strip().rstrip("/")


def _fingerprint(value: str) -> str:
    digest = value.strip().replace(":", "").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError("must be a SHA-256 fingerprint: 64 hexadecimal characters")
    return digest


def _scope_list(enum: type[Offence] | type[Channel] | type[DataCategory]) -> Any:
    """A list of codes of ``enum``, or ``["*"]`` for all of them."""

    def check(values: list[str]) -> list[str]:
        if ALL in values:
            if len(values) != 1:
                raise ValueError("'*' (all) cannot be combined with codes")
            return [ALL]
        allowed = {member.value for member in enum}
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ValueError(f"unknown code(s): {', '.join(bad)}")
        return list(dict.fromkeys(values))

    return AfterValidator(check)


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


Alpha2 = Annotated[str, AfterValidator(_alpha2)]
Alpha3 = Annotated[str, AfterValidator(_alpha3)]
LanguageTag = Annotated[str, AfterValidator(_language_tag)]
TimeZoneName = Annotated[str, AfterValidator(hours.valid_time_zone)]
E164Phone = Annotated[str, AfterValidator(_phone)]
Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
WebUrl = Annotated[str, Field(max_length=500), AfterValidator(_web_url)]
NodeUrl = Annotated[str, Field(max_length=500), AfterValidator(_node_url)]
Fingerprint = Annotated[str, AfterValidator(_fingerprint)]
OfficeHours = Annotated[dict[str, Any], AfterValidator(hours.parse_office_hours)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
InstrumentCode = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Z0-9][A-Z0-9_-]{1,39}$")
]
Languages = Annotated[list[LanguageTag], AfterValidator(_unique)]
Roles = Annotated[list[AuthorityRole], Field(min_length=1), AfterValidator(_unique)]
OffenceScope = Annotated[list[str], _scope_list(Offence)]
ChannelScope = Annotated[list[str], _scope_list(Channel)]
CategoryScope = Annotated[list[str], _scope_list(DataCategory)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- states -----------------------------------------------------------------------------


class StateCreate(_In):
    alpha2: Alpha2
    alpha3: Alpha3 | None = None  # derived from alpha2 when omitted
    name: Name | None = None  # ISO short name when omitted


class StateRead(_Out):
    id: int
    alpha2: str
    alpha3: str
    name: str


# -- nodes ------------------------------------------------------------------------------


class NodeCreate(_In):
    name: Name
    base_url: NodeUrl
    fingerprint: Fingerprint
    public_key: Annotated[str, Field(max_length=20_000)] | None = None


class NodeRead(_Out):
    id: int
    name: str
    base_url: str
    fingerprint: str
    public_key: str | None
    created_at: datetime


# -- authorities ------------------------------------------------------------------------


class AuthorityCreate(_In):
    state: Alpha2 | None = None  # None: an international organisation
    name: Name
    short_name: ShortName | None = None
    roles: Roles
    languages: Languages = Field(default_factory=list)
    time_zone: TimeZoneName
    node_id: int | None = None
    website: WebUrl | None = None
    is_local: bool = False


class AuthorityChanges(_In):
    """Fields to change; absent fields stay as they are (``None`` clears optional ones)."""

    state: Alpha2 | None = None
    name: Name | None = None
    short_name: ShortName | None = None
    roles: Roles | None = None
    languages: Languages | None = None
    time_zone: TimeZoneName | None = None
    node_id: int | None = None
    website: WebUrl | None = None
    is_local: bool | None = None


class AuthorityUpdate(AuthorityChanges):
    """The PATCH body: the changes plus the version the client last read."""

    version: int = Field(ge=1)

    def changes(self) -> AuthorityChanges:
        return AuthorityChanges.model_validate(
            self.model_dump(exclude={"version"}, exclude_unset=True)
        )


class AuthorityRead(_Out):
    id: int
    state: str | None = Field(validation_alias="state_code")
    name: str
    short_name: str | None
    roles: list[str]
    languages: list[str]
    time_zone: str
    node_id: int | None
    website: str | None
    is_local: bool
    version: int
    created_at: datetime
    updated_at: datetime


# -- contact points ---------------------------------------------------------------------


class ContactPointCreate(_In):
    name: Name
    is_desk: bool = False
    title: Name | None = None
    phone: E164Phone | None = None
    email: Email | None = None
    time_zone: TimeZoneName | None = None  # the authority's when omitted
    office_hours: OfficeHours = Field(default_factory=dict)
    languages: Languages = Field(default_factory=list)
    is_24_7: bool = False


class ContactPointChanges(_In):
    name: Name | None = None
    is_desk: bool | None = None
    title: Name | None = None
    phone: E164Phone | None = None
    email: Email | None = None
    time_zone: TimeZoneName | None = None
    office_hours: OfficeHours | None = None
    languages: Languages | None = None
    is_24_7: bool | None = None


class ContactPointRead(_Out):
    id: int
    authority_id: int
    name: str
    is_desk: bool
    title: str | None
    phone: str | None
    email: str | None
    time_zone: str
    office_hours: dict[str, list[list[str]]]
    languages: list[str]
    is_24_7: bool


# -- legal instruments ------------------------------------------------------------------


class Condition(_In):
    code: ConditionCode
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


def _articles(value: dict[str, str]) -> dict[str, str]:
    allowed = {c.value for c in Channel} | {ALL}
    bad = sorted(set(value) - allowed)
    if bad:
        raise ValueError(f"articles are keyed by channel or '*'; unknown: {', '.join(bad)}")
    return value


class InstrumentCreate(_In):
    code: InstrumentCode
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    kind: InstrumentKind
    articles: Annotated[dict[str, str], AfterValidator(_articles)] = Field(default_factory=dict)
    offences: OffenceScope = Field(default_factory=lambda: [ALL])
    channels: ChannelScope = Field(default_factory=lambda: [ALL])
    data_categories: CategoryScope = Field(default_factory=lambda: [ALL])
    conditions: list[Condition] = Field(default_factory=list)
    valid_from: date | None = None
    valid_until: date | None = None
    min_penalty_years: float | None = Field(default=None, ge=0, le=100)
    serious_crime_min_years: float | None = Field(default=None, ge=0, le=100)
    notes: Annotated[str, Field(max_length=10_000)] | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> InstrumentCreate:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until must not be before valid_from")
        return self


class PartySet(_In):
    """Set a party's standing: exactly one of ``state`` (alpha-2) or ``authority_id``."""

    state: Alpha2 | None = None
    authority_id: int | None = None
    status: PartyStatus
    signed_on: date | None = None
    ratified_on: date | None = None
    in_force_on: date | None = None
    withdrawn_on: date | None = None
    reservations: Annotated[str, Field(max_length=10_000)] | None = None
    declarations: Annotated[str, Field(max_length=10_000)] | None = None
    excluded_offences: Annotated[list[Offence], AfterValidator(_unique)] = Field(
        default_factory=list
    )
    excluded_channels: Annotated[list[Channel], AfterValidator(_unique)] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _one_party(self) -> PartySet:
        if (self.state is None) == (self.authority_id is None):
            raise ValueError("give exactly one of state or authority_id")
        return self


class PartyRead(_Out):
    id: int
    state: str | None
    authority_id: int | None
    status: str
    signed_on: date | None
    ratified_on: date | None
    in_force_on: date | None
    withdrawn_on: date | None
    reservations: str | None
    declarations: str | None
    excluded_offences: list[str]
    excluded_channels: list[str]

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return data
        fields = {name: getattr(data, name) for name in cls.model_fields if name != "state"}
        fields["state"] = data.state.alpha2 if data.state is not None else None
        return fields


class InstrumentRead(_Out):
    id: int
    code: str
    title: str
    kind: str
    articles: dict[str, str]
    offences: list[str]
    channels: list[str]
    data_categories: list[str]
    conditions: list[dict[str, str]]
    valid_from: date | None
    valid_until: date | None
    min_penalty_years: float | None
    serious_crime_min_years: float | None
    notes: str | None
    parties: list[PartyRead]


# -- policy -----------------------------------------------------------------------------


def _offence_shorthand(value: Any) -> Any:
    return {"code": value} if isinstance(value, str) else value


class OffenceIn(_In):
    code: Offence
    max_penalty_years: float | None = Field(default=None, ge=0, le=100)


class PolicyQuery(_In):
    sender_state: Alpha2
    receiver_state: Alpha2
    sender_authority_id: int | None = None
    receiver_authority_id: int | None = None
    channel: Channel
    offences: Annotated[
        list[Annotated[OffenceIn, BeforeValidator(_offence_shorthand)]], Field(min_length=1)
    ]
    data_categories: Annotated[list[DataCategory], AfterValidator(_unique)] = Field(
        default_factory=list
    )
    on_date: date | None = None  # today (UTC) when omitted


class LegalBasisRead(BaseModel):
    instrument_code: str
    title: str
    kind: str
    article: str | None
    conditions: list[Condition]
    via_authorities: list[str]


class ReasonRead(BaseModel):
    instrument_code: str | None
    code: str
    message: str
    subject: str | None


class PolicyAnswer(BaseModel):
    on_date: date
    bases: list[LegalBasisRead]
    reasons: list[ReasonRead]

    @classmethod
    def from_result(cls, result: PolicyResult) -> PolicyAnswer:
        return cls(
            on_date=result.on,
            bases=[
                LegalBasisRead(
                    instrument_code=b.instrument_code,
                    title=b.title,
                    kind=b.kind.value,
                    article=b.article,
                    conditions=[
                        Condition.model_validate({"code": c.code, "text": c.text})
                        for c in b.conditions
                    ],
                    via_authorities=list(b.via_authorities),
                )
                for b in result.bases
            ],
            reasons=[
                ReasonRead(
                    instrument_code=r.instrument_code,
                    code=r.code.value,
                    message=r.message,
                    subject=r.subject,
                )
                for r in result.refusals
            ],
        )


class AuthorityPage(BaseModel):
    items: list[AuthorityRead]
    total: int
    limit: int
    offset: int


class ContactPointWithStatus(ContactPointRead):
    """A contact point as the API returns it: with its local time now and availability."""

    local_time: datetime
    availability: Availability
