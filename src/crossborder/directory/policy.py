"""Which legal basis lets data flow from one authority to another — or why none does. Pure.

The service loads a *facts snapshot* (the instruments that bind either side, with their
parties) and calls :func:`evaluate`; nothing here touches the database or the clock, so every
rule is tested on plain values.

Rules, per instrument:

* A **multilateral** instrument (convention, protocol, other) applies only if *both* states
  are parties whose status is ``in_force`` on the date (``in_force_on`` not in the future).
  ``signed``/``ratified`` only, or ``withdrawn``, is a reason, named after the state.
* A **bilateral treaty or MoU** applies only if each side is one of its parties: a state
  party matches a side of that state; an authority party (an agency-to-agency MoU) matches a
  side naming that authority, or — when the side names no authority — a side of the
  authority's state, and the basis then lists the agencies it binds (``via_authorities``).
* The instrument itself must be valid on the date (``valid_from`` ≤ date ≤ ``valid_until``);
  "expired" is ``valid_until`` in the past and then the instrument covers nothing.
* The channel, every offence and every data category must be in the instrument's scope
  (``*`` = all), and not excluded by either party's reservation.
* Penalties: if ``min_penalty_years`` is set, every offence needs a known maximum penalty of at
  least that. Offences outside the explicit scope are still covered as "serious crime" when
  the instrument sets ``serious_crime_min_years`` (UN Convention: four years, Arts 2 and 35,
  recalled) and the stated maximum penalty reaches it. ``SERIOUS_OTHER`` is covered only that
  way.

Bases are ordered **specific first**: bilateral treaty, MoU, protocol, multilateral convention,
other. The multilateral MLA regimes are themselves subsidiary to treaties between the parties
(UNTOC Art 18(7), Budapest Art 27(1): their MLA rules apply where no treaty binds the two
states), and an MoU is the channel both agencies agreed on for that crime type; the general
convention remains listed as a fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from crossborder.directory.taxonomy import (
    ALL,
    BILATERAL_KINDS,
    InstrumentKind,
    Offence,
    PartyStatus,
)


class ReasonCode(StrEnum):
    NO_INSTRUMENT = "NO_INSTRUMENT"
    NOT_A_PARTY = "NOT_A_PARTY"
    PARTY_NOT_IN_FORCE = "PARTY_NOT_IN_FORCE"
    PARTY_WITHDRAWN = "PARTY_WITHDRAWN"
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    CHANNEL_OUT_OF_SCOPE = "CHANNEL_OUT_OF_SCOPE"
    OFFENCE_OUT_OF_SCOPE = "OFFENCE_OUT_OF_SCOPE"
    DATA_CATEGORY_OUT_OF_SCOPE = "DATA_CATEGORY_OUT_OF_SCOPE"
    RESERVATION_OFFENCE = "RESERVATION_OFFENCE"
    RESERVATION_CHANNEL = "RESERVATION_CHANNEL"
    PENALTY_BELOW_THRESHOLD = "PENALTY_BELOW_THRESHOLD"
    PENALTY_UNKNOWN = "PENALTY_UNKNOWN"


# -- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConditionFact:
    code: str
    text: str


@dataclass(frozen=True)
class PartyFact:
    """One party to an instrument: a state (``state``) or an agency (``authority_id``)."""

    status: PartyStatus
    state: str | None = None
    authority_id: int | None = None
    authority_state: str | None = None
    authority_name: str | None = None
    in_force_on: date | None = None
    excluded_offences: frozenset[str] = frozenset()
    excluded_channels: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return self.state or self.authority_name or f"authority {self.authority_id}"


@dataclass(frozen=True)
class InstrumentFact:
    code: str
    title: str
    kind: InstrumentKind
    parties: tuple[PartyFact, ...]
    offences: frozenset[str] = frozenset({ALL})
    channels: frozenset[str] = frozenset({ALL})
    data_categories: frozenset[str] = frozenset({ALL})
    articles: Mapping[str, str] = field(default_factory=dict)
    conditions: tuple[ConditionFact, ...] = ()
    valid_from: date | None = None
    valid_until: date | None = None
    min_penalty_years: float | None = None
    serious_crime_min_years: float | None = None


@dataclass(frozen=True)
class Side:
    """The sender or the receiver: a state (ISO alpha-2) and optionally one of its authorities."""

    state: str
    authority_id: int | None = None


@dataclass(frozen=True)
class OffenceClaim:
    code: Offence
    max_penalty_years: float | None = None


@dataclass(frozen=True)
class Query:
    sender: Side
    receiver: Side
    channel: str
    offences: tuple[OffenceClaim, ...]
    data_categories: tuple[str, ...]
    on: date


# -- outputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LegalBasis:
    instrument_code: str
    title: str
    kind: InstrumentKind
    article: str | None
    conditions: tuple[ConditionFact, ...]
    via_authorities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reason:
    instrument_code: str | None
    code: ReasonCode
    message: str  # English, for the API and logs; the web interface translates from code+params
    subject: str | None = None  # the offence, channel, category or state the reason is about
    params: Mapping[str, str] = field(default_factory=dict)  # dates, thresholds, variants


@dataclass(frozen=True)
class PolicyResult:
    bases: list[LegalBasis]
    refusals: list[Reason]
    on: date

    @property
    def has_basis(self) -> bool:
        return bool(self.bases)


# -- rules --------------------------------------------------------------------------------

_PREFERENCE = {
    InstrumentKind.BILATERAL_TREATY: 0,
    InstrumentKind.MOU: 1,
    InstrumentKind.PROTOCOL: 2,
    InstrumentKind.MULTILATERAL_CONVENTION: 3,
    InstrumentKind.OTHER: 4,
}


def evaluate(instruments: Iterable[InstrumentFact], query: Query) -> PolicyResult:
    """Every instrument that covers the query, best first, and why each other one does not."""
    bases: list[LegalBasis] = []
    refusals: list[Reason] = []
    ordered = sorted(instruments, key=lambda i: (_PREFERENCE[i.kind], i.code))
    for instrument in ordered:
        matches = _match_parties(instrument, query)
        if matches is None:
            continue  # an agreement between other parties: irrelevant here
        reasons = [*matches.reasons, *_check_validity(instrument, query.on)]
        reasons += _check_scope(instrument, query, matches.parties)
        if reasons:
            refusals.extend(reasons)
        else:
            bases.append(_basis(instrument, query.channel, matches.via))
    if not bases and not refusals:
        refusals.append(
            Reason(
                None,
                ReasonCode.NO_INSTRUMENT,
                f"No instrument binding {query.sender.state} and {query.receiver.state} "
                "is recorded in the directory.",
                params={"sender": query.sender.state, "receiver": query.receiver.state},
            )
        )
    return PolicyResult(bases=bases, refusals=refusals, on=query.on)


def _basis(instrument: InstrumentFact, channel: str, via: tuple[str, ...]) -> LegalBasis:
    article = instrument.articles.get(channel) or instrument.articles.get(ALL)
    return LegalBasis(
        instrument_code=instrument.code,
        title=instrument.title,
        kind=instrument.kind,
        article=article,
        conditions=instrument.conditions,
        via_authorities=via,
    )


@dataclass(frozen=True)
class _PartyMatch:
    parties: tuple[PartyFact, ...]  # the matched parties of both sides (for reservations)
    reasons: list[Reason]
    via: tuple[str, ...]


def _find_party(instrument: InstrumentFact, side: Side) -> PartyFact | None:
    """The party row standing for ``side``: the most specific match wins."""
    if side.authority_id is not None:
        for party in instrument.parties:
            if party.authority_id == side.authority_id:
                return party
    for party in instrument.parties:
        if party.state == side.state:
            return party
    if side.authority_id is None:
        for party in instrument.parties:
            if party.authority_id is not None and party.authority_state == side.state:
                return party
    return None


def _state_takes_part(instrument: InstrumentFact, state: str) -> bool:
    return any(state in (party.state, party.authority_state) for party in instrument.parties)


def _match_parties(instrument: InstrumentFact, query: Query) -> _PartyMatch | None:
    sides = {"sender": query.sender, "receiver": query.receiver}
    found = {name: _find_party(instrument, side) for name, side in sides.items()}
    if instrument.kind in BILATERAL_KINDS and not all(
        _state_takes_part(instrument, side.state) for side in sides.values()
    ):
        # A treaty or MoU between other states says nothing about this pair: not a refusal
        # worth showing, just not relevant. (An agency MoU of another agency of the same
        # state is still shown: that agency may be the better channel.)
        return None
    reasons: list[Reason] = []
    for name, party in found.items():
        state = sides[name].state
        if party is None:
            reasons.append(
                Reason(
                    instrument.code,
                    ReasonCode.NOT_A_PARTY,
                    f"{state} is not a party to {instrument.code}.",
                    subject=state,
                )
            )
        else:
            reasons.extend(_party_status_reasons(instrument, party, query.on))
    parties = tuple(p for p in found.values() if p is not None)
    via = tuple(p.authority_name or "" for p in parties if p.authority_id is not None)
    return _PartyMatch(parties=parties, reasons=reasons, via=via)


def _party_status_reasons(instrument: InstrumentFact, party: PartyFact, on: date) -> list[Reason]:
    code = instrument.code
    if party.status is PartyStatus.WITHDRAWN:
        return [
            Reason(
                code,
                ReasonCode.PARTY_WITHDRAWN,
                f"{party.label} has withdrawn from {code}.",
                subject=party.label,
            )
        ]
    if party.status is PartyStatus.SIGNED:
        message = f"{party.label} has only signed {code}."
        return [
            Reason(
                code,
                ReasonCode.PARTY_NOT_IN_FORCE,
                message,
                subject=party.label,
                params={"status": "signed"},
            )
        ]
    if party.status is not PartyStatus.IN_FORCE:
        message = f"{party.label} has ratified {code}, but it is not yet in force for it."
        return [
            Reason(
                code,
                ReasonCode.PARTY_NOT_IN_FORCE,
                message,
                subject=party.label,
                params={"status": "ratified"},
            )
        ]
    if party.in_force_on is not None and party.in_force_on > on:
        return [
            Reason(
                code,
                ReasonCode.PARTY_NOT_IN_FORCE,
                f"{code} enters into force for {party.label} on {party.in_force_on.isoformat()}.",
                subject=party.label,
                params={"status": "pending", "date": party.in_force_on.isoformat()},
            )
        ]
    return []


def _check_validity(instrument: InstrumentFact, on: date) -> list[Reason]:
    code = instrument.code
    if instrument.valid_from is not None and on < instrument.valid_from:
        return [
            Reason(
                code,
                ReasonCode.NOT_YET_VALID,
                f"{code} applies only from {instrument.valid_from.isoformat()}.",
                params={"date": instrument.valid_from.isoformat()},
            )
        ]
    if instrument.valid_until is not None and on > instrument.valid_until:
        return [
            Reason(
                code,
                ReasonCode.EXPIRED,
                f"{code} expired on {instrument.valid_until.isoformat()}; "
                "it covers nothing after that date.",
                params={"date": instrument.valid_until.isoformat()},
            )
        ]
    return []


def _in_scope(scope: frozenset[str], value: str) -> bool:
    return ALL in scope or value in scope


def _check_scope(
    instrument: InstrumentFact, query: Query, parties: Sequence[PartyFact]
) -> list[Reason]:
    code = instrument.code
    reasons: list[Reason] = []
    if not _in_scope(instrument.channels, query.channel):
        reasons.append(
            Reason(
                code,
                ReasonCode.CHANNEL_OUT_OF_SCOPE,
                f"{code} does not cover the channel {query.channel}.",
                subject=query.channel,
            )
        )
    for party in parties:
        if query.channel in party.excluded_channels:
            reasons.append(
                Reason(
                    code,
                    ReasonCode.RESERVATION_CHANNEL,
                    f"{party.label} excluded the channel {query.channel} "
                    f"from {code} by reservation.",
                    subject=query.channel,
                    params={"party": party.label},
                )
            )
    for claim in query.offences:
        reasons.extend(_offence_reasons(instrument, claim, parties))
    for category in query.data_categories:
        if not _in_scope(instrument.data_categories, category):
            reasons.append(
                Reason(
                    code,
                    ReasonCode.DATA_CATEGORY_OUT_OF_SCOPE,
                    f"{code} does not cover {category} data.",
                    subject=category,
                )
            )
    return reasons


def _offence_reasons(
    instrument: InstrumentFact, claim: OffenceClaim, parties: Sequence[PartyFact]
) -> list[Reason]:
    code, offence = instrument.code, claim.code.value
    reasons = [
        Reason(
            code,
            ReasonCode.RESERVATION_OFFENCE,
            f"{party.label} excluded {offence} from {code} by reservation.",
            subject=offence,
            params={"party": party.label},
        )
        for party in parties
        if offence in party.excluded_offences
    ]
    explicit = claim.code is not Offence.SERIOUS_OTHER and _in_scope(instrument.offences, offence)
    if explicit:
        threshold = instrument.min_penalty_years
    elif instrument.serious_crime_min_years is not None:
        threshold = max(instrument.serious_crime_min_years, instrument.min_penalty_years or 0)
    else:
        message = f"{code} does not cover the offence {offence}."
        return [*reasons, Reason(code, ReasonCode.OFFENCE_OUT_OF_SCOPE, message, subject=offence)]
    penalty = _penalty_reason(code, offence, threshold, claim.max_penalty_years)
    return [*reasons, penalty] if penalty else reasons


def _penalty_reason(
    code: str, offence: str, threshold: float | None, penalty: float | None
) -> Reason | None:
    """Why the stated maximum penalty does not reach the instrument's threshold, if it doesn't."""
    if threshold is None:
        return None
    rule = f"{code} covers {offence} only with a maximum penalty of at least {threshold:g} years"
    if penalty is None:
        return Reason(
            code,
            ReasonCode.PENALTY_UNKNOWN,
            f"{rule}; state the penalty.",
            subject=offence,
            params={"threshold": f"{threshold:g}"},
        )
    if penalty < threshold:
        return Reason(
            code,
            ReasonCode.PENALTY_BELOW_THRESHOLD,
            f"{rule} (stated: {penalty:g}).",
            subject=offence,
            params={"threshold": f"{threshold:g}", "stated": f"{penalty:g}"},
        )
    return None
