"""MISP warning lists: real data from pymispwarninglists, no mocks."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import time
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossborder.core.errors import InvalidInput
from crossborder.selectors import normalize
from crossborder.selectors.normalize import KINDS
from crossborder.selectors.warninglists import (
    DEFAULT_LISTS,
    ListInfo,
    UnknownWarningList,
    WarningIndex,
    available_lists,
    get_index,
)

# Loading every list takes a few seconds and ~250 MB; set CROSSBORDER_SKIP_SLOW=1 to skip it.
# (pyproject runs pytest with --strict-markers and registers no "slow" marker.)
slow = pytest.mark.skipif(
    os.environ.get("CROSSBORDER_SKIP_SLOW") == "1",
    reason="loads every MISP warning list (CROSSBORDER_SKIP_SLOW=1)",
)

PROPERTY = settings(max_examples=300, deadline=None)
EMPTY_MD5 = hashlib.md5(b"", usedforsecurity=False).hexdigest()
EMPTY_SHA1 = hashlib.sha1(b"", usedforsecurity=False).hexdigest()
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _raw_list(slug: str) -> list[str]:
    path = (
        resources.files("pymispwarninglists")
        / "data"
        / "misp-warninglists"
        / "lists"
        / slug
        / "list.json"
    )
    entries = json.loads(path.read_bytes())["list"]
    assert isinstance(entries, list)
    return [str(e) for e in entries]


@pytest.fixture(scope="module")
def index() -> WarningIndex:
    return get_index()


# --- the catalogue -------------------------------------------------------------------------


def test_available_lists_are_the_shipped_directories() -> None:
    lists = available_lists()
    slugs = [info.slug for info in lists]
    assert slugs == sorted(slugs)
    assert len(lists) > 100
    assert set(DEFAULT_LISTS) <= set(slugs)
    by_slug = {info.slug: info for info in lists}
    assert by_slug["rfc1918"] == ListInfo(
        slug="rfc1918",
        name="List of RFC 1918 CIDR blocks",
        description=by_slug["rfc1918"].description,
        version=by_slug["rfc1918"].version,
        type="cidr",
        kinds=frozenset({"ip"}),
        size=3,
    )
    assert by_slug["tranco10k"].kinds == {"domain", "url", "email"}
    assert by_slug["url-shortener"].type == "hostname"
    assert by_slug["empty-hashes"].kinds == {"file_hash"}
    assert by_slug["phone_numbers"].kinds == {"phone"}
    assert by_slug["common-contact-emails"].kinds == {"email"}
    assert by_slug["microsoft-azure-appid"].kinds == frozenset()  # no kind of ours


def test_defaults_leave_out_the_big_and_the_signal_lists() -> None:
    assert tuple(sorted(DEFAULT_LISTS)) == DEFAULT_LISTS
    for slug in (
        "tranco",
        "google-chrome-crux-1million",
        "majestic_million",
        "nioc-filehash",
        "disposable-email",
        "dynamic-dns",
        "vpn-ipv4",
        "amazon-aws",
        "lots-project",
    ):
        assert slug not in DEFAULT_LISTS
    for slug in ("public-dns-v4", "public-dns-v6", "rfc1918", "tranco10k", "url-shortener"):
        assert slug in DEFAULT_LISTS


def test_default_index_lists(index: WarningIndex) -> None:
    assert [info.slug for info in index.lists] == sorted(DEFAULT_LISTS)
    assert get_index() is index  # cached


# --- IP addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8.8.8.8", "public-dns-v4"),
        ("1.1.1.1", "public-dns-v4"),
        ("2001:4860:4860::8888", "public-dns-v6"),
        ("::ffff:8.8.8.8", "public-dns-v4"),
        (str(ipaddress.ip_address("::ffff:8.8.8.8")), "public-dns-v4"),  # RFC 5952 form
        ("10.1.2.3", "rfc1918"),
        ("172.31.255.255", "rfc1918"),
        ("192.168.0.0", "rfc1918"),
        ("100.64.12.7", "rfc6598"),
        ("127.0.0.1", "rfc5735"),
        ("255.255.255.255", "rfc5735"),
        ("239.1.2.3", "multicast"),
        ("fe80::1", "ipv6-linklocal"),
        ("fe80::1%eth0", "ipv6-linklocal"),
        ("2001:db8::1", "rfc3849"),
    ],
)
def test_ip_marked(index: WarningIndex, value: str, expected: str) -> None:
    assert expected in index.match("ip", value)


@pytest.mark.parametrize(
    "value",
    ["185.220.101.7", "172.32.0.1", "11.0.0.1", "2a00:1450:4001:80b::200e", "::ffff:b9dc:6507"],
)
def test_ip_unmarked(index: WarningIndex, value: str) -> None:
    assert index.match("ip", value) == ()


def test_ip_from_normalize(index: WarningIndex) -> None:
    canonical = normalize("ip", "[::ffff:8.8.8.8]:53").canonical
    assert index.match("ip", canonical) == ("public-dns-v4",)
    assert index.match("ip", normalize("ip", "8[.]8[.]8[.]8").canonical) == ("public-dns-v4",)


def test_results_are_sorted_and_name_every_list(index: WarningIndex) -> None:
    hits = index.match("ip", "10.1.2.3")
    assert hits == tuple(sorted(hits))
    assert {"rfc1918", "rfc5735"} <= set(hits)


def test_cidr_boundaries_exact() -> None:
    only = WarningIndex(["rfc1918", "rfc6598", "rfc3849"])
    assert only.match("ip", "9.255.255.255") == ()
    assert only.match("ip", "10.0.0.0") == ("rfc1918",)
    assert only.match("ip", "10.255.255.255") == ("rfc1918",)
    assert only.match("ip", "11.0.0.0") == ()
    assert only.match("ip", "100.63.255.255") == ()
    assert only.match("ip", "100.64.0.0") == ("rfc6598",)
    assert only.match("ip", "100.127.255.255") == ("rfc6598",)
    assert only.match("ip", "100.128.0.0") == ()
    assert only.match("ip", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff") == ()
    assert only.match("ip", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff") == ("rfc3849",)
    assert only.match("ip", "2001:db9::") == ()
    assert only.match("ip", "::ffff:10.0.0.1") == ("rfc1918",)


_CROSS_CHECK = ("rfc5735", "multicast", "sinkholes", "public-dns-v6", "umbrella-blockpage-v6")
_NETWORKS = {
    slug: [ipaddress.ip_network(e.strip(), strict=False) for e in _raw_list(slug)]
    for slug in _CROSS_CHECK
}


def _brute_force(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[str, ...]:
    """The lists whose networks hold the address, by testing every network with ipaddress."""
    if isinstance(address, ipaddress.IPv4Address):
        v4: ipaddress.IPv4Address | None = address
        v6 = ipaddress.IPv6Address(int(address) | 0xFFFF00000000)  # ::ffff:a.b.c.d
    else:
        v4, v6 = address.ipv4_mapped, address
    hits = set()
    for slug, nets in _NETWORKS.items():
        for net in nets:
            if isinstance(net, ipaddress.IPv4Network):
                if v4 is not None and v4 in net:
                    hits.add(slug)
            elif v6 in net:
                hits.add(slug)
    return tuple(sorted(hits))


_cross_index = WarningIndex(_CROSS_CHECK)
_edges = [
    a
    for nets in _NETWORKS.values()
    for n in nets
    for a in (
        n.network_address,
        n.broadcast_address,
        n.network_address - 1 if int(n.network_address) > 0 else n.network_address,
        n.broadcast_address + 1
        if int(n.broadcast_address) < (2**n.max_prefixlen - 1)
        else n.broadcast_address,
    )
]


@PROPERTY
@given(st.one_of(st.ip_addresses(), st.sampled_from(_edges)))
def test_cidr_matches_brute_force(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert _cross_index.match("ip", str(address)) == _brute_force(address)


# --- domains, URLs, e-mail ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["google.com", "www.google.com", "mail.google.com"])
def test_popular_domains_marked(index: WarningIndex, value: str) -> None:
    assert "tranco10k" in index.match("domain", value)


def test_hostname_lists_mark_subdomains(index: WarningIndex) -> None:
    assert "public-dns-hostname" in index.match("domain", "dns.google")
    assert "public-dns-hostname" in index.match("domain", "a.b.dns.google")
    assert "url-shortener" in index.match("domain", "bit.ly")
    assert "url-shortener" in index.match("domain", "www.bit.ly")


@pytest.mark.parametrize(
    "value", ["evil-phish-example-2026.com", "login.evil-phish-example-2026.com", "notgoogle.com"]
)
def test_unknown_domain_unmarked(index: WarningIndex, value: str) -> None:
    assert index.match("domain", value) == ()


def test_domain_case_and_trailing_dot(index: WarningIndex) -> None:
    assert "tranco10k" in index.match("domain", "WWW.Google.COM.")


def test_special_use_domains(index: WarningIndex) -> None:
    assert "rfc6761" in index.match("domain", "example.com")
    assert index.match("domain", "co.uk") == ("second-level-tlds",)


def test_url_shortener_marks_the_domain_not_each_link(index: WarningIndex) -> None:
    assert "url-shortener" in index.match("domain", "bit.ly")
    # One shortened link is a lead of its own: the shortener's fame does not make it noise.
    canonical = normalize("url", "hxxps://BIT[.]LY/abc").canonical
    assert index.match("url", canonical) == ()
    assert index.match("url", "https://evil-phish-example-2026.com/bit.ly/google.com") == ()


def test_url_host_forms(index: WarningIndex) -> None:
    assert "rfc6761" in index.match("url", "https://user@example.com:8443/a?b=c")
    assert index.match("url", "https://www.google.com/maps/place/x") == ()  # fame is not noise
    assert index.match("url", "http://[2001:db8::1]/") == ()  # IP lists apply to kind ip
    assert index.match("url", "not a url") == ()


def test_email_domain(index: WarningIndex) -> None:
    assert {"common-contact-emails", "rfc6761"} <= set(index.match("email", "abuse@example.org"))
    assert index.match("email", "scam.victim.helpdesk@gmail.com") == ()  # a mailbox, not noise
    assert index.match("email", "john.doe@evil-phish-example-2026.com") == ()
    assert index.match("email", "no-at-sign") == ()


# --- hashes, phones, other kinds ------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        f"md5:{EMPTY_MD5}",
        EMPTY_MD5,
        EMPTY_MD5.upper(),
        f"sha1:{EMPTY_SHA1}",
        f"sha256:{EMPTY_SHA256}",
        EMPTY_SHA256,
    ],
)
def test_empty_hashes(index: WarningIndex, value: str) -> None:
    assert "empty-hashes" in index.match("file_hash", value)


def test_hash_from_normalize(index: WarningIndex) -> None:
    canonical = normalize("file_hash", f"SHA-256:{EMPTY_SHA256.upper()}").canonical
    assert "empty-hashes" in index.match("file_hash", canonical)
    eicar_md5 = "44d88612fea8a8f36de82e1278abb02f"
    assert "eicar.com" in index.match("file_hash", f"md5:{eicar_md5}")
    assert index.match("file_hash", "md5:" + "0" * 31 + "1") == ()


def test_phone_and_other_kinds_unmarked(index: WarningIndex) -> None:
    assert index.match("phone", "+84912345678") == ()
    assert index.match("crypto", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq") == ()
    assert index.match("crypto", "0x52908400098527886E0F7030069857D2E4169EE7") == ()
    assert index.match("bank_account", "GB82WEST12345698765432") == ()
    assert index.match("other", "8.8.8.8") == ()  # the kind decides, not the look of it
    assert index.match("no-such-kind", "8.8.8.8") == ()


@pytest.mark.parametrize(
    "value",
    [
        "+12125550123",  # NANP 555-01xx, fictional
        "+447700900123",  # Ofcom drama range 07700 900xxx, written E.164 without the trunk 0
        "+61255501234",  # ACMA fictional 02 5550 xxxx
    ],
)
def test_fictional_phone_numbers(index: WarningIndex, value: str) -> None:
    assert index.match("phone", value) == ("phone_numbers",)


def test_phone_regexes_match_whole_numbers(index: WarningIndex) -> None:
    # the French pattern "(999)([0-9]{6})" must not fire in the middle of a real number
    assert index.match("phone", "+84912999123456") == ()


# --- other list types -------------------------------------------------------------------------


def test_substring_and_regex_lists() -> None:
    idx = WarningIndex(["automated-malware-analysis", "disposable-email", "common-contact-emails"])
    assert idx.match("domain", "app.any.run") == ("automated-malware-analysis",)
    assert "automated-malware-analysis" in idx.match("url", "https://www.virustotal.com/gui/x")
    assert idx.match("email", "someone@mailinator.com") == ("disposable-email",)
    assert idx.match("email", "Someone@MAILINATOR.com") == ("disposable-email",)
    assert idx.match("email", "security@bank.example") == ("common-contact-emails",)
    assert idx.match("email", "alice@bank.example") == ()
    assert idx.match("domain", "evil-phish-example-2026.com") == ()


def test_string_list_leading_dot_marks_subdomains() -> None:
    idx = WarningIndex(["google"])
    assert ".google.ad" in _raw_list("google")
    assert idx.match("domain", "www.google.ad") == ("google",)
    assert idx.match("domain", "google.ad") == ("google",)
    assert idx.match("domain", "notgoogle.ad") == ()


def test_empty_selection() -> None:
    idx = WarningIndex([])
    assert idx.lists == ()
    assert idx.match("ip", "10.0.0.1") == ()


# --- local lists ------------------------------------------------------------------------------


def test_extra_local_list() -> None:
    idx = WarningIndex(
        ["rfc1918"],
        extra={
            "local-noise": [
                ("ip", "185.220.101.7"),
                ("ip", "198.51.100.0/24"),
                ("domain", "Partner-Bank.example."),
                ("file_hash", "MD5:" + "A" * 32),
            ],
            "our-lab": [("ip", "10.9.0.0/16")],
        },
    )
    assert [info.slug for info in idx.lists] == ["local-noise", "our-lab", "rfc1918"]
    local = next(info for info in idx.lists if info.slug == "local-noise")
    assert local.kinds == {"ip", "domain", "file_hash"}
    assert local.size == 4
    assert idx.match("ip", "185.220.101.7") == ("local-noise",)
    assert idx.match("ip", "185.220.101.8") == ()
    assert idx.match("ip", "198.51.100.0") == ("local-noise",)
    assert idx.match("ip", "198.51.100.255") == ("local-noise",)
    assert idx.match("ip", "198.51.101.0") == ()
    assert idx.match("ip", "10.9.1.1") == ("our-lab", "rfc1918")
    assert idx.match("ip", "10.8.1.1") == ("rfc1918",)
    assert idx.match("domain", "partner-bank.example") == ("local-noise",)
    assert idx.match("domain", "www.partner-bank.example") == ()  # exact
    assert idx.match("url", "https://partner-bank.example/") == ()  # exact kind too
    assert idx.match("file_hash", "a" * 32) == ("local-noise",)


@pytest.mark.parametrize(
    "extra",
    [
        {"bad": [("ip", "999.1.1.1")]},
        {"bad": [("ip", "10.0.0.0/33")]},
        {"bad": [("colour", "blue")]},
        {"bad": [("domain", "exa mple.com")]},
        {"bad": [("email", "  ")]},
        {"rfc1918": [("ip", "10.0.0.1")]},  # the name of a loaded MISP list
        {"": [("ip", "10.0.0.1")]},
    ],
)
def test_extra_invalid(extra: dict[str, list[tuple[str, str]]]) -> None:
    with pytest.raises(InvalidInput):
        WarningIndex(["rfc1918"], extra=extra)


# --- unknown and "all" ------------------------------------------------------------------------


def test_unknown_slug() -> None:
    with pytest.raises(UnknownWarningList) as caught:
        WarningIndex(["rfc1918", "tranco10", "no-such-list"])
    message = str(caught.value)
    assert "'tranco10'" in message
    assert "'no-such-list'" in message
    assert "tranco10k" in message  # a suggestion
    assert "available_lists()" in message
    assert caught.value.unknown == ("no-such-list", "tranco10")
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.status == 422


@slow
def test_all_lists() -> None:
    started = time.perf_counter()
    everything = WarningIndex(["all"])
    elapsed = time.perf_counter() - started
    assert [info.slug for info in everything.lists] == [info.slug for info in available_lists()]
    assert {"tranco", "tranco10k", "google-chrome-crux-1million"} <= set(
        everything.match("domain", "www.google.com")
    )
    assert "public-dns-v4" in everything.match("ip", "8.8.8.8")
    assert "nioc-filehash" in everything.match("file_hash", _raw_list("nioc-filehash")[0])
    assert "disposable-email" in everything.match("email", "x@mailinator.com")
    assert everything.match("domain", "evil-phish-example-2026.com") == ()
    assert elapsed < 60


# --- garbage never raises ---------------------------------------------------------------------

GARBAGE = [
    "",
    " ",
    "::::",
    ":::",
    "[",
    "]",
    "[::1",
    "1.2.3.4/",
    "1.2.3.4/99",
    "256.256.256.256",
    "\u200b",
    "goo\u200bgle.com",
    "8.8.8.8\u200b",
    "\x00",
    "8.8.8.8\x00",
    "\ud800",
    "x" * 10_000,
    "8." * 100_000,
    "a." * 3000 + "google.com",
    "@" * 5000,
    "http://",
    "https://[",
    "https://[::1/",
    "mailto:",
    "+",
    "+" + "9" * 3000,
    "md5:",
    "::ffff:",
    "%",
    "fe80::1%",
    "\u0662.\u0662.\u0662.\u0662",  # Arabic-Indic digits
    "\uff27\uff2f\uff2f\uff27\uff2c\uff25.\uff23\uff2f\uff2d",  # full-width GOOGLE.COM
]


@pytest.mark.parametrize("value", GARBAGE)
@pytest.mark.parametrize("kind", [*sorted(KINDS), "", "IP", "bogus"])
def test_garbage_returns_nothing(index: WarningIndex, kind: str, value: str) -> None:
    assert index.match(kind, value) == ()


@PROPERTY
@given(st.sampled_from([*sorted(KINDS), "", "bogus"]), st.text())
def test_match_never_raises(kind: str, text: str) -> None:
    hits = get_index().match(kind, text)
    assert isinstance(hits, tuple)
    assert list(hits) == sorted(set(hits))


@PROPERTY
@given(st.sampled_from(sorted(KINDS)), st.text(alphabet="0123456789abcdef.:/@+[]%-", max_size=60))
def test_match_never_raises_on_near_misses(kind: str, text: str) -> None:
    assert isinstance(get_index().match(kind, text), tuple)


@PROPERTY
@given(st.text())
def test_match_never_raises_with_substring_and_regex_lists(text: str) -> None:
    idx = _text_index
    for kind in ("domain", "url", "email", "ip", "phone"):
        assert isinstance(idx.match(kind, text), tuple)


_text_index = WarningIndex(
    ["automated-malware-analysis", "disposable-email", "common-contact-emails", "phone_numbers"]
)


# --- speed ----------------------------------------------------------------------------------


def test_lookup_is_fast(index: WarningIndex) -> None:
    values = [
        ("ip", "8.8.8.8"),
        ("ip", "185.220.101.7"),
        ("ip", "2001:4860:4860::8888"),
        ("domain", "www.google.com"),
        ("url", "https://bit.ly/abc"),
        ("email", "john.doe@evil-phish-example-2026.com"),
        ("file_hash", EMPTY_MD5),
    ]
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        for kind, value in values:
            index.match(kind, value)
    per_lookup = (time.perf_counter() - started) / (rounds * len(values))
    assert per_lookup < 50e-6  # a few microseconds; a generous bound for a loaded CI machine
