"""Table-driven cases for `normalize`, including the pitfalls of domain.md §6."""

from __future__ import annotations

import pytest

from crossborder.core.errors import InvalidInput
from crossborder.selectors import InvalidIdentifier, normalize

VALID: list[tuple[str, str, dict[str, str], str, set[str]]] = [
    # kind, raw, options, canonical, flags that must be present
    ("ip", "100.64.12.7", {}, "100.64.12.7", {"cgnat"}),
    ("ip", " 100.64.12.7:51234 ", {}, "100.64.12.7", {"cgnat"}),
    ("ip", "192.168.1.10", {}, "192.168.1.10", {"private"}),
    ("ip", "10.1.2.3", {}, "10.1.2.3", {"private"}),
    ("ip", "172.16.0.1", {}, "172.16.0.1", {"private"}),
    ("ip", "fd12:3456::1", {}, "fd12:3456::1", {"private"}),
    ("ip", "2001:0DB8:0000:0000:0000:0000:0000:0001", {}, "2001:db8::1", {"documentation"}),
    ("ip", "2001:db8:0:0:1:0:0:1", {}, "2001:db8::1:0:0:1", set()),
    ("ip", "[2001:db8::1]:8443", {}, "2001:db8::1", set()),
    ("ip", "127.0.0.1", {}, "127.0.0.1", {"loopback"}),
    ("ip", "169.254.1.1", {}, "169.254.1.1", {"link_local"}),
    ("ip", "fe80::1", {}, "fe80::1", {"link_local"}),
    ("ip", "198.51.100.7", {}, "198.51.100.7", {"documentation"}),
    ("ip", "224.0.0.1", {}, "224.0.0.1", {"multicast"}),
    ("ip", "240.0.0.1", {}, "240.0.0.1", {"reserved"}),
    ("ip", "8.8.8.8", {}, "8.8.8.8", {"public"}),
    ("ip", "8[.]8[.]4[.]4", {}, "8.8.4.4", {"defanged", "public"}),
    ("email", "John.Doe+promo@GMAIL.COM", {}, "John.Doe+promo@gmail.com", set()),
    ("email", "j.o.h.n@gmail.com.", {}, "j.o.h.n@gmail.com", set()),
    ("email", "info@Bücher.DE", {}, "info@xn--bcher-kva.de", set()),
    ("email", "nguyen[@]example[.]vn", {}, "nguyen@example.vn", {"defanged"}),
    ("phone", "0912 345 678", {"default_region": "VN"}, "+84912345678", set()),
    ("phone", "+84 912-345-678", {}, "+84912345678", set()),
    ("phone", "0412 345 678", {"default_region": "au"}, "+61412345678", set()),
    ("domain", "WWW.Example.CO.UK.", {}, "www.example.co.uk", set()),
    ("domain", "bộcôngan.vn", {}, "xn--bcngan-jxa6332d.vn", set()),
    ("domain", "evil[.]example(.)com", {}, "evil.example.com", {"defanged"}),
    ("domain", "ex\u200bample.com", {}, "example.com", {"zero_width_removed"}),
    ("domain", "unknown.notatld", {}, "unknown.notatld", {"unknown_tld"}),
    (
        "url",
        "hxxps://Evil[.]Example.com/Login?a=1",
        {},
        "https://evil.example.com/Login?a=1",
        {"defanged"},
    ),
    ("url", "hxxp[:]//bad.com", {}, "http://bad.com/", {"defanged"}),
    ("url", "HTTPS://example.com:443/x#frag", {}, "https://example.com/x", set()),
    ("url", "http://example.com:8080/", {}, "http://example.com:8080/", set()),
    ("url", "http://[2001:DB8::1]/a", {}, "http://[2001:db8::1]/a", {"documentation"}),
    (
        "crypto",
        "0x52908400098527886e0f7030069857d2e4169ee7",
        {},
        "evm:0x52908400098527886E0F7030069857D2E4169EE7",
        {"evm"},
    ),
    (
        "crypto",
        "0xde709f2102306220921060314715629080e2fb77",
        {"chain": "eth"},
        "eth:0xde709f2102306220921060314715629080e2fb77",
        {"evm"},
    ),
    (
        "crypto",
        "bsc:0x27B1FDB04752BBC536007A920D24ACB045561C26",
        {},
        "bsc:0x27b1fdb04752bbc536007a920d24acb045561c26",
        {"evm"},
    ),
    (
        "crypto",
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
        {},
        "btc:1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
        set(),
    ),
    (
        "crypto",
        "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        {},
        "btc:3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        set(),
    ),
    (
        "crypto",
        "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
        {},
        "btc:bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        set(),
    ),
    (
        "crypto",
        "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",
        {},
        "btc:bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",
        set(),
    ),
    (
        "crypto",
        "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
        {},
        "tron:TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
        set(),
    ),
    (
        "crypto",
        "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh",
        {"chain": "XRP"},
        "xrp:rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh",
        {"unverified"},
    ),
    ("bank_account", "GB82 WEST 1234 5698 7654 32", {}, "GB82WEST12345698765432", set()),
    ("bank_account", "de89 3704 0044 0532 0130 00", {}, "DE89370400440532013000", set()),
    ("bank_account", "VN:VCB:0011001234567", {}, "VN:VCB:0011001234567", set()),
    (
        "bank_account",
        "vn : bfteVNVX : 0011-0012-34567",
        {},
        "VN:BFTEVNVX:00110012345 67".replace(" ", ""),
        set(),
    ),
    ("social_media", "Facebook:100004123456789", {}, "facebook:100004123456789", set()),
    ("social_media", "@Scam.Page", {"platform": "TikTok"}, "tiktok:@scam.page", set()),
    ("social_media", "telegram:ScamBot", {}, "telegram:@scambot", set()),
    ("imei", "35-209900-176148-1", {}, "352099001761481", set()),
    ("imei", "49 015420 323751 8", {}, "490154203237518", set()),
    ("imsi", "452 04 0123456789", {}, "452040123456789", set()),
    (
        "file_hash",
        "D41D8CD98F00B204E9800998ECF8427E",
        {},
        "d41d8cd98f00b204e9800998ecf8427e",
        set(),
    ),
    (
        "file_hash",
        "sha1:DA39A3EE5E6B4B0D3255BFEF95601890AFD80709",
        {},
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        set(),
    ),
    (
        "file_hash",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        {},
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        set(),
    ),
    ("vehicle_plate", "VN:29A-123.45", {}, "VN:29A12345", set()),
    ("vehicle_plate", "ab 12 cde", {}, "AB12CDE", set()),
    ("passport", "vn:c1234567", {}, "VN:C1234567", set()),
    ("passport", "PA 1234567", {}, "PA1234567", set()),
    ("other", "  some handle  ", {}, "some handle", set()),
]

INVALID: list[tuple[str, str, dict[str, str], str]] = [
    # kind, raw, options, a fragment of the message
    ("ip", "10.0.0.256", {}, "not an IPv4"),
    ("ip", "010.1.1.1", {}, "not an IPv4"),
    ("ip", "1.2.3.4:99999", {}, "port"),
    ("ip", "[2001:db8::1", {}, "brackets"),
    ("email", "no-at-sign.example.com", {}, "'@'"),
    ("email", "two words@example.com", {}, "spaces"),
    ("email", "user@exa mple.com", {}, "domain"),
    ("phone", "0912345678", {}, "region"),
    ("phone", "+84 12", {}, "phone"),
    ("phone", "+1 555 0100 000", {}, "not a valid"),
    ("phone", "12345", {"default_region": "ZZZ"}, "region"),
    ("domain", "p\u0430ypal.com", {}, "homoglyph"),  # Cyrillic a
    ("domain", "g\u043e\u043egle.com", {}, "homoglyph"),  # Cyrillic o
    ("domain", "xn--pypal-4ve.com", {}, "homoglyph"),  # the same, in punycode
    ("domain", "localhost", {}, "two labels"),
    ("domain", "1.2.3.4", {}, "IP address"),
    ("domain", "bad_label.com", {}, "not a valid domain"),
    ("url", "example.com/path", {}, "scheme"),
    ("url", "gopher://example.com", {}, "scheme"),
    ("url", "https://", {}, "host"),
    ("url", "https://p\u0430ypal.com/login", {}, "homoglyph"),
    ("crypto", "0x52908400098527886E0F7030069857D2E4169Ee7", {}, "EIP-55"),
    ("crypto", "0x5290840009852788", {}, "not a recognised"),
    ("crypto", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", {}, "Base58Check"),
    ("crypto", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u", {}, "TRON"),
    ("crypto", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", {}, "bech32"),
    # taproot program with a bech32 (not bech32m) checksum: BIP-350 forbids it
    (
        "crypto",
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx",
        {},
        "bech32",
    ),
    ("crypto", "0x52908400098527886e0f7030069857d2e4169ee7", {"chain": "btc"}, "EVM"),
    ("crypto", "eth:0x52908400098527886e0f7030069857d2e4169ee7", {"chain": "bsc"}, "contradicts"),
    ("bank_account", "GB83 WEST 1234 5698 7654 32", {}, "IBAN"),
    ("bank_account", "0011001234567", {}, "COUNTRY:BANK:NUMBER"),
    ("bank_account", "XX:VCB:0011001234567", {}, "country"),
    ("bank_account", "VN:DEUTDEFF:0011001234567", {}, "belongs to DE"),
    ("social_media", "@someone", {}, "platform"),
    ("social_media", "facebook:@bad handle", {}, "handle"),
    ("imei", "352099001761482", {}, "Luhn"),
    ("imei", "3520990017614", {}, "15 digits"),
    ("imsi", "45204", {}, "14 or 15"),
    ("file_hash", "d41d8cd98f00b204e9800998ecf8427", {}, "32 (MD5)"),
    ("file_hash", "g41d8cd98f00b204e9800998ecf8427e", {}, "hexadecimal"),
    ("file_hash", "sha256:d41d8cd98f00b204e9800998ecf8427e", {}, "md5"),
    ("vehicle_plate", "X", {}, "2 to 15"),
    ("passport", "VN:C12/34567", {}, "passport"),
    ("ip", "", {}, "empty"),
    ("domain", "   ", {}, "empty"),
    ("domain", "a" * 2001, {}, "2000"),
    ("domain", "exa\x00mple.com", {}, "control"),
    ("domain", "exa\u202emple.com", {}, "control or format"),
    ("other", "\u200b", {}, "empty"),
    ("nonsense", "x", {}, "unknown identifier type"),
]


@pytest.mark.parametrize(("kind", "raw", "options", "canonical", "flags"), VALID)
def test_valid(
    kind: str, raw: str, options: dict[str, str], canonical: str, flags: set[str]
) -> None:
    result = normalize(kind, raw, **options)
    assert result.kind == kind
    assert result.canonical == canonical
    assert flags <= result.flags


@pytest.mark.parametrize(("kind", "raw", "options", "message"), INVALID)
def test_invalid(kind: str, raw: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        normalize(kind, raw, **options)
    assert message.lower() in info.value.detail.lower()
    assert isinstance(info.value, InvalidInput)
    assert info.value.status == 422


def test_details() -> None:
    assert normalize("ip", "[2001:db8::1]:8443").details["port"] == "8443"
    assert normalize("ip", "100.64.0.1:5060").details == {"port": "5060", "version": "4"}
    assert normalize("email", "a@mail.example.co.uk").details["registrable_domain"] == (
        "example.co.uk"
    )
    assert normalize("url", "https://x.blogspot.com/").details["registrable_domain"] == (
        "x.blogspot.com"
    )
    assert normalize("domain", "bộcôngan.vn").details["unicode"] == "bộcôngan.vn"
    assert normalize("imei", "352099001761481").details == {"tac": "35209900"}
    imsi = normalize("imsi", "452040123456789").details
    assert (imsi["mcc"], imsi["mnc"]) == ("452", "04")
    assert normalize("file_hash", "a" * 64).details == {"algorithm": "sha256"}
    tron = normalize("crypto", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t").details
    assert tron["hex"].startswith("41")
    taproot = normalize(
        "crypto", "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"
    ).details
    assert (taproot["type"], taproot["encoding"]) == ("p2tr", "bech32m")
    assert normalize("crypto", "0x" + "ab" * 20, chain="polygon").details["chain"] == "polygon"
    assert normalize("phone", "0912345678", default_region="VN").details["region"] == "VN"


def test_gmail_dots_and_tags_are_kept_verbatim() -> None:
    a = normalize("email", "j.doe+x@gmail.com").canonical
    b = normalize("email", "jdoe@gmail.com").canonical
    assert a != b
    assert a.startswith("j.doe+x@")


def test_homoglyph_is_never_matched_to_the_latin_form() -> None:
    latin = normalize("domain", "paypal.com").canonical
    with pytest.raises(InvalidIdentifier):
        normalize("domain", "p\u0430ypal.com")
    # An all-Cyrillic label is a real IDN, kept as its own punycode, never as "paypal".
    assert normalize("domain", "пример.рф").canonical == "xn--e1afmkfd.xn--p1ai"
    assert latin == "paypal.com"


def test_the_enum_is_accepted_as_kind() -> None:
    from crossborder.requests.schemas import IdentifierKind

    assert normalize(IdentifierKind.IP, "1.1.1.1").canonical == "1.1.1.1"
