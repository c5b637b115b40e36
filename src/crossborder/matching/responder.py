"""What a local authority answers partners from: its policy and per-partner allowances, the
records it keeps out, its secret key, and its encrypted set, refreshed segment by segment.

The querier side and the answering of a partner's query are in ``service``; both read the
rules here (``allowance``, ``usage``, ``refresh``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from crossborder.audit.service import record
from crossborder.auth.permissions import SYSTEM, Permission, Principal, require
from crossborder.core import sealing
from crossborder.core.clock import utc_now
from crossborder.core.errors import InvalidInput, NotFound
from crossborder.db.session import atomic
from crossborder.directory.models import Authority
from crossborder.matching import keys, protocol, rules
from crossborder.matching.models import (
    MatchElement,
    MatchInbound,
    MatchKey,
    MatchOptOut,
    MatchPartnerRule,
    MatchPolicy,
    MatchSegment,
)
from crossborder.selectors.models import IdentOccurrence, IdentSet, IdentValue

log = logging.getLogger(__name__)

#: Records whose identifiers an authority offers: its requests and its identifier sets.
#: Intelligence objects are exchanged under their own markings (TAXII), not matched here.
ELIGIBLE_SCOPES: Final = ("request", "set")
OPT_OUT_SCOPES: Final = ELIGIBLE_SCOPES
DEFAULT_MAX_QUERY_ELEMENTS: Final = 100_000
DEFAULT_DAILY_QUERIES: Final = 50
DEFAULT_DAILY_ELEMENTS: Final = 500_000
WINDOW: Final = timedelta(hours=24)
REFRESH_EVERY: Final = timedelta(minutes=10)
_INSERT_CHUNK: Final = 10_000


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


def _may_keep_out(actor: Principal) -> None:
    """Officers keep their own authority's records out; administrators any local one's."""
    if not actor.has(Permission.MATCHING_QUERY):
        require(actor, Permission.MATCHING_MANAGE)


def _scope(session: Session, scope_type: str, scope_id: str) -> tuple[str, int]:
    """The record's public id (a request may be named by its reference) and its owner."""
    if scope_type == "set":
        owner = session.scalar(select(IdentSet.authority_id).where(IdentSet.public_id == scope_id))
    elif scope_type == "request":
        from crossborder.requests import service as requests_service

        found = requests_service.find(session, scope_id)
        owner = found.sender_authority_id if found is not None else None
        scope_id = found.public_id if found is not None else scope_id
    else:
        raise InvalidInput(
            f"only {', '.join(OPT_OUT_SCOPES)} records can be kept out", field="scope_type"
        )
    if owner is None:
        raise NotFound(f"no such {scope_type}")
    return scope_id, int(owner)


@atomic
def opt_out(
    session: Session, actor: Principal, scope_type: str, scope_id: str, *, reason: str = ""
) -> MatchOptOut:
    """Keep one record's identifiers out of what partners can match (from the next refresh).

    A request is named by its public id or its reference; an identifier set by its id.
    """
    _may_keep_out(actor)
    scope_id, owner = _scope(session, scope_type, scope_id)
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
    """Offer a record kept out again (from the next refresh); 404 unless it is kept out and
    the actor's authority keeps it (administrators: any)."""
    _may_keep_out(actor)
    if scope_type == "request":
        scope_id, _owner = _scope(session, scope_type, scope_id)
    row = session.scalar(
        select(MatchOptOut).where(
            MatchOptOut.scope_type == scope_type, MatchOptOut.scope_id == scope_id
        )
    )
    if row is None or (
        row.authority_id != actor.authority_id and not actor.has(Permission.MATCHING_MANAGE)
    ):
        raise NotFound(f"this {scope_type} is not kept out of hit/no-hit")
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


def optouts_for(session: Session, actor: Principal) -> list[MatchOptOut]:
    """Records kept out: the actor's authority's (administrators: every local authority's)."""
    _may_keep_out(actor)
    if actor.has(Permission.MATCHING_MANAGE):
        return list_optouts(session, local_authority_ids(session))
    return list_optouts(session, [actor.authority_id])


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
