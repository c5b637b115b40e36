"""Who may receive an intelligence object: TLP 2.0 and law-enforcement handling codes (pure).

TLP 2.0 (FIRST, 2022) as STIX marking definitions (the ids of the OASIS TLP 2.0 extension;
TLP 1.0 ids of the STIX 2.1 specification are read as their 2.0 equivalents, WHITE as CLEAR):

* **CLEAR** — no limit.
* **GREEN** — the community: any authority or partner the node shares a collection with, never
  a public feed.
* **AMBER** — the recipient's organisation and its clients, on a need-to-know basis: readable by
  those a collection grants access to; a recipient may not pass it on to another party.
* **AMBER+STRICT** — the recipient's organisation only: here, only the authority that holds it
  (its originator); it never leaves the authority.
* **RED** — named recipients only (``recipients``), never passed on.

Handling codes follow the Europol 4x4 system used by law enforcement:

* source reliability **A** (completely reliable), **B** (usually reliable), **C** (not usually
  reliable), **X** (cannot be assessed);
* information accuracy **1** (known to be true without reservation), **2** (known personally to
  the source but not to the officer), **3** (not known personally to the source but corroborated),
  **4** (cannot be judged);
* handling **H0** (may be used for any law-enforcement purpose), **H1** (may not be passed on
  without the originator's permission), **H2** (may not be used as evidence in judicial
  proceedings without the originator's permission), **H3** (other restrictions, in ``conditions``).

The rules answer two questions, for every path (TAXII, federation, export, web):

* :func:`may_read` — may this audience see the object here?
* :func:`may_pass_on` — may this holder send it to that audience (a peer, an export, a feed)?

An object with no TLP marking is treated as AMBER: unmarked intelligence from a partner is not
public, and nothing in this module ever widens what a marking allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


class Tlp(StrEnum):
    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"


TLP2_IDS: Final[dict[Tlp, str]] = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP1_IDS: Final[dict[str, Tlp]] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": Tlp.CLEAR,  # TLP:WHITE
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": Tlp.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": Tlp.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": Tlp.RED,
}
TLP_BY_ID: Final[dict[str, Tlp]] = {v: k for k, v in TLP2_IDS.items()} | TLP1_IDS
TLP2_EXTENSION: Final = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
# Strictest first: when an object carries several TLP markings, the strictest one applies.
_ORDER: Final = (Tlp.RED, Tlp.AMBER_STRICT, Tlp.AMBER, Tlp.GREEN, Tlp.CLEAR)
DEFAULT_TLP: Final = Tlp.AMBER

SOURCE_RELIABILITY: Final = ("A", "B", "C", "X")
INFORMATION_ACCURACY: Final = ("1", "2", "3", "4")


class HandlingCode(StrEnum):
    H0 = "H0"
    H1 = "H1"  # not to be passed on without the originator's permission
    H2 = "H2"  # not to be used as evidence without the originator's permission
    H3 = "H3"  # other restrictions (see conditions)


class AudienceKind(StrEnum):
    ORIGINATOR = "originator"  # the authority that holds the object as its own
    AUTHORITY = "authority"  # another authority (this node or a partner's) granted the collection
    PARTNER = "partner"  # a private partner (security company) through its API token
    PUBLIC = "public"  # anyone: an open feed


@dataclass(frozen=True)
class Handling:
    """What an object's markings say, read once when it is stored."""

    tlp: Tlp = DEFAULT_TLP
    recipients: frozenset[int] = frozenset()  # authority ids, for RED
    partner_recipients: frozenset[str] = frozenset()  # partner (token) names, for RED
    codes: frozenset[HandlingCode] = frozenset()
    source_reliability: str | None = None
    information_accuracy: str | None = None
    conditions: str = ""


@dataclass(frozen=True)
class Audience:
    kind: AudienceKind
    authority_id: int | None = None
    partner: str | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    details: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.allowed


ALLOW: Final = Decision(True)


def tlp_of(marking_refs: Iterable[str]) -> Tlp | None:
    """The strictest TLP among an object's ``object_marking_refs``, or None if it has none."""
    found = {TLP_BY_ID[ref] for ref in marking_refs if ref in TLP_BY_ID}
    for level in _ORDER:
        if level in found:
            return level
    return None


def _named(handling: Handling, audience: Audience) -> bool:
    if audience.kind is AudienceKind.PARTNER:
        return audience.partner is not None and audience.partner in handling.partner_recipients
    return audience.authority_id is not None and audience.authority_id in handling.recipients


def may_read(handling: Handling, origin_authority_id: int | None, audience: Audience) -> Decision:
    """May ``audience`` see an object held here (its access to the collection already checked)."""
    if audience.kind is AudienceKind.ORIGINATOR or (
        origin_authority_id is not None
        and audience.authority_id == origin_authority_id
        and audience.kind is AudienceKind.AUTHORITY
    ):
        return ALLOW
    match handling.tlp:
        case Tlp.CLEAR:
            return ALLOW
        case Tlp.GREEN | Tlp.AMBER:
            if audience.kind is AudienceKind.PUBLIC:
                return Decision(False, f"TLP:{handling.tlp.upper()} is not for public release")
            return ALLOW
        case Tlp.AMBER_STRICT:
            return Decision(False, "TLP:AMBER+STRICT stays within the originating authority")
        case Tlp.RED:
            if _named(handling, audience):
                return ALLOW
            return Decision(False, "TLP:RED is for its named recipients only")


def may_pass_on(
    handling: Handling,
    origin_authority_id: int | None,
    holder_authority_id: int | None,
    audience: Audience,
) -> Decision:
    """May the holder send the object to ``audience`` (a peer, an export, a feed, a partner)?

    Only the originator passes on anything but CLEAR and GREEN; H1 forbids even that to
    anyone but the originator; and the audience must be allowed to read it at all.
    """
    originator = holder_authority_id is not None and holder_authority_id == origin_authority_id
    if HandlingCode.H1 in handling.codes and not originator:
        return Decision(
            False, "handling code H1: not to be passed on without the originator's permission"
        )
    if handling.tlp in (Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED) and not originator:
        return Decision(False, f"TLP:{handling.tlp.upper()} may not be passed on by a recipient")
    return may_read(handling, origin_authority_id, audience)
