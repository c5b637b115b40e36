"""Pure correlation rules: index keys and how two sightings of one IP address relate."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossborder.selectors import correlate as rules
from crossborder.selectors.correlate import Sighting, Strength

T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)


def test_digest_depends_on_kind_and_value() -> None:
    assert rules.digest("ip", "1.2.3.4") == rules.digest("ip", "1.2.3.4")
    assert rules.digest("ip", "1.2.3.4") != rules.digest("domain", "1.2.3.4")
    assert len(rules.digest("ip", "1.2.3.4")) == 16


def test_an_evm_address_is_related_across_chains_but_not_to_other_kinds() -> None:
    address = "0x52908400098527886E0F7030069857D2E4169EE7"
    assert rules.related_key("crypto", f"eth:{address}") == rules.related_key(
        "crypto", f"bsc:{address}"
    )
    assert rules.related_key("crypto", f"eth:{address}") != rules.related_key(
        "crypto", "eth:0x8617E340B3D01FA5F11F306F4090FD50E238070D"
    )
    assert rules.related_key("crypto", "btc:bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq") is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("j.doe+shop@gmail.com", "jdoe@gmail.com"),
        ("J.Doe@googlemail.com", "jdoe@gmail.com"),
        ("anna+x@outlook.com", "anna@outlook.com"),
    ],
)
def test_mailbox_variants_are_related(a: str, b: str) -> None:
    assert rules.related_form("email", a) == rules.related_form("email", b)


def test_dots_matter_outside_gmail() -> None:
    assert rules.related_form("email", "j.doe@outlook.com") != rules.related_form(
        "email", "jdoe@outlook.com"
    )
    assert rules.related_form("email", "a.b@example.org") is None


def test_ipv4_mapped_ipv6_is_related_to_ipv4() -> None:
    assert rules.related_key("ip", "::ffff:203.0.113.9") == rules.related_key("ip", "203.0.113.9")
    assert rules.related_key("ip", "2001:db8::1") is None


def test_ip_keys_order_like_addresses_and_networks_are_ranges() -> None:
    net = ipaddress.ip_network("198.51.100.0/24")
    lo, hi = rules.network_range(net)
    inside = rules.ip_key("198.51.100.77")
    below, above = rules.ip_key("198.51.99.255"), rules.ip_key("198.51.101.0")
    assert inside is not None
    assert below is not None
    assert above is not None
    assert lo <= inside <= hi
    assert not lo <= below <= hi
    assert not lo <= above <= hi
    v6 = rules.ip_key("2001:db8::1")
    assert v6 is not None
    assert not lo <= v6 <= hi


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(8, 32))
def test_network_range_is_exactly_containment(a: int, b: int, prefix: int) -> None:
    net = ipaddress.IPv4Network((a, prefix), strict=False)
    lo, hi = rules.network_range(net)
    key = rules.ip_key(str(ipaddress.IPv4Address(b)))
    assert key is not None
    assert (lo <= key <= hi) == (ipaddress.IPv4Address(b) in net)


def test_parse_network_refuses_host_bits_and_plain_addresses() -> None:
    assert rules.parse_network("10.0.0.0/8") == ipaddress.ip_network("10.0.0.0/8")
    assert rules.parse_network("10.0.0.1/8") is None
    assert rules.parse_network("10.0.0.1") is None
    assert rules.parse_network("nonsense/12") is None


def test_subscriber_range_is_the_ipv6_slash_64() -> None:
    span = rules.subscriber_range("2001:db8:1:2::5")
    assert span is not None
    same = rules.ip_key("2001:db8:1:2:ffff::1")
    other = rules.ip_key("2001:db8:1:3::1")
    assert same is not None
    assert other is not None
    assert span[0] <= same <= span[1]
    assert not span[0] <= other <= span[1]
    assert rules.subscriber_range("203.0.113.1") is None


def test_same_port_and_overlapping_windows_match() -> None:
    a = Sighting(51234, T0, T0 + timedelta(minutes=5))
    b = Sighting(51234, T0 + timedelta(minutes=4), T0 + timedelta(minutes=30))
    assert rules.ip_match("203.0.113.5", a, b) is Strength.MATCH


def test_different_ports_never_match() -> None:
    a = Sighting(51234, T0, T0)
    b = Sighting(51235, T0, T0)
    assert rules.ip_match("203.0.113.5", a, b) is Strength.MISMATCH


def test_disjoint_windows_do_not_match_unless_within_the_slack() -> None:
    a = Sighting(None, T0, T0 + timedelta(seconds=10))
    b = Sighting(None, T0 + timedelta(seconds=12), T0 + timedelta(seconds=20))
    assert rules.ip_match("203.0.113.5", a, b) is Strength.MISMATCH
    assert rules.ip_match("203.0.113.5", a, b, slack=timedelta(seconds=2)) is Strength.MATCH


def test_a_single_instant_is_a_window_of_zero_length() -> None:
    a = Sighting(None, T0, None)
    assert rules.ip_match("203.0.113.5", a, Sighting(None, T0 - timedelta(1), T0)) is Strength.MATCH
    assert rules.ip_match("203.0.113.5", a, Sighting(None, None, T0 - timedelta(seconds=1))) is (
        Strength.MISMATCH
    )


def test_cgnat_needs_port_and_time_on_both_sides() -> None:
    cgnat = "100.64.12.34"
    full = Sighting(40000, T0, T0)
    assert rules.ip_match(cgnat, full, Sighting(40000, T0, T0)) is Strength.MATCH
    assert rules.ip_match(cgnat, full, Sighting(None, T0, T0)) is Strength.WEAK
    assert rules.ip_match(cgnat, full, Sighting(40000, None, None)) is Strength.WEAK
    assert rules.ip_match(cgnat, full, Sighting(40001, T0, T0)) is Strength.MISMATCH
    # Outside CGNAT, missing details do not weaken a match.
    assert rules.ip_match("203.0.113.5", full, Sighting()) is Strength.MATCH


@given(
    st.one_of(st.none(), st.integers(1, 65535)),
    st.one_of(st.none(), st.integers(1, 65535)),
    st.integers(-1000, 1000),
    st.integers(0, 100),
    st.integers(-1000, 1000),
    st.integers(0, 100),
)
def test_ip_match_is_symmetric(
    pa: int | None, pb: int | None, sa: int, la: int, sb: int, lb: int
) -> None:
    a = Sighting(pa, T0 + timedelta(seconds=sa), T0 + timedelta(seconds=sa + la))
    b = Sighting(pb, T0 + timedelta(seconds=sb), T0 + timedelta(seconds=sb + lb))
    for ip in ("203.0.113.5", "100.64.0.1"):
        assert rules.ip_match(ip, a, b) is rules.ip_match(ip, b, a)
