"""Pure correlation rules: index keys of a value and how strongly two sightings match.

No database here. The service stores the keys computed here and asks :func:`ip_match` how two
sightings of one IP address relate.

* ``digest(kind, canonical)`` — the value's key in the global index.
* ``related_key(kind, canonical)`` — the key shared by variants of one thing: an EVM address on
  every chain (``eth:0xAb…`` and ``bsc:0xAb…``), a mailbox with and without Gmail dots and
  ``+tags`` (``j.doe+x@gmail.com`` → ``jdoe@gmail.com``), an IPv4 address and its IPv4-mapped
  IPv6 form.
* ``ip_key(canonical)`` — a version byte and the packed address: byte order is address order,
  so a network is the closed range ``network_range(net)`` of keys.

IP + port + time. A public IPv4 address is shared: by every subscriber behind carrier-grade
NAT (100.64.0.0/10) at the same moment, and by successive subscribers of a dynamic pool over
time. Two sightings of one address are therefore:

* ``match`` — the same source port (or no port on either side) *and* overlapping time windows
  (widened by ``slack`` for clock skew), or no time on either side;
* ``weak`` — nothing contradicts, but something needed is missing: for a CGNAT address either
  side lacks the port or the time, and those are what tell subscribers apart;
* ``mismatch`` — different source ports, or time windows that do not overlap: most likely a
  different subscriber. Shown apart, never counted as a hit.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

GMAIL_DOMAINS: Final = frozenset({"gmail.com", "googlemail.com"})
# Providers that deliver ``local+tag@`` to ``local@``.
PLUS_TAG_DOMAINS: Final = GMAIL_DOMAINS | frozenset(
    {"outlook.com", "hotmail.com", "live.com", "proton.me", "protonmail.com", "icloud.com"}
)
_CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")
IPV6_SUBSCRIBER_PREFIX: Final = 64


class Strength(StrEnum):
    MATCH = "match"
    WEAK = "weak"
    MISMATCH = "mismatch"


def digest(kind: str, canonical: str) -> bytes:
    return hashlib.sha256(f"{kind}\x1f{canonical}".encode()).digest()[:16]


def _ip(canonical: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(canonical)
    except ValueError:
        return None


def related_form(kind: str, canonical: str) -> str | None:
    """The canonical form shared by the variants of this value, or None if it has none."""
    if kind == "crypto":
        _chain, sep, address = canonical.partition(":")
        if sep and address.startswith("0x") and len(address) == 42:
            return f"evm:{address}"
        return None
    if kind == "email":
        local, sep, domain = canonical.rpartition("@")
        if not sep or domain not in PLUS_TAG_DOMAINS:
            return None
        local = local.split("+", 1)[0]
        if domain in GMAIL_DOMAINS:
            local = local.replace(".", "").lower()
            domain = "gmail.com"
        return f"{local}@{domain}"
    if kind == "ip":
        addr = _ip(canonical)
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        if isinstance(addr, ipaddress.IPv4Address):
            return str(addr)
    return None


def related_key(kind: str, canonical: str) -> bytes | None:
    form = related_form(kind, canonical)
    return None if form is None else digest(f"{kind}~", form)


def ip_key(canonical: str) -> bytes | None:
    addr = _ip(canonical)
    if addr is None:
        return None
    return bytes([addr.version]) + addr.packed


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR network (``198.51.100.0/24``, ``2001:db8::/48``), or None if ``text`` is not one.

    Host bits must be zero: ``10.0.0.1/8`` is refused rather than silently widened.
    """
    if "/" not in text:
        return None
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError:
        return None


def network_range(
    net: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> tuple[bytes, bytes]:
    version = bytes([net.version])
    return version + net.network_address.packed, version + net.broadcast_address.packed


def subscriber_range(canonical: str) -> tuple[bytes, bytes] | None:
    """The keys of the IPv6 /64 around an IPv6 address (one subscriber's prefix), else None."""
    addr = _ip(canonical)
    if not isinstance(addr, ipaddress.IPv6Address) or addr.ipv4_mapped is not None:
        return None
    net = ipaddress.IPv6Network(f"{addr}/{IPV6_SUBSCRIBER_PREFIX}", strict=False)
    return network_range(net)


def is_cgnat(canonical: str) -> bool:
    addr = _ip(canonical)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT


@dataclass(frozen=True)
class Sighting:
    """When and on which source port an IP address was seen (UTC, either bound optional)."""

    port: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    @property
    def window(self) -> tuple[datetime, datetime] | None:
        if self.start is None and self.end is None:
            return None
        start = self.start or self.end
        end = self.end or self.start
        assert start is not None
        assert end is not None
        return start, end


def windows_overlap(
    a: tuple[datetime, datetime], b: tuple[datetime, datetime], slack: timedelta
) -> bool:
    return a[0] - slack <= b[1] and b[0] - slack <= a[1]


def ip_match(
    canonical: str, a: Sighting, b: Sighting, *, slack: timedelta = timedelta(seconds=0)
) -> Strength:
    """How two sightings of the address ``canonical`` relate (see the module docstring)."""
    if a.port is not None and b.port is not None and a.port != b.port:
        return Strength.MISMATCH
    wa, wb = a.window, b.window
    if wa is not None and wb is not None and not windows_overlap(wa, wb, slack):
        return Strength.MISMATCH
    if is_cgnat(canonical) and (a.port is None or b.port is None or wa is None or wb is None):
        return Strength.WEAK
    return Strength.MATCH
