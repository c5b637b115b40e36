"""Every state change of a cooperation request, and every read of one.

Rules kept here:

- **Need-to-know.** A request is visible to users of its sending and its receiving authority
  (a draft only to the sender) and to auditors (``requests:audit-all``). Anyone else gets
  ``NotFound`` — the same answer as for a request that does not exist — and the attempt is
  audited. Every view is an audit event.
- **One transaction per change**, with its timeline event and audit event (``@atomic``).
- **Drafts** are edited with optimistic locking: a stale ``version`` is a ``Conflict``.
- **Submitting** runs the directory's legal-basis policy. Without a basis the request stays a
  draft and the officer sees the reasons; with one, the basis and the conditions that follow
  the data are stored on the request.
- **Transitions** are decided by the pure state machine in ``lifecycle``; clocks by the pure
  rules in ``deadlines``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from crossborder.audit.service import record
from crossborder.auth.permissions import Permission, Principal, require
from crossborder.core.clock import utc_now
from crossborder.core.errors import Conflict, DomainError, InvalidInput, NotFound
from crossborder.db.session import atomic, unit_of_work
from crossborder.directory import policy
from crossborder.directory import schemas as directory_schemas
from crossborder.directory import service as directory
from crossborder.directory.models import Authority, ContactPoint
from crossborder.evidence import package, storage
from crossborder.evidence import service as evidence
from crossborder.evidence.models import Attachment
from crossborder.federation import identity
from crossborder.requests import catalogue, deadlines, exchange, identifiers, lifecycle, schemas
from crossborder.requests.models import (
    CooperationRequest,
    RequestClock,
    RequestEvent,
    RequestLink,
    RequestMessage,
)
from crossborder.settings import Settings

Status = lifecycle.Status
Side = lifecycle.Side


# --------------------------------------------------------------------------- access


def side_of(req: CooperationRequest, actor: Principal) -> Side | None:
    if actor.authority_id == req.sender_authority_id:
        return Side.SENDER
    if actor.authority_id == req.receiver_authority_id:
        return Side.RECEIVER
    return None


def may_see(req: CooperationRequest, actor: Principal) -> bool:
    if not actor.has(Permission.REQUESTS_READ):
        return False
    side = side_of(req, actor)
    if side is Side.SENDER:
        return True
    if side is Side.RECEIVER:
        return req.status != Status.DRAFT
    return actor.has(Permission.REQUESTS_AUDIT_ALL)


def _find(session: Session, ref: str, *, lock: bool = False) -> CooperationRequest | None:
    stmt = select(CooperationRequest).where(
        or_(CooperationRequest.public_id == ref, CooperationRequest.reference == ref)
    )
    if lock:
        # Lock the request row only (its eager-loaded authorities come through outer joins,
        # which PostgreSQL will not lock).
        stmt = stmt.with_for_update(of=CooperationRequest)
    return session.scalars(stmt).unique().first()


def find(session: Session, ref: str, *, lock: bool = False) -> CooperationRequest | None:
    """Load a request by public id or reference, with no access check (federation handlers)."""
    return _find(session, ref, lock=lock)


def _visible_or_404(
    session: Session, ref: str, actor: Principal, *, action: str, lock: bool = False
) -> CooperationRequest:
    """Load a request the actor may see; otherwise audit the denial and raise NotFound.

    The denial is committed before the exception is raised, so it survives. Call this at the
    start of a top-level service function, before its own unit of work begins.
    """
    req = _find(session, ref, lock=lock)
    if req is not None and may_see(req, actor):
        return req
    with unit_of_work(session):
        record(
            session,
            actor=actor,
            action=action,
            object_type="request",
            object_id=req.public_id if req else ref[:80],
            outcome="denied",
            reason="not visible to this authority" if req else "no such request",
        )
    raise NotFound("no such request, or not visible to your authority")


def _acting_side(req: CooperationRequest, actor: Principal) -> Side:
    require(actor, Permission.REQUESTS_WRITE)
    side = side_of(req, actor)
    if side is None:
        raise NotFound("no such request, or not visible to your authority")
    return side


# --------------------------------------------------------------------------- drafts


def _authority(session: Session, authority_id: int, *, field: str) -> Authority:
    found = session.get(Authority, authority_id)
    if found is None:
        raise InvalidInput(f"no authority with id {authority_id}", field=field)
    return found


def _check_contact(session: Session, contact_id: int | None, authority_id: int, field: str) -> None:
    if contact_id is None:
        return
    contact = session.get(ContactPoint, contact_id)
    if contact is None or contact.authority_id != authority_id:
        raise InvalidInput("the contact point does not belong to that authority", field=field)


def _validated_details(request_type: str, raw: dict[str, Any]) -> dict[str, Any]:
    model = catalogue.validate_fields(catalogue.RequestType(request_type), raw)
    return model.model_dump(mode="json")


def _check_common(req: CooperationRequest) -> None:
    spec = catalogue.CATALOGUE[catalogue.RequestType(req.request_type)]
    if req.channel not in {c.value for c in spec.channels}:
        allowed = ", ".join(sorted(c.value for c in spec.channels))
        raise InvalidInput(
            f"a {req.request_type} request cannot travel on the channel '{req.channel}' "
            f"(allowed: {allowed})",
            field="channel",
        )
    req.urgency_justification = catalogue.check_urgency(
        catalogue.Urgency(req.urgency),
        req.urgency_justification,
        request_type=catalogue.RequestType(req.request_type),
    )


def _dump(entries: Sequence[Any]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") for e in entries]


@atomic
def create_draft(
    session: Session, data: schemas.DraftCreate, *, actor: Principal
) -> CooperationRequest:
    require(actor, Permission.REQUESTS_WRITE)
    sender = _authority(session, actor.authority_id, field="sender_authority_id")
    receiver = _authority(session, data.receiver_authority_id, field="receiver_authority_id")
    if receiver.id == sender.id:
        raise InvalidInput("a request goes to another authority", field="receiver_authority_id")
    _check_contact(session, data.sender_contact_id, sender.id, "sender_contact_id")
    _check_contact(session, data.receiver_contact_id, receiver.id, "receiver_contact_id")
    public_id = str(uuid.uuid4())
    req = CooperationRequest(
        public_id=public_id,
        reference=public_id,  # replaced by the numbered reference below
        request_type=data.request_type.value,
        status=Status.DRAFT.value,
        channel=data.channel.value,
        urgency=data.urgency.value,
        urgency_justification=data.urgency_justification,
        sender_authority_id=sender.id,
        receiver_authority_id=receiver.id,
        sender_contact_id=data.sender_contact_id,
        receiver_contact_id=data.receiver_contact_id,
        title=data.title,
        summary_of_facts=data.summary_of_facts,
        offences=_dump(data.offences),
        identifiers=_dump(data.identifiers),
        data_categories=[c.value for c in data.data_categories],
        confidentiality=data.confidentiality.value,
        use_conditions=_dump(data.use_conditions),
        details=_validated_details(data.request_type.value, data.details),
        requested_response_by=data.requested_response_by,
        eu_production_order=data.eu_production_order,
        created_by_user_id=actor.user_id,
    )
    _check_common(req)
    identifiers.check_identifiers(session, req)
    session.add(req)
    session.flush()
    req.reference = _reference(sender, req.id)
    identifiers.index_request(session, req)
    for link in data.links:
        _add_link(session, req, link, actor=actor)
    _event(session, req, actor, action="created", to_status=Status.DRAFT)
    record(
        session,
        actor=actor,
        action="request.created",
        object_type="request",
        object_id=req.public_id,
        details={"type": req.request_type, "receiver_authority_id": receiver.id},
    )
    session.flush()
    return req


def _reference(sender: Authority, number: int) -> str:
    prefix = (sender.short_name or f"A{sender.id}").upper()
    return f"{prefix}-{utc_now().year}-{number:06d}"


def _add_link(
    session: Session, req: CooperationRequest, link: schemas.LinkIn, *, actor: Principal
) -> None:
    target = _find(session, link.request)
    if target is None or not may_see(target, actor):
        raise InvalidInput(f"no visible request '{link.request}'", field="links")
    catalogue.check_link(
        catalogue.RequestType(req.request_type),
        link.kind,
        catalogue.RequestType(target.request_type),
    )
    if link.kind is catalogue.LinkKind.EXTENDS and not lifecycle.can_extend(
        catalogue.RequestType(target.request_type), Status(target.status)
    ):
        raise InvalidInput("only an executed preservation can be extended", field="links")
    session.add(RequestLink(from_request_id=req.id, to_request_id=target.id, kind=link.kind.value))


def update_draft(
    session: Session, ref: str, data: schemas.DraftUpdate, *, actor: Principal
) -> CooperationRequest:
    req = _visible_or_404(session, ref, actor, action="request.update", lock=True)
    with unit_of_work(session):
        return _update_draft(session, req, data, actor=actor)


def _update_draft(
    session: Session, req: CooperationRequest, data: schemas.DraftUpdate, *, actor: Principal
) -> CooperationRequest:
    if _acting_side(req, actor) is not Side.SENDER:
        raise NotFound("no such request, or not visible to your authority")
    if req.status != Status.DRAFT:
        raise Conflict(f"only a draft can be edited; this request is '{req.status}'")
    if data.version != req.version:
        raise Conflict(
            "someone else changed this draft since you opened it "
            f"(your version {data.version}, now {req.version}): reload and apply your changes"
        )
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    for name in ("offences", "identifiers", "use_conditions"):
        if name in changes:
            changes[name] = _dump(getattr(data, name) or [])
    if "data_categories" in changes:
        changes["data_categories"] = [c.value for c in data.data_categories or []]
    if "details" in changes:
        changes["details"] = _validated_details(req.request_type, data.details or {})
    _check_contact(session, data.sender_contact_id, req.sender_authority_id, "sender_contact_id")
    _check_contact(
        session, data.receiver_contact_id, req.receiver_authority_id, "receiver_contact_id"
    )
    for name, value in changes.items():
        setattr(req, name, value.value if hasattr(value, "value") else value)
    _check_common(req)
    if {"identifiers", "summary_of_facts"} & set(changes):
        identifiers.check_identifiers(session, req)
        identifiers.index_request(session, req)
    _event(session, req, actor, action="edited", to_status=Status.DRAFT)
    record(
        session,
        actor=actor,
        action="request.edited",
        object_type="request",
        object_id=req.public_id,
        details={"fields": sorted(changes)},
    )
    session.flush()
    return req


# --------------------------------------------------------------------------- reads


def get_request(session: Session, ref: str, *, actor: Principal) -> CooperationRequest:
    """One request, for someone with need-to-know; the view is audited."""
    req = _visible_or_404(session, ref, actor, action="request.viewed")
    with unit_of_work(session):
        record(
            session,
            actor=actor,
            action="request.viewed",
            object_type="request",
            object_id=req.public_id,
            details={"side": (side_of(req, actor) or "auditor")},
        )
    return req


@dataclass(frozen=True)
class Filters:
    request_type: str | None = None
    partner_authority_id: int | None = None
    status: str | None = None
    overdue: bool = False
    q: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[CooperationRequest]
    total: int
    limit: int
    offset: int


def _visible_query(actor: Principal) -> Select[CooperationRequest]:
    stmt = select(CooperationRequest)
    if actor.has(Permission.REQUESTS_AUDIT_ALL):
        return stmt
    mine = actor.authority_id
    return stmt.where(
        or_(
            CooperationRequest.sender_authority_id == mine,
            (CooperationRequest.receiver_authority_id == mine)
            & (CooperationRequest.status != Status.DRAFT.value),
        )
    )


def list_requests(
    session: Session, *, actor: Principal, filters: Filters, limit: int = 50, offset: int = 0
) -> Page:
    require(actor, Permission.REQUESTS_READ)
    stmt = _visible_query(actor)
    if filters.request_type:
        stmt = stmt.where(CooperationRequest.request_type == filters.request_type)
    if filters.status:
        stmt = stmt.where(CooperationRequest.status == filters.status)
    if filters.partner_authority_id is not None:
        partner = filters.partner_authority_id
        stmt = stmt.where(
            or_(
                CooperationRequest.sender_authority_id == partner,
                CooperationRequest.receiver_authority_id == partner,
            )
        )
    if filters.overdue:
        overdue = select(RequestClock.request_id).where(RequestClock.state == "overdue")
        stmt = stmt.where(CooperationRequest.id.in_(overdue))
    if filters.q:
        like = f"%{filters.q.lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(CooperationRequest.title).like(like),
                func.lower(CooperationRequest.reference).like(like),
            )
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    limit = min(max(limit, 1), 200)
    items = list(
        session.scalars(
            stmt.order_by(CooperationRequest.updated_at.desc()).limit(limit).offset(max(offset, 0))
        ).unique()
    )
    with unit_of_work(session):
        record(
            session,
            actor=actor,
            action="request.listed",
            object_type="request",
            details={"count": len(items), "status": filters.status, "type": filters.request_type},
        )
    return Page(items=items, total=int(total), limit=limit, offset=max(offset, 0))


def timeline(session: Session, req: CooperationRequest) -> list[RequestEvent]:
    return list(
        session.scalars(
            select(RequestEvent)
            .where(RequestEvent.request_id == req.id)
            .order_by(RequestEvent.at, RequestEvent.id)
        )
    )


def messages(session: Session, req: CooperationRequest) -> list[RequestMessage]:
    return list(
        session.scalars(
            select(RequestMessage)
            .where(RequestMessage.request_id == req.id)
            .order_by(RequestMessage.created_at, RequestMessage.id)
        )
    )


def links(session: Session, req: CooperationRequest) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    rows = session.execute(
        select(RequestLink, CooperationRequest)
        .join(CooperationRequest, CooperationRequest.id == RequestLink.to_request_id)
        .where(RequestLink.from_request_id == req.id)
    ).all()
    for link, target in rows:
        out.append(
            {
                "direction": "to",
                "kind": link.kind,
                "reference": target.reference,
                "public_id": target.public_id,
            }
        )
    rows = session.execute(
        select(RequestLink, CooperationRequest)
        .join(CooperationRequest, CooperationRequest.id == RequestLink.from_request_id)
        .where(RequestLink.to_request_id == req.id)
    ).all()
    for link, source in rows:
        out.append(
            {
                "direction": "from",
                "kind": link.kind,
                "reference": source.reference,
                "public_id": source.public_id,
            }
        )
    return out


def available_actions(req: CooperationRequest, actor: Principal) -> list[lifecycle.Action]:
    side = side_of(req, actor)
    if side is None or not actor.has(Permission.REQUESTS_WRITE):
        return []
    return lifecycle.available_actions(
        request_type=catalogue.RequestType(req.request_type),
        status=Status(req.status),
        side=side,
        roles=frozenset(r.value for r in actor.roles),
    )


# --------------------------------------------------------------------------- transitions


def _event(
    session: Session,
    req: CooperationRequest,
    actor: Principal,
    *,
    action: str,
    from_status: Status | None = None,
    to_status: Status | None = None,
    ground: str | None = None,
    note: str | None = None,
) -> None:
    session.add(
        RequestEvent(
            request_id=req.id,
            actor_user_id=actor.user_id if actor.via != "system" else None,
            actor_label=actor.username,
            actor_authority_id=actor.authority_id if actor.via != "system" else None,
            action=action,
            from_status=from_status.value if from_status else None,
            to_status=to_status.value if to_status else None,
            ground=ground,
            note=note,
        )
    )


def _policy_on_submit(session: Session, req: CooperationRequest, actor: Principal) -> None:
    sender, receiver = req.sender, req.receiver
    if sender.state is None or receiver.state is None:
        raise InvalidInput(
            "no legal basis can be found for an authority without a state "
            "(an international organisation): send through a national authority",
            field="receiver_authority_id",
        )
    query = directory_schemas.PolicyQuery(
        sender_state=sender.state.alpha2,
        receiver_state=receiver.state.alpha2,
        sender_authority_id=sender.id,
        receiver_authority_id=receiver.id,
        channel=req.channel,
        offences=[
            {"code": o["code"], "max_penalty_years": o.get("max_penalty_years")}
            for o in req.offences
        ],
        data_categories=req.data_categories,
    )
    result = directory.evaluate_policy(session, query, actor=actor)
    if not result.bases:
        reasons = [
            {
                "field": "legal_basis",
                "message": r.message,
                "code": r.code.value,
                "instrument": r.instrument_code,
            }
            for r in result.refusals
        ]
        raise NoLegalBasis(reasons, refusals=result.refusals)
    basis = result.bases[0]
    req.legal_basis = {
        "instrument_code": basis.instrument_code,
        "title": basis.title,
        "kind": basis.kind.value,
        "article": basis.article,
        "alternatives": [b.instrument_code for b in result.bases[1:]],
    }
    req.conditions = [
        {"code": c.code, "text": c.text, "source": basis.instrument_code} for c in basis.conditions
    ]
    req.conditions += [{**c, "source": "sender"} for c in req.use_conditions]


def _check_required_links(session: Session, req: CooperationRequest) -> None:
    present = session.scalars(
        select(RequestLink.kind).where(RequestLink.from_request_id == req.id)
    ).all()
    request_type = catalogue.RequestType(req.request_type)
    fields = catalogue.validate_fields(request_type, req.details)
    missing = catalogue.missing_links(
        request_type, [catalogue.LinkKind(k) for k in present], fields
    )
    if missing:
        kinds = ", ".join(sorted(k.value for k in missing))
        raise InvalidInput(f"link this request to the earlier one first ({kinds})", field="links")


class NoLegalBasis(InvalidInput):
    """Submitting found no instrument; ``errors`` lists why each candidate does not apply."""

    code = "no-legal-basis"
    title = "No legal basis"

    def __init__(
        self, reasons: list[dict[str, Any]], *, refusals: Sequence[policy.Reason] = ()
    ) -> None:
        super().__init__(
            "no legal basis covers this request: "
            + "; ".join(str(r["message"]) for r in reasons[:5]),
            field="legal_basis",
        )
        self.reasons = reasons
        self.refusals = list(refusals)  # the policy's own reasons, for translated display
        self.extra = {"errors": reasons}


def _apply_clocks(session: Session, req: CooperationRequest, now: datetime) -> None:
    wanted = deadlines.clocks_for(
        request_type=catalogue.RequestType(req.request_type),
        urgency=catalogue.Urgency(req.urgency),
        channel=req.channel,
        submitted_at=req.submitted_at or now,
        requested_response_by=req.requested_response_by,
        eu_production_order=req.eu_production_order,
        data_categories=tuple(req.data_categories),
        preserved_at=req.preserved_at,
        preserved_until=req.preserved_until,
        instrument_code=(req.legal_basis or {}).get("instrument_code"),
    )
    existing = {c.kind: c for c in req.clocks}
    for clock in wanted:
        row = existing.get(clock.kind.value)
        if row is None:
            req.clocks.append(
                RequestClock(
                    kind=clock.kind.value,
                    due_at=clock.due_at,
                    warn_at=clock.warn_at,
                    basis=clock.basis,
                    verified=clock.verified,
                    state="ok",
                )
            )
        elif row.met_at is None:
            row.due_at, row.warn_at, row.basis = clock.due_at, clock.warn_at, clock.basis
    _refresh_states(req, now)


def _meet(req: CooperationRequest, kinds: set[str], now: datetime) -> None:
    for clock in req.clocks:
        if clock.kind in kinds and clock.met_at is None:
            clock.met_at = now
            clock.state = deadlines.ClockState.MET.value


def _refresh_states(req: CooperationRequest, now: datetime) -> int:
    changed = 0
    for row in req.clocks:
        state = deadlines.state_of(_as_clock(row), now=now, met_at=row.met_at).value
        if state != row.state:
            row.state = state
            changed += 1
    return changed


def _as_clock(row: RequestClock) -> deadlines.Clock:
    return deadlines.Clock(
        kind=deadlines.ClockKind(row.kind),
        due_at=row.due_at,
        warn_at=row.warn_at,
        basis=row.basis,
        verified=row.verified,
    )


_RESPONSE_CLOCKS = {
    deadlines.ClockKind.RESPONSE.value,
    deadlines.ClockKind.EU_PRODUCTION.value,
    deadlines.ClockKind.CETS224_ART8.value,
}


def transition(
    session: Session, ref: str, data: schemas.TransitionIn, *, actor: Principal
) -> CooperationRequest:
    """Move a request through its lifecycle; illegal moves raise and change nothing."""
    req = _visible_or_404(session, ref, actor, action=f"request.{data.action.value}", lock=True)
    public_id = req.public_id
    try:
        with unit_of_work(session):
            return _transition(session, req, data, actor=actor)
    except DomainError as exc:
        # The change rolled back; the refused attempt itself is still worth a record.
        with unit_of_work(session):
            record(
                session,
                actor=actor,
                action=f"request.{data.action.value}",
                object_type="request",
                object_id=public_id,
                outcome="denied",
                reason=exc.detail[:500],
            )
        raise


def _transition(
    session: Session, req: CooperationRequest, data: schemas.TransitionIn, *, actor: Principal
) -> CooperationRequest:
    side = _acting_side(req, actor)
    if data.version is not None and data.version != req.version:
        raise Conflict("the request changed since you opened it: reload it and try again")
    before = Status(req.status)
    after = lifecycle.check(
        data.action,
        request_type=catalogue.RequestType(req.request_type),
        status=before,
        side=side,
        roles=frozenset(r.value for r in actor.roles),
        ground=data.ground,
        reasons=data.reasons,
        until=data.until,
        now=utc_now(),
    )
    now = utc_now()
    _apply_effects(session, req, data, actor=actor, after=after, now=now)
    req.status = after.value
    _event(
        session,
        req,
        actor,
        action=data.action.value,
        from_status=before,
        to_status=after,
        ground=data.ground,
        note=data.reasons,
    )
    if data.action is lifecycle.Action.SUBMIT:
        exchange.announce_submitted(session, req, actor)
    else:
        exchange.announce_transition(
            session,
            req,
            actor=actor,
            side=side,
            action=data.action,
            from_status=before,
            ground=data.ground,
            reasons=data.reasons,
            until=data.until,
            preserved_until=data.preserved_until,
        )
    record(
        session,
        actor=actor,
        action=f"request.{data.action.value}",
        object_type="request",
        object_id=req.public_id,
        details={"from": before.value, "to": after.value, "ground": data.ground},
    )
    session.flush()
    return req


def _apply_effects(
    session: Session,
    req: CooperationRequest,
    data: schemas.TransitionIn,
    *,
    actor: Principal,
    after: Status,
    now: datetime,
) -> None:
    action, act = data.action, lifecycle.Action
    if action is act.SUBMIT:
        _check_required_links(session, req)
        _policy_on_submit(session, req, actor)
        req.submitted_at = now
        _apply_clocks(session, req, now)
        _meet_follow_up(session, req, now)
    elif action is act.ACKNOWLEDGE:
        _meet(req, {deadlines.ClockKind.ACKNOWLEDGEMENT.value}, now)
    elif action is act.POSTPONE:
        req.postponed_until = data.until
    if after in lifecycle.FINAL_OUTCOMES:
        req.outcome = lifecycle.OUTCOME_OF.get(after, after.value)
        req.refusal_ground = data.ground if after is Status.REFUSED else None
        req.outcome_reasons = data.reasons
        _meet(req, _RESPONSE_CLOCKS | {deadlines.ClockKind.ACKNOWLEDGEMENT.value}, now)
    preservation = req.request_type == catalogue.RequestType.PRESERVATION.value
    if preservation and action in (act.EXECUTE, act.PARTIALLY_EXECUTE):
        _preserve(session, req, data.preserved_until, now)
    if after is Status.CLOSED:
        req.closed_at = now
        _meet(req, {c.kind for c in req.clocks}, now)


def _meet_follow_up(session: Session, req: CooperationRequest, now: datetime) -> None:
    """A request that follows a preservation stops that preservation's MLA follow-up clock."""
    preserved = session.scalars(
        select(CooperationRequest)
        .join(RequestLink, RequestLink.to_request_id == CooperationRequest.id)
        .where(
            RequestLink.from_request_id == req.id,
            RequestLink.kind == catalogue.LinkKind.FOLLOWS_PRESERVATION.value,
        )
    ).unique()
    for target in preserved:
        _meet(target, {deadlines.ClockKind.MLA_FOLLOW_UP.value}, now)


def _preserve(
    session: Session, req: CooperationRequest, until: datetime | None, now: datetime
) -> None:
    """Record the preservation; an extension pushes the original's expiry instead."""
    minimum = deadlines.minimum_preservation_until(now)
    req.preserved_at = now
    req.preserved_until = max(until, minimum) if until else minimum
    _apply_clocks(session, req, now)
    extended = session.scalars(
        select(CooperationRequest)
        .join(RequestLink, RequestLink.to_request_id == CooperationRequest.id)
        .where(
            RequestLink.from_request_id == req.id,
            RequestLink.kind == catalogue.LinkKind.EXTENDS.value,
        )
    ).first()
    if extended is not None and extended.preserved_until is not None:
        extended.preserved_until = max(extended.preserved_until, req.preserved_until)
        _apply_clocks(session, extended, now)


# --------------------------------------------------------------------------- messages


def add_message(
    session: Session, ref: str, data: schemas.MessageIn, *, actor: Principal
) -> RequestMessage:
    req = _visible_or_404(session, ref, actor, action="request.message")
    with unit_of_work(session):
        return _add_message(session, req, data, actor=actor)


def _add_message(
    session: Session, req: CooperationRequest, data: schemas.MessageIn, *, actor: Principal
) -> RequestMessage:
    side = _acting_side(req, actor)
    if req.status == Status.CLOSED:
        raise Conflict("the request is closed; open a follow-up request instead")
    message = RequestMessage(
        request_id=req.id,
        author_user_id=actor.user_id,
        author_label=actor.username,
        author_authority_id=actor.authority_id,
        body=data.body,
    )
    session.add(message)
    session.flush()
    identifiers.index_message(session, req, message)
    record(
        session,
        actor=actor,
        action="request.message",
        object_type="request",
        object_id=req.public_id,
        details={"message_id": message.id},
    )
    if req.status != Status.DRAFT:
        exchange.announce_message(session, req, message, side)
    return message


# --------------------------------------------------------------------------- from peers


def record_received(
    session: Session, req: CooperationRequest, actor: Principal, *, node_name: str
) -> None:
    """The copy of a request submitted from another node: clocks, timeline, index, audit."""
    _apply_clocks(session, req, req.submitted_at or utc_now())
    identifiers.index_request(session, req, received=True)
    _event(
        session,
        req,
        actor,
        action="submit",
        from_status=Status.DRAFT,
        to_status=Status.SUBMITTED,
        note=f"received from node {node_name}",
    )
    record(
        session,
        actor=actor,
        action="request.received",
        object_type="request",
        object_id=req.public_id,
        details={"node": node_name, "type": req.request_type},
    )


def apply_remote_transition(
    session: Session,
    req: CooperationRequest,
    *,
    actor: Principal,
    action: lifecycle.Action,
    ground: str | None,
    reasons: str | None,
    until: datetime | None,
    preserved_until: datetime | None,
    preserved_at: datetime | None,
) -> None:
    """Apply a step the other party took on its node. The lifecycle is checked again (side,
    state, grounds); the roles are the ones the peer vouches for."""
    side = side_of(req, actor)
    if side is None:
        raise NotFound("the acting authority is not a party to this request")
    if action is lifecycle.Action.SUBMIT:
        raise Conflict("a submission arrives as request.submitted, not as a transition")
    before = Status(req.status)
    after = lifecycle.check(
        action,
        request_type=catalogue.RequestType(req.request_type),
        status=before,
        side=side,
        roles=frozenset(r.value for r in actor.roles),
        ground=ground,
        reasons=reasons,
        until=until,
    )
    now = utc_now()
    data = schemas.TransitionIn(
        action=action, ground=ground, reasons=reasons, until=until, preserved_until=preserved_until
    )
    _apply_effects(session, req, data, actor=actor, after=after, now=now)
    if preserved_at is not None and req.preserved_at is not None:
        # Both copies count the preservation from when the provider preserved, not from
        # when the message arrived.
        req.preserved_at = preserved_at
        if preserved_until is not None:
            req.preserved_until = preserved_until
        _apply_clocks(session, req, now)
    req.status = after.value
    _event(
        session,
        req,
        actor,
        action=action.value,
        from_status=before,
        to_status=after,
        ground=ground,
        note=reasons,
    )
    record(
        session,
        actor=actor,
        action=f"request.remote_{action.value}",
        object_type="request",
        object_id=req.public_id,
        details={"from": before.value, "to": after.value, "ground": ground},
    )
    session.flush()


# --------------------------------------------------------------------------- clocks


@dataclass(frozen=True)
class SweepResult:
    checked: int
    changed: int
    overdue: int
    due_soon: int


@atomic
def sweep_clocks(session: Session, *, now: datetime | None = None) -> SweepResult:
    """Bring every open clock's state up to date (run by the worker)."""
    now = now or utc_now()
    rows = list(
        session.scalars(select(RequestClock).where(RequestClock.met_at.is_(None)).with_for_update())
    )
    changed = 0
    for row in rows:
        state = deadlines.state_of(_as_clock(row), now=now, met_at=None).value
        if state != row.state:
            row.state = state
            changed += 1
    overdue = sum(1 for r in rows if r.state == deadlines.ClockState.OVERDUE.value)
    due_soon = sum(1 for r in rows if r.state == deadlines.ClockState.DUE_SOON.value)
    return SweepResult(checked=len(rows), changed=changed, overdue=overdue, due_soon=due_soon)


def dashboard(
    session: Session, *, actor: Principal
) -> list[tuple[CooperationRequest, RequestClock]]:
    """Open clocks that are overdue or due soon, on requests the actor may see, soonest first."""
    require(actor, Permission.REQUESTS_READ)
    visible = _visible_query(actor).subquery()
    rows = session.execute(
        select(CooperationRequest, RequestClock)
        .join(RequestClock, RequestClock.request_id == CooperationRequest.id)
        .where(CooperationRequest.id.in_(select(visible.c.id)))
        .where(RequestClock.met_at.is_(None))
        .where(RequestClock.state.in_(["overdue", "due_soon"]))
        .order_by(RequestClock.due_at)
        .limit(200)
    ).all()
    return [(req, clock) for req, clock in rows]


# --------------------------------------------------------------------------- attachments

OWNER = "request"


def attachments(session: Session, req: CooperationRequest) -> list[Attachment]:
    return evidence.list_for_owner(session, OWNER, req.public_id)


def _attachable(session: Session, ref: str, actor: Principal) -> CooperationRequest:
    req = _visible_or_404(session, ref, actor, action="request.attach")
    _acting_side(req, actor)
    if req.status == Status.CLOSED:
        raise Conflict("the request is closed; attach to a follow-up request instead")
    return req


async def add_attachment(
    session: Session,
    ref: str,
    *,
    actor: Principal,
    settings: Settings,
    filename: str,
    media_type: str,
    chunks: AsyncIterator[bytes],
    max_bytes: int | None = None,
) -> Attachment:
    """Stream an upload into the evidence store (SHA-256 while it arrives) and record it.

    An upload over the limit (``CROSSBORDER_MAX_ATTACHMENT_BYTES`` unless ``max_bytes`` says
    otherwise) or interrupted midway stores nothing (see evidence.storage).
    """
    req = _attachable(session, ref, actor)
    attachment = await evidence.receive_upload_async(
        session,
        actor=actor,
        settings=settings,
        owner_type=OWNER,
        owner_id=req.public_id,
        filename=filename,
        media_type=media_type,
        chunks=chunks,
        max_bytes=max_bytes or settings.max_attachment_bytes,
    )
    with unit_of_work(session):
        _event(
            session,
            req,
            actor,
            action="attached",
            note=f"{attachment.filename} ({attachment.size} bytes, sha256 {attachment.sha256})",
        )
        side = side_of(req, actor)
        assert side is not None  # _attachable checked it
        blob = storage.blob_path(storage.evidence_root(settings.data_dir), attachment.sha256)
        exchange.announce_attachment(session, req, attachment, side=side, actor=actor, blob=blob)
    return attachment


def record_attachment_received(
    session: Session,
    req: CooperationRequest,
    actor: Principal,
    attachment: Attachment,
    *,
    node_name: str,
) -> None:
    _event(
        session,
        req,
        actor,
        action="attached",
        note=f"{attachment.filename} ({attachment.size} bytes, sha256 {attachment.sha256}), "
        f"received from node {node_name}",
    )


def open_attachment(
    session: Session, ref: str, attachment_id: str, *, actor: Principal, settings: Settings
) -> tuple[Attachment, Path]:
    """Hand out an attachment of a visible request after re-checking its hash (custody)."""
    req = _visible_or_404(session, ref, actor, action="request.attachment_opened")
    found = evidence.get_by_public_id(session, attachment_id)
    if found.owner_type != OWNER or found.owner_id != req.public_id:
        raise NotFound("no such attachment on this request")
    return evidence.open_for_download(
        session, actor=actor, attachment_id=found.id, settings=settings
    )


def export_package(
    session: Session, ref: str, *, actor: Principal, settings: Settings, out_dir: Path
) -> Path:
    """A signed ZIP of the request, its timeline, thread and attachments, verifiable offline
    with ``crossborder evidence verify``. Each attachment is re-hashed and gets an
    ``exported`` custody event."""
    req = get_request(session, ref, actor=actor)
    files = []
    for att in attachments(session, req):
        opened, path = evidence.open_for_download(
            session, actor=actor, attachment_id=att.id, settings=settings, purpose="exported"
        )
        files.append((f"{opened.public_id}-{opened.filename}", path, opened.sha256))
    from crossborder.requests import present

    record_view = present.detail(session, req, actor).model_dump(mode="json")
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{req.reference}-{utc_now().strftime('%Y%m%dT%H%M%SZ')}.zip"
    package.build_package(
        out_path=out,
        manifest={"kind": "crossborder.request", "request": record_view},
        files=files,
        identity=identity.load_identity(settings.data_dir),
    )
    with unit_of_work(session):
        _event(session, req, actor, action="exported", note=out.name)
        record(
            session,
            actor=actor,
            action="request.exported",
            object_type="request",
            object_id=req.public_id,
            details={"files": len(files)},
        )
    return out


# --- added for the web pages


def contact_persons(
    session: Session, req: CooperationRequest, *, actor: Principal
) -> tuple[ContactPoint | None, ContactPoint | None]:
    """The sender's and receiver's named contact points of a request the actor may see.

    Contact points are personal data: the read is audited, and a user without
    ``directory:contacts:read`` gets ``(None, None)``.
    """
    ids = [i for i in (req.sender_contact_id, req.receiver_contact_id) if i is not None]
    if not ids or not actor.has(Permission.DIRECTORY_CONTACTS_READ) or not may_see(req, actor):
        return None, None
    sender = session.get(ContactPoint, req.sender_contact_id) if req.sender_contact_id else None
    receiver = (
        session.get(ContactPoint, req.receiver_contact_id) if req.receiver_contact_id else None
    )
    with unit_of_work(session):
        record(
            session,
            actor=actor,
            action="directory.contacts.viewed",
            object_type="request",
            object_id=req.public_id,
            details={"contact_point_ids": ids},
        )
    return sender, receiver
