"""Marking identifiers that are noise, with the MISP warning lists.

A request or a report often names values that identify nobody: Google's resolver 8.8.8.8, a
private address, ``www.google.com``, the MD5 of an empty file. :class:`WarningIndex` says which
MISP warning lists (https://github.com/MISP/misp-warninglists, as shipped offline in the PyPI
package ``pymispwarninglists``) mark a canonical value (see
:mod:`crossborder.selectors.normalize`)::

    index = get_index()                      # DEFAULT_LISTS, built once per process
    index.match("ip", "8.8.8.8")             # ('public-dns-v4',)
    index.match("url", "https://bit.ly/abc")  # ('link-in-bio', 'url-shortener')

A mark is a warning for the analyst, never a reason to drop a value.

Matching (the package's own ``WarningList`` only tests exact set membership):

* MISP ``matching_attributes`` decide the kinds a list applies to: ``ip-src``, ``ip-dst``,
  ``ip-src|port``, ``ip-dst|port``, ``ip`` -> ``ip``; ``domain``, ``hostname``, ``hostname|port``
  -> ``domain``, and also the host of a ``url`` and the domain part of an ``email``;
  ``domain|ip`` -> both; ``url``, ``uri``, ``link`` -> ``url``; the e-mail attributes -> ``email``;
  ``md5``, ``sha1``, ``sha256`` (and ``filename|…``) -> ``file_hash``; ``phone-number``,
  ``whois-registrant-phone`` -> ``phone``. A list without them gets kinds from its type and
  entries. A ``cidr`` list only ever applies to ``ip``, a ``hostname`` list to host names.
  A host list marks an e-mail address or a URL by its host only when the list is of reserved
  names (``rfc6761``: example.com, .test, .invalid): ``someone@gmail.com`` and a profile page
  on a big platform are what investigators correlate on, not noise, even though their domains
  are on ``tranco10k``. Marks suppress correlation here, so they must not fire on a domain's
  fame alone.
* ``cidr``: the networks of every loaded list are merged into disjoint integer intervals, each
  labelled with the lists covering it, and found with one ``bisect`` (IPv4 and IPv6 apart). An
  IPv4-mapped IPv6 address (``::ffff:8.8.8.8``) is also looked up as IPv4, and a list's
  ``::ffff:0:0/96`` networks count as IPv4 too.
* ``hostname``: a host matches when it or a parent domain is listed (``dns.google`` marks
  ``a.dns.google``). Entries are compared lower-case, dots trimmed, non-ASCII ones through IDNA.
* ``string``: exact match (domains and hashes lower-case; a hash may be given as ``md5:<hex>``;
  IP entries compare as addresses). One extension over MISP: an entry of a domain list written
  with a leading dot (``.google.ad``, as in the ``google`` and ``microsoft`` lists) marks that
  domain and its subdomains, which is what the dot means there; MISP would never match it.
* ``substring``: the (lower-cased) entry occurs in the (lower-cased) value; large lists are
  matched with one set lookup per window length rather than one test per entry.
* ``regex``: PHP-style ``/pattern/flags`` compiled once (entries that do not compile are
  skipped) and searched in the value like ``preg_match``. Phone numbers are the exception: the
  patterns of ``phone_numbers`` are written for national forms with a trunk ``0``, so an E.164
  value ``+CCNNN`` is tried as ``+CCNNN`` and ``+CC0NNN`` and must match *entirely*; a search
  would mark any number that merely contains ``999`` and six digits.

Values longer than 4,096 characters (no canonical value is) and unknown kinds give ``()``.

Default lists (:data:`DEFAULT_LISTS`), chosen for a law-enforcement node: a list is on by default
when a value in it identifies no suspect, so that an investigator should not spend a request on it.

* IP: public DNS resolvers (``public-dns-v4``/``-v6``); private, shared, special-use,
  documentation, multicast and link-local ranges (``rfc1918``, ``rfc5735``, ``rfc6598``,
  ``rfc3849``, ``multicast``, ``ipv6-linklocal``); ``sinkholes`` (a researcher's or registry's
  server answering for seized malware domains); the Cisco Umbrella block pages; parking services;
  the scanning ranges published by research scanners (Censys, Shodan, Shadowserver, Onyphe,
  Modat, Alpha Strike, Shadowforce, NetSecScan) and the crawlers Googlebot and GPTBot, which fill
  the logs victims send; the check-host.net probes.
* Domains (also URL hosts and e-mail domains): ``tranco10k`` (the 10,000 most popular sites),
  public DNS resolver host names, URL shorteners, link-in-bio pages, "what is my IP" services,
  public IPFS gateways, captive-portal and Windows connectivity endpoints, RFC 6761 special-use
  names, the Umbrella block-page hosts, and ``second-level-tlds`` (a public suffix such as
  ``co.uk`` or ``github.io`` given as a domain, exact match only).
* E-mail: ``common-contact-emails`` (abuse@, security@, noc@, soc@ mailboxes).
* File hashes: empty files, the EICAR test file, hashes known to be false positives in IOC
  feeds (``common-ioc-false-positive``, ``ti-falsepositives``) and Mozilla's trusted root and
  intermediate CA certificates.
* Phone: ``phone_numbers``, the numbers reserved for fiction and documentation.

Left out on purpose (load them by slug when wanted): the million-entry popularity lists
(``tranco``, ``google-chrome-crux-1million``) and ``nioc-filehash`` (200,000 hashes) for
memory and start-up time; the other popularity lists, which ``tranco10k`` covers; cloud, CDN,
hosting, VPN, SMTP-provider and corporate ranges and domains (AWS, Azure, Cloudflare, OVH,
``vpn-ipv4``, ``smtp-sending-ips``, ``google``, ``microsoft``, ``bank-website`` …) because
criminals rent exactly that infrastructure and its operator can answer a request about it;
``lots-project``, ``digitalside`` and ``security-provider-blogpost``, which list platforms that
host abuse (``github.com``, ``medium.com``, file sharing) as if they were noise; the
``*-nt-scanning`` lists, snapshots of single cloud addresses seen by a telescope on one day that
go stale as those addresses are reassigned; ``automated-malware-analysis`` and
``microsoft-attack-simulator``, whose substring matching would also mark look-alikes such as
``virustotal.com.evil.example`` (and, for the latter, any IP containing its address);
``disposable-email`` and ``dynamic-dns``, which are signal for an investigator, not noise;
``tlds`` (a bare TLD is never a canonical domain) and the empty CRL lists.
"""

from __future__ import annotations

import bisect
import difflib
import ipaddress
import json
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Final

import idna
import phonenumbers

from crossborder.core.errors import InvalidInput
from crossborder.selectors.normalize import KINDS

__all__ = [
    "ALL",
    "DEFAULT_LISTS",
    "ListInfo",
    "UnknownWarningList",
    "WarningIndex",
    "available_lists",
    "get_index",
]

ALL: Final = "all"

DEFAULT_LISTS: Final[tuple[str, ...]] = (
    "alphastrike-scanning",
    "captive-portals",
    "censys-scanning",
    "check-host-net",
    "common-contact-emails",
    "common-ioc-false-positive",
    "eicar.com",
    "empty-hashes",
    "findip-host",
    "googlebot",
    "ipv6-linklocal",
    "link-in-bio",
    "microsoft-win10-connection-endpoints",
    "modat-scanner",
    "mozilla-CA",
    "mozilla-IntermediateCA",
    "multicast",
    "netsecscan-scanning",
    "onyphe-scanner",
    "openai-gptbot",
    "parking-domain",
    "phone_numbers",
    "public-dns-hostname",
    "public-dns-v4",
    "public-dns-v6",
    "public-ipfs-gateways",
    "rfc1918",
    "rfc3849",
    "rfc5735",
    "rfc6598",
    "rfc6761",
    "second-level-tlds",
    "shadowforce-scanning",
    "shadowserver",
    "shodan-scanning",
    "sinkholes",
    "ti-falsepositives",
    "tranco10k",
    "umbrella-blockpage-hostname",
    "umbrella-blockpage-v4",
    "umbrella-blockpage-v6",
    "url-shortener",
    "whats-my-ip",
)

_HOST_KINDS: Final = frozenset({"domain", "url", "email"})
_IP: Final = frozenset({"ip"})
_URL: Final = frozenset({"url"})
_EMAIL: Final = frozenset({"email"})
_HASH: Final = frozenset({"file_hash"})
_PHONE: Final = frozenset({"phone"})
_ATTRIBUTE_KINDS: Final[Mapping[str, frozenset[str]]] = {
    "ip": _IP,
    "ip-src": _IP,
    "ip-dst": _IP,
    "ip-src|port": _IP,
    "ip-dst|port": _IP,
    "domain|ip": _IP | _HOST_KINDS,
    "domain": _HOST_KINDS,
    "hostname": _HOST_KINDS,
    "hostname|port": _HOST_KINDS,
    "url": _URL,
    "uri": _URL,
    "link": _URL,
    "email": _EMAIL,
    "email-src": _EMAIL,
    "email-dst": _EMAIL,
    "email-reply-to": _EMAIL,
    "target-email": _EMAIL,
    "whois-registrant-email": _EMAIL,
    "dns-soa-email": _EMAIL,
    "md5": _HASH,
    "sha1": _HASH,
    "sha256": _HASH,
    "filename|md5": _HASH,
    "filename|sha1": _HASH,
    "filename|sha256": _HASH,
    "phone-number": _PHONE,
    "whois-registrant-phone": _PHONE,
}
_HOST_LISTS_FOR_ADDRESSES: Final = frozenset({"rfc6761"})
_MAX_VALUE: Final = 4096
_SMALL_SUBSTRING_INDEX: Final = 64
_INFER_SAMPLE: Final = 1000

_HOST_RE: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_HEX_RE: Final = re.compile(r"[0-9a-f]+")
_PHONE_ENTRY_RE: Final = re.compile(r"\+?[0-9][0-9 ()-]{5,}")
_BACKREF_RE: Final = re.compile(r"\\[1-9]|\(\?P=")
_PHP_FLAGS: Final[Mapping[str, int]] = {
    "i": re.IGNORECASE,
    "m": re.MULTILINE,
    "s": re.DOTALL,
    "x": re.VERBOSE,
    "u": 0,  # Python patterns are Unicode already
    "g": 0,  # "global" means nothing to preg_match
    "D": 0,
    "U": -1,  # ungreedy: no Python equivalent, refuse
}
_PHP_CLOSING: Final[Mapping[str, str]] = {"(": ")", "{": "}", "[": "]", "<": ">"}
_COUNTRY_CODES: Final = frozenset(str(cc) for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_V4_MAPPED_PREFIX: Final = 0xFFFF  # ::ffff:0:0/96, seen as address >> 32

Labels = tuple[str, ...]
_NONE: Final[Labels] = ()


class UnknownWarningList(InvalidInput):
    """A warning list slug that is not shipped with ``pymispwarninglists``."""

    def __init__(
        self, detail: str, *, field: str | None = "lists", unknown: tuple[str, ...] = ()
    ) -> None:
        super().__init__(detail, field=field)
        self.unknown = unknown


@dataclass(frozen=True)
class ListInfo:
    slug: str
    name: str
    description: str
    version: int
    type: str  # cidr | hostname | string | substring | regex
    kinds: frozenset[str]  # identifier kinds this list is applied to
    size: int  # number of entries


# --- reading the package's data ------------------------------------------------------------


def _lists_dir() -> Traversable:
    return resources.files("pymispwarninglists") / "data" / "misp-warninglists" / "lists"


@lru_cache(maxsize=1)
def _shipped_slugs() -> tuple[str, ...]:
    return tuple(
        sorted(p.name for p in _lists_dir().iterdir() if p.is_dir() and (p / "list.json").is_file())
    )


def _read_list(slug: str) -> tuple[ListInfo, list[str]]:
    data: Any = json.loads((_lists_dir() / slug / "list.json").read_bytes())
    if not isinstance(data, dict):
        data = {}
    raw_entries = data.get("list")
    entries = (
        [e for e in raw_entries if isinstance(e, str)] if isinstance(raw_entries, list) else []
    )
    list_type = str(data.get("type", "string"))
    attributes = data.get("matching_attributes")
    attribute_names = (
        [a for a in attributes if isinstance(a, str)] if isinstance(attributes, list) else []
    )
    try:
        version = int(data.get("version", 0))
    except (TypeError, ValueError):
        version = 0
    info = ListInfo(
        slug=slug,
        name=str(data.get("name", slug)),
        description=str(data.get("description", "")),
        version=version,
        type=list_type,
        kinds=_kinds_for(list_type, attribute_names, entries),
        size=len(entries),
    )
    return info, entries


def _kinds_for(list_type: str, attributes: Sequence[str], entries: Sequence[str]) -> frozenset[str]:
    """The identifier kinds a list applies to, from its MISP attributes, else its entries."""
    kinds: set[str] = set()
    if attributes:
        for attribute in attributes:
            kinds |= _ATTRIBUTE_KINDS.get(attribute.strip().lower(), frozenset())
    else:
        kinds = _infer_kinds(list_type, entries)
    if list_type == "cidr":
        kinds &= _IP
    elif list_type == "hostname":
        kinds &= _HOST_KINDS
    elif list_type not in ("string", "substring", "regex"):
        kinds = set()
    return frozenset(kinds)


def _infer_kinds(list_type: str, entries: Sequence[str]) -> set[str]:
    """What MISP would match a list without ``matching_attributes`` against, per our kinds."""
    if list_type == "cidr":
        return set(_IP)
    if list_type == "hostname":
        return set(_HOST_KINDS)
    if list_type == "regex":
        return set(KINDS)  # MISP applies such a list to every attribute type
    kinds: set[str] = set()
    for entry in entries[:_INFER_SAMPLE]:
        text = entry.strip()
        lower = text.lower()
        if len(lower) in (32, 40, 64) and _HEX_RE.fullmatch(lower):
            kinds.add("file_hash")
        elif _parse_network(text) is not None:
            kinds.add("ip")
        elif "://" in text:
            kinds.add("url")
        elif "@" in text:
            kinds.add("email")
        elif _PHONE_ENTRY_RE.fullmatch(text):
            kinds.add("phone")
        elif "." in text.strip(".") and _host_entry(text) is not None:
            kinds |= _HOST_KINDS
        else:
            kinds.add("other")
    return kinds


@lru_cache(maxsize=1)
def available_lists() -> tuple[ListInfo, ...]:
    """Every warning list shipped with ``pymispwarninglists``, sorted by slug.

    Reads every list once (about a second); the result is cached.
    """
    return tuple(_read_list(slug)[0] for slug in _shipped_slugs())


# --- parsing helpers -----------------------------------------------------------------------


def _parse_ip(text: str) -> tuple[int, int] | None:
    """(version, integer) of an address, or None; never raises."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):
        pass
    if ":" not in text:
        return None
    try:
        return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except (OSError, ValueError):
        pass
    if "%" not in text:
        return None
    try:  # a scoped address such as fe80::1%eth0
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.version, int(address)


def _parse_network(text: str) -> tuple[int, int, int] | None:
    """(version, first, last) of an address or network (host bits ignored), or None."""
    address, slash, prefix = text.strip().partition("/")
    parsed = _parse_ip(address)
    if parsed is None:
        return None
    version, value = parsed
    bits = 32 if version == 4 else 128
    length = bits
    if slash:
        if not (prefix.isascii() and prefix.isdigit() and len(prefix) <= 3) or int(prefix) > bits:
            return None
        length = int(prefix)
    host_bits = bits - length
    first = (value >> host_bits) << host_bits
    return version, first, first | ((1 << host_bits) - 1)


def _host_entry(entry: str) -> tuple[str, bool] | None:
    """(lower-case ASCII host, written with a leading dot) of a list entry, or None."""
    text = entry.strip()
    leading_dot = text.startswith(".")
    text = text.strip(".")
    if not text:
        return None
    if text.isascii():
        host = text.lower()
    else:
        try:
            host = idna.encode(text, uts46=True, transitional=False).decode("ascii").lower()
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    if _HOST_RE.fullmatch(host) is None:
        return None
    return host, leading_dot


def _php_regex_source(entry: str) -> tuple[str, int] | None:
    """(pattern, flags) of a MISP regex entry (``/pattern/flags``, as PHP's preg_match takes
    it), or None when Python cannot compile it."""
    body, flags = entry, 0
    delimiter = entry[:1]
    if delimiter and not delimiter.isalnum() and delimiter not in "\\ \t":
        end = entry.rfind(_PHP_CLOSING.get(delimiter, delimiter))
        if end > 0:
            body = entry[1:end]
            for modifier in entry[end + 1 :]:
                flag = _PHP_FLAGS.get(modifier)
                if flag is None or flag < 0:
                    return None
                flags |= flag
    try:
        re.compile(body, flags)
    except (re.error, OverflowError, RecursionError, ValueError):
        return None
    return body, flags


def _hash_key(value: str) -> str:
    """The lower-case hex digest of ``md5:<hex>``, ``<hex>`` …"""
    return value.rpartition(":")[2].strip().lower()


def _exact_key(kind: str, value: str) -> str:
    if kind == "file_hash":
        return _hash_key(value)
    if kind == "email":
        return value.strip().lower()
    return value.strip()


def _url_host(url: str) -> str | None:
    """``urlsplit(url).hostname`` of a canonical URL, without urlsplit's cost; never raises."""
    _, sep, rest = url.partition("://")
    if not sep:
        return None
    end = len(rest)
    for stop in "/?#":
        at = rest.find(stop, 0, end)
        if at >= 0:
            end = at
    netloc = rest[:end].rpartition("@")[2]
    if netloc.startswith("["):
        host, closed, _ = netloc[1:].partition("]")
        return host.lower() if closed else None
    return netloc.partition(":")[0].lower() or None


def _phone_variants(value: str) -> tuple[str, ...]:
    """An E.164 number as written and with the national trunk ``0`` after the country code."""
    digits = value[1:]
    if value.startswith("+") and digits.isascii() and digits.isdigit():
        for length in (1, 2, 3):
            if digits[:length] in _COUNTRY_CODES:
                return value, f"+{digits[:length]}0{digits[length:]}"
    return (value,)


def _union(first: Labels, second: Labels) -> Labels:
    if not second or first is second:
        return first
    if not first:
        return second
    return tuple(sorted(set(first).union(second)))


# --- building --------------------------------------------------------------------------------


class _LabelPool:
    """Interned, sorted tuples of list names, so equal label sets share one object."""

    def __init__(self) -> None:
        self._tuples: dict[Labels, Labels] = {}
        self._added: dict[tuple[Labels, str], Labels] = {}

    def intern(self, labels: Iterable[str]) -> Labels:
        key = tuple(sorted(set(labels)))
        return self._tuples.setdefault(key, key)

    def add(self, labels: Labels, slug: str) -> Labels:
        if slug in labels:
            return labels
        key = (labels, slug)
        found = self._added.get(key)
        if found is None:
            found = self.intern((*labels, slug))
            self._added[key] = found
        return found

    def label_all(self, table: dict[str, Labels], keys: Iterable[str], slug: str) -> None:
        """Add ``slug`` to the labels of every key of ``table``."""
        single = self.intern((slug,))
        moves: dict[Labels, Labels] = {}
        for key in keys:
            previous = table.get(key)
            if previous is None:
                table[key] = single
            else:
                moved = moves.get(previous)
                if moved is None:
                    moved = moves[previous] = self.add(previous, slug)
                table[key] = moved


_HostLabels = tuple[Labels, Labels]  # (lists marking exactly the host, lists marking subdomains)


class _HostTable:
    """host -> (lists marking exactly it, lists marking it and its subdomains)."""

    def __init__(self, pool: _LabelPool) -> None:
        self.table: dict[str, _HostLabels] = {}
        self._pool = pool
        self._pairs: dict[_HostLabels, _HostLabels] = {}

    def _pair(self, exact: Labels, suffix: Labels) -> _HostLabels:
        pair = (exact, suffix)
        return self._pairs.setdefault(pair, pair)

    def _moved(self, previous: _HostLabels, slug: str, subdomains: bool) -> _HostLabels:
        exact, suffix = previous
        if subdomains:
            return self._pair(exact, self._pool.add(suffix, slug))
        return self._pair(self._pool.add(exact, slug), suffix)

    def add_all(self, slug: str, hosts: Iterable[tuple[str, bool]]) -> None:
        """Add (host, marks subdomains too) pairs of one list."""
        table = self.table
        single = self._pool.intern((slug,))
        fresh = {False: self._pair(single, _NONE), True: self._pair(_NONE, single)}
        moves: dict[tuple[_HostLabels, bool], _HostLabels] = {}
        for host, subdomains in hosts:
            previous = table.get(host)
            if previous is None:
                table[host] = fresh[subdomains]
            else:
                moved = moves.get((previous, subdomains))
                if moved is None:
                    moved = self._moved(previous, slug, subdomains)
                    moves[previous, subdomains] = moved
                table[host] = moved


def _hosts_of(entries: Iterable[str], *, subdomains: bool) -> Iterator[tuple[str, bool]]:
    """(host, marks subdomains) of every usable entry; a leading dot means subdomains too."""
    fullmatch = _HOST_RE.fullmatch
    for entry in entries:
        text = entry.strip()
        if text.isascii():
            host = text.lower()
            dotted = host.startswith(".")
            host = host.strip(".")
            if host and fullmatch(host):
                yield host, subdomains or dotted
        else:
            parsed = _host_entry(text)
            if parsed is not None:
                yield parsed[0], subdomains or parsed[1]


def _merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    intervals.sort()
    merged: list[tuple[int, int]] = []
    for first, last in intervals:
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


@dataclass(frozen=True)
class _Intervals:
    """Disjoint, sorted integer intervals, each labelled with the lists covering it."""

    starts: list[int]
    ends: list[int]
    labels: list[Labels]

    @classmethod
    def build(cls, per_list: Mapping[str, list[tuple[int, int]]], pool: _LabelPool) -> _Intervals:
        events: list[tuple[int, int, str]] = []
        for slug, intervals in per_list.items():
            for first, last in _merge_intervals(intervals):
                events.append((first, 1, slug))
                events.append((last + 1, -1, slug))
        events.sort(key=lambda event: event[0])
        starts: list[int] = []
        ends: list[int] = []
        labels: list[Labels] = []
        active: dict[str, int] = {}
        i, count = 0, len(events)
        while i < count:
            position = events[i][0]
            while i < count and events[i][0] == position:
                _, delta, slug = events[i]
                remaining = active.get(slug, 0) + delta
                if remaining:
                    active[slug] = remaining
                else:
                    active.pop(slug, None)
                i += 1
            if active and i < count:
                label = pool.intern(active)
                end = events[i][0] - 1
                if ends and ends[-1] == position - 1 and labels[-1] is label:
                    ends[-1] = end
                else:
                    starts.append(position)
                    ends.append(end)
                    labels.append(label)
        return cls(starts, ends, labels)

    def find(self, value: int) -> Labels:
        i = bisect.bisect_right(self.starts, value) - 1
        if i >= 0 and value <= self.ends[i]:
            return self.labels[i]
        return _NONE


class _Substrings:
    """Lists whose entries match anywhere in a value (case-insensitive).

    A few entries are tested one by one; more are grouped by length and each window of the
    value is looked up once per length, so a 5,000-entry list costs a few hundred set lookups.
    """

    def __init__(self, entries: Mapping[str, Labels]) -> None:
        self._few = tuple(entries.items()) if len(entries) <= _SMALL_SUBSTRING_INDEX else None
        by_length: dict[int, dict[str, Labels]] = {}
        if self._few is None:
            for entry, labels in entries.items():
                by_length.setdefault(len(entry), {})[entry] = labels
        self._by_length = tuple(sorted(by_length.items()))

    def find(self, value: str) -> Labels:
        text = value.lower()
        found = _NONE
        if self._few is not None:
            for entry, labels in self._few:
                if entry in text:
                    found = _union(found, labels)
            return found
        size = len(text)
        for length, table in self._by_length:
            if length > size:
                break
            for start in range(size - length + 1):
                hit = table.get(text[start : start + length])
                if hit:
                    found = _union(found, hit)
        return found


_Patterns = tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]  # (list, its patterns)


def _combine_patterns(sources: Sequence[tuple[str, int]]) -> tuple[re.Pattern[str], ...]:
    """One alternation for the flag-less, back-reference-free patterns of a list, the rest apart.

    ``phone_numbers`` has 33 patterns: one alternation is tried in one call instead of 33.
    """
    simple: list[str] = []
    apart: list[re.Pattern[str]] = []
    for body, flags in sources:
        if flags or _BACKREF_RE.search(body):
            apart.append(re.compile(body, flags))
        else:
            simple.append(body)
    if len(simple) > 1:
        try:
            return (re.compile("|".join(f"(?:{body})" for body in simple)), *apart)
        except (re.error, OverflowError, RecursionError, ValueError):
            pass
    return (*(re.compile(body) for body in simple), *apart)


class _Builder:
    """Collects the entries of every list, then freezes them into lookup structures."""

    def __init__(self) -> None:
        self.pool = _LabelPool()
        self.hosts = _HostTable(self.pool)
        self.host_kinds: dict[str, frozenset[str]] = {}
        self.networks: dict[int, dict[str, list[tuple[int, int]]]] = {4: {}, 6: {}}
        self.exact: dict[str, dict[str, Labels]] = {}
        self.substrings: dict[str, dict[str, Labels]] = {}
        self.regexes: dict[str, dict[str, list[tuple[str, int]]]] = {}

    def add_network(self, slug: str, entry: str) -> bool:
        network = _parse_network(entry)
        if network is None:
            return False
        version, first, last = network
        self.networks[version].setdefault(slug, []).append((first, last))
        if version == 6 and first >> 32 == _V4_MAPPED_PREFIX and last >> 32 == _V4_MAPPED_PREFIX:
            self.networks[4].setdefault(slug, []).append((first & 0xFFFFFFFF, last & 0xFFFFFFFF))
        return True

    def add_hosts(
        self, slug: str, kinds: frozenset[str], hosts: Iterable[tuple[str, bool]]
    ) -> None:
        self.host_kinds[slug] = self.host_kinds.get(slug, frozenset()) | (kinds & _HOST_KINDS)
        self.hosts.add_all(slug, hosts)

    def add_exact(self, slug: str, kind: str, keys: Iterable[str]) -> None:
        self.pool.label_all(self.exact.setdefault(kind, {}), (k for k in keys if k), slug)

    def add_list(self, info: ListInfo, entries: list[str]) -> None:
        slug, kinds = info.slug, info.kinds
        if not kinds:
            return
        if info.type == "cidr":
            for entry in entries:
                self.add_network(slug, entry)
        elif info.type == "hostname":
            self.add_hosts(slug, kinds, _hosts_of(entries, subdomains=True))
        elif info.type == "string":
            self._add_strings(info, entries)
        elif info.type == "substring":
            keys = [key for key in (entry.strip().lower() for entry in entries) if key]
            for kind in kinds:
                self.pool.label_all(self.substrings.setdefault(kind, {}), keys, slug)
        elif info.type == "regex":
            for entry in entries:
                source = _php_regex_source(entry)
                if source is not None:
                    for kind in kinds:
                        self.regexes.setdefault(kind, {}).setdefault(slug, []).append(source)

    def _add_strings(self, info: ListInfo, entries: list[str]) -> None:
        slug, kinds = info.slug, info.kinds
        rest = entries
        if "ip" in kinds:
            rest = [entry for entry in rest if not self.add_network(slug, entry)]
        if "file_hash" in kinds:
            lowered = [entry.strip().lower() for entry in rest]
            self.add_exact(slug, "file_hash", (key for key in lowered if _HEX_RE.fullmatch(key)))
            rest = [
                entry
                for entry, key in zip(rest, lowered, strict=True)
                if not _HEX_RE.fullmatch(key)
            ]
        if kinds & _HOST_KINDS:
            plain = (entry for entry in rest if "@" not in entry and "/" not in entry)
            self.add_hosts(slug, kinds, _hosts_of(plain, subdomains=False))
        if "url" in kinds:
            self.add_exact(slug, "url", (_exact_key("url", e) for e in rest if "://" in e))
        if "email" in kinds:
            self.add_exact(slug, "email", (_exact_key("email", e) for e in rest if "@" in e))
        for kind in kinds - _HOST_KINDS - {"ip", "file_hash"}:
            self.add_exact(slug, kind, (_exact_key(kind, entry) for entry in rest))

    def add_local(self, name: str, pairs: Iterable[tuple[str, str]]) -> ListInfo:
        kinds: set[str] = set()
        size = 0
        for pair in pairs:
            try:
                raw_kind, raw_value = pair
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"local warning list {name!r}: expected (kind, value) pairs, got {pair!r}",
                    field="extra",
                ) from None
            kind = str(raw_kind).strip().lower()
            value = str(raw_value).strip()
            if kind not in KINDS:
                raise InvalidInput(
                    f"local warning list {name!r}: unknown identifier kind {raw_kind!r}; "
                    f"one of {', '.join(sorted(KINDS))}",
                    field="extra",
                )
            if kind == "ip":
                if not self.add_network(name, value):
                    raise InvalidInput(
                        f"local warning list {name!r}: not an IP address or network: {value!r}",
                        field="extra",
                    )
            elif kind == "domain":
                host = _host_entry(value)
                if host is None:
                    raise InvalidInput(
                        f"local warning list {name!r}: not a domain name: {value!r}",
                        field="extra",
                    )
                self.add_hosts(name, frozenset({"domain"}), [(host[0], False)])
            else:
                key = _exact_key(kind, value)
                if not key:
                    raise InvalidInput(f"local warning list {name!r}: empty value", field="extra")
                self.add_exact(name, kind, [key])
            kinds.add(kind)
            size += 1
        return ListInfo(
            slug=name,
            name=name,
            description="Local list added by the operator (exact values; networks for IPs)",
            version=0,
            type="string",
            kinds=frozenset(kinds),
            size=size,
        )


# --- the index -----------------------------------------------------------------------------


class WarningIndex:
    """The loaded warning lists, ready to say which of them mark a value."""

    def __init__(
        self,
        slugs: Iterable[str] | None = None,
        *,
        extra: Mapping[str, Iterable[tuple[str, str]]] | None = None,
    ) -> None:
        """Load the given list slugs (None -> DEFAULT_LISTS; the single slug "all" -> every list
        shipped). ``extra`` maps a local list name to (kind, canonical) pairs an operator added
        (exact match, and for ip kind a canonical may also be a CIDR network such as
        ``198.51.100.0/24``). Raises :class:`UnknownWarningList` for a slug not shipped and
        :class:`InvalidInput` for a malformed local list."""
        wanted = _resolve_slugs(DEFAULT_LISTS if slugs is None else slugs)
        builder = _Builder()
        infos: list[ListInfo] = []
        for slug in wanted:
            info, entries = _read_list(slug)
            infos.append(info)
            builder.add_list(info, entries)
        for name, pairs in sorted((extra or {}).items()):
            if not isinstance(name, str) or not name.strip():
                raise InvalidInput("a local warning list needs a name", field="extra")
            if name in wanted or name == ALL:
                raise InvalidInput(
                    f"the local warning list {name!r} has the name of a MISP list", field="extra"
                )
            infos.append(builder.add_local(name, pairs))
        self._lists = tuple(sorted(infos, key=lambda info: info.slug))
        self._freeze(builder)

    def _freeze(self, builder: _Builder) -> None:
        pool = builder.pool
        self._v4 = _Intervals.build(builder.networks[4], pool)
        self._v6 = _Intervals.build(builder.networks[6], pool)
        self._hosts = builder.hosts.table
        # Which host-list names apply to each host-bearing kind; None when all of them do.
        self._host_filter: dict[str, frozenset[str] | None] = {}
        every = frozenset(builder.host_kinds)
        for kind in _HOST_KINDS:
            allowed = frozenset(s for s, kinds in builder.host_kinds.items() if kind in kinds)
            if kind != "domain":
                # A mailbox or a page on a big public service is not noise: only reserved
                # names (example.com, .test, .invalid) mark an address or a URL by its host.
                allowed &= _HOST_LISTS_FOR_ADDRESSES
            self._host_filter[kind] = None if allowed == every else allowed
        self._exact = builder.exact
        self._substrings = {k: _Substrings(v) for k, v in builder.substrings.items()}
        self._regexes: dict[str, _Patterns] = {
            kind: tuple(
                (slug, _combine_patterns(sources)) for slug, sources in sorted(lists.items())
            )
            for kind, lists in builder.regexes.items()
        }
        dispatch: dict[str, Callable[[str], Labels]] = {}
        kinds: set[str] = set()
        for info in self._lists:
            kinds |= info.kinds
        for kind in sorted(kinds):
            if kind == "ip":
                dispatch[kind] = self._match_ip
            elif kind == "domain":
                dispatch[kind] = self._match_domain
            elif kind == "url":
                dispatch[kind] = self._match_url
            elif kind == "email":
                dispatch[kind] = self._match_email
            elif kind == "phone":
                dispatch[kind] = self._match_phone
            else:
                dispatch[kind] = _bind_generic(self, kind)
        self._dispatch = dispatch

    @property
    def lists(self) -> tuple[ListInfo, ...]:
        """The loaded lists (MISP and local), sorted by slug."""
        return self._lists

    def match(self, kind: str, canonical: str) -> tuple[str, ...]:
        """Sorted slugs (or local list names) of every list that marks this value; () if none.
        Never raises on any string input (garbage -> ())."""
        if len(canonical) > _MAX_VALUE:
            return _NONE
        matcher = self._dispatch.get(kind)
        if matcher is None:
            return _NONE
        return matcher(canonical)

    # kind-specific matchers ------------------------------------------------------------------

    def _generic(self, kind: str, value: str) -> Labels:
        found = _NONE
        table = self._exact.get(kind)
        if table:
            found = table.get(_exact_key(kind, value), _NONE)
        substrings = self._substrings.get(kind)
        if substrings is not None:
            found = _union(found, substrings.find(value))
        for slug, patterns in self._regexes.get(kind, ()):
            if slug not in found and any(p.search(value) is not None for p in patterns):
                found = _union(found, (slug,))
        return found

    def _match_host(self, kind: str, host: str) -> Labels:
        hosts = self._hosts
        if not hosts:
            return _NONE
        host = host.lower().rstrip(".")
        exact, found = hosts.get(host, (_NONE, _NONE))
        found = _union(exact, found)
        dot = host.find(".")
        while dot >= 0:
            host = host[dot + 1 :]
            pair = hosts.get(host)
            if pair is not None and pair[1]:
                found = _union(found, pair[1])
            dot = host.find(".")
        allowed = self._host_filter[kind]
        if found and allowed is not None:
            found = tuple(slug for slug in found if slug in allowed)
        return found

    def _match_ip(self, value: str) -> Labels:
        parsed = _parse_ip(value.strip())
        found = _NONE
        if parsed is not None:
            version, number = parsed
            if version == 4:
                found = self._v4.find(number)
            else:
                found = self._v6.find(number)
                if number >> 32 == _V4_MAPPED_PREFIX:
                    found = _union(found, self._v4.find(number & 0xFFFFFFFF))
        if "ip" in self._substrings or "ip" in self._regexes:
            found = _union(found, self._generic("ip", value))
        return found

    def _match_domain(self, value: str) -> Labels:
        return _union(self._match_host("domain", value), self._generic("domain", value))

    def _match_url(self, value: str) -> Labels:
        host = _url_host(value)
        found = self._match_host("url", host) if host else _NONE
        return _union(found, self._generic("url", value))

    def _match_email(self, value: str) -> Labels:
        local, at, domain = value.rpartition("@")
        found = self._match_host("email", domain) if at and local and domain else _NONE
        return _union(found, self._generic("email", value))

    def _match_phone(self, value: str) -> Labels:
        found = _NONE
        table = self._exact.get("phone")
        variants = _phone_variants(value.strip())
        if table:
            for variant in variants:
                found = _union(found, table.get(variant, _NONE))
        substrings = self._substrings.get("phone")
        if substrings is not None:
            found = _union(found, substrings.find(value))
        for slug, patterns in self._regexes.get("phone", ()):
            if slug not in found and any(p.fullmatch(v) for p in patterns for v in variants):
                found = _union(found, (slug,))
        return found


def _bind_generic(index: WarningIndex, kind: str) -> Callable[[str], Labels]:
    def matcher(value: str) -> Labels:
        return index._generic(kind, value)

    return matcher


def _resolve_slugs(slugs: Iterable[str]) -> tuple[str, ...]:
    """The shipped slugs asked for, deduplicated and sorted; "all" means every one."""
    asked = [slugs] if isinstance(slugs, str) else list(slugs)
    shipped = _shipped_slugs()
    if ALL in asked:
        return shipped
    known = set(shipped)
    unknown = tuple(sorted({s for s in asked if s not in known}, key=str))
    if unknown:
        hints = [
            f"{s!r} (did you mean {', '.join(map(repr, close))}?)"
            if (close := difflib.get_close_matches(str(s), shipped, n=3))
            else repr(s)
            for s in unknown
        ]
        noun = "list" if len(unknown) == 1 else "lists"
        raise UnknownWarningList(
            f"unknown MISP warning {noun}: {', '.join(hints)}. A slug is the directory name of a "
            f"list shipped with pymispwarninglists (e.g. rfc1918, tranco10k), or {ALL!r}; "
            "crossborder.selectors.warninglists.available_lists() lists them.",
            unknown=unknown,
        )
    return tuple(sorted(set(asked)))


@lru_cache(maxsize=8)
def get_index(slugs: tuple[str, ...] | None = None) -> WarningIndex:
    """A shared :class:`WarningIndex` of ``slugs`` (None -> DEFAULT_LISTS), built once."""
    return WarningIndex(slugs)
