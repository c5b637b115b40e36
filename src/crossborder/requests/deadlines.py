"""Clocks on a request: when it must be acknowledged, answered, or its preservation renewed. Pure.

Each :class:`Clock` says when something is due, when to start warning, where the rule comes
from and whether that rule was verified. Some clocks are law (Budapest Art 29(7): preserve
for at least 60 days; EU Reg. 2023/1543 Art 10: produce within 10 days, 8 hours in an
emergency), some are recalled law (CETS 224 Art 8: 20 / 45 days), and some are only this
product's service levels (acknowledgement times): the ``basis`` text says which, so nobody
mistakes a service level for a treaty deadline.

Time is counted as elapsed time in UTC: "10 days" is 240 hours from submission, whatever
daylight-saving change happens in either party's zone in between. :func:`local` converts a
due time to each party's IANA zone for display only. Naive datetimes are refused with
``ValueError``: they are a programming error, not user input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from crossborder.core.errors import InvalidInput
from crossborder.directory.hours import valid_time_zone
from crossborder.directory.taxonomy import N_, Channel, DataCategory
from crossborder.requests.catalogue import CATALOGUE, RequestType, Urgency

#: Budapest Art 29(7) [verified], UN Art 42 [recalled]: preservation lasts at least 60 days.
MIN_PRESERVATION_DAYS = 60
#: Warn this long before a preservation expires.
PRESERVATION_WARNING = timedelta(days=14)
#: The MLA request should be sent this long before the preservation expires.
MLA_FOLLOW_UP_MARGIN = timedelta(days=7)
#: Default length of an extension requested through this node (product default, not treaty).
DEFAULT_EXTENSION_DAYS = 90
#: EU EPOC-PR Form 6 (Annex VI) extends a preservation by 30 days (recalled; verify).
EU_EPOC_PR_EXTENSION_DAYS = 30
#: EU EPOC deadlines, Reg. 2023/1543 Art 10 [verified].
EU_PRODUCTION_DEADLINE = timedelta(days=10)
EU_PRODUCTION_EMERGENCY_DEADLINE = timedelta(hours=8)
#: CETS 224 Art 8 return periods (recalled; verify).
CETS224_SUBSCRIBER_DEADLINE = timedelta(days=20)
CETS224_TRAFFIC_DEADLINE = timedelta(days=45)

_SHORT_CLOCK = timedelta(days=1)
_LONG_CLOCK_WARNING = timedelta(days=2)
_CETS224_CATEGORIES = frozenset(
    {DataCategory.SUBSCRIBER, DataCategory.IDENTIFICATION, DataCategory.TRAFFIC}
)


class ClockKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    RESPONSE = "response"
    PRESERVATION_EXPIRY = "preservation_expiry"
    MLA_FOLLOW_UP = "mla_follow_up"
    EU_PRODUCTION = "eu_production"
    CETS224_ART8 = "cets224_art8"


CLOCK_KIND_LABELS: dict[ClockKind, str] = {
    ClockKind.ACKNOWLEDGEMENT: N_("Acknowledgement"),
    ClockKind.RESPONSE: N_("Response requested by"),
    ClockKind.PRESERVATION_EXPIRY: N_("Preservation expires"),
    ClockKind.MLA_FOLLOW_UP: N_("Send the mutual legal assistance request"),
    ClockKind.EU_PRODUCTION: N_("EU production order deadline"),
    ClockKind.CETS224_ART8: N_("Second Additional Protocol Art 8 deadline"),
}


class ClockState(StrEnum):
    OK = "ok"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    MET = "met"


def _utc(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` in UTC; refuse a naive datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Clock:
    """A deadline. ``basis`` is an English msgid explaining the rule; ``verified`` is False
    for recalled rules and for this product's own service levels."""

    kind: ClockKind
    due_at: datetime
    warn_at: datetime
    basis: str
    verified: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "due_at", _utc(self.due_at, "due_at"))
        object.__setattr__(self, "warn_at", _utc(self.warn_at, "warn_at"))
        if self.warn_at > self.due_at:
            raise ValueError("a clock cannot warn after it is due")


def default_warn_at(start: datetime, due: datetime) -> datetime:
    """25 % of the duration before a short clock (≤ 1 day) is due, else 2 days before.

    Never before ``start``: a 36-hour clock warns from the start.
    """
    start, due = _utc(start, "start"), _utc(due, "due")
    duration = due - start
    lead = duration / 4 if duration <= _SHORT_CLOCK else _LONG_CLOCK_WARNING
    return max(start, due - lead) if due > start else due


def _clock(kind: ClockKind, start: datetime, due: datetime, basis: str, *, verified: bool) -> Clock:
    return Clock(kind, due, default_warn_at(start, due), basis, verified)


def acknowledgement_time(urgency: Urgency, channel: Channel) -> timedelta:
    """This product's service level for acknowledging receipt (not a treaty deadline)."""
    if urgency == Urgency.EMERGENCY:
        return timedelta(hours=1)
    if urgency == Urgency.URGENT:
        on_24_7 = channel == Channel.POINT_OF_CONTACT_24_7
        return timedelta(hours=1) if on_24_7 else timedelta(hours=24)
    return timedelta(days=3)


def _acknowledgement(urgency: Urgency, channel: Channel, submitted: datetime) -> Clock:
    return _clock(
        ClockKind.ACKNOWLEDGEMENT,
        submitted,
        submitted + acknowledgement_time(urgency, channel),
        N_(
            "Service level of this node: emergencies and urgent requests on the 24/7 network "
            "within 1 hour, other urgent requests within 24 hours, routine ones within 3 days. "
            "Not a treaty deadline."
        ),
        verified=False,
    )


def _requested_response(submitted: datetime, requested_by: datetime) -> Clock:
    due = _utc(requested_by, "requested_response_by")
    if due <= submitted:
        raise InvalidInput(
            "the requested response date must be after submission", field="requested_response_by"
        )
    return _clock(
        ClockKind.RESPONSE,
        submitted,
        due,
        N_(
            "Date requested by the requesting authority (UN Art 40, recalled: respect the "
            "requester's deadlines as far as possible)."
        ),
        verified=True,
    )


def _eu_production(urgency: Urgency, submitted: datetime) -> Clock:
    emergency = urgency is Urgency.EMERGENCY
    delay = EU_PRODUCTION_EMERGENCY_DEADLINE if emergency else EU_PRODUCTION_DEADLINE
    basis = (
        N_("EU Regulation 2023/1543 Art 10: 8 hours in an emergency.")
        if emergency
        else N_("EU Regulation 2023/1543 Art 10: 10 days.")
    )
    return _clock(ClockKind.EU_PRODUCTION, submitted, submitted + delay, basis, verified=True)


def cets224_art8_delay(
    request_type: RequestType, data_categories: Iterable[DataCategory | str]
) -> timedelta | None:
    """CETS 224 Art 8 period for this request, or None when Art 8 does not apply.

    Art 8 covers subscriber information and traffic data only: 20 days for subscriber
    information, 45 for traffic data (recalled; verify before relying on it).
    """
    if request_type not in {RequestType.MLA_SUBSCRIBER, RequestType.MLA_STORED}:
        return None
    categories = {DataCategory(category) for category in data_categories} or set(
        CATALOGUE[request_type].default_data_categories
    )
    if not categories <= _CETS224_CATEGORIES:
        return None
    if DataCategory.TRAFFIC in categories:
        return CETS224_TRAFFIC_DEADLINE
    return CETS224_SUBSCRIBER_DEADLINE


def _cets224(delay: timedelta, submitted: datetime) -> Clock:
    return _clock(
        ClockKind.CETS224_ART8,
        submitted,
        submitted + delay,
        N_(
            "Second Additional Protocol (CETS 224) Art 8: 20 days for subscriber information, "
            "45 days for traffic data (recalled; verify before relying on it)."
        ),
        verified=False,
    )


def minimum_preservation_until(preserved_at: datetime) -> datetime:
    """The earliest end of a preservation: 60 days after it began (Budapest Art 29(7))."""
    return _utc(preserved_at, "preserved_at") + timedelta(days=MIN_PRESERVATION_DAYS)


def preservation_clocks(preserved_at: datetime, preserved_until: datetime | None) -> list[Clock]:
    """Expiry (at least 60 days, warning 14 days before) and the MLA follow-up (7 days before).

    Budapest Art 29(7) keeps the data beyond the 60 days until the decision on the MLA request
    once one is sent: the service then marks these clocks met.
    """
    minimum = minimum_preservation_until(preserved_at)
    until = minimum if preserved_until is None else max(minimum, _utc(preserved_until))
    expiry = Clock(
        ClockKind.PRESERVATION_EXPIRY,
        until,
        until - PRESERVATION_WARNING,
        N_(
            "Budapest Convention Art 29(7): preserved for at least 60 days, then kept until the "
            "decision on the mutual legal assistance request."
        ),
        verified=True,
    )
    follow_up = _clock(
        ClockKind.MLA_FOLLOW_UP,
        _utc(preserved_at),
        until - MLA_FOLLOW_UP_MARGIN,
        N_(
            "Send the mutual legal assistance request at least 7 days before the preservation "
            "expires (practice of this node)."
        ),
        verified=False,
    )
    return [expiry, follow_up]


def clocks_for(
    *,
    request_type: RequestType,
    urgency: Urgency,
    channel: Channel | str,
    submitted_at: datetime,
    requested_response_by: datetime | None = None,
    eu_production_order: bool = False,
    data_categories: Iterable[DataCategory | str] = (),
    preserved_at: datetime | None = None,
    preserved_until: datetime | None = None,
    instrument_code: str | None = None,
) -> list[Clock]:
    """Every clock that runs on a request submitted at ``submitted_at``.

    The response clocks apply only to types that expect a response; CETS 224 Art 8 only when
    ``instrument_code`` is ``"CETS224"``; preservation clocks once ``preserved_at`` is known.
    Codes given as plain strings (a row's columns) are converted first.
    """
    request_type, urgency, channel = RequestType(request_type), Urgency(urgency), Channel(channel)
    data_categories = [DataCategory(category) for category in data_categories]
    submitted = _utc(submitted_at, "submitted_at")
    clocks = [_acknowledgement(urgency, channel, submitted)]
    if CATALOGUE[request_type].expects_response:
        if requested_response_by is not None:
            clocks.append(_requested_response(submitted, requested_response_by))
        if eu_production_order:
            clocks.append(_eu_production(urgency, submitted))
        delay = cets224_art8_delay(request_type, data_categories)
        if instrument_code == "CETS224" and delay is not None:
            clocks.append(_cets224(delay, submitted))
    if preserved_at is not None:
        clocks.extend(preservation_clocks(preserved_at, preserved_until))
    elif preserved_until is not None:
        raise InvalidInput("a preservation end needs its start", field="preserved_at")
    return clocks


def extend_preservation(
    current_until: datetime, *, days: int = DEFAULT_EXTENSION_DAYS, now: datetime
) -> datetime:
    """New end of a preservation extended by ``days``, counted from its end or now if later.

    Budapest sets no length for an extension; 90 days is this node's default. An EU EPOC-PR
    extension (Form 6) is :data:`EU_EPOC_PR_EXTENSION_DAYS` (recalled; verify).
    """
    if days < 1:
        raise InvalidInput("an extension lasts at least one day", field="days")
    base = max(_utc(current_until, "current_until"), _utc(now, "now"))
    return base + timedelta(days=days)


def state_of(clock: Clock, *, now: datetime, met_at: datetime | None = None) -> ClockState:
    """OK, due soon (past the warning), overdue (past due) or met (``met_at`` given)."""
    current = _utc(now, "now")
    if met_at is not None:
        _utc(met_at, "met_at")
        return ClockState.MET
    if current >= clock.due_at:
        return ClockState.OVERDUE
    if current >= clock.warn_at:
        return ClockState.DUE_SOON
    return ClockState.OK


def local(dt: datetime, tz_name: str) -> datetime:
    """``dt`` in the IANA zone ``tz_name``, to show a party its local time."""
    value = _utc(dt)
    try:
        zone = valid_time_zone(tz_name)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="time_zone") from None
    return value.astimezone(ZoneInfo(zone))
