"""The legal-basis policy on the cases officers meet (pure: no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossborder.directory.policy import (
    ConditionFact,
    InstrumentFact,
    OffenceClaim,
    PartyFact,
    PolicyResult,
    Query,
    ReasonCode,
    Side,
    evaluate,
)
from crossborder.directory.taxonomy import (
    CYBER_OFFENCES,
    Channel,
    DataCategory,
    InstrumentKind,
    Offence,
    PartyStatus,
)

TODAY = date(2026, 6, 1)
IN_FORCE = PartyStatus.IN_FORCE

USE = ConditionFact("USE_LIMITATION", "Use only for the purpose stated in the request.")
ONWARD = ConditionFact(
    "NO_ONWARD_TRANSFER_WITHOUT_CONSENT", "UN Art 36: no onward transfer without consent."
)
ONLY_THIS = ConditionFact("ONLY_THIS_INVESTIGATION", "Only for this investigation.")


def party(state: str, status: PartyStatus = IN_FORCE, **kw: object) -> PartyFact:
    return PartyFact(status=status, state=state, **kw)  # type: ignore[arg-type]


def uncc(*parties: PartyFact) -> InstrumentFact:
    return InstrumentFact(
        code="UNCC",
        title="UN Convention against Cybercrime",
        kind=InstrumentKind.MULTILATERAL_CONVENTION,
        parties=parties,
        offences=frozenset(o.value for o in CYBER_OFFENCES),
        articles={
            "point_of_contact_24_7": "Art 41",
            "central_authority": "Art 40",
            "police": "Art 47",
        },
        conditions=(USE, ONWARD),
        serious_crime_min_years=4,
    )


def vn_au_mla(**kw: object) -> InstrumentFact:
    values: dict[str, object] = {
        "code": "VN-AU-MLA",
        "title": "Viet Nam-Australia Treaty on Mutual Legal Assistance in Criminal Matters",
        "kind": InstrumentKind.BILATERAL_TREATY,
        "parties": (party("VN"), party("AU")),
        "channels": frozenset({"central_authority"}),
        "data_categories": frozenset({"subscriber", "traffic", "content"}),
        "articles": {"*": "Art 1"},
        "conditions": (USE,),
    }
    values.update(kw)
    return InstrumentFact(**values)  # type: ignore[arg-type]


def vn_ma_mou(**kw: object) -> InstrumentFact:
    values: dict[str, object] = {
        "code": "VN-MA-TIP-MOU",
        "title": "Viet Nam-Morocco MoU on trafficking in persons",
        "kind": InstrumentKind.MOU,
        "parties": (party("VN"), party("MA")),
        "offences": frozenset({"TRAFFICKING_IN_PERSONS", "MIGRANT_SMUGGLING"}),
        "channels": frozenset({"police"}),
        "data_categories": frozenset({"subscriber", "personal", "intelligence"}),
        "articles": {"police": "Art 3"},
        "conditions": (ONLY_THIS,),
        "valid_from": date(2024, 1, 1),
        "valid_until": date(2028, 12, 31),
    }
    values.update(kw)
    return InstrumentFact(**values)  # type: ignore[arg-type]


def query(
    sender: str = "AU",
    receiver: str = "VN",
    channel: Channel = Channel.POINT_OF_CONTACT_24_7,
    offences: tuple[Offence | tuple[Offence, float | None], ...] = (Offence.DATA_INTERFERENCE,),
    categories: tuple[DataCategory, ...] = (DataCategory.TRAFFIC,),
    on: date = TODAY,
    sender_authority: int | None = None,
) -> Query:
    claims = tuple(
        OffenceClaim(o[0], o[1]) if isinstance(o, tuple) else OffenceClaim(o) for o in offences
    )
    return Query(
        sender=Side(sender, sender_authority),
        receiver=Side(receiver),
        channel=channel.value,
        offences=claims,
        data_categories=tuple(c.value for c in categories),
        on=on,
    )


def codes(result: PolicyResult) -> list[str]:
    return [b.instrument_code for b in result.bases]


def reasons(result: PolicyResult, code: ReasonCode) -> list[str]:
    return [r.message for r in result.refusals if r.code is code]


# -- the cases of the issue -------------------------------------------------------------------


def test_both_parties_in_force_gives_the_convention_with_article_and_conditions() -> None:
    result = evaluate([uncc(party("AU"), party("VN"))], query())

    assert codes(result) == ["UNCC"]
    basis = result.bases[0]
    assert basis.article == "Art 41"
    assert basis.conditions == (USE, ONWARD)
    assert result.refusals == []
    assert result.on == TODAY


def test_one_party_only_signed_falls_back_to_the_bilateral_treaty() -> None:
    instruments = [uncc(party("AU"), party("VN", PartyStatus.SIGNED)), vn_au_mla()]
    result = evaluate(
        instruments,
        query(channel=Channel.CENTRAL_AUTHORITY, categories=(DataCategory.SUBSCRIBER,)),
    )

    assert codes(result) == ["VN-AU-MLA"]
    assert result.bases[0].article == "Art 1"
    assert reasons(result, ReasonCode.PARTY_NOT_IN_FORCE) == ["VN has only signed UNCC."]


def test_trafficking_mou_does_not_cover_fraud_and_names_the_offence() -> None:
    result = evaluate(
        [vn_ma_mou()],
        query("VN", "MA", Channel.POLICE, (Offence.THEFT_FRAUD,), (DataCategory.SUBSCRIBER,)),
    )

    assert result.bases == []
    [reason] = result.refusals
    assert reason.code is ReasonCode.OFFENCE_OUT_OF_SCOPE
    assert reason.subject == "THEFT_FRAUD"
    assert "THEFT_FRAUD" in reason.message


def test_trafficking_mou_covers_trafficking_and_carries_its_use_limitation() -> None:
    result = evaluate(
        [vn_ma_mou()],
        query(
            "VN",
            "MA",
            Channel.POLICE,
            (Offence.TRAFFICKING_IN_PERSONS,),
            (DataCategory.SUBSCRIBER,),
        ),
    )
    assert codes(result) == ["VN-MA-TIP-MOU"]
    assert result.bases[0].conditions == (ONLY_THIS,)


def test_fraud_between_mou_partners_falls_back_to_the_convention_once_both_have_it() -> None:
    convention = uncc(party("VN"), party("MA"))
    fraud = query("VN", "MA", Channel.POLICE, (Offence.THEFT_FRAUD,), (DataCategory.SUBSCRIBER,))

    result = evaluate([vn_ma_mou(), convention], fraud)

    assert codes(result) == ["UNCC"]
    assert result.bases[0].article == "Art 47"
    assert [r.instrument_code for r in result.refusals] == ["VN-MA-TIP-MOU"]


def test_expired_mou_covers_nothing() -> None:
    expired = vn_ma_mou(valid_until=date(2025, 12, 31))
    result = evaluate(
        [expired],
        query(
            "VN",
            "MA",
            Channel.POLICE,
            (Offence.TRAFFICKING_IN_PERSONS,),
            (DataCategory.SUBSCRIBER,),
        ),
    )
    assert result.bases == []
    assert reasons(result, ReasonCode.EXPIRED) == [
        "VN-MA-TIP-MOU expired on 2025-12-31; it covers nothing after that date."
    ]


def test_mou_not_yet_valid() -> None:
    result = evaluate(
        [vn_ma_mou(valid_from=date(2027, 1, 1))],
        query("VN", "MA", Channel.POLICE, (Offence.TRAFFICKING_IN_PERSONS,), ()),
    )
    assert result.bases == []
    assert [r.code for r in result.refusals] == [ReasonCode.NOT_YET_VALID]


def test_no_instrument_at_all_gives_no_basis_and_says_so() -> None:
    result = evaluate([], query("VN", "BR"))
    assert result.bases == []
    [reason] = result.refusals
    assert reason.code is ReasonCode.NO_INSTRUMENT
    assert "VN" in reason.message
    assert "BR" in reason.message


def test_bilateral_agreement_between_other_states_is_ignored() -> None:
    other = vn_au_mla(code="FR-DE", parties=(party("FR"), party("DE")))
    result = evaluate([other], query())
    assert [r.code for r in result.refusals] == [ReasonCode.NO_INSTRUMENT]


def test_multilateral_instrument_reports_a_non_party() -> None:
    result = evaluate([uncc(party("AU"))], query())
    assert reasons(result, ReasonCode.NOT_A_PARTY) == ["VN is not a party to UNCC."]


# -- party standing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "in_force_on", "code", "message"),
    [
        (PartyStatus.SIGNED, None, ReasonCode.PARTY_NOT_IN_FORCE, "VN has only signed UNCC."),
        (
            PartyStatus.RATIFIED,
            None,
            ReasonCode.PARTY_NOT_IN_FORCE,
            "VN has ratified UNCC, but it is not yet in force for it.",
        ),
        (PartyStatus.WITHDRAWN, None, ReasonCode.PARTY_WITHDRAWN, "VN has withdrawn from UNCC."),
        (
            IN_FORCE,
            date(2026, 9, 1),
            ReasonCode.PARTY_NOT_IN_FORCE,
            "UNCC enters into force for VN on 2026-09-01.",
        ),
    ],
)
def test_party_standing_other_than_in_force_blocks(
    status: PartyStatus, in_force_on: date | None, code: ReasonCode, message: str
) -> None:
    result = evaluate([uncc(party("AU"), party("VN", status, in_force_on=in_force_on))], query())
    assert result.bases == []
    assert reasons(result, code) == [message]


def test_in_force_since_a_past_date_applies() -> None:
    result = evaluate([uncc(party("AU"), party("VN", in_force_on=date(2026, 1, 1)))], query())
    assert codes(result) == ["UNCC"]


# -- reservations and scope -------------------------------------------------------------------


def test_reservation_excluding_the_offence_removes_it() -> None:
    au = party("AU", excluded_offences=frozenset({"NCII"}))
    result = evaluate([uncc(au, party("VN"))], query(offences=(Offence.NCII,)))
    assert result.bases == []
    assert reasons(result, ReasonCode.RESERVATION_OFFENCE) == [
        "AU excluded NCII from UNCC by reservation."
    ]


def test_reservation_of_the_receiver_counts_too() -> None:
    vn = party("VN", excluded_channels=frozenset({"point_of_contact_24_7"}))
    result = evaluate([uncc(party("AU"), vn)], query())
    assert [r.code for r in result.refusals] == [ReasonCode.RESERVATION_CHANNEL]


def test_reservation_on_another_offence_does_not_matter() -> None:
    au = party("AU", excluded_offences=frozenset({"NCII"}))
    assert codes(evaluate([uncc(au, party("VN"))], query())) == ["UNCC"]


def test_channel_out_of_scope() -> None:
    result = evaluate([vn_au_mla()], query(channel=Channel.POLICE))
    assert result.bases == []
    assert [r.subject for r in result.refusals] == ["police"]
    assert result.refusals[0].code is ReasonCode.CHANNEL_OUT_OF_SCOPE


def test_data_category_out_of_scope_lists_each_missing_category() -> None:
    treaty = vn_au_mla(data_categories=frozenset({"subscriber"}))
    result = evaluate(
        [treaty],
        query(
            channel=Channel.CENTRAL_AUTHORITY,
            categories=(DataCategory.SUBSCRIBER, DataCategory.CONTENT, DataCategory.TRAFFIC),
        ),
    )
    assert result.bases == []
    assert [r.subject for r in result.refusals] == ["content", "traffic"]
    assert {r.code for r in result.refusals} == {ReasonCode.DATA_CATEGORY_OUT_OF_SCOPE}


def test_every_offence_must_be_in_scope() -> None:
    result = evaluate(
        [vn_ma_mou()],
        query(
            "VN",
            "MA",
            Channel.POLICE,
            (Offence.TRAFFICKING_IN_PERSONS, Offence.DRUG_TRAFFICKING),
            (),
        ),
    )
    assert result.bases == []
    assert [r.subject for r in result.refusals] == ["DRUG_TRAFFICKING"]


# -- penalty thresholds -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offence", "penalty", "expected"),
    [
        (Offence.THEFT_FRAUD, None, None),  # a Convention offence: any penalty
        (Offence.TRAFFICKING_IN_PERSONS, 10, None),  # serious crime
        (Offence.SERIOUS_OTHER, 4, None),  # exactly the threshold
        (Offence.SERIOUS_OTHER, 3.5, ReasonCode.PENALTY_BELOW_THRESHOLD),
        (Offence.DRUG_TRAFFICKING, None, ReasonCode.PENALTY_UNKNOWN),
        (Offence.SERIOUS_OTHER, None, ReasonCode.PENALTY_UNKNOWN),
    ],
)
def test_serious_crime_threshold_of_the_convention(
    offence: Offence, penalty: float | None, expected: ReasonCode | None
) -> None:
    result = evaluate([uncc(party("AU"), party("VN"))], query(offences=((offence, penalty),)))
    if expected is None:
        assert codes(result) == ["UNCC"]
    else:
        assert [r.code for r in result.refusals] == [expected]
        assert "4 years" in result.refusals[0].message


def test_instrument_minimum_penalty_applies_to_every_offence() -> None:
    extradition = vn_au_mla(code="VN-AU-EXTRADITION", min_penalty_years=1)
    below = query(
        channel=Channel.CENTRAL_AUTHORITY, offences=((Offence.THEFT_FRAUD, 0.5),), categories=()
    )
    at = replace(below, offences=(OffenceClaim(Offence.THEFT_FRAUD, 1),))

    assert [r.code for r in evaluate([extradition], below).refusals] == [
        ReasonCode.PENALTY_BELOW_THRESHOLD
    ]
    assert codes(evaluate([extradition], at)) == ["VN-AU-EXTRADITION"]


def test_without_serious_crime_rule_an_unlisted_offence_is_out_of_scope() -> None:
    result = evaluate(
        [vn_ma_mou()],
        query("VN", "MA", Channel.POLICE, ((Offence.SERIOUS_OTHER, 20),), ()),
    )
    assert [r.code for r in result.refusals] == [ReasonCode.OFFENCE_OUT_OF_SCOPE]


# -- agency-level MoUs ------------------------------------------------------------------------


def agency_mou() -> InstrumentFact:
    return vn_ma_mou(
        code="A05-DGSN-MOU",
        parties=(
            PartyFact(IN_FORCE, authority_id=5, authority_state="VN", authority_name="A05"),
            PartyFact(IN_FORCE, authority_id=9, authority_state="MA", authority_name="DGSN"),
        ),
    )


def test_agency_mou_applies_between_states_and_names_the_agencies() -> None:
    result = evaluate(
        [agency_mou()],
        query("VN", "MA", Channel.POLICE, (Offence.TRAFFICKING_IN_PERSONS,), ()),
    )
    assert codes(result) == ["A05-DGSN-MOU"]
    assert result.bases[0].via_authorities == ("A05", "DGSN")


def test_agency_mou_does_not_bind_another_agency_of_the_same_state() -> None:
    result = evaluate(
        [agency_mou()],
        query(
            "VN", "MA", Channel.POLICE, (Offence.TRAFFICKING_IN_PERSONS,), (), sender_authority=7
        ),
    )
    assert result.bases == []
    assert reasons(result, ReasonCode.NOT_A_PARTY) == ["VN is not a party to A05-DGSN-MOU."]


# -- ordering ---------------------------------------------------------------------------------


def test_specific_instruments_come_before_the_convention() -> None:
    mou = vn_ma_mou(
        parties=(party("VN"), party("AU")),
        channels=frozenset({"*"}),
        offences=frozenset({"*"}),
        data_categories=frozenset({"*"}),
    )
    treaty = vn_au_mla(channels=frozenset({"*"}))
    result = evaluate(
        [uncc(party("AU"), party("VN")), mou, treaty], query(categories=(DataCategory.TRAFFIC,))
    )
    assert codes(result) == ["VN-AU-MLA", "VN-MA-TIP-MOU", "UNCC"]


# -- properties -------------------------------------------------------------------------------

statuses = st.sampled_from(list(PartyStatus))
channel_sets = st.frozensets(st.sampled_from([c.value for c in Channel]), max_size=3)
offence_sets = st.frozensets(st.sampled_from([o.value for o in Offence]), max_size=3)


@given(
    au=statuses,
    vn=statuses,
    excluded_channels=channel_sets,
    excluded_offences=offence_sets,
    channel=st.sampled_from(list(Channel)),
    offence=st.sampled_from(list(Offence)),
    penalty=st.one_of(st.none(), st.floats(0, 30)),
)
def test_a_basis_never_contradicts_standing_or_reservations(
    au: PartyStatus,
    vn: PartyStatus,
    excluded_channels: frozenset[str],
    excluded_offences: frozenset[str],
    channel: Channel,
    offence: Offence,
    penalty: float | None,
) -> None:
    instrument = uncc(
        party("AU", au, excluded_channels=excluded_channels),
        party("VN", vn, excluded_offences=excluded_offences),
    )
    result = evaluate([instrument], query(channel=channel, offences=((offence, penalty),)))

    assert len(result.bases) + (1 if result.refusals else 0) == 1
    if result.bases:
        assert au is IN_FORCE
        assert vn is IN_FORCE
        assert channel.value not in excluded_channels
        assert offence.value not in excluded_offences
        assert offence in CYBER_OFFENCES or (penalty is not None and penalty >= 4)


def test_a_treaty_between_other_states_is_not_listed_as_a_refusal() -> None:
    result = evaluate(
        [vn_au_mla(), uncc(party("VN"), party("MA"))],
        query("VN", "MA", Channel.CENTRAL_AUTHORITY, (Offence.ILLEGAL_ACCESS,), ()),
    )
    assert codes(result) == ["UNCC"]
    assert all(r.instrument_code != "VN-AU-MLA" for r in result.refusals)
