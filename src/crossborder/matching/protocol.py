"""Hit/no-hit between nodes: what is matched, and the private set intersection that matches it.

Pure rules and the calls into ``openmined-psi`` (ECDH-PSI on P-256 from OpenMined, C++ with
Python bindings); no database, no clock. The service stores and sends what this module makes.

**Elements.** Both sides turn identifiers into 16-byte *elements* computed from canonical
forms only, so both compute the same bytes for the same thing:

* ``value`` — ``correlate.digest(kind, canonical)``, the identifier index's own key;
* ``related`` — ``correlate.related_key``: one EVM address on every chain, a Gmail mailbox
  without dots or ``+tag``, an IPv4 address and its IPv4-mapped IPv6 form;
* ``bucket`` — an IP address *with* a source port *and* a time window becomes one element
  per UTC hour (``BUCKET_SECONDS``) the window touches: SHA-256 over address, port and the
  hour. Two sightings share an element when they share a port and an hour.

Trade-off of the hour buckets (docs/matching.md): a coarser bucket lets sightings up to two
buckets apart match (different subscribers of a busy CGNAT address within the same hour), a
finer one multiplies elements (a day-long window is 24 elements at one hour, 1,440 at one
minute) and misses sightings whose clocks straddle a boundary, which the querier widens by
its configured slack. A window wider than ``MAX_RESPONDER_BUCKETS`` hours yields no bucket
elements on the responder (only the address); a querier's window is capped at
``MAX_QUERY_BUCKETS`` hours and refused beyond.

**Protocol** (``PROTOCOL``). The responder keeps, per authority, a secret P-256 scalar ``s``
and its elements encrypted as ``H(e)^s`` in Golomb-compressed sets (``ServerSetup``), built
once and rebuilt by segment when its data changes. The querier picks a fresh scalar ``c`` per
query and partner, sends ``H(e)^c`` for its elements; the responder answers ``H(e)^(cs)`` in
the same order plus its segments; the querier removes ``c`` and tests ``H(e)^s`` against each
segment. The responder learns how many elements were asked and nothing else; the querier
learns which of its elements the responder holds (and the size of the responder's set, as
every PSI of this kind reveals); without ``s`` the segments test nothing, and ``s`` is used
only inside a rate-limited answer. False positives: at most ``FPR`` per query of the maximum
size, per segment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import private_set_intersection.python as psi
from google.protobuf.message import DecodeError

from crossborder.selectors import correlate

PROTOCOL: Final = "ecdh-psi-p256/openmined-psi-2/gcs/v1"
BUCKET_SECONDS: Final = 3600
MAX_QUERY_BUCKETS: Final = 72
MAX_RESPONDER_BUCKETS: Final = 24 * 7
ELEMENT_BYTES: Final = 16
POINT_BYTES: Final = 33  # a compressed P-256 point, what every request/response element is
FPR: Final = 1e-6  # false-positive probability for a whole query of the maximum size
SEGMENT_CAPACITY: Final = 131_072
#: The largest query: its request (33-byte points, base64 in JSON) fits one federation envelope.
MAX_QUERY_ELEMENTS: Final = 150_000


class ElementKind(StrEnum):
    VALUE = "value"
    RELATED = "related"
    BUCKET = "bucket"


class ProtocolError(ValueError):
    """Bytes from the other side that are not what the protocol says (a clear reason)."""


class TooLarge(ProtocolError):
    """More elements than the responder answers in one query."""


@dataclass(frozen=True)
class Identifier:
    """One identifier as the querier holds it (canonical form; optional port and window)."""

    kind: str
    canonical: str
    port: int | None = None
    seen_from: datetime | None = None
    seen_until: datetime | None = None


@dataclass(frozen=True)
class Element:
    data: bytes
    kind: ElementKind
    bucket: datetime | None = None


def _bucket_index(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("times must carry a time zone")
    return int(when.timestamp()) // BUCKET_SECONDS


def bucket_start(index: int) -> datetime:
    return datetime.fromtimestamp(index * BUCKET_SECONDS, tz=UTC)


def buckets(seen_from: datetime, seen_until: datetime, *, slack: timedelta) -> range:
    """The hour buckets a window touches, widened by ``slack`` on both sides."""
    start = _bucket_index(min(seen_from, seen_until) - slack)
    end = _bucket_index(max(seen_from, seen_until) + slack)
    return range(start, end + 1)


def bucket_element(canonical: str, port: int, index: int) -> bytes:
    text = f"ipport\x1f{canonical}\x1f{port}\x1f{index * BUCKET_SECONDS}"
    return hashlib.sha256(text.encode()).digest()[:ELEMENT_BYTES]


def query_elements(item: Identifier, *, slack: timedelta = timedelta(0)) -> list[Element]:
    """What the querier asks for one identifier (the value first)."""
    out = [Element(correlate.digest(item.kind, item.canonical), ElementKind.VALUE)]
    related = correlate.related_key(item.kind, item.canonical)
    if related is not None:
        out.append(Element(related, ElementKind.RELATED))
    if item.kind == "ip" and item.port is not None and item.seen_from is not None:
        window = buckets(item.seen_from, item.seen_until or item.seen_from, slack=slack)
        if len(window) > MAX_QUERY_BUCKETS:
            raise ValueError(
                f"a time window may span at most {MAX_QUERY_BUCKETS} hours "
                f"(this one spans {len(window)})"
            )
        out += [
            Element(
                bucket_element(item.canonical, item.port, i), ElementKind.BUCKET, bucket_start(i)
            )
            for i in window
        ]
    return out


def responder_elements(
    value_digest: bytes,
    related: bytes | None,
    kind: str,
    canonical: str,
    sightings: Iterable[tuple[int | None, datetime | None, datetime | None]],
) -> set[bytes]:
    """What a responder offers for one value it holds and its (port, from, until) sightings."""
    out = {value_digest}
    if related is not None:
        out.add(related)
    if kind != "ip":
        return out
    for port, seen_from, seen_until in sightings:
        if port is None or seen_from is None:
            continue
        window = buckets(seen_from, seen_until or seen_from, slack=timedelta(0))
        if len(window) <= MAX_RESPONDER_BUCKETS:
            out.update(bucket_element(canonical, port, i) for i in window)
    return out


# -- the PSI calls (openmined-psi) -------------------------------------------------------------


def new_key() -> bytes:
    """A fresh secret scalar (32 bytes) for a responder or for one query to one partner."""
    return bytes(psi.client.CreateWithNewKey(True).GetPrivateKeyBytes())


def build_setup(key: bytes, elements: Sequence[bytes], max_query: int) -> bytes:
    """The responder's encrypted, compressed set of ``elements`` (one segment)."""
    server = psi.server.CreateFromKey(key, True)
    setup = server.CreateSetupMessage(FPR, max_query, list(elements), psi.DataStructure.GCS)
    return bytes(setup.SerializeToString())


def make_request(key: bytes, elements: Sequence[bytes]) -> bytes:
    client = psi.client.CreateFromKey(key, True)
    return bytes(client.CreateRequest(list(elements)).SerializeToString())


def parse_request(data: bytes, *, max_elements: int) -> Any:
    """A querier's request, checked before any curve arithmetic is spent on it."""
    request = psi.Request()
    try:
        request.ParseFromString(data)
    except DecodeError:
        raise ProtocolError("the request is not a PSI request") from None
    count = len(request.encrypted_elements)
    if count == 0:
        raise ProtocolError("the request holds no elements")
    if not request.reveal_intersection:
        raise ProtocolError("the request must ask for the intersection itself")
    if count > max_elements:
        raise TooLarge(f"the request holds {count} elements; at most {max_elements}")
    if any(len(e) != POINT_BYTES for e in request.encrypted_elements):
        raise ProtocolError("the request holds something that is not a compressed point")
    return request


def request_size(data: bytes) -> int:
    """How many elements a serialized request holds (no validation)."""
    request = psi.Request()
    try:
        request.ParseFromString(data)
    except DecodeError:
        raise ProtocolError("the request is not a PSI request") from None
    return len(request.encrypted_elements)


def answer_request(key: bytes, request: Any) -> bytes:
    """``H(e)^(cs)`` for each element of a parsed request, in its order."""
    server = psi.server.CreateFromKey(key, True)
    try:
        response = server.ProcessRequest(request)
    except RuntimeError:
        raise ProtocolError("the request holds a point that is not on the curve") from None
    return bytes(response.SerializeToString())


def intersect(key: bytes, setups: Sequence[bytes], response: bytes, size: int) -> set[int]:
    """Positions of the querier's elements the responder holds, over all its segments."""
    parsed = psi.Response()
    try:
        parsed.ParseFromString(response)
    except DecodeError:
        raise ProtocolError("the answer is not a PSI response") from None
    if len(parsed.encrypted_elements) != size:
        raise ProtocolError(
            f"the answer holds {len(parsed.encrypted_elements)} elements for {size} asked"
        )
    client = psi.client.CreateFromKey(key, True)
    found: set[int] = set()
    for raw in setups:
        setup = psi.ServerSetup()
        try:
            setup.ParseFromString(raw)
        except DecodeError:
            raise ProtocolError("the answer holds a segment that is not a PSI setup") from None
        if not setup.HasField("gcs"):
            raise ProtocolError("the answer holds a segment of another kind than GCS")
        try:
            found.update(int(i) for i in client.GetIntersection(setup, parsed))
        except RuntimeError:
            raise ProtocolError("the answer does not decode against its segments") from None
    return {i for i in found if 0 <= i < size}
