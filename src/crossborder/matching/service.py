"""Hit/no-hit with partner authorities: the queries this node's officers send, the answers
to partners' queries, and hits turned into draft requests. What an authority answers from
(policy, allowances, opt-outs, its key and encrypted set) is in ``responder``.

The wire messages (``match.query``, ``match.answer``, ``match.refused``) travel in the
federation's signed and encrypted envelopes; ``exchange`` holds their handlers, this module
the work. What crosses is only PSI material (``protocol``) and the query's purpose, case
reference and offences, never an identifier in clear.
"""

from __future__ import annotations

import base64
import logging
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
from crossborder.matching import keys, protocol, responder, rules
from crossborder.matching.models import (
    MatchAnswerPart,
    MatchHit,
    MatchInbound,
    MatchQuery,
    MatchQueryItem,
    MatchTarget,
)
from crossborder.selectors import service as selectors
from crossborder.selectors.models import IdentOccurrence, IdentSet, IdentValue

log = logging.getLogger(__name__)

QUERY: Final = "match.query"
ANSWER: Final = "match.answer"
REFUSED: Final = "match.refused"


MAX_QUERY_ITEMS: Final = 100_000
#: PSI bytes per answer envelope: base64 in the JSON body makes 8 MB, under the federation's
#: body limit (``federation.service.MAX_BODY_BYTES``, 8 MiB).
PART_BYTES: Final = 6_000_000
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
    me = responder._local_authority(session, actor.authority_id)
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
    me = responder._local_authority(session, actor.authority_id)
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
    grant = responder.allowance(session, incoming.receiver.id, incoming.sender.id)
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
        grant,
        responder.usage(session, incoming.receiver.id, incoming.sender.id, at),
        incoming.elements,
    )
    if why_not is not None:
        return _refuse(session, incoming, why_not)
    try:
        if not responder._segments(session, incoming.receiver.id):
            responder.refresh(session, data_dir, incoming.receiver.id)
        key = responder._responder_key(session, data_dir, incoming.receiver.id)
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
    segments = [s for s in responder._segments(session, incoming.receiver.id) if s.setup]
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
    pol = responder.policy_of(session, incoming.receiver.id)
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
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        message = errors[0]["msg"] if errors else "invalid"
        raise InvalidInput(
            f"the draft cannot be made: {where or 'request'}: {message}", field=where or "request"
        ) from None
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
