"""TLP 2.0 and handling codes: every grant and every refusal, for every kind of audience."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossborder.intel.markings import (
    TLP1_IDS,
    TLP2_IDS,
    Audience,
    AudienceKind,
    Handling,
    HandlingCode,
    Tlp,
    may_pass_on,
    may_read,
    tlp_of,
)

ORIGIN = 1
OTHER = 2
NAMED = 3
ORIGINATOR = Audience(AudienceKind.AUTHORITY, ORIGIN)
OTHER_AUTHORITY = Audience(AudienceKind.AUTHORITY, OTHER)
NAMED_AUTHORITY = Audience(AudienceKind.AUTHORITY, NAMED)
PARTNER = Audience(AudienceKind.PARTNER, partner="vendor-a")
PUBLIC = Audience(AudienceKind.PUBLIC)

EVERYONE = [ORIGINATOR, OTHER_AUTHORITY, NAMED_AUTHORITY, PARTNER, PUBLIC]

# (tlp, audience) → may read
READ_MATRIX = {
    Tlp.CLEAR: {
        ORIGINATOR: True,
        OTHER_AUTHORITY: True,
        NAMED_AUTHORITY: True,
        PARTNER: True,
        PUBLIC: True,
    },
    Tlp.GREEN: {
        ORIGINATOR: True,
        OTHER_AUTHORITY: True,
        NAMED_AUTHORITY: True,
        PARTNER: True,
        PUBLIC: False,
    },
    Tlp.AMBER: {
        ORIGINATOR: True,
        OTHER_AUTHORITY: True,
        NAMED_AUTHORITY: True,
        PARTNER: True,
        PUBLIC: False,
    },
    Tlp.AMBER_STRICT: {
        ORIGINATOR: True,
        OTHER_AUTHORITY: False,
        NAMED_AUTHORITY: False,
        PARTNER: False,
        PUBLIC: False,
    },
    Tlp.RED: {
        ORIGINATOR: True,
        OTHER_AUTHORITY: False,
        NAMED_AUTHORITY: True,
        PARTNER: False,
        PUBLIC: False,
    },
}


@pytest.mark.parametrize("tlp", list(Tlp))
@pytest.mark.parametrize("audience", EVERYONE)
def test_who_may_read(tlp: Tlp, audience: Audience) -> None:
    handling = Handling(tlp=tlp, recipients=frozenset({NAMED}))
    decision = may_read(handling, ORIGIN, audience)
    assert bool(decision) is READ_MATRIX[tlp][audience]
    if not decision:
        assert decision.reason  # a refusal always says why


def test_red_reaches_a_named_partner_only_by_name() -> None:
    handling = Handling(tlp=Tlp.RED, partner_recipients=frozenset({"vendor-a"}))
    assert may_read(handling, ORIGIN, PARTNER)
    assert not may_read(handling, ORIGIN, Audience(AudienceKind.PARTNER, partner="vendor-b"))
    assert not may_read(handling, ORIGIN, Audience(AudienceKind.PARTNER))


@pytest.mark.parametrize("tlp", [Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED])
def test_a_recipient_never_passes_on_amber_or_red(tlp: Tlp) -> None:
    handling = Handling(tlp=tlp, recipients=frozenset({OTHER, NAMED}))
    for audience in EVERYONE:
        decision = may_pass_on(handling, ORIGIN, OTHER, audience)
        assert not decision
        assert "passed on" in decision.reason


def test_the_originator_passes_on_within_what_the_marking_allows() -> None:
    amber = Handling(tlp=Tlp.AMBER)
    assert may_pass_on(amber, ORIGIN, ORIGIN, OTHER_AUTHORITY)
    assert not may_pass_on(amber, ORIGIN, ORIGIN, PUBLIC)
    strict = Handling(tlp=Tlp.AMBER_STRICT)
    assert not may_pass_on(strict, ORIGIN, ORIGIN, OTHER_AUTHORITY)  # never leaves the authority
    red = Handling(tlp=Tlp.RED, recipients=frozenset({NAMED}))
    assert may_pass_on(red, ORIGIN, ORIGIN, NAMED_AUTHORITY)
    assert not may_pass_on(red, ORIGIN, ORIGIN, OTHER_AUTHORITY)


def test_green_and_clear_may_be_passed_on_by_recipients() -> None:
    assert may_pass_on(Handling(tlp=Tlp.GREEN), ORIGIN, OTHER, NAMED_AUTHORITY)
    assert not may_pass_on(Handling(tlp=Tlp.GREEN), ORIGIN, OTHER, PUBLIC)
    assert may_pass_on(Handling(tlp=Tlp.CLEAR), ORIGIN, OTHER, PUBLIC)


def test_h1_stops_even_clear_at_the_recipient() -> None:
    handling = Handling(tlp=Tlp.CLEAR, codes=frozenset({HandlingCode.H1}))
    decision = may_pass_on(handling, ORIGIN, OTHER, PUBLIC)
    assert not decision
    assert "H1" in decision.reason
    assert may_read(handling, ORIGIN, OTHER_AUTHORITY)  # reading is not passing on
    assert may_pass_on(handling, ORIGIN, ORIGIN, PUBLIC)  # the originator decides


def test_an_unknown_origin_is_never_the_holder() -> None:
    """Intelligence with no known originator (a vendor feed) is never re-shared as one's own."""
    assert not may_pass_on(Handling(tlp=Tlp.AMBER), None, None, OTHER_AUTHORITY)


def test_tlp_of_reads_2_0_and_1_0_ids_and_takes_the_strictest() -> None:
    assert tlp_of([]) is None
    assert tlp_of(["marking-definition--00000000-0000-4000-8000-000000000000"]) is None
    assert tlp_of([TLP2_IDS[Tlp.GREEN]]) is Tlp.GREEN
    white = next(k for k, v in TLP1_IDS.items() if v is Tlp.CLEAR)
    assert tlp_of([white]) is Tlp.CLEAR
    assert tlp_of([TLP2_IDS[Tlp.CLEAR], TLP2_IDS[Tlp.RED], TLP2_IDS[Tlp.AMBER]]) is Tlp.RED


@given(
    st.sampled_from(list(Tlp)),
    st.frozensets(st.sampled_from(list(HandlingCode))),
    st.one_of(st.none(), st.integers(1, 5)),
    st.one_of(st.none(), st.integers(1, 5)),
    st.sampled_from(list(AudienceKind)),
    st.one_of(st.none(), st.integers(1, 5)),
)
def test_passing_on_never_allows_more_than_reading(
    tlp: Tlp,
    codes: frozenset[HandlingCode],
    origin: int | None,
    holder: int | None,
    kind: AudienceKind,
    target: int | None,
) -> None:
    handling = Handling(tlp=tlp, codes=codes, recipients=frozenset({3}))
    audience = Audience(kind, target)
    if may_pass_on(handling, origin, holder, audience):
        assert may_read(handling, origin, audience)
        if holder != origin or holder is None:
            assert tlp in (Tlp.CLEAR, Tlp.GREEN)
            assert HandlingCode.H1 not in codes
