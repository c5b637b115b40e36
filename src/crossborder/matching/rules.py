"""Pure rules of hit/no-hit: when a query is refused, and how strong a hit is.

No database, no clock: the service counts what a partner used today and asks :func:`refusal`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from crossborder.matching.protocol import ElementKind

PURPOSE_MIN: Final = 10
PURPOSE_MAX: Final = 2000
CASE_REFERENCE_MAX: Final = 200
_CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")


class RefusalCode(StrEnum):
    NO_LEGAL_BASIS = "NO_LEGAL_BASIS"
    NOT_ANSWERING = "NOT_ANSWERING"
    BLOCKED = "BLOCKED"
    TOO_LARGE = "TOO_LARGE"
    DAILY_QUERIES = "DAILY_QUERIES"
    DAILY_ELEMENTS = "DAILY_ELEMENTS"
    REPLAY = "REPLAY"
    MALFORMED = "MALFORMED"
    PROTOCOL = "PROTOCOL"


@dataclass(frozen=True)
class Refusal:
    code: RefusalCode
    reason: str  # English, for the other node's officer and the logs; never holds data


@dataclass(frozen=True)
class Allowance:
    """What one local authority grants one partner authority."""

    answers: bool
    blocked: bool
    max_query_elements: int
    daily_queries: int
    daily_elements: int


@dataclass(frozen=True)
class Usage:
    """What the partner was answered over the last 24 hours."""

    queries: int
    elements: int


def refusal(allowance: Allowance, used: Usage, asked: int) -> Refusal | None:
    """Why a query of ``asked`` elements is refused, or None: the rules in the order checked."""
    if not allowance.answers:
        return Refusal(RefusalCode.NOT_ANSWERING, "this authority does not answer hit/no-hit")
    if allowance.blocked:
        return Refusal(RefusalCode.BLOCKED, "this authority does not answer your queries")
    if asked > allowance.max_query_elements:
        return Refusal(
            RefusalCode.TOO_LARGE,
            f"{asked} elements asked; at most {allowance.max_query_elements} per query",
        )
    if used.queries + 1 > allowance.daily_queries:
        return Refusal(
            RefusalCode.DAILY_QUERIES,
            f"at most {allowance.daily_queries} queries in 24 hours; try again later",
        )
    if used.elements + asked > allowance.daily_elements:
        left = max(allowance.daily_elements - used.elements, 0)
        return Refusal(
            RefusalCode.DAILY_ELEMENTS,
            f"at most {allowance.daily_elements} elements in 24 hours; {left} left",
        )
    return None


class Strength(StrEnum):
    MATCH = "match"  # the same value (for IP + port + time: the same port in the same hour)
    WEAK = "weak"  # the same IP address, but not the port and hour asked, or a shared address
    VARIANT = "variant"  # only a variant: the address on another chain, a Gmail spelling


def strength(kind: str, canonical: str, timed: bool, matched: Collection[ElementKind]) -> Strength:
    """How strong a partner's hit on one identifier is, from the elements that matched."""
    if ElementKind.BUCKET in matched:
        return Strength.MATCH
    if ElementKind.VALUE in matched:
        if kind == "ip" and (timed or _shared(canonical)):
            return Strength.WEAK
        return Strength.MATCH
    return Strength.VARIANT


def _shared(canonical: str) -> bool:
    try:
        return ipaddress.ip_address(canonical) in _CGNAT
    except ValueError:
        return False
