"""Office hours and local time of contact points (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crossborder.directory.hours import (
    Availability,
    contact_point_status,
    parse_office_hours,
    status_at,
    valid_time_zone,
)

WEEKDAYS = {
    day: [["08:00", "12:00"], ["13:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
}


def at(tz: str, when: datetime, *, is_24_7: bool = False) -> Availability:
    return status_at(time_zone=tz, office_hours=WEEKDAYS, is_24_7=is_24_7, now=when).availability


def test_hanoi_morning_while_utc_is_still_the_previous_evening() -> None:
    # Sunday 23:30 UTC is Monday 06:30 in Hanoi (UTC+7): a different day, and before opening.
    now = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    status = status_at(time_zone="Asia/Ho_Chi_Minh", office_hours=WEEKDAYS, is_24_7=False, now=now)
    assert status.local_time.strftime("%a %H:%M") == "Mon 06:30"
    assert status.availability is Availability.CLOSED
    # Two hours later it is 08:30 on Monday in Hanoi: open, though still Monday 01:30 in UTC.
    assert at("Asia/Ho_Chi_Minh", datetime(2026, 3, 2, 1, 30, tzinfo=UTC)) is Availability.OPEN


def test_sydney_daylight_saving_time_shifts_the_offset() -> None:
    # 22:00 UTC: in January (AEDT, UTC+11) it is 09:00 next day; in July (AEST, +10) 08:00.
    summer = status_at(
        time_zone="Australia/Sydney",
        office_hours=WEEKDAYS,
        is_24_7=False,
        now=datetime(2026, 1, 12, 22, 0, tzinfo=UTC),
    )
    winter = status_at(
        time_zone="Australia/Sydney",
        office_hours=WEEKDAYS,
        is_24_7=False,
        now=datetime(2026, 7, 13, 22, 0, tzinfo=UTC),
    )
    assert summer.local_time.strftime("%a %H:%M %Z") == "Tue 09:00 AEDT"
    assert winter.local_time.strftime("%a %H:%M %Z") == "Tue 08:00 AEST"
    assert summer.availability is winter.availability is Availability.OPEN


def test_sydney_just_before_opening_during_daylight_saving() -> None:
    # 20:59 UTC on Monday 12 January = 07:59 AEDT Tuesday: closed.
    assert at("Australia/Sydney", datetime(2026, 1, 12, 20, 59, tzinfo=UTC)) is Availability.CLOSED


def test_interval_end_is_exclusive_and_lunch_break_is_closed() -> None:
    tz = "UTC"
    assert at(tz, datetime(2026, 3, 2, 12, 0, tzinfo=UTC)) is Availability.CLOSED
    assert at(tz, datetime(2026, 3, 2, 11, 59, tzinfo=UTC)) is Availability.OPEN
    assert at(tz, datetime(2026, 3, 2, 17, 0, tzinfo=UTC)) is Availability.CLOSED
    assert at(tz, datetime(2026, 3, 7, 10, 0, tzinfo=UTC)) is Availability.CLOSED  # Saturday


def test_24_7_is_always_reachable() -> None:
    status = status_at(
        time_zone="Africa/Casablanca",
        office_hours={},
        is_24_7=True,
        now=datetime(2026, 3, 8, 3, 0, tzinfo=UTC),
    )
    assert status.availability is Availability.ALWAYS
    assert status.reachable


def test_contact_point_status_reads_an_object() -> None:
    class Desk:
        time_zone = "Asia/Ho_Chi_Minh"
        office_hours = WEEKDAYS
        is_24_7 = False

    status = contact_point_status(Desk(), datetime(2026, 3, 2, 3, 0, tzinfo=UTC))
    assert status.availability is Availability.OPEN


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        status_at(time_zone="UTC", office_hours={}, is_24_7=False, now=datetime(2026, 1, 1))  # noqa: DTZ001


def test_parse_normalises_order_and_drops_empty_days() -> None:
    parsed = parse_office_hours(
        {"tue": [["13:00", "17:00"], ["08:00", "12:00"]], "mon": [], "sun": [("00:00", "24:00")]}
    )
    assert parsed == {"tue": [["08:00", "12:00"], ["13:00", "17:00"]], "sun": [["00:00", "24:00"]]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"monday": [["08:00", "17:00"]]}, "unknown day"),
        ({"mon": [["8:00", "17:00"]]}, "HH:MM"),
        ({"mon": [["08:00", "25:00"]]}, "not a time of day"),
        ({"mon": [["08:60", "09:00"]]}, "not a time of day"),
        ({"mon": [["17:00", "08:00"]]}, "must end after"),
        ({"mon": [["08:00", "12:00"], ["11:00", "13:00"]]}, "overlap"),
        ({"mon": [["08:00"]]}, "pair"),
        ({"mon": "08:00-17:00"}, "list"),
        (["mon"], "map day names"),
    ],
)
def test_parse_rejects_malformed_schedules(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_office_hours(raw)  # type: ignore[arg-type]


def test_time_zone_names_are_iana() -> None:
    assert valid_time_zone("Asia/Ho_Chi_Minh") == "Asia/Ho_Chi_Minh"
    for bad in ("GMT+7", "Hanoi", "asia/ho_chi_minh", "../etc/passwd", ""):
        with pytest.raises(ValueError, match="IANA"):
            valid_time_zone(bad)
