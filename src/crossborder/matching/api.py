"""JSON routes for hit/no-hit: ask partners, read the answers, turn a hit into a draft, and
(administrators) what this node answers: policy, partner rules, the set, opt-outs, inbound.

Asking needs ``matching:query``; everything about what the node answers needs
``matching:manage``. A query of another authority, like an authority not served here, is a
404. Every error is an RFC 9457 problem (``core.problems``).
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy.orm import Session

from crossborder.auth.deps import api_principal
from crossborder.auth.permissions import Permission, Principal, require
from crossborder.core.clock import utc_now
from crossborder.core.errors import InvalidInput, NotFound
from crossborder.deps import get_session, get_settings
from crossborder.directory.models import Authority
from crossborder.directory.taxonomy import Offence
from crossborder.matching import responder, schemas, service
from crossborder.settings import Settings

router = APIRouter(tags=["hit/no-hit"])

Actor = Annotated[Principal, Depends(api_principal)]
Db = Annotated[Session, Depends(get_session)]
Conf = Annotated[Settings, Depends(get_settings)]

INBOUND_MAX: Final = 200


def local_authority(session: Session, actor: Principal, authority_id: int) -> Authority:
    """An authority served by this node, for an administrator of hit/no-hit; else 404."""
    require(actor, Permission.MATCHING_MANAGE)
    authority = session.get(Authority, authority_id)
    if authority is None or not authority.is_local:
        raise NotFound("no such authority on this node")
    return authority


def offence_codes(raw: list[str]) -> list[dict[str, object]]:
    """Offence codes given as repeated or comma-separated values, checked."""
    codes = [c.strip() for item in raw for c in item.split(",") if c.strip()]
    if not codes:
        raise InvalidInput("name at least one offence under investigation", field="offences")
    if len(codes) > 20:
        raise InvalidInput("at most 20 offences", field="offences")
    known = {o.value for o in Offence}
    unknown = sorted({c for c in codes if c not in known})
    if unknown:
        raise InvalidInput(f"unknown offence code: {', '.join(unknown)}", field="offences")
    return [{"code": c, "max_penalty_years": None} for c in dict.fromkeys(codes)]


# -- asking partners -----------------------------------------------------------------------------


@router.post(
    "/matching/queries", response_model=schemas.QueryCreated, status_code=status.HTTP_201_CREATED
)
def send_query(
    body: schemas.QueryIn, actor: Actor, session: Db, settings: Conf
) -> schemas.QueryCreated:
    """Ask partner authorities which of these identifiers they hold (one message each).

    Partners without a legal basis for police cooperation are not asked (``not_asked``, with
    the reason); when none has one, nothing is sent and the answer is a 422 naming
    ``partners``. What travels is PSI material, the purpose, the case and the offences.
    """
    sent = service.send_query(
        session,
        actor,
        settings.data_dir,
        purpose=body.purpose,
        case_reference=body.case_reference,
        offences=body.offence_list(),
        identifiers=body.items(),
        request_ref=body.request,
        set_id=body.set_id,
        partner_ids=body.partners,
        slack_seconds=body.slack_seconds,
    )
    return schemas.created_out(session, sent)


@router.get("/matching/queries", response_model=schemas.QueryPage)
def list_queries(
    actor: Actor, session: Db, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> schemas.QueryPage:
    """Your authority's queries, newest first, with their partners' outcomes counted."""
    queries = service.list_queries(session, actor, limit=limit)
    return schemas.QueryPage(items=schemas.summaries(session, queries))


@router.get("/matching/queries/{query_id}", response_model=schemas.QueryDetail)
def get_query(query_id: str, actor: Actor, session: Db) -> schemas.QueryDetail:
    """One query: each partner's outcome and the hits (identifier, partner, strength, hours)."""
    return schemas.detail_out(session, service.get_query(session, actor, query_id[:40]))


@router.post(
    "/matching/hits/{hit_id}/draft",
    response_model=schemas.DraftOut,
    status_code=status.HTTP_201_CREATED,
)
def draft_from_hit(
    hit_id: int, actor: Actor, session: Db, body: schemas.DraftIn | None = None
) -> schemas.DraftOut:
    """A draft request to the partner that holds the identifier (the same draft if one exists)."""
    wanted = body or schemas.DraftIn()
    req = service.draft_from_hit(session, actor, hit_id, request_type=wanted.request_type)
    return schemas.DraftOut(
        request=req.reference, id=req.public_id, url=f"/requests/{req.reference}"
    )


@router.get("/matching/partners", response_model=schemas.PartnerList)
def partners(
    actor: Actor,
    session: Db,
    offences: Annotated[list[str], Query(min_length=1, max_length=20)],
) -> schemas.PartnerList:
    """Who may be asked about these offences (a legal basis for police cooperation), and why
    not. ``offences``: codes, repeated or comma-separated."""
    require(actor, Permission.MATCHING_QUERY)
    checks = service.check_partners(session, actor, None, offence_codes(offences))
    return schemas.PartnerList(items=[schemas.check_out(c) for c in checks])


# -- what this node answers (administrators) -----------------------------------------------------


@router.get("/matching/authorities/{authority_id}/policy", response_model=schemas.PolicyOut)
def get_policy(authority_id: int, actor: Actor, session: Db) -> schemas.PolicyOut:
    local_authority(session, actor, authority_id)
    return schemas.policy_out(responder.policy_of(session, authority_id))


@router.put("/matching/authorities/{authority_id}/policy", response_model=schemas.PolicyOut)
def put_policy(
    authority_id: int, body: schemas.PolicyIn, actor: Actor, session: Db
) -> schemas.PolicyOut:
    """Whether the authority answers, the kinds it never offers, its limits (omitted: kept)."""
    local_authority(session, actor, authority_id)
    policy = responder.set_policy(
        session,
        actor,
        authority_id,
        answers=body.answers,
        excluded_kinds=(
            [k.value for k in body.excluded_kinds] if body.excluded_kinds is not None else None
        ),
        max_query_elements=body.max_query_elements,
        daily_queries=body.daily_queries,
        daily_elements=body.daily_elements,
    )
    return schemas.policy_out(policy)


@router.put(
    "/matching/authorities/{authority_id}/partners/{partner_id}",
    response_model=schemas.PartnerRuleOut,
)
def put_partner_rule(
    authority_id: int, partner_id: int, body: schemas.PartnerRuleIn, actor: Actor, session: Db
) -> schemas.PartnerRuleOut:
    """Block a partner authority, or give it its own daily allowance (null: the policy's)."""
    local_authority(session, actor, authority_id)
    rule = responder.set_partner_rule(
        session,
        actor,
        authority_id,
        partner_id,
        blocked=body.blocked,
        daily_queries=body.daily_queries,
        daily_elements=body.daily_elements,
    )
    partner = session.get(Authority, partner_id)
    assert partner is not None  # set_partner_rule checked it
    return schemas.rule_out(rule, partner)


@router.get("/matching/authorities/{authority_id}/status", response_model=schemas.SetStatusOut)
def set_status(authority_id: int, actor: Actor, session: Db) -> schemas.SetStatusOut:
    """The encrypted set (elements, segments, stale, built, bytes) and each partner's use."""
    local_authority(session, actor, authority_id)
    return schemas.status_out(session, authority_id, service.partners(session, actor), utc_now())


@router.post("/matching/authorities/{authority_id}/refresh", response_model=schemas.RefreshOut)
def refresh(authority_id: int, actor: Actor, session: Db, settings: Conf) -> schemas.RefreshOut:
    """Bring the authority's encrypted set up to date now (the worker does it too)."""
    local_authority(session, actor, authority_id)
    return schemas.refresh_out(responder.refresh(session, settings.data_dir, authority_id))


@router.get("/matching/inbound", response_model=schemas.InboundPage)
def inbound(
    actor: Actor,
    session: Db,
    authority: int | None = None,
    limit: Annotated[int, Query(ge=1, le=INBOUND_MAX)] = INBOUND_MAX,
) -> schemas.InboundPage:
    """The queries partners sent this node's authorities (or one of them), newest first."""
    require(actor, Permission.MATCHING_MANAGE)
    if authority is not None:
        ids = [local_authority(session, actor, authority).id]
    else:
        ids = responder.local_authority_ids(session)
    rows = service.inbound(session, ids, limit=limit)
    names = schemas.authorities_by_id(session, [r.partner_authority_id for r in rows])
    return schemas.InboundPage(
        items=[schemas.inbound_out(r, names[r.partner_authority_id]) for r in rows]
    )


# -- records kept out ----------------------------------------------------------------------------


@router.get("/matching/optouts", response_model=schemas.OptOutPage)
def list_optouts(actor: Actor, session: Db) -> schemas.OptOutPage:
    """Records kept out of hit/no-hit: your authority's (administrators: the node's)."""
    return schemas.OptOutPage(
        items=[schemas.optout_out(r) for r in responder.optouts_for(session, actor)]
    )


@router.post(
    "/matching/optouts", response_model=schemas.OptOutOut, status_code=status.HTTP_201_CREATED
)
def opt_out(body: schemas.OptOutIn, actor: Actor, session: Db) -> schemas.OptOutOut:
    """Keep a request (public id or reference) or an identifier set out of what partners can
    match, from the next refresh of the set."""
    row = responder.opt_out(session, actor, body.scope_type, body.scope_id, reason=body.reason)
    return schemas.optout_out(row)


@router.delete("/matching/optouts", status_code=status.HTTP_204_NO_CONTENT)
def opt_in(body: schemas.OptOutIn, actor: Actor, session: Db) -> Response:
    """Offer a record again (from the next refresh). 404 when it was not kept out."""
    responder.opt_in(session, actor, body.scope_type, body.scope_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
