"""Request clocks: acknowledgement, response, preservation; states; local time (pure)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crossborder.core.errors import InvalidInput
from crossborder.directory.taxonomy import Channel, DataCategory
from crossborder.requests.catalogue import RequestType, Urgency
from crossborder.requests.deadlines import (
    CLOCK_KIND_LABELS,
    EU_EPOC_PR_EXTENSION_DAYS,
    Clock,
    ClockKind,
    ClockState,
    cets224_art8_delay,
    clocks_for,
    default_warn_at,
    extend_preservation,
    local,
    minimum_preservation_until,
    state_of,
)

# Monday 2 March 2026, 09:00 UTC (16:00 in Hanoi, 20:00 in Sydney during daylight saving).
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NAIVE = datetime(2026, 3, 2, 9, 0)  # noqa: DTZ001 - the naive value under test
H = timedelta(hours=1)
D = timedelta(days=1)


def clocks(**overrides: Any) -> dict[ClockKind, Clock]:
    args: dict[str, Any] = {
        "request_type": RequestType.MLA_STORED,
        "urgency": Urgency.ROUTINE,
        "channel": Channel.CENTRAL_AUTHORITY,
        "submitted_at": T0,
        **overrides,
    }
    result = clocks_for(**args)
    assert len({c.kind for c in result}) == len(result)
    return {c.kind: c for c in result}


# -- acknowledgement -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("urgency", "channel", "delay"),
    [
        (Urgency.EMERGENCY, Channel.CENTRAL_AUTHORITY, H),
        (Urgency.EMERGENCY, Channel.POINT_OF_CONTACT_24_7, H),
        (Urgency.URGENT, Channel.POINT_OF_CONTACT_24_7, H),
        (Urgency.URGENT, Channel.CENTRAL_AUTHORITY, 24 * H),
        (Urgency.URGENT, Channel.POLICE, 24 * H),
        (Urgency.ROUTINE, Channel.POINT_OF_CONTACT_24_7, 3 * D),
        (Urgency.ROUTINE, Channel.CENTRAL_AUTHORITY, 3 * D),
    ],
)
def test_acknowledgement_service_levels(
    urgency: Urgency, channel: Channel, delay: timedelta
) -> None:
    ack = clocks(urgency=urgency, channel=channel)[ClockKind.ACKNOWLEDGEMENT]
    assert ack.due_at == T0 + delay
    assert ack.verified is False
    assert "Not a treaty deadline" in ack.basis


def test_every_type_gets_an_acknowledgement_clock() -> None:
    for request_type in RequestType:
        assert ClockKind.ACKNOWLEDGEMENT in clocks(request_type=request_type)


@pytest.mark.parametrize(
    ("delay", "warn_before"),
    [
        (H, 15 * timedelta(minutes=1)),  # short clock: 25 % of the duration
        (24 * H, 6 * H),
        (3 * D, 2 * D),  # long clock: two days
        (10 * D, 2 * D),
        (36 * H, 36 * H),  # would warn before the start: warns from the start
    ],
)
def test_default_warning(delay: timedelta, warn_before: timedelta) -> None:
    assert default_warn_at(T0, T0 + delay) == T0 + delay - warn_before


# -- response --------------------------------------------------------------------------------


def test_requested_response_date() -> None:
    by = datetime(2026, 3, 20, 17, 0, tzinfo=UTC)
    response = clocks(requested_response_by=by)[ClockKind.RESPONSE]
    assert response.due_at == by
    assert response.warn_at == by - 2 * D


def test_requested_response_date_in_another_zone_is_converted() -> None:
    by = datetime(2026, 3, 20, 17, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    response = clocks(requested_response_by=by)[ClockKind.RESPONSE]
    assert response.due_at == datetime(2026, 3, 20, 10, 0, tzinfo=UTC)
    assert response.due_at.tzinfo is UTC


def test_requested_response_date_must_be_after_submission() -> None:
    with pytest.raises(InvalidInput) as caught:
        clocks(requested_response_by=T0)
    assert caught.value.field == "requested_response_by"


def test_no_response_clocks_without_a_basis() -> None:
    assert set(clocks()) == {ClockKind.ACKNOWLEDGEMENT}


@pytest.mark.parametrize(
    ("urgency", "delay"),
    [(Urgency.ROUTINE, 10 * D), (Urgency.URGENT, 10 * D), (Urgency.EMERGENCY, 8 * H)],
)
def test_eu_production_order(urgency: Urgency, delay: timedelta) -> None:
    eu = clocks(urgency=urgency, eu_production_order=True)[ClockKind.EU_PRODUCTION]
    assert eu.due_at == T0 + delay
    assert eu.verified is True
    assert "2023/1543 Art 10" in eu.basis


@pytest.mark.parametrize(
    ("request_type", "categories", "delay"),
    [
        (RequestType.MLA_SUBSCRIBER, (), 20 * D),
        (RequestType.MLA_SUBSCRIBER, (DataCategory.SUBSCRIBER,), 20 * D),
        (RequestType.MLA_STORED, (DataCategory.SUBSCRIBER, DataCategory.TRAFFIC), 45 * D),
        (RequestType.MLA_STORED, (DataCategory.TRAFFIC,), 45 * D),
        (RequestType.MLA_STORED, (DataCategory.CONTENT,), None),
        (RequestType.MLA_STORED, (), None),  # default categories include content
        (RequestType.PRESERVATION, (DataCategory.SUBSCRIBER,), None),
    ],
)
def test_cets224_art8_periods(
    request_type: RequestType, categories: tuple[DataCategory, ...], delay: timedelta | None
) -> None:
    assert cets224_art8_delay(request_type, categories) == delay
    found = clocks(request_type=request_type, data_categories=categories, instrument_code="CETS224")
    if delay is None:
        assert ClockKind.CETS224_ART8 not in found
    else:
        assert found[ClockKind.CETS224_ART8].due_at == T0 + delay
        assert found[ClockKind.CETS224_ART8].verified is False
        assert "recalled" in found[ClockKind.CETS224_ART8].basis


def test_cets224_only_under_that_instrument() -> None:
    for code in (None, "BUDAPEST", "UNCC"):
        assert ClockKind.CETS224_ART8 not in clocks(
            request_type=RequestType.MLA_SUBSCRIBER, instrument_code=code
        )


def test_spontaneous_information_has_no_response_clocks() -> None:
    found = clocks(
        request_type=RequestType.SPONTANEOUS,
        requested_response_by=T0 + 5 * D,
        eu_production_order=True,
    )
    assert set(found) == {ClockKind.ACKNOWLEDGEMENT}


# -- preservation ----------------------------------------------------------------------------


def test_preservation_lasts_at_least_sixty_days() -> None:
    assert minimum_preservation_until(T0) == T0 + 60 * D
    found = clocks(request_type=RequestType.PRESERVATION, preserved_at=T0)
    expiry = found[ClockKind.PRESERVATION_EXPIRY]
    assert expiry.due_at == T0 + 60 * D
    assert expiry.warn_at == T0 + 46 * D
    assert expiry.verified is True
    follow_up = found[ClockKind.MLA_FOLLOW_UP]
    assert follow_up.due_at == T0 + 53 * D
    assert follow_up.warn_at == T0 + 51 * D


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        (T0 + 30 * D, T0 + 60 * D),  # shorter than the minimum: the minimum wins
        (T0 + 90 * D, T0 + 90 * D),
    ],
)
def test_preservation_end_is_never_before_the_minimum(until: datetime, expected: datetime) -> None:
    found = clocks(request_type=RequestType.PRESERVATION, preserved_at=T0, preserved_until=until)
    assert found[ClockKind.PRESERVATION_EXPIRY].due_at == expected
    assert found[ClockKind.MLA_FOLLOW_UP].due_at == expected - 7 * D


def test_preservation_end_without_start_is_refused() -> None:
    with pytest.raises(InvalidInput):
        clocks(request_type=RequestType.PRESERVATION, preserved_until=T0 + 90 * D)


def test_extension() -> None:
    until = T0 + 60 * D
    assert extend_preservation(until, now=T0 + 50 * D) == until + 90 * D
    # Already lapsed: counted from now.
    assert extend_preservation(until, now=T0 + 70 * D) == T0 + 160 * D
    assert extend_preservation(until, days=EU_EPOC_PR_EXTENSION_DAYS, now=T0) == until + 30 * D
    with pytest.raises(InvalidInput):
        extend_preservation(until, days=0, now=T0)


# -- naive datetimes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"submitted_at": NAIVE},
        {"requested_response_by": NAIVE},
        {"preserved_at": NAIVE},
        {"preserved_at": T0, "preserved_until": NAIVE},
    ],
)
def test_naive_datetimes_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        clocks(request_type=RequestType.PRESERVATION, **overrides)


def test_naive_datetimes_are_refused_everywhere_else() -> None:
    clock = clocks()[ClockKind.ACKNOWLEDGEMENT]
    calls: list[Callable[[], object]] = [
        lambda: minimum_preservation_until(NAIVE),
        lambda: extend_preservation(NAIVE, now=T0),
        lambda: extend_preservation(T0, now=NAIVE),
        lambda: state_of(clock, now=NAIVE),
        lambda: state_of(clock, now=T0, met_at=NAIVE),
        lambda: local(NAIVE, "Asia/Ho_Chi_Minh"),
        lambda: Clock(ClockKind.RESPONSE, NAIVE, T0, "x", verified=True),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


def test_a_clock_cannot_warn_after_it_is_due() -> None:
    with pytest.raises(ValueError, match="warn"):
        Clock(ClockKind.RESPONSE, T0, T0 + H, "x", verified=True)


# -- state -----------------------------------------------------------------------------------


def test_state_moves_from_ok_to_due_soon_to_overdue() -> None:
    clock = clocks()[ClockKind.ACKNOWLEDGEMENT]  # due T0 + 3 days, warns at T0 + 1 day
    assert state_of(clock, now=T0) is ClockState.OK
    assert state_of(clock, now=T0 + D - timedelta(seconds=1)) is ClockState.OK
    assert state_of(clock, now=T0 + D) is ClockState.DUE_SOON
    assert state_of(clock, now=T0 + 3 * D - timedelta(seconds=1)) is ClockState.DUE_SOON
    assert state_of(clock, now=T0 + 3 * D) is ClockState.OVERDUE
    assert state_of(clock, now=T0 + 30 * D) is ClockState.OVERDUE


def test_a_met_clock_stays_met() -> None:
    clock = clocks()[ClockKind.ACKNOWLEDGEMENT]
    assert state_of(clock, now=T0 + 30 * D, met_at=T0 + H) is ClockState.MET
    assert state_of(clock, now=T0 + 30 * D, met_at=T0 + 10 * D) is ClockState.MET


# -- time zones ------------------------------------------------------------------------------


def test_local_time_in_hanoi() -> None:
    due = clocks(urgency=Urgency.EMERGENCY)[ClockKind.ACKNOWLEDGEMENT].due_at
    shown = local(due, "Asia/Ho_Chi_Minh")
    assert shown.strftime("%Y-%m-%d %H:%M %z") == "2026-03-02 17:00 +0700"
    assert shown == due


def test_clocks_count_elapsed_time_across_sydney_daylight_saving() -> None:
    # Sydney leaves daylight saving on Sunday 5 April 2026 at 03:00 local (+11 → +10).
    submitted = datetime(2026, 4, 3, 23, 0, tzinfo=UTC)  # Saturday 10:00 in Sydney (+11)
    ack = clocks(submitted_at=submitted)[ClockKind.ACKNOWLEDGEMENT]
    assert ack.due_at - submitted == 72 * H
    assert local(submitted, "Australia/Sydney").strftime("%a %H:%M %z") == "Sat 10:00 +1100"
    # Three elapsed days later the Sydney wall clock shows 09:00, not 10:00.
    assert local(ack.due_at, "Australia/Sydney").strftime("%a %H:%M %z") == "Tue 09:00 +1000"
    # Hanoi has no daylight saving: the same instants are 06:00 and 06:00.
    assert local(submitted, "Asia/Ho_Chi_Minh").strftime("%H:%M") == "06:00"
    assert local(ack.due_at, "Asia/Ho_Chi_Minh").strftime("%H:%M") == "06:00"


def test_sydney_summer_and_winter_offsets() -> None:
    assert local(datetime(2026, 1, 15, 0, 0, tzinfo=UTC), "Australia/Sydney").hour == 11
    assert local(datetime(2026, 7, 15, 0, 0, tzinfo=UTC), "Australia/Sydney").hour == 10


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "UTC+7", "../etc/passwd"])
def test_unknown_zone_is_invalid_input(zone: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        local(T0, zone)
    assert caught.value.field == "time_zone"


def test_labels_cover_every_clock_kind() -> None:
    assert set(CLOCK_KIND_LABELS) == set(ClockKind)


def test_plain_string_codes_from_a_row_are_accepted() -> None:
    found = clocks(
        request_type="mla_subscriber",
        urgency="urgent",
        channel="point_of_contact_24_7",
        data_categories=["subscriber"],
        instrument_code="CETS224",
    )
    assert found[ClockKind.ACKNOWLEDGEMENT].due_at == T0 + H
    assert found[ClockKind.CETS224_ART8].due_at == T0 + 20 * D
