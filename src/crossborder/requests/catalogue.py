"""The request types a node can send or receive, and what each one needs. Pure.

A cross-border request is not one thing: a preservation request to a 24/7 point of contact,
an MLA request for stored data to a central authority and a red-notice request to INTERPOL
have different legal bases, channels, fields, refusal grounds and signatories. This module
states those differences once, as data (:data:`CATALOGUE`), so that the lifecycle, the
deadlines, the forms and the API all read the same rules and a reviewer can check them
against the treaty text in one place.

Sources (``reference/domain.md``): the UN Convention's article map (Arts 35-52) is
*recalled* — the adopted text was not available — and every UN reference carries
``verified=False``. For request contents and refusal grounds this module falls back on
Budapest Arts 23-35 and CETS 224, which were checked (``verified=True``). Sub-paragraph
letters not given in domain.md are recalled and said so where they matter. The software
shows these references to officers as guidance, not as a legal determination: verify
recalled ones before relying on them.

Rules that need the database (does the linked request exist, does the requested state hold a
Budapest Art 29(4) reservation, is the instrument in force) belong to the service; the pure
helpers here (:func:`check_link`, :func:`missing_links`, :func:`check_urgency`) take the
facts as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import pycountry
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from crossborder.auth.permissions import Role
from crossborder.core.errors import InvalidInput
from crossborder.directory.schemas import Alpha2
from crossborder.directory.taxonomy import N_, Channel, DataCategory

# -- legal references ---------------------------------------------------------------------


@dataclass(frozen=True)
class LegalRef:
    """One article of one instrument. ``verified`` is False where the number is recalled.

    ``instrument`` is a stable code: ``UNCC`` (UN Convention against Cybercrime),
    ``BUDAPEST`` (CETS 185), ``CETS224`` (its Second Additional Protocol), ``UNTOC``,
    ``INTERPOL`` (the INTERPOL Constitution).
    """

    instrument: str
    article: str
    verified: bool

    def __str__(self) -> str:
        return f"{self.instrument} Art {self.article}"


def _un(article: str) -> LegalRef:
    """A UN Convention article: recalled, not checked against the adopted text."""
    return LegalRef("UNCC", article, verified=False)


def _bc(article: str, *, verified: bool = True) -> LegalRef:
    """A Budapest Convention article: verified unless the sub-paragraph is recalled."""
    return LegalRef("BUDAPEST", article, verified=verified)


def _p2(article: str) -> LegalRef:
    """A CETS 224 (Second Additional Protocol) article: the channel articles are verified."""
    return LegalRef("CETS224", article, verified=True)


# -- small vocabularies ------------------------------------------------------------------


class LinkKind(StrEnum):
    """How a request points at an earlier one (domain.md §7: "links to earlier requests")."""

    FOLLOWS_PRESERVATION = "follows_preservation"
    EXTENDS = "extends"
    FOLLOWS_UP = "follows_up"
    RELATED = "related"


LINK_KIND_LABELS: dict[LinkKind, str] = {
    LinkKind.FOLLOWS_PRESERVATION: N_("Follows a preservation request"),
    LinkKind.EXTENDS: N_("Extends a preservation request"),
    LinkKind.FOLLOWS_UP: N_("Follow-up to an earlier request"),
    LinkKind.RELATED: N_("Related request"),
}


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"


URGENCY_LABELS: dict[Urgency, str] = {
    Urgency.ROUTINE: N_("Routine"),
    Urgency.URGENT: N_("Urgent"),
    Urgency.EMERGENCY: N_("Emergency (risk to life or physical safety)"),
}


class RefusalGround(StrEnum):
    """Coded grounds on which a requested party may refuse (domain.md §7: "refused (coded)").

    Which grounds a request type admits is in its :class:`TypeSpec`; a refusal always needs a
    written reason as well (UN Art 40, recalled: reasons must be given).
    """

    POLITICAL_OFFENCE = "political_offence"
    SOVEREIGNTY_SECURITY_ORDRE_PUBLIC = "sovereignty_security_ordre_public"
    DOMESTIC_LAW_BARS_MEASURE = "domestic_law_bars_measure"
    DISCRIMINATION = "discrimination"
    DUAL_CRIMINALITY_LACKING = "dual_criminality_lacking"
    NON_CONFORMING_REQUEST = "non_conforming_request"
    NE_BIS_IN_IDEM = "ne_bis_in_idem"
    DEATH_PENALTY_NO_ASSURANCE = "death_penalty_no_assurance"
    NATIONALITY_OF_PERSON = "nationality_of_person"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"
    INTERPOL_ARTICLE_3 = "interpol_article_3"
    OTHER = "other"


@dataclass(frozen=True)
class GroundInfo:
    """Label, explanation and sources of a refusal ground.

    ``refs`` is empty where the ground comes from the bilateral treaty or the requested
    state's own law rather than from a multilateral instrument in domain.md.
    """

    label: str
    description: str
    refs: tuple[LegalRef, ...] = ()


REFUSAL_GROUNDS: dict[RefusalGround, GroundInfo] = {
    RefusalGround.POLITICAL_OFFENCE: GroundInfo(
        N_("Political offence"),
        N_("The requested party considers the offence a political offence or connected to one."),
        (_bc("27(4)"), _bc("29(5)"), _bc("30(2)")),
    ),
    RefusalGround.SOVEREIGNTY_SECURITY_ORDRE_PUBLIC: GroundInfo(
        N_("Sovereignty, security, ordre public or other essential interests"),
        N_(
            "Executing the request would prejudice sovereignty, security, ordre public or other "
            "essential interests of the requested party."
        ),
        (_bc("27(4)"), _bc("29(5)"), _bc("30(2)"), _un("40")),
    ),
    RefusalGround.DOMESTIC_LAW_BARS_MEASURE: GroundInfo(
        N_("Domestic law bars the measure"),
        N_("The requested party's law would not allow the measure in a similar domestic case."),
        (_un("40"),),
    ),
    RefusalGround.DISCRIMINATION: GroundInfo(
        N_("Discriminatory purpose"),
        N_(
            "There are substantial grounds to believe the request aims to prosecute or punish a "
            "person on account of sex, race, religion, nationality, ethnic origin or political "
            "opinions."
        ),
        (_un("37"), _un("40")),
    ),
    RefusalGround.DUAL_CRIMINALITY_LACKING: GroundInfo(
        N_("Dual criminality lacking"),
        N_(
            "The conduct is not an offence in the requested party. For preservation this is a "
            "ground only where the requested party made a reservation under Budapest Art 29(4) "
            "and the offence is not one of Budapest Arts 2-11."
        ),
        (_bc("29(4)"), _un("35"), _un("37")),
    ),
    RefusalGround.NON_CONFORMING_REQUEST: GroundInfo(
        N_("Request does not conform"),
        N_(
            "The request does not contain what the applicable instrument requires, even after "
            "the requested party asked for more information."
        ),
        (_un("40"),),
    ),
    RefusalGround.NE_BIS_IN_IDEM: GroundInfo(
        N_("Ne bis in idem"),
        N_(
            "The person has already been finally tried for the same conduct (a ground under the "
            "applicable treaty or the requested party's law)."
        ),
    ),
    RefusalGround.DEATH_PENALTY_NO_ASSURANCE: GroundInfo(
        N_("Death penalty without assurances"),
        N_(
            "The offence carries the death penalty in the requesting party and no sufficient "
            "assurance was given that it will not be imposed or carried out."
        ),
    ),
    RefusalGround.NATIONALITY_OF_PERSON: GroundInfo(
        N_("Person is a national of the requested party"),
        N_(
            "Extradition of the requested party's own national is refused. The requested party "
            "must then submit the case to its own authorities for prosecution (extradite or "
            "prosecute)."
        ),
        (_un("37"), _bc("24(6)", verified=False)),
    ),
    RefusalGround.INSUFFICIENT_EVIDENCE: GroundInfo(
        N_("Insufficient evidence"),
        N_(
            "The evidence does not meet the standard the applicable extradition treaty or law "
            "requires."
        ),
    ),
    RefusalGround.INTERPOL_ARTICLE_3: GroundInfo(
        N_("INTERPOL Constitution Article 3"),
        N_("The matter has a predominantly political, military, religious or racial character."),
        (LegalRef("INTERPOL", "3", verified=True),),
    ),
    RefusalGround.OTHER: GroundInfo(
        N_("Other ground"),
        N_("Another ground under the applicable treaty or law; the reasons must say which."),
    ),
}

#: Reasons that are never a valid refusal ground (UN Art 40 and Art 37, recalled; the
#: UNTOC 18(8), 18(22) pattern). Codes a client might send, with why they are refused.
FORBIDDEN_GROUNDS: dict[str, str] = {
    "bank_secrecy": N_("Bank secrecy is not a ground for refusing mutual legal assistance."),
    "fiscal_matters": N_(
        "A request may not be refused on the sole ground that the offence involves fiscal matters."
    ),
}


class NonExecutionReason(StrEnum):
    """Why a request could not be (fully) executed although it was not refused.

    A factual outcome, not a legal ground: the service records it with a partial execution,
    mirroring the EU Form 3 "non-execution reason" (domain.md §3.3).
    """

    PROVIDER_CANNOT_COMPLY = "provider_cannot_comply"
    DATA_NO_LONGER_AVAILABLE = "data_no_longer_available"
    DATA_NOT_HELD = "data_not_held"


NON_EXECUTION_LABELS: dict[NonExecutionReason, str] = {
    NonExecutionReason.PROVIDER_CANNOT_COMPLY: N_("The provider cannot comply"),
    NonExecutionReason.DATA_NO_LONGER_AVAILABLE: N_("The data is no longer available"),
    NonExecutionReason.DATA_NOT_HELD: N_("The provider does not hold the data"),
}

# -- field types ----------------------------------------------------------------------------


def _blank_to_none(value: Any) -> Any:
    """HTML forms send empty strings for empty optional fields: treat them as absent."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _currency(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError("not an ISO 4217 currency code")
    return code


Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
OptShort = Annotated[Short | None, BeforeValidator(_blank_to_none)]
OptText = Annotated[Text | None, BeforeValidator(_blank_to_none)]
OptAlpha2 = Annotated[Alpha2 | None, BeforeValidator(_blank_to_none)]
ShortList = Annotated[list[Short], Field(max_length=50)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Currency = Annotated[str, AfterValidator(_currency)]

#: Interception longer than this needs ``longer_period_justification`` (product rule: the
#: 90-day figure is a common domestic maximum per authorisation, not a treaty rule).
INTERCEPTION_MAX_DAYS = 90


class _Fields(BaseModel):
    """Base of every type-specific model: strict, stripped, immutable once validated."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


def _need_when(flag: str, value: str | None, info: ValidationInfo, message: str) -> str | None:
    """Raise ``message`` when the earlier boolean field ``flag`` is set and ``value`` is empty."""
    if info.data.get(flag) and value is None:
        raise ValueError(message)
    return value


def _must_be_true(value: bool, message: str) -> bool:
    if not value:
        raise ValueError(message)
    return value


# -- type-specific fields -------------------------------------------------------------------


class PreservationFields(_Fields):
    """Budapest Art 29(2) [verified] / UN Art 42 [recalled]; template T-CY(2018)11."""

    data_to_preserve: Text
    link_to_offence: Text
    custodian: Short
    custodian_country: OptAlpha2 = None
    system_location: OptText = None
    why_needed: Text
    mla_will_follow: bool
    no_user_notification: bool = True
    partial_disclosure_requested: bool = False
    is_extension: bool = False
    previous_reference: OptShort = Field(default=None, validate_default=True)

    @field_validator("mla_will_follow")
    @classmethod
    def _mla_follows(cls, value: bool) -> bool:
        # Art 29(2): the request states that an MLA request will follow (item (f), recalled).
        return _must_be_true(
            value,
            "a preservation request must state that a mutual legal assistance request "
            "will follow (Budapest Art 29(2))",
        )

    @field_validator("previous_reference")
    @classmethod
    def _extension_names_previous(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _need_when(
            "is_extension", value, info, "an extension must name the previous request"
        )


class TrafficDisclosureFields(_Fields):
    """Budapest Art 30 [verified] / UN Art 43 [recalled]: the path and the other providers."""

    preservation_reference: Short
    data_sought: Text
    path_information_purpose: OptText = None


class _MlaCommon(_Fields):
    """Header of the CoE MLA template T-CY(2018)10 (items 7-11, verified)."""

    investigative_authority: Short
    prosecutor_or_court: OptShort = None
    case_numbers: ShortList = []
    domestic_legal_basis: Text
    link_to_offence: Text
    expedited: bool = False
    expedited_reason: OptText = Field(default=None, validate_default=True)
    form_of_reply: OptShort = None
    previous_preservation_reference: OptShort = None
    previous_mla_reference: OptShort = None

    @field_validator("expedited_reason")
    @classmethod
    def _expedited_says_why(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Budapest Art 31(3): expedited where the data is particularly vulnerable to loss.
        return _need_when("expedited", value, info, "say why the request must be expedited")


class MlaStoredFields(_MlaCommon):
    """Budapest Art 31 [verified] / UN Art 44 [recalled]: search, seizure, disclosure."""

    assistance_sought: Text
    data_sought: Text


class MlaSubscriberFields(_MlaCommon):
    """Subscriber information per identifier (T-CY(2018)10). The identifiers themselves are
    the request's selectors; ``identifiers_justification`` ties each one to the offence."""

    identifiers_justification: Text


class MlaRealtimeFields(_Fields):
    """Budapest Art 33 [verified] / UN Art 45 [recalled]: real-time traffic data, a period."""

    data_sought: Text
    link_to_offence: Text
    target: Text
    justification: Text
    period_start: UtcDatetime
    period_end: UtcDatetime

    @field_validator("period_end")
    @classmethod
    def _end_after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("period_start")
        if start is not None and value <= start:
            raise ValueError("the period must end after it starts")
        return value


class MlaInterceptionFields(MlaRealtimeFields):
    """Budapest Art 34 [verified] / UN Art 46 [recalled]: interception of content.

    A period longer than :data:`INTERCEPTION_MAX_DAYS` needs an explicit justification.
    """

    longer_period_justification: OptText = Field(default=None, validate_default=True)

    @field_validator("longer_period_justification")
    @classmethod
    def _long_period_justified(cls, value: str | None, info: ValidationInfo) -> str | None:
        start, end = info.data.get("period_start"), info.data.get("period_end")
        if start is None or end is None or value is not None:
            return value
        if end - start > timedelta(days=INTERCEPTION_MAX_DAYS):
            raise ValueError(
                f"an interception longer than {INTERCEPTION_MAX_DAYS} days needs a justification"
            )
        return value


class MlaGeneralFields(_Fields):
    """UN Art 40 contents [recalled; the UNTOC 18(15) pattern]; Budapest Art 27 fallback."""

    assistance_sought: Text
    procedure_to_follow: OptText = None
    person_identity: OptShort = None
    person_location: OptText = None
    person_nationality: OptAlpha2 = None
    purpose: Text


class PoliceInformationFields(_Fields):
    """UN Art 47 [recalled]: police-to-police, liaison officers, INTERPOL, border liaison.

    The answer is intelligence, not evidence: the sender must acknowledge that.
    """

    questions: Annotated[list[Text], Field(min_length=1, max_length=30)]
    purpose: Text
    persons_of_interest: ShortList = []
    border_crossing: OptShort = None
    intelligence_only_acknowledged: bool

    @field_validator("intelligence_only_acknowledged")
    @classmethod
    def _acknowledged(cls, value: bool) -> bool:
        return _must_be_true(value, "acknowledge that the answer is intelligence, not evidence")


class SpontaneousFields(_Fields):
    """Budapest Art 26 [verified] / UN Art 40 [recalled]: information shared unasked."""

    information_summary: Text
    reason_for_sharing: Text


class DangerTo(StrEnum):
    LIFE = "life"
    PHYSICAL_SAFETY = "physical_safety"


class EmergencyDisclosureFields(_Fields):
    """CETS 224 Art 9 [verified]: an imminent risk to the life or safety of a person."""

    nature_of_emergency: Text
    imminent_danger_to: DangerTo
    data_sought: Text
    provider: Short
    why_no_mla_in_time: Text


class JitProposalFields(_Fields):
    """UN Art 48 [recalled] / CETS 224 Art 12 [verified]: proposing a joint team."""

    purpose: Text
    proposed_duration_days: int = Field(ge=1, le=730)
    participating_authorities: Annotated[list[Short], Field(min_length=1, max_length=30)]
    proposed_leader: OptShort = None
    operational_arrangements: OptText = None


class ExtraditionFields(_Fields):
    """UN Art 37 [recalled] / Budapest Art 24 [verified]; includes provisional arrest.

    ``penalty_years`` is the maximum penalty; Budapest Art 24 needs at least one year.
    """

    person_name: Short
    person_birth_date: date | None = None
    person_nationality: OptAlpha2 = None
    warrant_or_judgment_reference: Short
    provisional_arrest: bool = False
    person_location: OptText = None
    penalty_years: int = Field(ge=1, le=150)


class Measure(StrEnum):
    FREEZE = "freeze"
    SEIZE = "seize"
    CONFISCATE = "confiscate"


class FreezeConfiscationFields(_Fields):
    """UN Arts 49-52 [recalled]: the property, its location and value, and the order.

    A confiscation request needs the order's reference (an admissible copy of the order,
    UN Art 50, recalled). ``victim_compensation_priority`` asks for the priority UN Art 52
    gives to compensating victims (recalled; verify before relying on it).
    """

    measure: Measure
    property_description: Text
    property_location: Text
    estimated_value: Decimal = Field(ge=0, max_digits=20, decimal_places=2)
    currency: Currency
    order_reference: OptShort = Field(default=None, validate_default=True)
    victim_compensation_priority: bool = False

    @field_validator("order_reference")
    @classmethod
    def _order_for_confiscation(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("measure") is Measure.CONFISCATE and value is None:
            raise ValueError("a confiscation request must name the confiscation order")
        return value


class NoticeKind(StrEnum):
    NOTICE = "notice"
    DIFFUSION = "diffusion"


class NoticeColour(StrEnum):
    RED = "red"
    BLUE = "blue"
    GREEN = "green"
    YELLOW = "yellow"
    BLACK = "black"
    ORANGE = "orange"
    PURPLE = "purple"
    SILVER = "silver"
    UNSC_SPECIAL = "unsc_special"


#: Notices about a known person; black (unidentified bodies), purple (modus operandi),
#: silver (assets), orange (threats) and yellow (possibly unidentified) may have no name.
NAMED_SUBJECT_COLOURS = frozenset(
    {NoticeColour.RED, NoticeColour.BLUE, NoticeColour.GREEN, NoticeColour.UNSC_SPECIAL}
)


class InterpolNoticeFields(_Fields):
    """INTERPOL notice or diffusion, reviewed under Constitution Art 3 [verified]."""

    kind: NoticeKind
    colour: NoticeColour
    subject_name: OptShort = Field(default=None, validate_default=True)
    purpose: Text
    article3_checked: bool

    @field_validator("subject_name")
    @classmethod
    def _named_subject(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("colour") in NAMED_SUBJECT_COLOURS and value is None:
            raise ValueError("this notice colour needs the subject's name")
        return value

    @field_validator("article3_checked")
    @classmethod
    def _article3(cls, value: bool) -> bool:
        return _must_be_true(
            value,
            "confirm the request is not political, military, religious or racial "
            "(INTERPOL Constitution Art 3)",
        )


# -- the catalogue --------------------------------------------------------------------------


class RequestType(StrEnum):
    PRESERVATION = "preservation"
    TRAFFIC_DISCLOSURE = "traffic_disclosure"
    MLA_STORED = "mla_stored"
    MLA_SUBSCRIBER = "mla_subscriber"
    MLA_REALTIME = "mla_realtime"
    MLA_INTERCEPTION = "mla_interception"
    MLA_GENERAL = "mla_general"
    POLICE_INFORMATION = "police_information"
    SPONTANEOUS = "spontaneous"
    EMERGENCY_DISCLOSURE = "emergency_disclosure"
    JIT_PROPOSAL = "jit_proposal"
    EXTRADITION = "extradition"
    FREEZE_CONFISCATION = "freeze_confiscation"
    INTERPOL_NOTICE = "interpol_notice"


@dataclass(frozen=True)
class TypeSpec:
    """Everything the software knows about one request type.

    ``submit_roles`` and ``refuse_roles`` are the roles that may submit or refuse one (the
    lifecycle adds supervisors and administrators to the submitters). ``link_kinds`` are the
    links such a request may carry to an earlier one; ``required_links`` those it must.
    """

    code: RequestType
    label: str
    description: str
    legal_refs: tuple[LegalRef, ...]
    channels: frozenset[Channel]
    default_data_categories: frozenset[DataCategory]
    refusal_grounds: frozenset[RefusalGround]
    submit_roles: frozenset[Role]
    refuse_roles: frozenset[Role]
    fields_model: type[BaseModel]
    expects_response: bool = True
    can_extend: bool = False
    link_kinds: frozenset[LinkKind] = frozenset({LinkKind.FOLLOWS_UP, LinkKind.RELATED})
    required_links: frozenset[LinkKind] = frozenset()


_G = RefusalGround
_ALWAYS_LINKS = frozenset({LinkKind.FOLLOWS_UP, LinkKind.RELATED})
_AFTER_PRESERVATION = _ALWAYS_LINKS | {LinkKind.FOLLOWS_PRESERVATION}
_OFFICER = frozenset({Role.OFFICER})
_SUPERVISOR = frozenset({Role.SUPERVISOR})
_ACTORS = frozenset({Role.OFFICER, Role.SUPERVISOR, Role.ADMINISTRATOR})
_MLA_CHANNELS = frozenset({Channel.CENTRAL_AUTHORITY, Channel.JUDICIAL})
_EVIDENCE = frozenset({DataCategory.SUBSCRIBER, DataCategory.TRAFFIC, DataCategory.CONTENT})

#: Budapest Arts 29(5) and 30(2): the only grounds for preservation and traffic disclosure.
#: Dual criminality only under a 29(4) reservation, which the service must check.
PRESERVATION_GROUNDS = frozenset({_G.POLITICAL_OFFENCE, _G.SOVEREIGNTY_SECURITY_ORDRE_PUBLIC})

#: UN Art 40 (recalled) and Budapest Art 27(4): the mutual legal assistance grounds.
MLA_GROUNDS = frozenset(
    {
        _G.POLITICAL_OFFENCE,
        _G.SOVEREIGNTY_SECURITY_ORDRE_PUBLIC,
        _G.DOMESTIC_LAW_BARS_MEASURE,
        _G.DISCRIMINATION,
        _G.DUAL_CRIMINALITY_LACKING,
        _G.NON_CONFORMING_REQUEST,
        _G.NE_BIS_IN_IDEM,
        _G.OTHER,
    }
)

EXTRADITION_GROUNDS = frozenset(
    {
        _G.POLITICAL_OFFENCE,
        _G.DISCRIMINATION,
        _G.DUAL_CRIMINALITY_LACKING,
        _G.DOMESTIC_LAW_BARS_MEASURE,
        _G.NON_CONFORMING_REQUEST,
        _G.NE_BIS_IN_IDEM,
        _G.DEATH_PENALTY_NO_ASSURANCE,
        _G.NATIONALITY_OF_PERSON,
        _G.INSUFFICIENT_EVIDENCE,
        _G.OTHER,
    }
)

#: Police cooperation is discretionary; these grounds name the usual reasons to decline.
POLICE_GROUNDS = frozenset(
    {
        _G.POLITICAL_OFFENCE,
        _G.SOVEREIGNTY_SECURITY_ORDRE_PUBLIC,
        _G.DOMESTIC_LAW_BARS_MEASURE,
        _G.DISCRIMINATION,
        _G.NON_CONFORMING_REQUEST,
        _G.INTERPOL_ARTICLE_3,
        _G.OTHER,
    }
)


def _mla(
    code: RequestType,
    label: str,
    description: str,
    refs: tuple[LegalRef, ...],
    model: type[BaseModel],
    categories: frozenset[DataCategory],
    links: frozenset[LinkKind] = _ALWAYS_LINKS,
) -> TypeSpec:
    """A central-authority MLA type: supervisors submit and refuse, MLA grounds apply."""
    return TypeSpec(
        code=code,
        label=label,
        description=description,
        legal_refs=refs,
        channels=_MLA_CHANNELS,
        default_data_categories=categories,
        refusal_grounds=MLA_GROUNDS,
        submit_roles=_SUPERVISOR,
        refuse_roles=_SUPERVISOR,
        fields_model=model,
        link_kinds=links,
    )


_SPECS: tuple[TypeSpec, ...] = (
    TypeSpec(
        code=RequestType.PRESERVATION,
        label=N_("Expedited preservation of stored data"),
        description=N_(
            "Ask the requested party to have a provider preserve stored data pending a mutual "
            "legal assistance request; kept for at least 60 days."
        ),
        legal_refs=(_un("42"), _bc("29")),
        channels=frozenset({Channel.POINT_OF_CONTACT_24_7, Channel.CENTRAL_AUTHORITY}),
        default_data_categories=_EVIDENCE,
        refusal_grounds=PRESERVATION_GROUNDS | {_G.DUAL_CRIMINALITY_LACKING},
        submit_roles=_OFFICER,
        refuse_roles=_ACTORS,
        fields_model=PreservationFields,
        can_extend=True,
        link_kinds=_ALWAYS_LINKS | {LinkKind.EXTENDS},
    ),
    TypeSpec(
        code=RequestType.TRAFFIC_DISCLOSURE,
        label=N_("Expedited disclosure of preserved traffic data"),
        description=N_(
            "Ask for enough preserved traffic data to identify the other providers and the "
            "path of a communication."
        ),
        legal_refs=(_un("43"), _bc("30")),
        channels=frozenset({Channel.POINT_OF_CONTACT_24_7, Channel.CENTRAL_AUTHORITY}),
        default_data_categories=frozenset({DataCategory.TRAFFIC}),
        refusal_grounds=PRESERVATION_GROUNDS,
        submit_roles=_OFFICER,
        refuse_roles=_ACTORS,
        fields_model=TrafficDisclosureFields,
        link_kinds=_AFTER_PRESERVATION,
        required_links=frozenset({LinkKind.FOLLOWS_PRESERVATION}),
    ),
    _mla(
        RequestType.MLA_STORED,
        N_("Mutual legal assistance: stored data"),
        N_("Search, seizure or disclosure of stored computer data."),
        (_un("44"), _bc("31")),
        MlaStoredFields,
        _EVIDENCE,
        _AFTER_PRESERVATION,
    ),
    _mla(
        RequestType.MLA_SUBSCRIBER,
        N_("Mutual legal assistance: subscriber information"),
        N_("Subscriber information for each identifier (CoE template T-CY(2018)10)."),
        (_un("44"), _bc("31"), _p2("8")),
        MlaSubscriberFields,
        frozenset({DataCategory.SUBSCRIBER, DataCategory.IDENTIFICATION}),
        _AFTER_PRESERVATION,
    ),
    _mla(
        RequestType.MLA_REALTIME,
        N_("Mutual legal assistance: real-time traffic data"),
        N_("Real-time collection of traffic data for a stated period."),
        (_un("45"), _bc("33")),
        MlaRealtimeFields,
        frozenset({DataCategory.TRAFFIC}),
    ),
    _mla(
        RequestType.MLA_INTERCEPTION,
        N_("Mutual legal assistance: interception of content"),
        N_("Real-time collection of content data, as far as treaties and domestic law allow."),
        (_un("46"), _bc("34")),
        MlaInterceptionFields,
        frozenset({DataCategory.CONTENT}),
    ),
    _mla(
        RequestType.MLA_GENERAL,
        N_("Mutual legal assistance: general"),
        N_("Any other assistance: testimony, documents, locating or identifying persons."),
        (_un("40"), _bc("27")),
        MlaGeneralFields,
        frozenset({DataCategory.PERSONAL}),
    ),
    TypeSpec(
        code=RequestType.POLICE_INFORMATION,
        label=N_("Police information request"),
        description=N_(
            "Police-to-police questions on persons, whereabouts, proceeds or modus operandi, "
            "including a border liaison office asking its counterpart. Intelligence, not "
            "evidence."
        ),
        legal_refs=(_un("47"), _bc("35")),
        channels=frozenset(
            {
                Channel.POLICE,
                Channel.BORDER_LIAISON,
                Channel.INTERPOL,
                Channel.POINT_OF_CONTACT_24_7,
            }
        ),
        default_data_categories=frozenset({DataCategory.PERSONAL, DataCategory.INTELLIGENCE}),
        refusal_grounds=POLICE_GROUNDS,
        submit_roles=_OFFICER,
        refuse_roles=_ACTORS,
        fields_model=PoliceInformationFields,
    ),
    TypeSpec(
        code=RequestType.SPONTANEOUS,
        label=N_("Spontaneous information"),
        description=N_(
            "Information shared without a request, possibly with conditions on its use; no "
            "answer is expected."
        ),
        legal_refs=(_un("40(4)"), _bc("26")),
        channels=frozenset(Channel) - {Channel.PROVIDER},
        default_data_categories=frozenset({DataCategory.INTELLIGENCE}),
        refusal_grounds=frozenset(),
        submit_roles=_OFFICER,
        refuse_roles=frozenset(),
        fields_model=SpontaneousFields,
        expects_response=False,
    ),
    TypeSpec(
        code=RequestType.EMERGENCY_DISCLOSURE,
        label=N_("Emergency disclosure"),
        description=N_(
            "Disclosure of data in an emergency with a significant and imminent risk to the "
            "life or safety of a person, without waiting for a mutual legal assistance request."
        ),
        legal_refs=(_p2("9"), _p2("10"), _un("41"), _bc("25")),
        channels=frozenset({Channel.POINT_OF_CONTACT_24_7, Channel.CENTRAL_AUTHORITY}),
        default_data_categories=frozenset(
            {DataCategory.SUBSCRIBER, DataCategory.IDENTIFICATION, DataCategory.TRAFFIC}
        ),
        refusal_grounds=POLICE_GROUNDS - {_G.INTERPOL_ARTICLE_3},
        submit_roles=_OFFICER,
        refuse_roles=_ACTORS,
        fields_model=EmergencyDisclosureFields,
    ),
    TypeSpec(
        code=RequestType.JIT_PROPOSAL,
        label=N_("Joint investigation team proposal"),
        description=N_("Propose a joint investigation team to one or more partners."),
        legal_refs=(_un("48"), _p2("12")),
        channels=_MLA_CHANNELS,
        default_data_categories=frozenset(),
        refusal_grounds=frozenset(
            {
                _G.POLITICAL_OFFENCE,
                _G.SOVEREIGNTY_SECURITY_ORDRE_PUBLIC,
                _G.DOMESTIC_LAW_BARS_MEASURE,
                _G.DISCRIMINATION,
                _G.OTHER,
            }
        ),
        submit_roles=_SUPERVISOR,
        refuse_roles=_SUPERVISOR,
        fields_model=JitProposalFields,
    ),
    TypeSpec(
        code=RequestType.EXTRADITION,
        label=N_("Extradition or provisional arrest"),
        description=N_(
            "Surrender of a person for prosecution or to serve a sentence, or their provisional "
            "arrest pending the extradition request."
        ),
        legal_refs=(_un("37"), _bc("24")),
        channels=frozenset({Channel.CENTRAL_AUTHORITY}),
        default_data_categories=frozenset({DataCategory.PERSONAL}),
        refusal_grounds=EXTRADITION_GROUNDS,
        submit_roles=_SUPERVISOR,
        refuse_roles=_SUPERVISOR,
        fields_model=ExtraditionFields,
    ),
    TypeSpec(
        code=RequestType.FREEZE_CONFISCATION,
        label=N_("Freezing, seizure or confiscation"),
        description=N_(
            "Identify, freeze, seize or confiscate proceeds of crime or property, and ask for "
            "their return."
        ),
        legal_refs=(_un("49"), _un("50"), _un("51"), _un("52")),
        channels=_MLA_CHANNELS,
        default_data_categories=frozenset({DataCategory.PERSONAL}),
        refusal_grounds=MLA_GROUNDS,
        submit_roles=_SUPERVISOR,
        refuse_roles=_SUPERVISOR,
        fields_model=FreezeConfiscationFields,
    ),
    TypeSpec(
        code=RequestType.INTERPOL_NOTICE,
        label=N_("INTERPOL notice or diffusion"),
        description=N_(
            "Ask the National Central Bureau to request a notice or circulate a diffusion; "
            "reviewed under Article 3 of the INTERPOL Constitution."
        ),
        legal_refs=(LegalRef("INTERPOL", "3", verified=True),),
        channels=frozenset({Channel.INTERPOL}),
        default_data_categories=frozenset({DataCategory.PERSONAL}),
        refusal_grounds=frozenset({_G.INTERPOL_ARTICLE_3, _G.NON_CONFORMING_REQUEST, _G.OTHER}),
        submit_roles=_SUPERVISOR,
        refuse_roles=_ACTORS,
        fields_model=InterpolNoticeFields,
    ),
)

CATALOGUE: dict[RequestType, TypeSpec] = {spec.code: spec for spec in _SPECS}

#: Request types whose link of this kind must point at one of these types.
LINK_TARGETS: dict[LinkKind, frozenset[RequestType]] = {
    LinkKind.FOLLOWS_PRESERVATION: frozenset({RequestType.PRESERVATION}),
    LinkKind.EXTENDS: frozenset({RequestType.PRESERVATION}),
}


# -- validation -----------------------------------------------------------------------------


class FieldErrors(InvalidInput):
    """The type-specific details of a request are invalid; ``errors`` names every field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(f"the request details are not valid: {summary}")
        self.errors = errors
        self.extra = {"errors": errors}


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    errors = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(part) for part in ("details", *err["loc"]))
        message = str(err["msg"]).removeprefix("Value error, ")
        errors.append({"field": path, "message": message})
    return errors


def validate_fields(request_type: RequestType, raw: Mapping[str, Any]) -> BaseModel:
    """Validate the type-specific details against the type's model; raise :class:`FieldErrors`."""
    model = CATALOGUE[RequestType(request_type)].fields_model
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise FieldErrors(_field_errors(exc)) from None


def check_urgency(
    urgency: Urgency, justification: str | None, *, request_type: RequestType | None = None
) -> str | None:
    """Return the stripped justification; an emergency must have one.

    An emergency disclosure request is an emergency by definition (CETS 224 Art 9).
    """
    text = (justification or "").strip() or None
    urgency = Urgency(urgency)
    if request_type == RequestType.EMERGENCY_DISCLOSURE and urgency is not Urgency.EMERGENCY:
        raise InvalidInput("an emergency disclosure request must be an emergency", field="urgency")
    if urgency is Urgency.EMERGENCY and text is None:
        raise InvalidInput(
            "an emergency request must say why it is an emergency", field="urgency_justification"
        )
    return text


def required_links(
    request_type: RequestType, fields: BaseModel | None = None
) -> frozenset[LinkKind]:
    """Links the request must carry: the type's, plus EXTENDS for a preservation extension."""
    needed = set(CATALOGUE[RequestType(request_type)].required_links)
    if isinstance(fields, PreservationFields) and fields.is_extension:
        needed.add(LinkKind.EXTENDS)
    return frozenset(needed)


def missing_links(
    request_type: RequestType, present: Iterable[LinkKind], fields: BaseModel | None = None
) -> frozenset[LinkKind]:
    """Required link kinds that ``present`` lacks (empty when the request is complete)."""
    return required_links(request_type, fields) - {LinkKind(kind) for kind in present}


def check_link(request_type: RequestType, kind: LinkKind, target_type: RequestType) -> None:
    """Refuse a link this type may not carry, or one pointing at the wrong kind of request."""
    request_type, kind, target_type = (
        RequestType(request_type),
        LinkKind(kind),
        RequestType(target_type),
    )
    if kind not in CATALOGUE[request_type].link_kinds:
        raise InvalidInput(
            f"a request of type '{request_type}' cannot have a '{kind}' link", field="links"
        )
    allowed = LINK_TARGETS.get(kind)
    if allowed is not None and target_type not in allowed:
        raise InvalidInput(
            f"a '{kind}' link must point at a preservation request, not '{target_type}'",
            field="links",
        )
