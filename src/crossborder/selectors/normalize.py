"""Canonical forms of the identifiers ("selectors") a request or a report names.

``normalize(kind, raw)`` returns a :class:`Normalized` or raises :class:`InvalidIdentifier`
(an :class:`~crossborder.core.errors.InvalidInput`). Nothing else escapes it, whatever the text.

Choices made here (see docs/reference domain.md §6):

* Input longer than 2,000 characters, empty input, control characters, bidi/format characters
  and unassigned code points are refused.
* Zero-width characters (U+200B-U+200D, U+2060, U+FEFF) are *removed* and the result carries
  the flag ``zero_width_removed``, so an analyst sees the value was tampered with.
* Defanged forms (``hxxp``, ``[.]``, ``(.)``, ``[:]//``, ``[@]``) are re-fanged and flagged
  ``defanged``.
* A domain label that mixes Latin, Cyrillic, Greek or Armenian letters (the homoglyph trick,
  e.g. a Cyrillic U+0430 for the "a" of "paypal") is refused: it is never matched to the Latin form.
* Registrable domains come from the Public Suffix List shipped with ``publicsuffixlist``
  (offline; private suffixes such as ``github.io`` count). A domain whose suffix is not in the
  list is flagged ``unknown_tld``.
* Bank accounts: an IBAN (ISO 13616, mod-97, per-country format) in compact upper case, or
  ``CC:BANK:NUMBER`` where CC is an ISO 3166 alpha-2 country, BANK a BIC or a bank's short
  code (2-11 letters/digits) and NUMBER the account number (spaces, dots and dashes dropped).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

import base58
import bech32m
import idna
import phonenumbers
import pycountry
from Crypto.Hash import keccak
from publicsuffixlist import PublicSuffixList
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum import imei as stdnum_imei
from stdnum import imsi as stdnum_imsi
from stdnum.exceptions import ValidationError

from crossborder.core.errors import InvalidInput
from crossborder.requests.schemas import IdentifierKind

MAX_LENGTH: Final = 2000
KINDS: Final = frozenset(k.value for k in IdentifierKind)
ZERO_WIDTH: Final = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_CONFUSABLE_SCRIPTS: Final = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN"})

EVM_CHAINS: Final = frozenset(
    {"evm", "eth", "bsc", "polygon", "arbitrum", "optimism", "base", "avax", "fantom", "linea"}
)
_CHAIN_ALIASES: Final = {
    "bitcoin": "btc",
    "ethereum": "eth",
    "trx": "tron",
    "bnb": "bsc",
    "matic": "polygon",
}
_CHAIN_RE: Final = re.compile(r"[a-z][a-z0-9-]{0,19}")
_CHAIN_PREFIX_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9-]{0,19}):(.+)", re.DOTALL)
_HEX40_RE: Final = re.compile(r"0[xX][0-9a-fA-F]{40}")
_HEX_RE: Final = re.compile(r"[0-9a-fA-F]+")
_HASH_ALGORITHMS: Final = {32: "md5", 40: "sha1", 64: "sha256"}
_PLATFORM_RE: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
_HANDLE_RE: Final = re.compile(r"[\w.\-]{1,100}")
_COUNTRY_PREFIX_RE: Final = re.compile(r"([A-Za-z]{2})\s*:\s*(.+)", re.DOTALL)
_BANK_CODE_RE: Final = re.compile(r"[A-Z0-9]{2,11}")
_ACCOUNT_RE: Final = re.compile(r"[A-Z0-9]{4,34}")
_PASSPORT_RE: Final = re.compile(r"[A-Z0-9]{4,20}")
_URL_SCHEMES: Final = {
    "http": "http",
    "https": "https",
    "hxxp": "http",
    "hxxps": "https",
    "ftp": "ftp",
    "fxp": "ftp",
    "ftps": "ftps",
    "ws": "ws",
    "wss": "wss",
}
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ftp": 21, "ftps": 990, "ws": 80, "wss": 443}
_DEFANG: Final = (
    ("[.]", "."),
    ("(.)", "."),
    ("{.}", "."),
    ("[dot]", "."),
    ("[:]", ":"),
    ("[://]", "://"),
    ("[@]", "@"),
)
_DOCUMENTATION_NETS: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "2001:db8::/32",
        "3fff::/20",
    )
)
_PRIVATE_NETS: Final = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")


class InvalidIdentifier(InvalidInput):
    """A value that is not a valid identifier of the kind it was given as."""


@dataclass(frozen=True)
class Normalized:
    kind: str
    canonical: str
    flags: frozenset[str] = frozenset()
    details: dict[str, str] = field(default_factory=dict)


def _fail(message: str) -> InvalidIdentifier:
    return InvalidIdentifier(message, field="value")


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the list shipped inside the package: no network


def _clean(raw: str, flags: set[str]) -> str:
    """Trim, drop zero-width characters (flagged), refuse control/format characters."""
    if not isinstance(raw, str):
        raise _fail("the value must be text")
    if len(raw) > MAX_LENGTH:
        raise _fail(f"the value is longer than {MAX_LENGTH} characters")
    if any(ch in ZERO_WIDTH for ch in raw):
        raw = "".join(ch for ch in raw if ch not in ZERO_WIDTH)
        flags.add("zero_width_removed")
    value = raw.strip()
    for ch in value:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise _fail(f"the value contains a control or format character (U+{ord(ch):04X})")
    if not value:
        raise _fail("the value is empty")
    return value


def _refang(value: str, flags: set[str]) -> str:
    out = value
    for fanged, plain in _DEFANG:
        out = out.replace(fanged, plain)
    if out != value:
        flags.add("defanged")
    return out


# --- IP ------------------------------------------------------------------------------------


def _ip_flags(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> set[str]:
    flags: set[str] = set()
    if any(addr in net for net in _PRIVATE_NETS if net.version == addr.version):
        flags.add("private")
    if addr.version == 4 and addr in _CGNAT:
        flags.add("cgnat")
    if addr.is_loopback:
        flags.add("loopback")
    if addr.is_link_local:
        flags.add("link_local")
    if any(addr in net for net in _DOCUMENTATION_NETS if net.version == addr.version):
        flags.add("documentation")
    if addr.is_multicast:
        flags.add("multicast")
    if addr.is_reserved:
        flags.add("reserved")
    if addr.is_unspecified:
        flags.add("unspecified")
    return flags


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise _fail(f"not an IPv4 or IPv6 address: {text!r}") from None


def _normalize_ip(value: str, flags: set[str]) -> Normalized:
    value = _refang(value, flags)
    details: dict[str, str] = {}
    port: str | None = None
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep:
            raise _fail("unbalanced brackets around the IPv6 address")
        if rest:
            if not rest.startswith(":"):
                raise _fail("expected ':port' after ']'")
            port = rest[1:]
        value = host
    elif value.count(":") == 1:
        value, port = value.split(":")
    if port is not None:
        if not (port.isascii() and port.isdigit() and 0 < int(port) <= 65535):
            raise _fail(f"not a valid port: {port!r}")
        details["port"] = str(int(port))
    addr = _parse_ip(value)
    details["version"] = str(addr.version)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        flags.add("ipv4_mapped")
        details["ipv4"] = str(addr.ipv4_mapped)
    flags |= _ip_flags(addr)
    if addr.is_global:
        flags.add("public")
    return Normalized("ip", str(addr), frozenset(flags), details)


# --- domains, e-mail, URLs -----------------------------------------------------------------


def _scripts(label: str) -> set[str]:
    scripts: set[str] = set()
    for ch in label:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            scripts.add(name.split(" ", 1)[0] if name else "UNKNOWN")
    return scripts


def _domain_ascii(text: str) -> str:
    """IDNA 2008 with UTS 46 mapping, lower-case, no trailing dot; refuses mixed scripts."""
    host = text.removesuffix(".")
    if not host or len(host) > 253:
        raise _fail("a domain needs 1 to 253 characters")
    try:
        encoded = idna.encode(host, uts46=True, std3_rules=True, transitional=False)
        ascii_host = encoded.decode("ascii").lower()
        unicode_host = idna.decode(ascii_host)
    except (idna.IDNAError, UnicodeError, ValueError):
        raise _fail(f"not a valid domain name: {text!r}") from None
    for label in unicode_host.split("."):
        mixed = _scripts(label) & _CONFUSABLE_SCRIPTS
        if len(mixed) > 1:
            raise _fail(
                f"the label {label!r} mixes {', '.join(sorted(mixed)).lower()} letters "
                "(possible homoglyph attack)"
            )
    return ascii_host


def _domain_details(ascii_host: str, flags: set[str]) -> dict[str, str]:
    details: dict[str, str] = {}
    psl = _psl()
    if psl.publicsuffix(ascii_host, accept_unknown=False) is None:
        flags.add("unknown_tld")
    registrable = psl.privatesuffix(ascii_host)
    if isinstance(registrable, str):
        details["registrable_domain"] = registrable
    unicode_host = idna.decode(ascii_host)
    if unicode_host != ascii_host:
        details["unicode"] = unicode_host
    return details


def _normalize_domain(value: str, flags: set[str]) -> Normalized:
    value = _refang(value, flags)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise _fail("an IP address is not a domain; use the type 'ip'")
    host = _domain_ascii(value)
    if "." not in host:
        raise _fail(f"a domain needs at least two labels: {value!r}")
    if host.rsplit(".", 1)[1].isdigit():
        raise _fail(f"the top-level label of {value!r} is numeric")
    details = _domain_details(host, flags)
    return Normalized("domain", host, frozenset(flags), details)


def _normalize_email(value: str, flags: set[str]) -> Normalized:
    value = _refang(value, flags)
    if value.lower().startswith("mailto:"):
        value = value[7:]
    local, sep, domain = value.rpartition("@")
    if not sep or not local:
        raise _fail("an e-mail address needs a local part, '@' and a domain")
    if "@" in local or any(ch.isspace() for ch in local):
        raise _fail("the local part of an e-mail address may not hold spaces or '@'")
    if len(local) > 64:
        raise _fail("the local part of an e-mail address is longer than 64 characters")
    host = _normalize_domain(domain, flags).canonical
    details = _domain_details(host, flags)
    details["domain"] = host
    return Normalized("email", f"{local}@{host}", frozenset(flags), details)


def _normalize_url(value: str, flags: set[str]) -> Normalized:
    value = _refang(value, flags)
    scheme_raw, sep, _ = value.partition("://")
    scheme = _URL_SCHEMES.get(scheme_raw.lower()) if sep else None
    if scheme is None:
        raise _fail(f"a URL needs a scheme such as https:// ({', '.join(sorted(_URL_SCHEMES))})")
    if scheme_raw.lower() != scheme:
        flags.add("defanged")
    if any(ch.isspace() for ch in value):
        raise _fail("a URL may not contain spaces")
    try:
        parts: SplitResult = urlsplit(scheme + value[len(scheme_raw) :])
        port = parts.port
        hostname = parts.hostname
    except ValueError as exc:
        raise _fail(f"not a valid URL: {exc}") from None
    if not hostname:
        raise _fail("a URL needs a host")
    details: dict[str, str] = {}
    try:
        ip = ipaddress.ip_address(hostname)
    except ValueError:
        host = _normalize_domain(hostname, flags).canonical
        details.update(_domain_details(host, flags))
        host_part = host
    else:
        flags |= _ip_flags(ip)
        host_part = f"[{ip}]" if ip.version == 6 else str(ip)
        host = str(ip)
    details["host"] = host
    netloc = host_part
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host_part}:{port}"
        details["port"] = str(port)
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at:
        netloc = f"{userinfo}@{netloc}"
        flags.add("userinfo")
    if parts.fragment:
        details["fragment"] = parts.fragment
    canonical = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    return Normalized("url", canonical, frozenset(flags), details)


# --- phone ---------------------------------------------------------------------------------


def _normalize_phone(value: str, flags: set[str], region: str | None) -> Normalized:
    region_code = region.upper() if region else None
    if region_code is not None and region_code not in phonenumbers.SUPPORTED_REGIONS:
        raise _fail(f"unknown region for phone numbers: {region!r}")
    try:
        number = phonenumbers.parse(value, region_code)
    except phonenumbers.NumberParseException as exc:
        hint = "" if region_code or value.startswith("+") else " (give a region such as VN)"
        raise _fail(f"not a phone number: {exc._msg}{hint}") from None
    if not phonenumbers.is_valid_number(number):
        if phonenumbers.is_possible_number(number):
            raise _fail("the phone number has a possible length but is not a valid number")
        raise _fail("not a valid phone number")
    canonical = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    details = {"country_code": str(number.country_code)}
    number_region = phonenumbers.region_code_for_number(number)
    if number_region:
        details["region"] = number_region
    return Normalized("phone", canonical, frozenset(flags), details)


# --- crypto --------------------------------------------------------------------------------


def _keccak256_hex(data: bytes) -> str:
    digest = keccak.new(digest_bits=256)
    digest.update(data)
    return digest.hexdigest()


def eip55(address_hex: str) -> str:
    """The EIP-55 mixed-case checksum form of a 40-hex-digit address (without 0x)."""
    lower = address_hex.lower()
    digest = _keccak256_hex(lower.encode("ascii"))
    return "0x" + "".join(
        ch.upper() if ch.isalpha() and int(digest[i], 16) >= 8 else ch for i, ch in enumerate(lower)
    )


def _b58check(address: str) -> bytes | None:
    try:
        return base58.b58decode_check(address)
    except ValueError:
        return None


def _normalize_crypto(value: str, flags: set[str], chain: str | None) -> Normalized:
    given = chain.strip().lower() if chain else None
    match = _CHAIN_PREFIX_RE.fullmatch(value)
    address = value
    if match and not _HEX40_RE.fullmatch(value):
        prefix = match.group(1).lower()
        if given and _CHAIN_ALIASES.get(prefix, prefix) != _CHAIN_ALIASES.get(given, given):
            raise _fail(f"the chain prefix {prefix!r} contradicts the chain {given!r}")
        given = prefix
        address = match.group(2).strip()
    if given is not None:
        given = _CHAIN_ALIASES.get(given, given)
        if not _CHAIN_RE.fullmatch(given):
            raise _fail(f"not a chain name: {given!r}")
    if not address or any(ch.isspace() for ch in address):
        raise _fail("a crypto address may not be empty or contain spaces")
    details: dict[str, str] = {}

    if _HEX40_RE.fullmatch(address):
        if given is not None and given not in EVM_CHAINS:
            raise _fail(f"an 0x address is an EVM address, not one on {given!r}")
        body = address[2:]
        checksummed = eip55(body)
        if body not in (body.lower(), body.upper()) and "0x" + body != checksummed:
            raise _fail("the EVM address has mixed case but a wrong EIP-55 checksum")
        flags.add("evm")
        chain_name = given or "evm"
        details["chain"] = chain_name
        return Normalized("crypto", f"{chain_name}:{checksummed}", frozenset(flags), details)

    if address[:3].lower() == "bc1":
        if given not in (None, "btc"):
            raise _fail(f"a bc1 address is a Bitcoin address, not one on {given!r}")
        try:
            decoded = bech32m.decode("bc", address)
        except (bech32m.DecodeError, ValueError, IndexError):
            raise _fail("not a valid bech32/bech32m Bitcoin address") from None
        version, program = decoded.witver, decoded.witprog
        kinds = {(0, 20): "p2wpkh", (0, 32): "p2wsh", (1, 32): "p2tr"}
        details.update(
            chain="btc",
            witness_version=str(version),
            type=kinds.get((version, len(program)), "segwit"),
            encoding="bech32" if version == 0 else "bech32m",
        )
        return Normalized("crypto", f"btc:{address.lower()}", frozenset(flags), details)

    if address[:1] in ("1", "3") and given in (None, "btc"):
        payload = _b58check(address)
        if payload is None or len(payload) != 21 or payload[0] not in (0x00, 0x05):
            raise _fail("not a valid Base58Check Bitcoin address (wrong checksum or version)")
        details.update(chain="btc", type="p2pkh" if payload[0] == 0 else "p2sh")
        return Normalized("crypto", f"btc:{address}", frozenset(flags), details)

    if address[:1] == "T" and given in (None, "tron"):
        payload = _b58check(address)
        if payload is None or len(payload) != 21 or payload[0] != 0x41:
            raise _fail("not a valid TRON address (wrong Base58Check checksum or version)")
        details.update(chain="tron", hex=payload.hex())
        return Normalized("crypto", f"tron:{address}", frozenset(flags), details)

    if given is None or given in ("btc", "tron") or given in EVM_CHAINS:
        raise _fail("not a recognised crypto address; give the chain as chain:address")
    if len(address) > 128:
        raise _fail("a crypto address is longer than 128 characters")
    flags.add("unverified")
    details["chain"] = given
    return Normalized("crypto", f"{given}:{address}", frozenset(flags), details)


# --- bank accounts -------------------------------------------------------------------------


def _country(code: str) -> str:
    alpha2 = code.upper()
    if pycountry.countries.get(alpha_2=alpha2) is None:
        raise _fail(f"not an ISO 3166 country code: {code!r}")
    return alpha2


def _normalize_bank(value: str, flags: set[str]) -> Normalized:
    compact = re.sub(r"[\s.\-]", "", value).upper()
    if compact.startswith("IBAN"):
        compact = compact[4:]
    if re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}", compact):
        try:
            canonical = stdnum_iban.validate(compact)
        except ValidationError as exc:
            raise _fail(f"not a valid IBAN: {exc}") from None
        details = {"country": canonical[:2], "format": "iban"}
        return Normalized("bank_account", canonical, frozenset(flags), details)
    parts = [p.strip() for p in value.split(":")]
    if len(parts) != 3:
        raise _fail("a bank account is an IBAN or COUNTRY:BANK:NUMBER, e.g. VN:VCB:0011001234567")
    country = _country(parts[0])
    bank = re.sub(r"[\s.\-]", "", parts[1]).upper()
    number = re.sub(r"[\s.\-]", "", parts[2]).upper()
    if not (bank.isascii() and _BANK_CODE_RE.fullmatch(bank)):
        raise _fail(f"not a bank code or BIC: {parts[1]!r}")
    if not (number.isascii() and _ACCOUNT_RE.fullmatch(number)):
        raise _fail("an account number has 4 to 34 letters or digits")
    details = {"country": country, "bank": bank, "format": "national"}
    if len(bank) in (8, 11) and stdnum_bic.is_valid(bank):
        if bank[4:6] != country:
            raise _fail(f"the BIC {bank} belongs to {bank[4:6]}, not {country}")
        details["bic"] = bank
    return Normalized("bank_account", f"{country}:{bank}:{number}", frozenset(flags), details)


# --- the rest ------------------------------------------------------------------------------


def _normalize_social(value: str, flags: set[str], platform: str | None) -> Normalized:
    given = platform.strip().lower() if platform else None
    name, sep, ident = value.partition(":")
    if sep and _PLATFORM_RE.fullmatch(name.strip().lower()):
        prefix = name.strip().lower()
        if given and prefix != given:
            raise _fail(f"the platform prefix {prefix!r} contradicts the platform {given!r}")
        given, value = prefix, ident.strip()
    if not given:
        raise _fail("give the platform, e.g. facebook:@handle or --platform facebook")
    if not _PLATFORM_RE.fullmatch(given):
        raise _fail(f"not a platform name: {given!r}")
    if value.isascii() and value.isdigit():
        return Normalized(
            "social_media", f"{given}:{value}", frozenset(flags), {"platform": given, "id": value}
        )
    handle = unicodedata.normalize("NFC", value.removeprefix("@")).lower()
    if not _HANDLE_RE.fullmatch(handle):
        raise _fail("a handle has letters, digits, '.', '_' or '-' only")
    details = {"platform": given, "handle": handle}
    return Normalized("social_media", f"{given}:@{handle}", frozenset(flags), details)


def _normalize_imei(value: str, flags: set[str]) -> Normalized:
    compact = stdnum_imei.compact(value)
    if not (compact.isascii() and compact.isdigit() and len(compact) == 15):
        raise _fail("an IMEI has 15 digits")
    try:
        stdnum_imei.validate(compact)
    except ValidationError:
        raise _fail("the IMEI fails its Luhn check digit") from None
    return Normalized("imei", compact, frozenset(flags), {"tac": compact[:8]})


def _normalize_imsi(value: str, flags: set[str]) -> Normalized:
    compact = stdnum_imsi.compact(value)
    if not (compact.isascii() and compact.isdigit() and 14 <= len(compact) <= 15):
        raise _fail("an IMSI has 14 or 15 digits (MCC + MNC + MSIN)")
    try:
        stdnum_imsi.validate(compact)
        info = stdnum_imsi.info(compact)
    except ValidationError as exc:
        raise _fail(f"not a valid IMSI: {exc}") from None
    details = {k: str(info[k]) for k in ("mcc", "mnc", "msin", "cc") if info.get(k)}
    return Normalized("imsi", compact, frozenset(flags), details)


def _normalize_hash(value: str, flags: set[str]) -> Normalized:
    algorithm, sep, digest = value.partition(":")
    if not sep:
        algorithm, digest = "", value
    digest = digest.strip().lower()
    if not (digest.isascii() and _HEX_RE.fullmatch(digest)):
        raise _fail("a file hash is hexadecimal")
    by_length = _HASH_ALGORITHMS.get(len(digest))
    if by_length is None:
        raise _fail("a file hash has 32 (MD5), 40 (SHA-1) or 64 (SHA-256) hex digits")
    named = algorithm.strip().lower().replace("-", "")
    if named and named != by_length:
        raise _fail(f"a {len(digest)}-digit hash is {by_length}, not {algorithm.strip()}")
    return Normalized("file_hash", digest, frozenset(flags), {"algorithm": by_length})


def _split_country(value: str) -> tuple[str | None, str]:
    match = _COUNTRY_PREFIX_RE.fullmatch(value)
    if match:
        return _country(match.group(1)), match.group(2)
    return None, value


def _normalize_plate(value: str, flags: set[str]) -> Normalized:
    country, rest = _split_country(value)
    plate = unicodedata.normalize("NFC", re.sub(r"[\s.\-·]", "", rest)).upper()
    if not (2 <= len(plate) <= 15 and plate.isalnum()):
        raise _fail("a vehicle plate has 2 to 15 letters or digits")
    canonical = f"{country}:{plate}" if country else plate
    details = {"country": country} if country else {}
    return Normalized("vehicle_plate", canonical, frozenset(flags), details)


def _normalize_passport(value: str, flags: set[str]) -> Normalized:
    country, rest = _split_country(value)
    number = re.sub(r"[\s\-]", "", rest).upper()
    if not (number.isascii() and _PASSPORT_RE.fullmatch(number)):
        raise _fail("a passport number has 4 to 20 letters A-Z or digits")
    canonical = f"{country}:{number}" if country else number
    details = {"country": country} if country else {}
    return Normalized("passport", canonical, frozenset(flags), details)


def normalize(
    kind: str,
    raw: str,
    *,
    default_region: str | None = None,
    chain: str | None = None,
    platform: str | None = None,
) -> Normalized:
    """The canonical form of ``raw`` taken as an identifier of ``kind``.

    ``default_region`` (ISO 3166 alpha-2) is used for phone numbers written without ``+``;
    ``chain`` names the chain of a crypto address, ``platform`` that of a social-media id.
    Raises :class:`InvalidIdentifier` and nothing else.
    """
    kind_value = kind.value if isinstance(kind, IdentifierKind) else str(kind).strip().lower()
    if kind_value not in KINDS:
        raise _fail(f"unknown identifier type {kind!r}; one of {', '.join(sorted(KINDS))}")
    flags: set[str] = set()
    value = _clean(raw, flags)
    match kind_value:
        case "ip":
            return _normalize_ip(value, flags)
        case "email":
            return _normalize_email(value, flags)
        case "phone":
            return _normalize_phone(value, flags, default_region)
        case "domain":
            return _normalize_domain(value, flags)
        case "url":
            return _normalize_url(value, flags)
        case "crypto":
            return _normalize_crypto(value, flags, chain)
        case "bank_account":
            return _normalize_bank(value, flags)
        case "social_media":
            return _normalize_social(value, flags, platform)
        case "imei":
            return _normalize_imei(value, flags)
        case "imsi":
            return _normalize_imsi(value, flags)
        case "file_hash":
            return _normalize_hash(value, flags)
        case "vehicle_plate":
            return _normalize_plate(value, flags)
        case "passport":
            return _normalize_passport(value, flags)
        case _:
            return Normalized("other", value, frozenset(flags), {})
