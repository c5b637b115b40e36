"""The shared vocabulary of cooperation: channels, data categories, roles, offences, instruments.

Every other capability (requests, reports, programme) speaks in these codes, so they live in
one pure module with no database. Codes are stable identifiers stored in rows and sent between
nodes; labels are English and double as gettext msgids, so the web layer translates them with
``_()`` and never stores a translated string.

Article references come from ``reference/domain.md``. Those marked *recalled* were not checked
against the adopted UN text (it was not available when this was written); Budapest references
are verified unless stated otherwise. Verify recalled references before relying on them in a
legal opinion: they are shown to officers as guidance, not as a legal determination.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


def N_(message: str) -> str:  # noqa: N802 - the name gettext extractors look for
    """Mark an English label as a msgid for extraction; translated later with ``_()``."""
    return message


class Channel(StrEnum):
    """Who talks to whom: the route a request or a piece of information travels."""

    POINT_OF_CONTACT_24_7 = "point_of_contact_24_7"
    CENTRAL_AUTHORITY = "central_authority"
    POLICE = "police"
    JUDICIAL = "judicial"
    INTERPOL = "interpol"
    BORDER_LIAISON = "border_liaison"
    PROVIDER = "provider"


CHANNEL_LABELS: dict[Channel, str] = {
    Channel.POINT_OF_CONTACT_24_7: N_("24/7 point of contact"),
    Channel.CENTRAL_AUTHORITY: N_("Central authority (mutual legal assistance)"),
    Channel.POLICE: N_("Police to police"),
    Channel.JUDICIAL: N_("Judicial authority to judicial authority"),
    Channel.INTERPOL: N_("INTERPOL"),
    Channel.BORDER_LIAISON: N_("Border liaison office"),
    Channel.PROVIDER: N_("Directly to a service provider"),
}


class DataCategory(StrEnum):
    """Categories of data an instrument lets flow (Budapest Art 1(d), 18(3); EU e-Evidence).

    ``PERSONAL`` and ``INTELLIGENCE`` cover police information that is not electronic
    evidence (persons, whereabouts, modus operandi: UN Art 47, recalled).
    """

    SUBSCRIBER = "subscriber"
    IDENTIFICATION = "identification"
    TRAFFIC = "traffic"
    CONTENT = "content"
    PERSONAL = "personal"
    INTELLIGENCE = "intelligence"


DATA_CATEGORY_LABELS: dict[DataCategory, str] = {
    DataCategory.SUBSCRIBER: N_("Subscriber information"),
    DataCategory.IDENTIFICATION: N_("Data requested only to identify the user"),
    DataCategory.TRAFFIC: N_("Traffic data"),
    DataCategory.CONTENT: N_("Content data"),
    DataCategory.PERSONAL: N_("Personal data on persons of interest"),
    DataCategory.INTELLIGENCE: N_("Criminal intelligence"),
}


class AuthorityRole(StrEnum):
    POINT_OF_CONTACT_24_7 = "point_of_contact_24_7"
    CENTRAL_AUTHORITY_MLA = "central_authority_mla"
    POLICE = "police"
    PROSECUTOR = "prosecutor"
    COURT = "court"
    FINANCIAL_INTELLIGENCE_UNIT = "financial_intelligence_unit"
    CERT = "cert"
    BORDER_LIAISON_OFFICE = "border_liaison_office"
    CUSTOMS = "customs"
    IMMIGRATION = "immigration"
    REGIONAL_HUB = "regional_hub"
    SECURITY_VENDOR = "security_vendor"
    SERVICE_PROVIDER = "service_provider"


AUTHORITY_ROLE_LABELS: dict[AuthorityRole, str] = {
    AuthorityRole.POINT_OF_CONTACT_24_7: N_("24/7 point of contact"),
    AuthorityRole.CENTRAL_AUTHORITY_MLA: N_("Central authority for mutual legal assistance"),
    AuthorityRole.POLICE: N_("Police"),
    AuthorityRole.PROSECUTOR: N_("Prosecutor"),
    AuthorityRole.COURT: N_("Court"),
    AuthorityRole.FINANCIAL_INTELLIGENCE_UNIT: N_("Financial intelligence unit"),
    AuthorityRole.CERT: N_("Computer emergency response team"),
    AuthorityRole.BORDER_LIAISON_OFFICE: N_("Border liaison office"),
    AuthorityRole.CUSTOMS: N_("Customs"),
    AuthorityRole.IMMIGRATION: N_("Immigration"),
    AuthorityRole.REGIONAL_HUB: N_("Regional hub"),
    AuthorityRole.SECURITY_VENDOR: N_("Security vendor"),
    AuthorityRole.SERVICE_PROVIDER: N_("Service provider"),
}


class Offence(StrEnum):
    """Offence codes. UN Arts 7-17 first (domain.md §2), then transnational crime types."""

    ILLEGAL_ACCESS = "ILLEGAL_ACCESS"
    ILLEGAL_INTERCEPTION = "ILLEGAL_INTERCEPTION"
    DATA_INTERFERENCE = "DATA_INTERFERENCE"
    SYSTEM_INTERFERENCE = "SYSTEM_INTERFERENCE"
    MISUSE_OF_DEVICES = "MISUSE_OF_DEVICES"
    FORGERY = "FORGERY"
    THEFT_FRAUD = "THEFT_FRAUD"
    CSAM = "CSAM"
    GROOMING = "GROOMING"
    NCII = "NCII"
    LAUNDERING = "LAUNDERING"
    SERIOUS_OTHER = "SERIOUS_OTHER"
    DRUG_TRAFFICKING = "DRUG_TRAFFICKING"
    TRAFFICKING_IN_PERSONS = "TRAFFICKING_IN_PERSONS"
    MIGRANT_SMUGGLING = "MIGRANT_SMUGGLING"
    TERRORIST_FINANCING = "TERRORIST_FINANCING"
    VIOLENT_EXTREMISM = "VIOLENT_EXTREMISM"
    ENVIRONMENTAL_CRIME = "ENVIRONMENTAL_CRIME"
    CORRUPTION = "CORRUPTION"


@dataclass(frozen=True)
class OffenceInfo:
    """What the software knows about an offence code.

    ``cyber`` marks an offence the UN Convention itself establishes (Arts 7-17): it is in the
    Convention's scope whatever its penalty. Other offences reach the Convention only as
    "serious crime" (maximum penalty of at least four years, UN Arts 2 and 35, recalled).
    ``verified`` is False where the article numbers are recalled rather than checked.
    """

    code: Offence
    label: str
    cyber: bool
    un_article: str | None = None
    budapest_article: str | None = None
    other_reference: str | None = None
    verified: bool = False


OFFENCES: dict[Offence, OffenceInfo] = {
    info.code: info
    for info in (
        # UN Arts 7, 9, 11 and 13 are corroborated by secondary sources (domain.md); the rest
        # are recalled. Budapest Arts 2-9 are the Convention's own numbering (verified).
        OffenceInfo(Offence.ILLEGAL_ACCESS, N_("Illegal access"), True, "7", "2", verified=True),
        OffenceInfo(Offence.ILLEGAL_INTERCEPTION, N_("Illegal interception"), True, "8", "3"),
        OffenceInfo(
            Offence.DATA_INTERFERENCE,
            N_("Interference with electronic data"),
            True,
            "9",
            "4",
            verified=True,
        ),
        OffenceInfo(
            Offence.SYSTEM_INTERFERENCE, N_("Interference with an ICT system"), True, "10", "5"
        ),
        OffenceInfo(
            Offence.MISUSE_OF_DEVICES, N_("Misuse of devices"), True, "11", "6", verified=True
        ),
        OffenceInfo(Offence.FORGERY, N_("ICT-system-related forgery"), True, "12", "7"),
        OffenceInfo(
            Offence.THEFT_FRAUD,
            N_("ICT-system-related theft or fraud"),
            True,
            "13",
            "8",
            verified=True,
        ),
        OffenceInfo(
            Offence.CSAM, N_("Online child sexual abuse or exploitation material"), True, "14", "9"
        ),
        OffenceInfo(
            Offence.GROOMING,
            N_("Solicitation or grooming of a child"),
            True,
            "15",
            other_reference="Lanzarote Convention Art 23",
        ),
        OffenceInfo(
            Offence.NCII, N_("Non-consensual dissemination of intimate images"), True, "16"
        ),
        OffenceInfo(
            Offence.LAUNDERING,
            N_("Laundering of proceeds of crime"),
            True,
            "17",
            other_reference="UNTOC Art 6",
        ),
        OffenceInfo(
            Offence.SERIOUS_OTHER,
            N_("Other serious crime (maximum penalty of four years or more)"),
            False,
            "2, 35",
        ),
        OffenceInfo(
            Offence.DRUG_TRAFFICKING,
            N_("Illicit drug trafficking"),
            False,
            other_reference="1988 UN Drug Convention Art 3",
        ),
        OffenceInfo(
            Offence.TRAFFICKING_IN_PERSONS,
            N_("Trafficking in persons"),
            False,
            other_reference="UNTOC Trafficking in Persons Protocol Art 5",
        ),
        OffenceInfo(
            Offence.MIGRANT_SMUGGLING,
            N_("Smuggling of migrants"),
            False,
            other_reference="UNTOC Migrants Protocol Art 6",
        ),
        OffenceInfo(
            Offence.TERRORIST_FINANCING,
            N_("Financing of terrorism"),
            False,
            other_reference="1999 Terrorist Financing Convention Art 2",
        ),
        OffenceInfo(Offence.VIOLENT_EXTREMISM, N_("Violent extremism and terrorism"), False),
        OffenceInfo(
            Offence.ENVIRONMENTAL_CRIME,
            N_("Environmental crime (wildlife, timber)"),
            False,
            other_reference="CITES",
        ),
        OffenceInfo(
            Offence.CORRUPTION, N_("Corruption"), False, other_reference="UNCAC Arts 15-25"
        ),
    )
}

CYBER_OFFENCES: frozenset[Offence] = frozenset(o for o, info in OFFENCES.items() if info.cyber)


class InstrumentKind(StrEnum):
    MULTILATERAL_CONVENTION = "multilateral_convention"
    PROTOCOL = "protocol"
    BILATERAL_TREATY = "bilateral_treaty"
    MOU = "mou"
    OTHER = "other"


INSTRUMENT_KIND_LABELS: dict[InstrumentKind, str] = {
    InstrumentKind.MULTILATERAL_CONVENTION: N_("Multilateral convention"),
    InstrumentKind.PROTOCOL: N_("Protocol"),
    InstrumentKind.BILATERAL_TREATY: N_("Bilateral treaty"),
    InstrumentKind.MOU: N_("Memorandum of understanding"),
    InstrumentKind.OTHER: N_("Other arrangement"),
}

#: Kinds whose parties are exactly their listed parties (both sides must be on the list).
BILATERAL_KINDS: frozenset[InstrumentKind] = frozenset(
    {InstrumentKind.BILATERAL_TREATY, InstrumentKind.MOU}
)


class PartyStatus(StrEnum):
    """Where a party stands with an instrument. Only ``in_force`` lets data flow."""

    SIGNED = "signed"
    RATIFIED = "ratified"
    IN_FORCE = "in_force"
    WITHDRAWN = "withdrawn"


PARTY_STATUS_LABELS: dict[PartyStatus, str] = {
    PartyStatus.SIGNED: N_("Signed"),
    PartyStatus.RATIFIED: N_("Ratified"),
    PartyStatus.IN_FORCE: N_("In force"),
    PartyStatus.WITHDRAWN: N_("Withdrawn"),
}


class ConditionCode(StrEnum):
    """Conditions that travel with data received under an instrument."""

    USE_LIMITATION = "USE_LIMITATION"
    CONFIDENTIALITY = "CONFIDENTIALITY"
    NO_ONWARD_TRANSFER_WITHOUT_CONSENT = "NO_ONWARD_TRANSFER_WITHOUT_CONSENT"
    ONLY_THIS_INVESTIGATION = "ONLY_THIS_INVESTIGATION"
    DATA_PROTECTION = "DATA_PROTECTION"
    OTHER = "OTHER"


CONDITION_LABELS: dict[ConditionCode, str] = {
    ConditionCode.USE_LIMITATION: N_("Use only for the purpose stated in the request"),
    ConditionCode.CONFIDENTIALITY: N_("Keep the request and the data confidential"),
    ConditionCode.NO_ONWARD_TRANSFER_WITHOUT_CONSENT: (
        N_("No onward transfer without the sender's prior written authorisation")
    ),
    ConditionCode.ONLY_THIS_INVESTIGATION: N_("Use only for this investigation"),
    ConditionCode.DATA_PROTECTION: N_("Process under the agreed data-protection safeguards"),
    ConditionCode.OTHER: N_("Other condition"),
}

#: Scope lists may hold this marker instead of codes: "every code of that kind".
ALL = "*"
