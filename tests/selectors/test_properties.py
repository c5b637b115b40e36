"""Hypothesis properties: normalising is idempotent, and only InvalidIdentifier ever escapes."""

from __future__ import annotations

import contextlib

import base58
import bech32m
import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iban, luhn

from crossborder.selectors import InvalidIdentifier, extract, normalize
from crossborder.selectors.normalize import KINDS, eip55

PROPERTY = settings(max_examples=150, deadline=None)

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True).filter(
    lambda s: s[2:4] != "--"
)
_idn_label = st.sampled_from(["bộcôngan", "thương-mại", "пример", "例子", "مثال", "বাংলা"])
_suffix = st.sampled_from(["com", "vn", "com.vn", "co.uk", "xn--p1ai", "org", "ma", "bd"])
_domain = st.builds(
    lambda labels, suffix, upper: (
        (".".join([*labels, suffix])).upper() if upper else ".".join([*labels, suffix])
    ),
    st.lists(st.one_of(_label, _idn_label), min_size=1, max_size=3),
    _suffix,
    st.booleans(),
)
_local = st.from_regex(r"[A-Za-z0-9._+-]{1,20}", fullmatch=True)
_path = st.from_regex(r"(/[A-Za-z0-9._~-]{0,8}){0,3}(\?[a-z]=[0-9]{1,3})?", fullmatch=True)


def _phone(region: str, national: bool) -> str:
    number = phonenumbers.example_number(region)
    assert number is not None
    # national format only for VN: the property normalises with default_region="VN"
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if national and region == "VN"
        else (phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    )
    return phonenumbers.format_number(number, fmt)


def _iban(digits: str) -> str:
    body = "WEST" + digits
    return "GB" + iban.calc_check_digits("GB00" + body) + body


VALID = {
    "ip": st.ip_addresses().map(str),
    "email": st.builds(lambda loc, dom: f"{loc}@{dom}", _local, _domain),
    "phone": st.builds(
        _phone, st.sampled_from(["VN", "AU", "MA", "BD", "CN", "SA", "GB", "TH"]), st.booleans()
    ),
    "domain": _domain,
    "url": st.builds(
        lambda scheme, dom, path: f"{scheme}://{dom}{path}",
        st.sampled_from(["http", "https", "hxxps", "ftp"]),
        _domain,
        _path,
    ),
    "crypto": st.one_of(
        st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
        st.binary(min_size=20, max_size=20).map(lambda b: eip55(b.hex())),
        st.binary(min_size=20, max_size=20).map(
            lambda b: base58.b58encode_check(b"\x00" + b).decode()
        ),
        st.binary(min_size=20, max_size=20).map(
            lambda b: base58.b58encode_check(b"\x05" + b).decode()
        ),
        st.binary(min_size=20, max_size=20).map(
            lambda b: base58.b58encode_check(b"\x41" + b).decode()
        ),
        st.binary(min_size=20, max_size=20).map(lambda b: bech32m.encode("bc", 0, b)),
        st.binary(min_size=32, max_size=32).map(lambda b: bech32m.encode("bc", 1, b)),
    ),
    "bank_account": st.one_of(
        st.from_regex(r"[0-9]{14}", fullmatch=True).map(_iban),
        st.from_regex(r"VN:[A-Z]{3}:[0-9]{6,15}", fullmatch=True),
    ),
    "social_media": st.one_of(
        st.from_regex(r"(facebook|telegram|zalo):[0-9]{5,15}", fullmatch=True),
        st.from_regex(r"(facebook|tiktok|x):@?[A-Za-z0-9._]{1,15}", fullmatch=True),
    ),
    "imei": st.from_regex(r"[0-9]{14}", fullmatch=True).map(lambda d: d + luhn.calc_check_digit(d)),
    "imsi": st.from_regex(r"45204[0-9]{10}", fullmatch=True),
    "file_hash": st.sampled_from([16, 20, 32]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n).map(lambda b: b.hex().upper())
    ),
    "vehicle_plate": st.from_regex(r"(VN:)?[0-9]{2}[A-Z]-[0-9]{3}\.[0-9]{2}", fullmatch=True),
    "passport": st.from_regex(r"(VN:)?[A-Za-z][0-9]{7}", fullmatch=True),
    "other": st.text(min_size=1, max_size=20).filter(
        lambda s: s.strip().isprintable() and s.strip() != ""
    ),
}


def test_every_kind_has_a_generator() -> None:
    assert set(VALID) == set(KINDS)


@PROPERTY
@given(data=st.data(), kind=st.sampled_from(sorted(KINDS)))
def test_normalising_is_idempotent(data: st.DataObject, kind: str) -> None:
    raw = data.draw(VALID[kind])
    first = normalize(kind, raw, default_region="VN")
    second = normalize(kind, first.canonical, default_region="VN")
    assert second.canonical == first.canonical
    assert second.kind == kind


@PROPERTY
@given(
    kind=st.sampled_from(sorted(KINDS)),
    raw=st.text(max_size=80),
    region=st.sampled_from([None, "VN", "AU", "xx"]),
    chain=st.sampled_from([None, "eth", "btc", "tron", "xrp", "!!"]),
    platform=st.sampled_from([None, "facebook", "Bad Platform"]),
)
def test_only_invalid_identifier_escapes(
    kind: str, raw: str, region: str | None, chain: str | None, platform: str | None
) -> None:
    try:
        result = normalize(kind, raw, default_region=region, chain=chain, platform=platform)
    except InvalidIdentifier:
        return
    assert result.kind == kind
    assert result.canonical


@PROPERTY
@given(
    prefix=st.sampled_from(["0x", "bc1", "T", "1", "hxxp://", "+84", "GB82", "xn--"]),
    rest=st.text(max_size=60),
)
def test_prefixed_garbage_is_refused_cleanly(prefix: str, rest: str) -> None:
    for kind in KINDS:
        with contextlib.suppress(InvalidIdentifier):
            normalize(kind, prefix + rest, default_region="VN")


@PROPERTY
@given(text=st.text(max_size=200))
def test_extract_never_fails_and_offsets_point_at_the_raw_text(text: str) -> None:
    for found in extract(text, default_region="VN"):
        assert text[found.start : found.end] == found.raw
