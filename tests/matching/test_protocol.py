"""The pure parts of hit/no-hit: elements, hour buckets, the PSI round, refusals, strengths."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossborder.matching import protocol, rules
from crossborder.matching.protocol import ElementKind, Identifier
from crossborder.selectors import correlate

T0 = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)


def _psi(held: set[bytes], asked: list[bytes], *, segments: int = 1) -> set[int]:
    server, client = protocol.new_key(), protocol.new_key()
    ordered = sorted(held)
    size = max(1, -(-len(ordered) // segments))
    setups = [
        protocol.build_setup(server, ordered[i : i + size], max_query=len(asked))
        for i in range(0, len(ordered), size)
    ]
    request = protocol.parse_request(protocol.make_request(client, asked), max_elements=len(asked))
    response = protocol.answer_request(server, request)
    return protocol.intersect(client, setups, response, len(asked))


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=3))
def test_psi_equals_a_plain_intersection(seed: int, segments: int) -> None:
    rng = random.Random(seed)
    pool = [rng.randbytes(16) for _ in range(300)]
    held = set(rng.sample(pool, rng.randrange(1, 200)))
    asked = rng.sample(pool, rng.randrange(1, 150))
    found = _psi(held, asked, segments=segments)
    assert {asked[i] for i in found} == held & set(asked)


def test_the_request_and_response_hold_only_points() -> None:
    asked = [correlate.digest("phone", "+84912345678")]
    raw = protocol.make_request(protocol.new_key(), asked)
    request = protocol.parse_request(raw, max_elements=1)
    assert [len(e) for e in request.encrypted_elements] == [protocol.POINT_BYTES]
    assert asked[0] not in raw
    assert b"84912345678" not in raw


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xff\xff", "not a PSI request"),
        (b"", "no elements"),
    ],
)
def test_garbage_requests_are_refused_before_any_arithmetic(data: bytes, message: str) -> None:
    with pytest.raises(protocol.ProtocolError, match=message):
        protocol.parse_request(data, max_elements=10)


def test_a_request_larger_than_allowed_is_refused_as_too_large() -> None:
    raw = protocol.make_request(protocol.new_key(), [bytes([i]) * 16 for i in range(5)])
    with pytest.raises(protocol.TooLarge, match="at most 4"):
        protocol.parse_request(raw, max_elements=4)


def test_points_off_the_curve_are_refused() -> None:
    raw = protocol.make_request(protocol.new_key(), [b"a" * 16])
    bad = raw.replace(raw[-33:], b"\x02" + b"\xff" * 32)
    request = protocol.parse_request(bad, max_elements=1)
    with pytest.raises(protocol.ProtocolError, match="not on the curve"):
        protocol.answer_request(protocol.new_key(), request)


def test_an_answer_of_the_wrong_size_is_refused() -> None:
    server, client = protocol.new_key(), protocol.new_key()
    request = protocol.parse_request(protocol.make_request(client, [b"a" * 16]), max_elements=1)
    response = protocol.answer_request(server, request)
    setup = protocol.build_setup(server, [b"a" * 16], max_query=1)
    with pytest.raises(protocol.ProtocolError, match="for 2 asked"):
        protocol.intersect(client, [setup], response, 2)
    with pytest.raises(protocol.ProtocolError, match="not a PSI setup"):
        protocol.intersect(client, [b"\xff\x00"], response, 1)


def test_hour_buckets_cover_the_window_and_the_slack() -> None:
    window = protocol.buckets(T0, T0 + timedelta(minutes=30), slack=timedelta(0))
    assert len(window) == 1
    assert protocol.bucket_start(window[0]) == datetime(2026, 11, 20, 10, tzinfo=UTC)
    wider = protocol.buckets(T0, T0 + timedelta(minutes=30), slack=timedelta(minutes=10))
    assert len(wider) == 2  # 09:55 reaches the previous hour


def test_query_elements_per_kind() -> None:
    plain = protocol.query_elements(Identifier("phone", "+84912345678"))
    assert [e.kind for e in plain] == [ElementKind.VALUE]
    assert plain[0].data == correlate.digest("phone", "+84912345678")
    gmail = protocol.query_elements(Identifier("email", "j.doe+x@gmail.com"))
    assert [e.kind for e in gmail] == [ElementKind.VALUE, ElementKind.RELATED]
    timed = protocol.query_elements(
        Identifier("ip", "103.27.12.7", 51234, T0, T0 + timedelta(hours=2))
    )
    # an IPv4 address also has a related form (what its IPv4-mapped IPv6 spelling meets)
    assert [e.kind for e in timed] == [ElementKind.VALUE, ElementKind.RELATED] + [
        ElementKind.BUCKET
    ] * 3
    with pytest.raises(ValueError, match="at most 72 hours"):
        protocol.query_elements(Identifier("ip", "103.27.12.7", 1, T0, T0 + timedelta(days=4)))


def test_responder_elements_meet_the_queriers_in_the_same_hour_and_port() -> None:
    value = correlate.digest("ip", "103.27.12.7")
    held = protocol.responder_elements(
        value, None, "ip", "103.27.12.7", [(51234, T0, T0 + timedelta(minutes=10))]
    )
    same = protocol.query_elements(
        Identifier("ip", "103.27.12.7", 51234, T0 + timedelta(minutes=30), None)
    )
    other_port = protocol.query_elements(Identifier("ip", "103.27.12.7", 443, T0, None))
    later = protocol.query_elements(
        Identifier("ip", "103.27.12.7", 51234, T0 + timedelta(hours=3), None)
    )
    assert {e.kind for e in same if e.data in held} == {ElementKind.VALUE, ElementKind.BUCKET}
    assert {e.kind for e in other_port if e.data in held} == {ElementKind.VALUE}
    assert {e.kind for e in later if e.data in held} == {ElementKind.VALUE}
    a_month = protocol.responder_elements(
        value, None, "ip", "103.27.12.7", [(51234, T0, T0 + timedelta(days=30))]
    )
    assert a_month == {value}  # too wide to say anything about the hour


ALLOW = rules.Allowance(
    answers=True, blocked=False, max_query_elements=10, daily_queries=2, daily_elements=15
)


@pytest.mark.parametrize(
    ("allowance", "used", "asked", "code"),
    [
        (ALLOW, rules.Usage(0, 0), 10, None),
        (ALLOW, rules.Usage(0, 0), 11, rules.RefusalCode.TOO_LARGE),
        (ALLOW, rules.Usage(2, 0), 1, rules.RefusalCode.DAILY_QUERIES),
        (ALLOW, rules.Usage(1, 10), 6, rules.RefusalCode.DAILY_ELEMENTS),
        (ALLOW, rules.Usage(1, 10), 5, None),
        (
            rules.Allowance(False, False, 10, 2, 15),
            rules.Usage(0, 0),
            1,
            rules.RefusalCode.NOT_ANSWERING,
        ),
        (rules.Allowance(True, True, 10, 2, 15), rules.Usage(0, 0), 1, rules.RefusalCode.BLOCKED),
    ],
)
def test_refusals(
    allowance: rules.Allowance, used: rules.Usage, asked: int, code: rules.RefusalCode | None
) -> None:
    found = rules.refusal(allowance, used, asked)
    assert (found.code if found else None) == code


@pytest.mark.parametrize(
    ("kind", "canonical", "timed", "matched", "expected"),
    [
        ("phone", "+84912345678", False, {ElementKind.VALUE}, rules.Strength.MATCH),
        ("email", "jdoe@gmail.com", False, {ElementKind.RELATED}, rules.Strength.VARIANT),
        ("ip", "103.27.12.7", True, {ElementKind.VALUE, ElementKind.BUCKET}, rules.Strength.MATCH),
        ("ip", "103.27.12.7", True, {ElementKind.VALUE}, rules.Strength.WEAK),
        ("ip", "103.27.12.7", False, {ElementKind.VALUE}, rules.Strength.MATCH),
        ("ip", "100.64.3.4", False, {ElementKind.VALUE}, rules.Strength.WEAK),
    ],
)
def test_strength(
    kind: str, canonical: str, timed: bool, matched: set[ElementKind], expected: rules.Strength
) -> None:
    assert rules.strength(kind, canonical, timed, matched) is expected
