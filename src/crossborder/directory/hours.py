"""Office hours of contact points: validating the weekly schedule and "is anyone there now?". Pure.

Times in the database are UTC; a contact point's time zone is used only to *present* — to tell
an officer at 02:40 in Hanoi that it is 05:40 in Sydney and the desk opens at 08:00. The weekly
schedule is stored as JSON in the contact point's own local time::

    {"mon": [["08:00", "12:00"], ["13:00", "17:00"]], "sat": [], ...}

Each interval is ``[start, end)`` in ``HH:MM``; ``"24:00"`` may end an interval. An interval
may not cross midnight: a night shift is written as two intervals on consecutive days.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

WeeklyHours = dict[str, list[list[str]]]


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_time_zone(name: str) -> str:
    """Return ``name`` if it is an IANA zone known to this node; raise ValueError otherwise."""
    if name not in _zone_names():
        raise ValueError(f"unknown IANA time zone {name!r}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - tzdata broken
        raise ValueError(f"unknown IANA time zone {name!r}") from exc
    return name


def _minutes(value: Any) -> int:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        raise ValueError(f"time {value!r} must be written HH:MM")
    hours, minutes = value[:2], value[3:]
    if not (hours.isdigit() and minutes.isdigit()):
        raise ValueError(f"time {value!r} must be written HH:MM")
    total = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or total > 24 * 60:
        raise ValueError(f"time {value!r} is not a time of day")
    return total


def parse_office_hours(raw: Mapping[str, Any]) -> WeeklyHours:
    """Validate and normalise a weekly schedule (days in order, intervals sorted)."""
    if not isinstance(raw, Mapping):
        raise ValueError("office hours must map day names (mon..sun) to lists of intervals")
    unknown = sorted(set(raw) - set(DAYS))
    if unknown:
        raise ValueError(f"unknown day(s) {', '.join(map(str, unknown))}: use mon..sun")
    result: WeeklyHours = {}
    for day in DAYS:
        intervals = raw.get(day) or []
        if not isinstance(intervals, list):
            raise ValueError(f"{day}: a list of [start, end] intervals is expected")
        parsed = sorted(_interval(day, item) for item in intervals)
        for (_, end), (start, _) in itertools.pairwise(parsed):
            if start < end:
                raise ValueError(f"{day}: intervals overlap")
        if parsed:
            result[day] = [[_hhmm(s), _hhmm(e)] for s, e in parsed]
    return result


def _interval(day: str, item: Any) -> tuple[int, int]:
    if not isinstance(item, list | tuple) or len(item) != 2:
        raise ValueError(f"{day}: each interval is a pair [start, end]")
    start, end = _minutes(item[0]), _minutes(item[1])
    if start >= end:
        raise ValueError(f"{day}: interval {item[0]}-{item[1]} must end after it starts")
    return start, end


def _hhmm(total: int) -> str:
    return f"{total // 60:02d}:{total % 60:02d}"


class Availability(StrEnum):
    ALWAYS = "24_7"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class ContactStatus:
    local_time: datetime
    availability: Availability

    @property
    def reachable(self) -> bool:
        return self.availability is not Availability.CLOSED


def status_at(
    *, time_zone: str, office_hours: Mapping[str, Any], is_24_7: bool, now: datetime
) -> ContactStatus:
    """Local time at the contact point and whether ``now`` (aware) falls in its office hours."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local = now.astimezone(ZoneInfo(time_zone))
    if is_24_7:
        return ContactStatus(local, Availability.ALWAYS)
    day = DAYS[local.weekday()]
    minute = local.hour * 60 + local.minute
    for start, end in office_hours.get(day) or []:
        if _minutes(start) <= minute < _minutes(end):
            return ContactStatus(local, Availability.OPEN)
    return ContactStatus(local, Availability.CLOSED)


class HasHours(Protocol):
    """Anything shaped like a contact point: the ORM model or a schema."""

    @property
    def time_zone(self) -> str: ...
    @property
    def office_hours(self) -> Mapping[str, Any]: ...
    @property
    def is_24_7(self) -> bool: ...


def contact_point_status(cp: HasHours, now: datetime) -> ContactStatus:
    """:func:`status_at` for a contact point."""
    return status_at(
        time_zone=cp.time_zone, office_hours=cp.office_hours, is_24_7=cp.is_24_7, now=now
    )
