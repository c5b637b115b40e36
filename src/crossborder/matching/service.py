"""Hit/no-hit with partner authorities: the encrypted set this node answers from, the queries
its officers send, the answers to partners' queries, and hits turned into draft requests.

The wire messages (``match.query``, ``match.answer``, ``match.refused``) travel in the
federation's signed and encrypted envelopes; ``exchange`` holds their handlers, this module
the work. What crosses is only PSI material (``protocol``) and the query's purpose, case
reference and offences, never an identifier in clear.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from crossborder.audit.service import record
from crossborder.auth.permissions import SYSTEM, Permission, Principal, require
from crossborder.core import sealing
from crossborder.core.clock import utc_now
from crossborder.core.errors import InvalidInput, NotFound
from crossborder.db.session import atomic, unit_of_work
from crossborder.directory import policy as directory_policy
from crossborder.directory import schemas as directory_schemas
from crossborder.directory import service as directory
from crossborder.directory.models import Authority, Node
from crossborder.directory.taxonomy import Channel, DataCategory
from crossborder.federation import parties
from crossborder.federation import service as federation
from crossborder.matching import keys, protocol, rules
from crossborder.matching.models import (
    MatchAnswerPart,
    MatchElement,
    MatchHit,
    MatchInbound,
    MatchKey,
    MatchOptOut,
    MatchPartnerRule,
    MatchPolicy,
    MatchQuery,
    MatchQueryItem,
    MatchSegment,
    MatchTarget,
)
from crossborder.selectors import service as selectors
from crossborder.selectors.models import IdentOccurrence, IdentSet, IdentValue

log = logging.getLogger(__name__)

QUERY: Final = "match.query"
ANSWER: Final = "match.answer"
REFUSED: Final = "match.refused"

#: Records whose identifiers an authority offers: its requests and its identifier sets.
#: Intelligence objects are exchanged under their own markings (TAXII), not matched here.
ELIGIBLE_SCOPES: Final = ("request", "set")
OPT_OUT_SCOPES: Final = ELIGIBLE_SCOPES

DEFAULT_MAX_QUERY_ELEMENTS: Final = 100_000
DEFAULT_DAILY_QUERIES: Final = 50
DEFAULT_DAILY_ELEMENTS: Final = 500_000
MAX_QUERY_ITEMS: Final = 100_000
WINDOW: Final = timedelta(hours=24)
REFRESH_EVERY: Final = timedelta(minutes=10)
#: PSI bytes per answer envelope: base64 in the JSON body makes 8 MB, under the federation's
#: body limit (``federation.service.MAX_BODY_BYTES``, 8 MiB).
PART_BYTES: Final = 6_000_000
_INSERT_CHUNK: Final = 10_000
POLICE_CATEGORIES: Final = (DataCategory.PERSONAL.value, DataCategory.INTELLIGENCE.value)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, *, field: str, limit: int) -> bytes:
    if not isinstance(text, str) or len(text) > limit * 4 // 3 + 4:
        raise protocol.ProtocolError(f"{field}: base64 text of at most {limit} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise protocol.ProtocolError(f"{field}: not base64") from None


# -- policy of a local authority (responder side) -------------------------------------------


def _local_authority(session: Session, authority_id: int) -> Authority:
    authority = session.get(Authority, authority_id)
    if authority is None or not authority.is_local:
        raise NotFound("no such authority on this node")
    return authority


def policy_of(session: Session, authority_id: int) -> MatchPolicy:
    """The authority's policy; the defaults (not stored) when none was set."""
    found = session.scalar(select(MatchPolicy).where(MatchPolicy.authority_id == authority_id))
    if found is not None:
        return found
    return MatchPolicy(
        authority_id=authority_id,
        answers=True,
        excluded_kinds=[],
        max_query_elements=DEFAULT_MAX_QUERY_ELEMENTS,
        daily_queries=DEFAULT_DAILY_QUERIES,
        daily_elements=DEFAULT_DAILY_ELEMENTS,
    )


@atomic
def set_policy(
    session: Session,
    actor: Principal,
    authority_id: int,
    *,
    answers: bool | None = None,
    excluded_kinds: Sequence[str] | None = None,
    max_query_elements: int | None = None,
    daily_queries: int | None = None,
    daily_elements: int | None = None,
) -> MatchPolicy:
    require(actor, Permission.MATCHING_MANAGE)
    _local_authority(session, authority_id)
    current = policy_of(session, authority_id)
    if current not in session:
        session.add(current)
    if excluded_kinds is not None:
        from crossborder.selectors.normalize import KINDS

        unknown = sorted(set(excluded_kinds) - set(KINDS))
        if unknown:
            raise InvalidInput(f"unknown identifier kinds: {', '.join(unknown)}", field="kinds")
        current.excluded_kinds = sorted(set(excluded_kinds))
    if max_query_elements is not None:
        if not 1 <= max_query_elements <= protocol.MAX_QUERY_ELEMENTS:
            raise InvalidInput(
                f"from 1 to {protocol.MAX_QUERY_ELEMENTS:,} elements (what one envelope carries)",
                field="max_query_elements",
            )
        current.max_query_elements = max_query_elements
    for name, value in (("daily_queries", daily_queries), ("daily_elements", daily_elements)):
        if value is not None:
            if not 0 <= value <= 100_000_000:
                raise InvalidInput("from 0 to 100,000,000", field=name)
            setattr(current, name, value)
    if answers is not None:
        current.answers = answers
    current.updated_by_label = actor.label[:200]
    current.updated_at = utc_now()
    session.flush()
    record(
        session,
        actor=actor,
        action="matching.policy_changed",
        object_type="authority",
        object_id=authority_id,
        details={
            "answers": current.answers,
            "excluded_kinds": current.excluded_kinds,
            "max_query_elements": current.max_query_elements,
            "daily_queries": current.daily_queries,
            "daily_elements": current.daily_elements,
        },
    )
    return current


@atomic
def set_partner_rule(
    session: Session,
    actor: Principal,
    authority_id: int,
    partner_authority_id: int,
    *,
    blocked: bool = False,
    daily_queries: int | None = None,
    daily_elements: int | None = None,
) -> MatchPartnerRule:
    require(actor, Permission.MATCHING_MANAGE)
    _local_authority(session, authority_id)
    partner = session.get(Authority, partner_authority_id)
    if partner is None or partner.is_local:
        raise InvalidInput("a partner is an authority of another node", field="partner")
    rule = session.scalar(
        select(MatchPartnerRule).where(
            MatchPartnerRule.authority_id == authority_id,
            MatchPartnerRule.partner_authority_id == partner_authority_id,
        )
    )
    if rule is None:
        rule = MatchPartnerRule(authority_id=authority_id, partner_authority_id=partner.id)
        session.add(rule)
    for name, value in (("daily_queries", daily_queries), ("daily_elements", daily_elements)):
        if value is not None and not 0 <= value <= 100_000_000:
            raise InvalidInput("from 0 to 100,000,000", field=name)
    rule.blocked = blocked
    rule.daily_queries = daily_queries
    rule.daily_elements = daily_elements
    rule.updated_by_label = actor.label[:200]
    rule.updated_at = utc_now()
    session.flush()
    record(
        session,
        actor=actor,
        action="matching.partner_rule_changed",
        object_type="authority",
        object_id=authority_id,
        details={
            "partner_authority_id": partner.id,
            "blocked": blocked,
            "daily_queries": daily_queries,
            "daily_elements": daily_elements,
        },
    )
    return rule


def partner_rules(session: Session, authority_id: int) -> list[MatchPartnerRule]:
    return list(
        session.scalars(
            select(MatchPartnerRule)
            .where(MatchPartnerRule.authority_id == authority_id)
            .order_by(MatchPartnerRule.partner_authority_id)
        )
    )


def allowance(session: Session, authority_id: int, partner_id: int) -> rules.Allowance:
    base = policy_of(session, authority_id)
    rule = session.scalar(
        select(MatchPartnerRule).where(
            MatchPartnerRule.authority_id == authority_id,
            MatchPartnerRule.partner_authority_id == partner_id,
        )
    )
    return rules.Allowance(
        answers=base.answers,
        blocked=bool(rule and rule.blocked),
        max_query_elements=base.max_query_elements,
        daily_queries=(
            rule.daily_queries if rule and rule.daily_queries is not None else base.daily_queries
        ),
        daily_elements=(
            rule.daily_elements if rule and rule.daily_elements is not None else base.daily_elements
        ),
    )


def usage(session: Session, authority_id: int, partner_id: int, now: datetime) -> rules.Usage:
    """What the partner was answered in the last 24 hours (refusals cost nothing)."""
    row = session.execute(
        select(
            func.count(MatchInbound.id), func.coalesce(func.sum(MatchInbound.elements), 0)
        ).where(
            MatchInbound.authority_id == authority_id,
            MatchInbound.partner_authority_id == partner_id,
            MatchInbound.outcome == "answered",
            MatchInbound.received_at > now - WINDOW,
        )
    ).one()
    return rules.Usage(queries=int(row[0]), elements=int(row[1]))


# -- opt-outs --------------------------------------------------------------------------------


def _scope_owner(session: Session, scope_type: str, scope_id: str) -> int:
    if scope_type == "set":
        owner = session.scalar(select(IdentSet.authority_id).where(IdentSet.public_id == scope_id))
    elif scope_type == "request":
        from crossborder.requests.models import CooperationRequest

        owner = session.scalar(
            select(CooperationRequest.sender_authority_id).where(
                CooperationRequest.public_id == scope_id
            )
        )
    else:
        raise InvalidInput(
            f"only {', '.join(OPT_OUT_SCOPES)} records can be kept out", field="scope_type"
        )
    if owner is None:
        raise NotFound(f"no such {scope_type}")
    return int(owner)


@atomic
def opt_out(
    session: Session, actor: Principal, scope_type: str, scope_id: str, *, reason: str = ""
) -> MatchOptOut:
    """Keep one record's identifiers out of what partners can match (from the next refresh)."""
    if not (actor.has(Permission.MATCHING_MANAGE) or actor.has(Permission.MATCHING_QUERY)):
        require(actor, Permission.MATCHING_MANAGE)
    owner = _scope_owner(session, scope_type, scope_id)
    if owner != actor.authority_id and not actor.has(Permission.MATCHING_MANAGE):
        raise NotFound(f"no such {scope_type}")
    found = session.scalar(
        select(MatchOptOut).where(
            MatchOptOut.scope_type == scope_type, MatchOptOut.scope_id == scope_id
        )
    )
    if found is not None:
        return found
    row = MatchOptOut(
        scope_type=scope_type,
        scope_id=scope_id,
        authority_id=owner,
        reason=reason[:300],
        added_by_label=actor.label[:200],
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action="matching.opted_out",
        object_type=scope_type,
        object_id=scope_id,
        details={"authority_id": owner},
    )
    return row


@atomic
def opt_in(session: Session, actor: Principal, scope_type: str, scope_id: str) -> bool:
    row = session.scalar(
        select(MatchOptOut).where(
            MatchOptOut.scope_type == scope_type, MatchOptOut.scope_id == scope_id
        )
    )
    if row is None:
        return False
    if not (actor.has(Permission.MATCHING_QUERY) or actor.has(Permission.MATCHING_MANAGE)):
        require(actor, Permission.MATCHING_MANAGE)
    if row.authority_id != actor.authority_id and not actor.has(Permission.MATCHING_MANAGE):
        raise NotFound(f"no such {scope_type}")
    session.delete(row)
    record(
        session,
        actor=actor,
        action="matching.opted_in",
        object_type=scope_type,
        object_id=scope_id,
        details={"authority_id": row.authority_id},
    )
    return True


def is_opted_out(session: Session, scope_type: str, scope_id: str) -> bool:
    return (
        session.scalar(
            select(MatchOptOut.id).where(
                MatchOptOut.scope_type == scope_type, MatchOptOut.scope_id == scope_id
            )
        )
        is not None
    )


def list_optouts(session: Session, authority_ids: Iterable[int] | None = None) -> list[MatchOptOut]:
    stmt = select(MatchOptOut).order_by(MatchOptOut.created_at.desc())
    if authority_ids is not None:
        stmt = stmt.where(MatchOptOut.authority_id.in_(list(authority_ids)))
    return list(session.scalars(stmt))


# -- the encrypted set (responder side) -------------------------------------------------------


def _responder_key(session: Session, data_dir: Path, authority_id: int) -> bytes:
    row = session.scalar(select(MatchKey).where(MatchKey.authority_id == authority_id))
    if row is None:
        key = protocol.new_key()
        session.add(
            MatchKey(
                authority_id=authority_id,
                sealed_key=keys.seal(data_dir, keys.RESPONDER_INFO, key),
            )
        )
        # Segments built under an earlier key (its row deleted) answer nothing any more.
        session.execute(
            update(MatchSegment).where(MatchSegment.authority_id == authority_id).values(stale=True)
        )
        session.flush()
        return key
    return keys.unseal(data_dir, keys.RESPONDER_INFO, row.sealed_key)


def desired_elements(session: Session, authority_id: int, excluded: Iterable[str]) -> set[bytes]:
    """Every element the authority offers now: its eligible records, minus opt-outs."""
    optouts = {
        (t, i)
        for t, i in session.execute(
            select(MatchOptOut.scope_type, MatchOptOut.scope_id).where(
                MatchOptOut.authority_id == authority_id
            )
        )
    }
    stmt = (
        select(
            IdentValue.digest,
            IdentValue.related_key,
            IdentValue.kind,
            IdentValue.canonical,
            IdentOccurrence.port,
            IdentOccurrence.seen_from,
            IdentOccurrence.seen_until,
            IdentOccurrence.scope_type,
            IdentOccurrence.scope_id,
        )
        .join(IdentValue, IdentValue.id == IdentOccurrence.value_id)
        .where(
            IdentOccurrence.owner_authority_id == authority_id,
            IdentOccurrence.scope_type.in_(ELIGIBLE_SCOPES),
        )
    )
    excluded_kinds = list(excluded)
    if excluded_kinds:
        stmt = stmt.where(IdentValue.kind.not_in(excluded_kinds))
    out: set[bytes] = set()
    for row in session.execute(stmt.execution_options(yield_per=20_000)):
        if optouts and (row.scope_type, row.scope_id) in optouts:
            continue
        out |= protocol.responder_elements(
            bytes(row.digest),
            bytes(row.related_key) if row.related_key is not None else None,
            row.kind,
            row.canonical,
            [(row.port, row.seen_from, row.seen_until)],
        )
    return out


@dataclass
class RefreshResult:
    authority_id: int
    elements: int = 0
    added: int = 0
    removed: int = 0
    segments_built: int = 0
    segments: int = 0
    seconds: float = 0.0


def _segments(session: Session, authority_id: int) -> list[MatchSegment]:
    return list(
        session.scalars(
            select(MatchSegment)
            .where(MatchSegment.authority_id == authority_id)
            .order_by(MatchSegment.id)
        )
    )


def _fingerprint(session: Session, authority_id: int, pol: MatchPolicy, size: int) -> str:
    """What a refresh reads, summed up cheaply: if it is unchanged, so is the set.

    Occurrences are never edited, only added and removed, so their number and newest
    ``created_at`` change whenever the authority's eligible records do.
    """
    count, newest = session.execute(
        select(func.count(IdentOccurrence.id), func.max(IdentOccurrence.created_at)).where(
            IdentOccurrence.owner_authority_id == authority_id,
            IdentOccurrence.scope_type.in_(ELIGIBLE_SCOPES),
        )
    ).one()
    optouts = sorted(
        f"{t}/{i}"
        for t, i in session.execute(
            select(MatchOptOut.scope_type, MatchOptOut.scope_id).where(
                MatchOptOut.authority_id == authority_id
            )
        )
    )
    text = "\x1f".join(
        [
            protocol.PROTOCOL,
            str(count),
            newest.isoformat() if newest is not None else "-",
            ",".join(optouts),
            ",".join(sorted(pol.excluded_kinds)),
            str(pol.max_query_elements),
            str(size),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


@atomic
def refresh(
    session: Session,
    data_dir: Path,
    authority_id: int,
    *,
    capacity: int | None = None,
    force: bool = False,
) -> RefreshResult:
    """Bring the authority's encrypted set up to date with its records, segment by segment.

    New elements fill the last segment that has room, then new segments; a segment is
    rebuilt (encrypted and compressed again) only if an element joined or left it, or if
    the policy's largest query changed (the filters are sized for it). When nothing it
    reads changed since the last refresh (``_fingerprint``), it stops there.
    """
    started = time.perf_counter()
    size = capacity or protocol.SEGMENT_CAPACITY
    _local_authority(session, authority_id)
    pol = policy_of(session, authority_id)
    key = _responder_key(session, data_dir, authority_id)
    fingerprint = _fingerprint(session, authority_id, pol, size)
    key_row = session.scalar(select(MatchKey).where(MatchKey.authority_id == authority_id))
    segments = _segments(session, authority_id)
    unchanged = key_row is not None and key_row.fingerprint == fingerprint
    if unchanged and not force and not any(s.stale for s in segments):
        assert key_row is not None
        key_row.refreshed_at = utc_now()
        status = set_status(session, authority_id)
        return RefreshResult(
            authority_id,
            elements=status.elements,
            segments=status.segments,
            seconds=time.perf_counter() - started,
        )
    wanted = desired_elements(session, authority_id, pol.excluded_kinds)
    current: dict[bytes, int] = {
        bytes(e): s
        for e, s in session.execute(
            select(MatchElement.element, MatchElement.segment_id).where(
                MatchElement.authority_id == authority_id
            )
        )
    }
    result = RefreshResult(authority_id)
    counts = {s.id: s.element_count for s in segments}
    stale: set[int] = {s.id for s in segments if s.stale or s.max_query != pol.max_query_elements}
    gone = [e for e in current if e not in wanted]
    for start in range(0, len(gone), _INSERT_CHUNK):
        chunk = gone[start : start + _INSERT_CHUNK]
        session.execute(
            delete(MatchElement).where(
                MatchElement.authority_id == authority_id, MatchElement.element.in_(chunk)
            )
        )
    for element in gone:
        segment_id = current[element]
        counts[segment_id] -= 1
        stale.add(segment_id)
    result.removed = len(gone)
    fresh = sorted(e for e in wanted if e not in current)
    result.added = len(fresh)
    rows: list[dict[str, Any]] = []
    open_segments = [s for s in segments if counts[s.id] < size]
    while fresh:
        if open_segments:
            segment = open_segments.pop(0)
        else:
            segment = MatchSegment(
                authority_id=authority_id, element_count=0, max_query=pol.max_query_elements
            )
            session.add(segment)
            session.flush()
            segments.append(segment)
            counts[segment.id] = 0
        room = size - counts[segment.id]
        taken, fresh = fresh[:room], fresh[room:]
        rows += [
            {"authority_id": authority_id, "element": e, "segment_id": segment.id} for e in taken
        ]
        counts[segment.id] += len(taken)
        stale.add(segment.id)
    for start in range(0, len(rows), _INSERT_CHUNK):
        session.execute(insert(MatchElement), rows[start : start + _INSERT_CHUNK])
    for segment in segments:
        if segment.id not in stale:
            continue
        if counts[segment.id] == 0:
            session.delete(segment)
            continue
        elements = [
            bytes(e)
            for e in session.scalars(
                select(MatchElement.element)
                .where(MatchElement.segment_id == segment.id)
                .order_by(MatchElement.element)
            )
        ]
        begun = time.perf_counter()
        segment.setup = protocol.build_setup(key, elements, pol.max_query_elements)
        segment.build_seconds = time.perf_counter() - begun
        segment.element_count = len(elements)
        segment.max_query = pol.max_query_elements
        segment.stale = False
        segment.built_at = utc_now()
        result.segments_built += 1
    if key_row is not None:
        key_row.refreshed_at = utc_now()
        key_row.fingerprint = fingerprint
    session.flush()
    result.elements = len(wanted)
    result.segments = sum(1 for s in segments if counts[s.id] > 0)
    result.seconds = time.perf_counter() - started
    if result.added or result.removed or result.segments_built:
        record(
            session,
            actor=SYSTEM,
            action="matching.set_refreshed",
            object_type="authority",
            object_id=authority_id,
            details={
                "elements": result.elements,
                "added": result.added,
                "removed": result.removed,
                "segments_built": result.segments_built,
            },
        )
    return result


def local_authority_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Authority.id).where(Authority.is_local.is_(True))))


def refresh_all(session: Session, data_dir: Path) -> list[RefreshResult]:
    return [refresh(session, data_dir, a) for a in local_authority_ids(session)]


def refresh_due(
    session: Session, data_dir: Path, *, every: timedelta = REFRESH_EVERY
) -> list[RefreshResult]:
    """Refresh the sets not refreshed for ``every`` (the worker's sweep calls this)."""
    cutoff = utc_now() - every
    rows = session.execute(select(MatchKey.authority_id, MatchKey.refreshed_at)).all()
    last: dict[int, datetime | None] = {row[0]: row[1] for row in rows}
    due = [a for a in local_authority_ids(session) if (last.get(a) or cutoff) <= cutoff]
    done: list[RefreshResult] = []
    for authority_id in due:
        try:
            done.append(refresh(session, data_dir, authority_id))
        except sealing.Unsealable:  # the others still refresh; the operator is told
            log.warning(
                "hit/no-hit key of authority %s cannot be opened with this node's %s",
                authority_id,
                keys.KEY_FILE,
            )
    return done


@dataclass(frozen=True)
class SetStatus:
    authority_id: int
    elements: int
    segments: int
    stale_segments: int
    built_at: datetime | None
    bytes: int


def set_status(session: Session, authority_id: int) -> SetStatus:
    segments = _segments(session, authority_id)
    built = [s.built_at for s in segments if s.built_at is not None]
    return SetStatus(
        authority_id=authority_id,
        elements=sum(s.element_count for s in segments),
        segments=len(segments),
        stale_segments=sum(1 for s in segments if s.stale),
        built_at=max(built) if built else None,
        bytes=sum(len(s.setup or b"") for s in segments),
    )


# -- asking partners (querier side) ------------------------------------------------------------


@dataclass(frozen=True)
class ItemIn:
    """An identifier to ask about, as an officer typed it (normalised here)."""

    kind: str
    value: str
    port: int | None = None
    seen_from: datetime | None = None
    seen_until: datetime | None = None


@dataclass
class _Item:
    kind: str
    canonical: str
    raw: str
    port: int | None
    seen_from: datetime | None
    seen_until: datetime | None

    @property
    def identifier(self) -> protocol.Identifier:
        return protocol.Identifier(
            self.kind, self.canonical, self.port, self.seen_from, self.seen_until
        )

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.kind, self.canonical, self.port, self.seen_from, self.seen_until)


def _items_from_entries(
    session: Session, actor: Principal, entries: Sequence[ItemIn]
) -> list[_Item]:
    from crossborder.requests.identifiers import region_of

    region = region_of(session, actor.authority_id)
    out: list[_Item] = []
    for number, entry in enumerate(entries, start=1):
        try:
            prepared = selectors.prepare(
                selectors.Entry(
                    entry.kind,
                    entry.value,
                    port=entry.port,
                    seen_from=entry.seen_from,
                    seen_until=entry.seen_until,
                ),
                default_region=region,
            )
        except InvalidInput as exc:
            raise InvalidInput(
                f"identifier {number}: {exc.detail}", field=f"identifiers.{number - 1}.value"
            ) from None
        norm = prepared.normalized
        out.append(
            _Item(
                norm.kind,
                norm.canonical,
                entry.value[:500],
                prepared.port,
                entry.seen_from,
                entry.seen_until,
            )
        )
    return out


def _items_from_scope(session: Session, scope_type: str, scope_id: str) -> list[_Item]:
    rows = session.execute(
        select(
            IdentValue.kind,
            IdentValue.canonical,
            IdentOccurrence.raw,
            IdentOccurrence.port,
            IdentOccurrence.seen_from,
            IdentOccurrence.seen_until,
        )
        .join(IdentValue, IdentValue.id == IdentOccurrence.value_id)
        .where(IdentOccurrence.scope_type == scope_type, IdentOccurrence.scope_id == scope_id)
        .order_by(IdentOccurrence.id)
    )
    return [_Item(r.kind, r.canonical, r.raw, r.port, r.seen_from, r.seen_until) for r in rows]


def _dedupe(items: Iterable[_Item]) -> list[_Item]:
    seen: dict[tuple[Any, ...], _Item] = {}
    for item in items:
        seen.setdefault(item.key, item)
    return list(seen.values())


def elements_of(items: Sequence[_Item], slack: timedelta) -> list[tuple[int, protocol.Element]]:
    """The elements asked, in order, each with the position of its item (deterministic)."""
    out: list[tuple[int, protocol.Element]] = []
    seen: set[bytes] = set()
    for position, item in enumerate(items):
        try:
            elements = protocol.query_elements(item.identifier, slack=slack)
        except ValueError as exc:
            raise InvalidInput(f"identifier {position + 1}: {exc}", field="identifiers") from None
        for element in elements:
            if element.data not in seen:  # one element asked once (two items may share it)
                seen.add(element.data)
                out.append((position, element))
    return out


def _basis(
    session: Session, sender: Authority, receiver: Authority, offences: Sequence[dict[str, Any]]
) -> directory_policy.PolicyResult | None:
    if sender.state is None or receiver.state is None:
        return None
    query = directory_schemas.PolicyQuery(
        sender_state=sender.state.alpha2,
        receiver_state=receiver.state.alpha2,
        sender_authority_id=sender.id,
        receiver_authority_id=receiver.id,
        channel=Channel.POLICE,
        offences=[
            {"code": o["code"], "max_penalty_years": o.get("max_penalty_years")} for o in offences
        ],
        data_categories=list(POLICE_CATEGORIES),
    )
    return directory.evaluate_policy(session, query, actor=SYSTEM)


def _refusal_text(result: directory_policy.PolicyResult | None) -> str:
    if result is None:
        return "no legal basis can be found for an authority without a state"
    if not result.refusals:
        return "no legal basis for police cooperation is recorded"
    return "; ".join(r.message for r in result.refusals[:3])[:500]


def partners(session: Session, actor: Principal) -> list[Authority]:
    """Authorities served by peer nodes: whom a query can go to."""
    stmt = (
        select(Authority)
        .where(Authority.is_local.is_(False), Authority.node_id.is_not(None))
        .order_by(Authority.name)
    )
    return [a for a in session.scalars(stmt).unique() if a.id != actor.authority_id]


@dataclass
class PartnerCheck:
    authority: Authority
    basis: str | None
    reason: str | None


def check_partners(
    session: Session, actor: Principal, partner_ids: Sequence[int] | None, offences: list[Any]
) -> list[PartnerCheck]:
    """Which partners a query may go to (a legal basis for police cooperation), and why not."""
    offences = _offences(offences)
    me = _local_authority(session, actor.authority_id)
    candidates = partners(session, actor)
    if partner_ids is not None:
        wanted = set(partner_ids)
        unknown = wanted - {a.id for a in candidates}
        if unknown:
            raise InvalidInput(
                "not an authority of a partner node: " + ", ".join(str(i) for i in sorted(unknown)),
                field="partners",
            )
        candidates = [a for a in candidates if a.id in wanted]
    out: list[PartnerCheck] = []
    for partner in candidates:
        result = _basis(session, me, partner, offences)
        if result is not None and result.bases:
            out.append(PartnerCheck(partner, result.bases[0].instrument_code, None))
        else:
            out.append(PartnerCheck(partner, None, _refusal_text(result)))
    return out


def _offences(raw: Sequence[Any]) -> list[dict[str, Any]]:
    from crossborder.directory.taxonomy import Offence

    out: list[dict[str, Any]] = []
    for item in raw:
        code = item.get("code") if isinstance(item, dict) else item
        try:
            Offence(str(code))
        except ValueError:
            raise InvalidInput(f"unknown offence code {code!r}", field="offences") from None
        penalty = item.get("max_penalty_years") if isinstance(item, dict) else None
        if penalty is not None and not (isinstance(penalty, int | float) and 0 <= penalty <= 100):
            raise InvalidInput("max_penalty_years: from 0 to 100", field="offences")
        out.append({"code": str(code), "max_penalty_years": penalty})
    if not out:
        raise InvalidInput("name at least one offence under investigation", field="offences")
    if len(out) > 20:
        raise InvalidInput("at most 20 offences", field="offences")
    return out


def _check_purpose(purpose: str, case_reference: str) -> tuple[str, str]:
    purpose = purpose.strip()
    case_reference = case_reference.strip()
    if not rules.PURPOSE_MIN <= len(purpose) <= rules.PURPOSE_MAX:
        raise InvalidInput(
            f"say why you ask ({rules.PURPOSE_MIN} to {rules.PURPOSE_MAX} characters)",
            field="purpose",
        )
    if not 1 <= len(case_reference) <= rules.CASE_REFERENCE_MAX:
        raise InvalidInput("the case reference is required", field="case_reference")
    return purpose, case_reference


@dataclass
class Sent:
    query: MatchQuery
    targets: list[MatchTarget] = field(default_factory=list)
    refused: list[PartnerCheck] = field(default_factory=list)


def send_query(
    session: Session,
    actor: Principal,
    data_dir: Path,
    *,
    purpose: str,
    case_reference: str,
    offences: Sequence[Any],
    identifiers: Sequence[ItemIn] = (),
    request_ref: str | None = None,
    set_id: str | None = None,
    partner_ids: Sequence[int] | None = None,
    slack_seconds: int = 0,
) -> Sent:
    """Ask partner authorities which of these identifiers they hold (one message each).

    Partners without a legal basis for police cooperation are not asked (listed in
    ``refused``); if none has one the query is refused as a whole and nothing is stored.
    """
    require(actor, Permission.MATCHING_QUERY)
    purpose, case_reference = _check_purpose(purpose, case_reference)
    offence_list = _offences(offences)
    if not 0 <= slack_seconds <= 3600:
        raise InvalidInput("slack: 0 to 3,600 seconds", field="slack_seconds")
    items = _items_from_entries(session, actor, identifiers)
    request_row = None
    set_row = None
    if request_ref is not None:
        from crossborder.requests import service as requests_service

        request_row = requests_service.find(session, request_ref)
        if request_row is None or not requests_service.may_see(request_row, actor):
            raise NotFound("no such request")
        items += _items_from_scope(session, "request", request_row.public_id)
    if set_id is not None:
        set_row = session.scalar(select(IdentSet).where(IdentSet.public_id == set_id))
        if set_row is None or set_row.authority_id != actor.authority_id:
            raise NotFound("no such identifier set")
        items += _items_from_scope(session, "set", set_row.public_id)
    items = _dedupe(items)
    if not items:
        raise InvalidInput("no identifiers to ask about", field="identifiers")
    if len(items) > MAX_QUERY_ITEMS:
        raise InvalidInput(f"at most {MAX_QUERY_ITEMS} identifiers per query", field="identifiers")
    slack = timedelta(seconds=slack_seconds)
    elements = elements_of(items, slack)
    if len(elements) > protocol.MAX_QUERY_ELEMENTS:
        raise InvalidInput(
            f"{len(elements):,} elements to ask (variants and hours included); at most "
            f"{protocol.MAX_QUERY_ELEMENTS:,} in one query: split it",
            field="identifiers",
        )
    checks = check_partners(session, actor, partner_ids, offence_list)
    allowed = [c for c in checks if c.basis is not None]
    if not allowed:
        reasons = "; ".join(f"{c.authority.name}: {c.reason}" for c in checks) or "no partners"
        with unit_of_work(session):  # the refusal is kept, whatever the caller does next
            record(
                session,
                actor=actor,
                action="matching.query_refused",
                object_type="match_query",
                details={
                    "case_reference": case_reference,
                    "partners": [c.authority.id for c in checks],
                },
                outcome="refused",
                reason="no legal basis",
            )
        raise InvalidInput(
            f"no partner may be asked (no legal basis for police cooperation): {reasons}"[:2000],
            field="partners",
        )
    with unit_of_work(session):
        return _send(
            session,
            actor,
            data_dir,
            purpose=purpose,
            case_reference=case_reference,
            offences=offence_list,
            items=items,
            elements=elements,
            checks=checks,
            request_row=request_row,
            set_row=set_row,
            slack_seconds=slack_seconds,
        )


def _send(
    session: Session,
    actor: Principal,
    data_dir: Path,
    *,
    purpose: str,
    case_reference: str,
    offences: list[dict[str, Any]],
    items: list[_Item],
    elements: list[tuple[int, protocol.Element]],
    checks: list[PartnerCheck],
    request_row: Any,
    set_row: IdentSet | None,
    slack_seconds: int,
) -> Sent:
    offence_list = offences
    allowed = [c for c in checks if c.basis is not None]
    me = _local_authority(session, actor.authority_id)
    query = MatchQuery(
        public_id=str(uuid.uuid4()),
        authority_id=me.id,
        created_by_user_id=actor.user_id or None,
        created_by_label=actor.label[:200],
        purpose=purpose,
        case_reference=case_reference,
        offences=offence_list,
        request_id=request_row.id if request_row is not None else None,
        set_id=set_row.id if set_row is not None else None,
        slack_seconds=slack_seconds,
        item_count=len(items),
        element_count=len(elements),
    )
    session.add(query)
    session.flush()
    session.execute(
        insert(MatchQueryItem),
        [
            {
                "query_id": query.id,
                "position": position,
                "kind": item.kind,
                "canonical": item.canonical,
                "raw": item.raw,
                "port": item.port,
                "seen_from": item.seen_from,
                "seen_until": item.seen_until,
            }
            for position, item in enumerate(items)
        ],
    )
    data = [e.data for _, e in elements]
    sent = Sent(query, refused=[c for c in checks if c.basis is None])
    for check in allowed:
        partner = check.authority
        key = protocol.new_key()
        request = protocol.make_request(key, data)
        target = MatchTarget(
            public_id=str(uuid.uuid4()),
            query_id=query.id,
            partner_authority_id=partner.id,
            status="sent",
            legal_basis=check.basis,
            sealed_key=keys.seal(data_dir, keys.QUERY_INFO, key),
            elements=len(data),
            bytes_sent=len(request),
        )
        session.add(target)
        session.flush()
        federation.enqueue(
            session,
            to_node_id=int(partner.node_id or 0),
            type=QUERY,
            body={
                "query": target.public_id,
                "protocol": protocol.PROTOCOL,
                "from_authority": parties.authority_ref(me),
                "to_authority": parties.authority_ref(partner),
                "actor": actor.username,
                "purpose": purpose,
                "case_reference": case_reference,
                "offences": offence_list,
                "elements": len(data),
                "request": _b64(request),
            },
        )
        sent.targets.append(target)
    record(
        session,
        actor=actor,
        action="matching.query_sent",
        object_type="match_query",
        object_id=query.public_id,
        details={
            "case_reference": case_reference,
            "identifiers": len(items),
            "elements": len(data),
            "partners": [t.partner_authority_id for t in sent.targets],
            "not_asked": [c.authority.id for c in sent.refused],
            "request": request_row.public_id if request_row is not None else None,
        },
    )
    return sent


# -- answering a partner (responder side) ------------------------------------------------------


@dataclass
class Incoming:
    node: Node
    sender: Authority
    receiver: Authority
    query_ref: str
    actor: str
    purpose: str
    case_reference: str
    offences: list[dict[str, Any]]
    elements: int
    request: bytes


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def parse_incoming(session: Session, node: Node, body: dict[str, Any]) -> Incoming:
    """Who asks whom and why; raises InvalidInput (cannot even tell who) or ProtocolError."""
    sender = parties.named_authority(session, body.get("from_authority"), field="from_authority")
    parties.check_served_by(sender, node, field="from_authority")
    receiver = parties.named_authority(session, body.get("to_authority"), field="to_authority")
    if not receiver.is_local:
        raise InvalidInput("the addressed authority is not served by this node")
    ref = body.get("query")
    try:
        query_ref = str(uuid.UUID(str(ref)))
    except ValueError:
        raise InvalidInput("query: a UUID naming the query", field="query") from None
    return Incoming(
        node=node,
        sender=sender,
        receiver=receiver,
        query_ref=query_ref,
        actor=str(body.get("actor", "?"))[:150],
        purpose=_text(body.get("purpose")),
        case_reference=_text(body.get("case_reference")),
        offences=[],
        elements=_count(body.get("elements")),
        request=b"",
    )


def _check_body(incoming: Incoming, body: dict[str, Any], max_elements: int) -> Any:
    """The remaining checks; each failure a ProtocolError with a clear reason."""
    if body.get("protocol") != protocol.PROTOCOL:
        raise protocol.ProtocolError(f"protocol: this node speaks {protocol.PROTOCOL}")
    try:
        incoming.purpose, incoming.case_reference = _check_purpose(
            incoming.purpose, incoming.case_reference
        )
    except InvalidInput as exc:
        raise protocol.ProtocolError(str(exc)) from None
    raw_offences = body.get("offences")
    if not isinstance(raw_offences, list):
        raise protocol.ProtocolError("offences: a list of offence codes")
    try:
        incoming.offences = _offences(raw_offences)
    except InvalidInput as exc:
        raise protocol.ProtocolError(str(exc)) from None
    if incoming.elements > max_elements:
        raise protocol.TooLarge(f"{incoming.elements} elements asked; at most {max_elements}")
    if incoming.elements < 1:
        raise protocol.ProtocolError("elements: the number of elements asked")
    limit = max_elements * (protocol.POINT_BYTES + 4) + 64
    incoming.request = _unb64(body.get("request"), field="request", limit=limit)
    request = protocol.parse_request(incoming.request, max_elements=max_elements)
    if len(request.encrypted_elements) != incoming.elements:
        raise protocol.ProtocolError("elements: does not match the request")
    return request


def _inbound(incoming: Incoming, **values: Any) -> MatchInbound:
    return MatchInbound(
        query_ref=incoming.query_ref,
        partner_authority_id=incoming.sender.id,
        authority_id=incoming.receiver.id,
        node_name=incoming.node.name[:200],
        asked_by_label=incoming.actor,
        purpose=incoming.purpose[: rules.PURPOSE_MAX] or "(none given)",
        case_reference=incoming.case_reference[: rules.CASE_REFERENCE_MAX] or "(none given)",
        offences=incoming.offences,
        elements=max(incoming.elements, 0),
        **values,
    )


def _federation_clerk(incoming: Incoming) -> Principal:
    return Principal(
        user_id=0,
        username=f"{incoming.actor} ({incoming.node.name})"[:150],
        authority_id=incoming.receiver.id,
        roles=frozenset(),
        via="federation",
    )


def _audit_inbound(
    session: Session,
    incoming: Incoming,
    row: MatchInbound,
    action: str,
    extra: dict[str, Any],
    *,
    outcome: str = "ok",
    reason: str | None = None,
) -> None:
    """Keep a partner's query (answered or refused) and audit it: who asked, why, how much."""
    session.add(row)
    session.flush()
    record(
        session,
        actor=_federation_clerk(incoming),
        action=action,
        object_type="match_inbound",
        object_id=incoming.query_ref,
        details={
            "from_authority_id": incoming.sender.id,
            "to_authority_id": incoming.receiver.id,
            "case_reference": incoming.case_reference[:200],
            "purpose": incoming.purpose[:300],
            "elements": max(incoming.elements, 0),
            **extra,
        },
        outcome=outcome,
        reason=reason,
    )


def _refuse(session: Session, incoming: Incoming, refusal: rules.Refusal) -> MatchInbound:
    row = _inbound(
        incoming, outcome="refused", reason_code=refusal.code.value, reason=refusal.reason
    )
    _audit_inbound(
        session,
        incoming,
        row,
        "matching.query_refused",
        {"code": refusal.code.value},
        outcome="refused",
        reason=refusal.reason,
    )
    federation.enqueue(
        session,
        to_node_id=incoming.node.id,
        type=REFUSED,
        body={
            "query": incoming.query_ref,
            "from_authority": parties.authority_ref(incoming.receiver),
            "to_authority": parties.authority_ref(incoming.sender),
            "code": refusal.code.value,
            "reason": refusal.reason,
        },
    )
    return row


def answer(
    session: Session,
    data_dir: Path,
    node: Node,
    body: dict[str, Any],
    *,
    now: datetime | None = None,
) -> MatchInbound | None:
    """Answer one partner's query, or refuse it with a reason; both are recorded and audited.

    Cheap checks come first (who, replay, size, legal basis, allowance), so a partner
    flooding this node is refused before any curve arithmetic is spent on it. A query
    reference seen before (a replay under a new envelope) is audited and dropped: None.
    """
    at = now or utc_now()
    incoming = parse_incoming(session, node, body)
    replay = session.scalar(
        select(MatchInbound.id).where(
            MatchInbound.partner_authority_id == incoming.sender.id,
            MatchInbound.query_ref == incoming.query_ref,
        )
    )
    if replay is not None:
        record(
            session,
            actor=_federation_clerk(incoming),
            action="matching.query_refused",
            object_type="match_inbound",
            object_id=incoming.query_ref,
            details={"from_authority_id": incoming.sender.id, "code": "REPLAY"},
            outcome="refused",
            reason="this query was already received (replay)",
        )
        return None
    grant = allowance(session, incoming.receiver.id, incoming.sender.id)
    try:
        request = _check_body(incoming, body, grant.max_query_elements)
    except protocol.ProtocolError as exc:
        too_large = isinstance(exc, protocol.TooLarge)
        code = rules.RefusalCode.TOO_LARGE if too_large else rules.RefusalCode.MALFORMED
        return _refuse(session, incoming, rules.Refusal(code, str(exc)[:500]))
    basis = _basis(session, incoming.sender, incoming.receiver, incoming.offences)
    if basis is None or not basis.bases:
        return _refuse(
            session,
            incoming,
            rules.Refusal(rules.RefusalCode.NO_LEGAL_BASIS, _refusal_text(basis)),
        )
    why_not = rules.refusal(
        grant, usage(session, incoming.receiver.id, incoming.sender.id, at), incoming.elements
    )
    if why_not is not None:
        return _refuse(session, incoming, why_not)
    try:
        if not _segments(session, incoming.receiver.id):
            refresh(session, data_dir, incoming.receiver.id)
        key = _responder_key(session, data_dir, incoming.receiver.id)
    except sealing.Unsealable:
        log.warning("hit/no-hit key of authority %s cannot be opened", incoming.receiver.id)
        return _refuse(
            session,
            incoming,
            rules.Refusal(
                rules.RefusalCode.NOT_ANSWERING, "this authority cannot answer at the moment"
            ),
        )
    try:
        response = protocol.answer_request(key, request)
    except protocol.ProtocolError as exc:
        return _refuse(session, incoming, rules.Refusal(rules.RefusalCode.PROTOCOL, str(exc)))
    segments = [s for s in _segments(session, incoming.receiver.id) if s.setup]
    built = [s.built_at for s in segments if s.built_at is not None]
    parts: list[list[bytes]] = [[]]
    size = len(response)
    for segment in segments:
        setup = bytes(segment.setup or b"")
        if size + len(setup) > PART_BYTES and (parts[-1] or size):
            parts.append([])
            size = 0
        parts[-1].append(setup)
        size += len(setup)
    pol = policy_of(session, incoming.receiver.id)
    sent = 0
    for number, setups in enumerate(parts):
        part_body: dict[str, Any] = {
            "query": incoming.query_ref,
            "from_authority": parties.authority_ref(incoming.receiver),
            "to_authority": parties.authority_ref(incoming.sender),
            "part": number,
            "parts": len(parts),
            "segments": [_b64(s) for s in setups],
        }
        if number == 0:
            part_body |= {
                "response": _b64(response),
                "set_size": sum(s.element_count for s in segments),
                "set_built_at": max(built).isoformat() if built else None,
                "segment_count": len(segments),
                "excluded_kinds": list(pol.excluded_kinds),
                "legal_basis": basis.bases[0].instrument_code,
            }
            sent += len(response)
        sent += sum(len(s) for s in setups)
        federation.enqueue(session, to_node_id=node.id, type=ANSWER, body=part_body)
    row = _inbound(
        incoming,
        outcome="answered",
        legal_basis=basis.bases[0].instrument_code,
        segments=len(segments),
        bytes_sent=sent,
    )
    _audit_inbound(
        session,
        incoming,
        row,
        "matching.query_answered",
        {"legal_basis": row.legal_basis, "segments": len(segments), "bytes": sent},
    )
    return row


def inbound(
    session: Session, authority_ids: Iterable[int], *, limit: int = 200
) -> list[MatchInbound]:
    return list(
        session.scalars(
            select(MatchInbound)
            .where(MatchInbound.authority_id.in_(list(authority_ids)))
            .order_by(MatchInbound.received_at.desc(), MatchInbound.id.desc())
            .limit(limit)
        )
    )


# -- receiving an answer (querier side) --------------------------------------------------------


def _target_for(session: Session, node: Node, body: dict[str, Any]) -> MatchTarget:
    partner = parties.named_authority(session, body.get("from_authority"), field="from_authority")
    parties.check_served_by(partner, node, field="from_authority")
    ref = body.get("query")
    target = session.scalar(
        select(MatchTarget).where(MatchTarget.public_id == str(ref)).with_for_update()
    )
    if target is None or target.partner_authority_id != partner.id:
        raise NotFound("no query of this node was sent to that authority under this reference")
    return target


def receive_refusal(session: Session, node: Node, body: dict[str, Any]) -> MatchTarget:
    target = _target_for(session, node, body)
    if target.status != "sent":
        raise InvalidInput(f"this query was already {target.status}", field="query")
    code = body.get("code")
    target.status = "refused"
    target.reason_code = str(code)[:40] if isinstance(code, str) else "UNKNOWN"
    reason = body.get("reason")
    target.reason = reason[:500] if isinstance(reason, str) else None
    target.answered_at = utc_now()
    target.sealed_key = None
    query = session.get(MatchQuery, target.query_id)
    record(
        session,
        actor=SYSTEM,
        action="matching.answer_received",
        object_type="match_query",
        object_id=query.public_id if query else None,
        details={
            "partner_authority_id": target.partner_authority_id,
            "outcome": "refused",
            "code": target.reason_code,
        },
        outcome="refused",
        reason=target.reason,
    )
    return target


def receive_answer(
    session: Session, data_dir: Path, node: Node, body: dict[str, Any]
) -> MatchTarget:
    """Keep one part of an answer; once every part is here, find the hits and erase the key."""
    target = _target_for(session, node, body)
    if target.status != "sent":
        raise InvalidInput(f"this query was already {target.status}", field="query")
    part, parts = body.get("part"), body.get("parts")
    if not (isinstance(part, int) and isinstance(parts, int) and 0 <= part < parts <= 64):
        raise InvalidInput("part/parts: 0 <= part < parts <= 64", field="part")
    payload = body_bytes(body)
    existing = session.scalar(
        select(MatchAnswerPart).where(
            MatchAnswerPart.target_id == target.id, MatchAnswerPart.part == part
        )
    )
    if existing is None:
        session.add(MatchAnswerPart(target_id=target.id, part=part, parts=parts, body=payload))
        session.flush()
    stored = list(
        session.scalars(
            select(MatchAnswerPart)
            .where(MatchAnswerPart.target_id == target.id)
            .order_by(MatchAnswerPart.part)
        )
    )
    if len(stored) < parts:
        return target
    _complete(session, data_dir, target, stored)
    return target


def body_bytes(body: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(body)


def _complete(
    session: Session, data_dir: Path, target: MatchTarget, stored: Sequence[MatchAnswerPart]
) -> None:
    import orjson

    bodies = [orjson.loads(p.body) for p in stored]
    first = bodies[0]
    try:
        response = _unb64(first.get("response"), field="response", limit=64 * 1024 * 1024)
        setups = [
            _unb64(s, field="segments", limit=64 * 1024 * 1024)
            for b in bodies
            for s in (b.get("segments") or [])
        ]
        if not target.sealed_key:
            raise protocol.ProtocolError("this query's key is gone")
        key = keys.unseal(data_dir, keys.QUERY_INFO, target.sealed_key)
        found = protocol.intersect(key, setups, response, target.elements)
    except (protocol.ProtocolError, sealing.Unsealable) as exc:
        target.status = "failed"
        target.reason_code = rules.RefusalCode.PROTOCOL.value
        target.reason = str(exc)[:500]
        target.sealed_key = None
        target.answered_at = utc_now()
        session.execute(delete(MatchAnswerPart).where(MatchAnswerPart.target_id == target.id))
        record(
            session,
            actor=SYSTEM,
            action="matching.answer_received",
            object_type="match_target",
            object_id=target.public_id,
            details={"partner_authority_id": target.partner_authority_id, "outcome": "failed"},
            outcome="error",
            reason=target.reason,
        )
        return
    query = session.get(MatchQuery, target.query_id)
    assert query is not None
    items = list(
        session.scalars(
            select(MatchQueryItem)
            .where(MatchQueryItem.query_id == query.id)
            .order_by(MatchQueryItem.position)
        )
    )
    plain = [_Item(i.kind, i.canonical, i.raw, i.port, i.seen_from, i.seen_until) for i in items]
    elements = elements_of(plain, timedelta(seconds=query.slack_seconds))
    if len(elements) != target.elements:
        raise InvalidInput("the query's elements changed since it was sent")
    by_item: dict[int, set[protocol.ElementKind]] = defaultdict(set)
    hours: dict[int, set[str]] = defaultdict(set)
    for index in found:
        position, element = elements[index]
        by_item[position].add(element.kind)
        if element.bucket is not None:
            hours[position].add(element.bucket.isoformat())
    for position, matched in sorted(by_item.items()):
        item = items[position]
        session.add(
            MatchHit(
                target_id=target.id,
                item_id=item.id,
                strength=rules.strength(
                    item.kind, item.canonical, item.seen_from is not None, matched
                ).value,
                matched=sorted(k.value for k in matched),
                buckets=sorted(hours.get(position, ())),
            )
        )
    target.status = "answered"
    target.hit_count = len(by_item)
    target.answered_at = utc_now()
    target.sealed_key = None  # the query's scalar is not needed again: erase it
    target.bytes_received = sum(len(p.body) for p in stored)
    target.segments = int(first.get("segment_count") or len(setups))
    size = first.get("set_size")
    target.set_size = size if isinstance(size, int) else None
    built = first.get("set_built_at")
    if isinstance(built, str):
        try:
            target.set_built_at = datetime.fromisoformat(built)
        except ValueError:
            target.set_built_at = None
    excluded = first.get("excluded_kinds")
    if isinstance(excluded, list) and excluded:
        target.reason = ("does not offer: " + ", ".join(str(k) for k in excluded))[:500]
    session.execute(delete(MatchAnswerPart).where(MatchAnswerPart.target_id == target.id))
    session.flush()
    record(
        session,
        actor=SYSTEM,
        action="matching.answer_received",
        object_type="match_query",
        object_id=query.public_id,
        details={
            "partner_authority_id": target.partner_authority_id,
            "outcome": "answered",
            "hits": target.hit_count,
            "elements": target.elements,
        },
    )


# -- reading queries and hits ------------------------------------------------------------------


def _visible_query(session: Session, actor: Principal, public_id: str) -> MatchQuery:
    require(actor, Permission.MATCHING_QUERY)
    query = session.scalar(select(MatchQuery).where(MatchQuery.public_id == public_id))
    if query is None or query.authority_id != actor.authority_id:
        raise NotFound("no such query")
    return query


def list_queries(session: Session, actor: Principal, *, limit: int = 100) -> list[MatchQuery]:
    require(actor, Permission.MATCHING_QUERY)
    return list(
        session.scalars(
            select(MatchQuery)
            .where(MatchQuery.authority_id == actor.authority_id)
            .order_by(MatchQuery.created_at.desc(), MatchQuery.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class HitView:
    hit: MatchHit
    item: MatchQueryItem
    partner: Authority


@dataclass
class QueryView:
    query: MatchQuery
    targets: list[tuple[MatchTarget, Authority]]
    hits: list[HitView]


def get_query(session: Session, actor: Principal, public_id: str) -> QueryView:
    query = _visible_query(session, actor, public_id)
    targets = list(
        session.execute(
            select(MatchTarget, Authority)
            .join(Authority, Authority.id == MatchTarget.partner_authority_id)
            .where(MatchTarget.query_id == query.id)
            .order_by(Authority.name)
        )
        .unique()
        .all()
    )
    hits = [
        HitView(h, i, a)
        for h, i, a in session.execute(
            select(MatchHit, MatchQueryItem, Authority)
            .join(MatchTarget, MatchTarget.id == MatchHit.target_id)
            .join(MatchQueryItem, MatchQueryItem.id == MatchHit.item_id)
            .join(Authority, Authority.id == MatchTarget.partner_authority_id)
            .where(MatchTarget.query_id == query.id)
            .order_by(MatchQueryItem.position, Authority.name)
        )
        .unique()
        .all()
    ]
    return QueryView(query, [(t, a) for t, a in targets], hits)


@atomic
def draft_from_hit(
    session: Session, actor: Principal, hit_id: int, *, request_type: str = "police_information"
) -> Any:
    """A draft request to the partner that holds the identifier, referencing the hit."""
    from crossborder.requests import schemas as request_schemas
    from crossborder.requests import service as requests_service
    from crossborder.requests.catalogue import RequestType
    from crossborder.requests.models import CooperationRequest

    require(actor, Permission.REQUESTS_WRITE)
    if request_type not in (RequestType.POLICE_INFORMATION.value, RequestType.PRESERVATION.value):
        raise InvalidInput("a hit leads to a police information or preservation request")
    hit = session.get(MatchHit, hit_id)
    if hit is None:
        raise NotFound("no such hit")
    target = session.get(MatchTarget, hit.target_id)
    query = session.get(MatchQuery, target.query_id) if target else None
    if target is None or query is None or query.authority_id != actor.authority_id:
        raise NotFound("no such hit")
    if hit.draft_request_id is not None:
        existing = session.get(CooperationRequest, hit.draft_request_id)
        if existing is not None:
            return existing
    item = session.get(MatchQueryItem, hit.item_id)
    partner = session.get(Authority, target.partner_authority_id)
    assert item is not None
    assert partner is not None
    entry: dict[str, Any] = {"kind": item.kind, "value": item.raw or item.canonical}
    if item.seen_from is not None:
        entry["window_start"] = item.seen_from
        entry["window_end"] = item.seen_until or item.seen_from
    summary = (
        f"Hit/no-hit query {query.public_id} (case {query.case_reference}), answered "
        f"{target.answered_at:%Y-%m-%d %H:%M} UTC: {partner.name} holds "
        f"{item.kind} {item.canonical} ({hit.strength}).\n\nPurpose of the query: {query.purpose}"
    )
    fields = {
        "request_type": request_type,
        "receiver_authority_id": partner.id,
        "channel": Channel.POLICE.value
        if request_type == RequestType.POLICE_INFORMATION.value
        else Channel.POINT_OF_CONTACT_24_7.value,
        "title": f"Follow-up of a hit on {item.kind} ({query.case_reference})"[:200],
        "summary_of_facts": summary,
        "offences": [
            {"code": o["code"], "max_penalty_years": o.get("max_penalty_years")}
            for o in query.offences
        ],
        "identifiers": [entry],
        "data_categories": list(POLICE_CATEGORIES)
        if request_type == RequestType.POLICE_INFORMATION.value
        else [],
        "details": _draft_details(request_type, query, item, partner),
    }
    try:
        data = request_schemas.DraftCreate.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput(f"the draft cannot be made: {exc.errors()[0]['msg']}") from None
    req = requests_service.create_draft(session, data, actor=actor)
    hit.draft_request_id = req.id
    record(
        session,
        actor=actor,
        action="matching.hit_followed",
        object_type="match_query",
        object_id=query.public_id,
        details={"hit": hit.id, "request": req.public_id, "partner_authority_id": partner.id},
    )
    return req


def _draft_details(
    request_type: str, query: MatchQuery, item: MatchQueryItem, partner: Authority
) -> dict[str, Any]:
    """What the draft's form needs, pre-filled from the hit; the officer reviews every line."""
    what = f"{item.kind} {item.canonical}"
    if request_type == "preservation":
        return {
            "data_to_preserve": f"All data associated with {what} held by {partner.name}.",
            "link_to_offence": query.purpose,
            "custodian": partner.name[:200],
            "why_needed": f"A hit/no-hit query in case {query.case_reference} found it there.",
            "mla_will_follow": True,
        }
    return {
        "questions": [f"What does your authority hold on {what}, and in which case?"],
        "purpose": query.purpose,
        "intelligence_only_acknowledged": True,
    }


def pending_targets(session: Session) -> int:
    return int(
        session.scalar(select(func.count(MatchTarget.id)).where(MatchTarget.status == "sent")) or 0
    )


def expire_unanswered(session: Session, *, older_than: timedelta = timedelta(days=7)) -> int:
    """Queries a partner never answered stop waiting (their keys are erased)."""
    cutoff = utc_now() - older_than
    result = session.execute(
        update(MatchTarget)
        .where(MatchTarget.status == "sent", MatchTarget.sent_at < cutoff)
        .values(status="expired", sealed_key=None, reason="no answer within 7 days")
    )
    return int(getattr(result, "rowcount", 0) or 0)
