"""What comes in and goes out of the hit/no-hit API, and how service objects become it.

The ``*_out`` builders turn what ``service`` returns into these models; the API, the pages
and the command line share them, so a query reads the same everywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.directory.models import Authority
from crossborder.directory.taxonomy import Offence
from crossborder.matching import responder, rules, service
from crossborder.matching.models import (
    MatchHit,
    MatchInbound,
    MatchOptOut,
    MatchPartnerRule,
    MatchPolicy,
    MatchQuery,
    MatchTarget,
)
from crossborder.requests.schemas import IdentifierKind

#: What a target's reason starts with when the partner answered but leaves kinds out.
NOT_OFFERED_PREFIX: Final = "does not offer: "
#: Target statuses, as the pages and the summaries count them.
WAITING: Final = ("sent",)
FAILED: Final = ("failed", "expired")

# -- in ------------------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OffenceIn(_In):
    code: Offence
    max_penalty_years: Annotated[float | None, Field(ge=0, le=100)] = None


class IdentifierIn(_In):
    kind: IdentifierKind
    value: Annotated[str, Field(min_length=1, max_length=2000)]
    port: Annotated[int | None, Field(ge=1, le=65535)] = None
    seen_from: AwareDatetime | None = None
    seen_until: AwareDatetime | None = None


class QueryIn(_In):
    """A query: why (purpose, case, offences), what (identifiers, a request, a set), to whom."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    purpose: Annotated[str, Field(min_length=rules.PURPOSE_MIN, max_length=rules.PURPOSE_MAX)]
    case_reference: Annotated[str, Field(min_length=1, max_length=rules.CASE_REFERENCE_MAX)]
    offences: Annotated[list[OffenceIn], Field(min_length=1, max_length=20)]
    identifiers: Annotated[list[IdentifierIn], Field(max_length=service.MAX_QUERY_ITEMS)] = Field(
        default_factory=list
    )
    request: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    set_id: Annotated[str | None, Field(alias="set", min_length=1, max_length=80)] = None
    partners: Annotated[list[int] | None, Field(min_length=1, max_length=500)] = None
    slack_seconds: Annotated[int, Field(ge=0, le=3600)] = 0

    def items(self) -> list[service.ItemIn]:
        return [
            service.ItemIn(i.kind.value, i.value, i.port, i.seen_from, i.seen_until)
            for i in self.identifiers
        ]

    def offence_list(self) -> list[dict[str, Any]]:
        return [o.model_dump(mode="json") for o in self.offences]


class DraftIn(_In):
    request_type: Literal["police_information", "preservation"] = "police_information"


class PolicyIn(_In):
    """Fields left out keep their value."""

    answers: bool | None = None
    excluded_kinds: Annotated[list[IdentifierKind] | None, Field(max_length=20)] = None
    max_query_elements: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    daily_queries: Annotated[int | None, Field(ge=0, le=100_000_000)] = None
    daily_elements: Annotated[int | None, Field(ge=0, le=100_000_000)] = None


class PartnerRuleIn(_In):
    """The whole rule: a daily figure left out (null) falls back to the policy's."""

    blocked: bool = False
    daily_queries: Annotated[int | None, Field(ge=0, le=100_000_000)] = None
    daily_elements: Annotated[int | None, Field(ge=0, le=100_000_000)] = None


class OptOutIn(_In):
    scope_type: Literal["request", "set"]
    scope_id: Annotated[str, Field(min_length=1, max_length=80)]
    reason: Annotated[str, Field(max_length=300)] = ""


# -- out -----------------------------------------------------------------------------------------


class PartnerRef(BaseModel):
    id: int
    name: str
    short_name: str | None
    state: str | None


class PartnerCheckOut(BaseModel):
    partner: PartnerRef
    may_ask: bool
    legal_basis: str | None
    reason: str | None


class TargetOut(BaseModel):
    id: str
    partner: PartnerRef
    status: str  # sent (waiting) | answered | refused | failed | expired
    legal_basis: str | None
    reason_code: str | None
    reason: str | None
    not_offered: list[str]
    elements: int
    hit_count: int
    bytes_sent: int
    bytes_received: int
    segments: int
    set_size: int | None
    set_built_at: datetime | None
    sent_at: datetime
    answered_at: datetime | None


class QueryCreated(BaseModel):
    id: str
    case_reference: str
    created_at: datetime
    identifiers: int
    elements: int
    targets: list[TargetOut]
    not_asked: list[PartnerCheckOut]


class QuerySummary(BaseModel):
    id: str
    case_reference: str
    purpose: str
    offences: list[dict[str, Any]]
    created_at: datetime
    created_by: str
    identifiers: int
    elements: int
    partners: int
    answered: int
    refused: int
    waiting: int
    failed: int
    hit_count: int


class QueryPage(BaseModel):
    items: list[QuerySummary]


class IdentifierOut(BaseModel):
    kind: str
    raw: str
    canonical: str
    port: int | None
    seen_from: datetime | None
    seen_until: datetime | None


class HitOut(BaseModel):
    id: int
    identifier: IdentifierOut
    partner: PartnerRef
    strength: str  # match | weak | variant
    matched: list[str]
    hours: list[str]
    draft_request: str | None


class QueryDetail(QuerySummary):
    request: str | None
    set: str | None
    slack_seconds: int
    targets: list[TargetOut]
    hits: list[HitOut]


class DraftOut(BaseModel):
    request: str
    id: str
    url: str


class PartnerList(BaseModel):
    items: list[PartnerCheckOut]


class PolicyOut(BaseModel):
    authority_id: int
    answers: bool
    excluded_kinds: list[str]
    max_query_elements: int
    daily_queries: int
    daily_elements: int
    updated_by: str | None
    updated_at: datetime | None


class PartnerRuleOut(BaseModel):
    authority_id: int
    partner: PartnerRef
    blocked: bool
    daily_queries: int | None
    daily_elements: int | None
    updated_by: str
    updated_at: datetime


class UsageOut(BaseModel):
    partner: PartnerRef
    blocked: bool
    daily_queries: int
    daily_elements: int
    queries_24h: int
    elements_24h: int


class SetStatusOut(BaseModel):
    authority_id: int
    elements: int
    segments: int
    stale_segments: int
    built_at: datetime | None
    bytes: int
    usage: list[UsageOut]


class RefreshOut(BaseModel):
    authority_id: int
    elements: int
    added: int
    removed: int
    segments_built: int
    segments: int
    seconds: float


class InboundOut(BaseModel):
    id: int
    authority_id: int
    partner: PartnerRef
    node: str
    asked_by: str
    received_at: datetime
    purpose: str
    case_reference: str
    offences: list[Any]
    elements: int
    outcome: str
    reason_code: str | None
    reason: str | None
    legal_basis: str | None
    bytes_sent: int


class InboundPage(BaseModel):
    items: list[InboundOut]


class OptOutOut(BaseModel):
    scope_type: str
    scope_id: str
    authority_id: int
    reason: str
    added_by: str
    created_at: datetime


class OptOutPage(BaseModel):
    items: list[OptOutOut]


# -- builders ------------------------------------------------------------------------------------


def partner_ref(authority: Authority) -> PartnerRef:
    return PartnerRef(
        id=authority.id,
        name=authority.name,
        short_name=authority.short_name,
        state=authority.state_code,
    )


def authorities_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, Authority]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.scalars(select(Authority).where(Authority.id.in_(wanted))).unique()
    return {a.id: a for a in rows}


def check_out(check: service.PartnerCheck) -> PartnerCheckOut:
    return PartnerCheckOut(
        partner=partner_ref(check.authority),
        may_ask=check.basis is not None,
        legal_basis=check.basis,
        reason=check.reason,
    )


def not_offered(target: MatchTarget) -> list[str]:
    """The kinds an answering partner leaves out of its set (it says so in its answer)."""
    reason = target.reason or ""
    if target.status != "answered" or not reason.startswith(NOT_OFFERED_PREFIX):
        return []
    return [k.strip() for k in reason[len(NOT_OFFERED_PREFIX) :].split(",") if k.strip()]


def target_out(target: MatchTarget, partner: Authority) -> TargetOut:
    offered = not_offered(target)
    return TargetOut(
        id=target.public_id,
        partner=partner_ref(partner),
        status=target.status,
        legal_basis=target.legal_basis,
        reason_code=target.reason_code,
        reason=None if offered else target.reason,
        not_offered=offered,
        elements=target.elements,
        hit_count=target.hit_count,
        bytes_sent=target.bytes_sent,
        bytes_received=target.bytes_received,
        segments=target.segments,
        set_size=target.set_size,
        set_built_at=target.set_built_at,
        sent_at=target.sent_at,
        answered_at=target.answered_at,
    )


def created_out(session: Session, sent: service.Sent) -> QueryCreated:
    partners = authorities_by_id(session, [t.partner_authority_id for t in sent.targets])
    query = sent.query
    return QueryCreated(
        id=query.public_id,
        case_reference=query.case_reference,
        created_at=query.created_at,
        identifiers=query.item_count,
        elements=query.element_count,
        targets=[target_out(t, partners[t.partner_authority_id]) for t in sent.targets],
        not_asked=[check_out(c) for c in sent.refused],
    )


def _summary(query: MatchQuery, targets: Sequence[MatchTarget]) -> dict[str, Any]:
    counts = Counter(t.status for t in targets)
    return {
        "id": query.public_id,
        "case_reference": query.case_reference,
        "purpose": query.purpose,
        "offences": list(query.offences or []),
        "created_at": query.created_at,
        "created_by": query.created_by_label,
        "identifiers": query.item_count,
        "elements": query.element_count,
        "partners": len(targets),
        "answered": counts["answered"],
        "refused": counts["refused"],
        "waiting": sum(counts[s] for s in WAITING),
        "failed": sum(counts[s] for s in FAILED),
        "hit_count": sum(t.hit_count for t in targets),
    }


def summaries(session: Session, queries: Sequence[MatchQuery]) -> list[QuerySummary]:
    """Each query with its partners' outcomes counted (one statement for all of them)."""
    by_query: dict[int, list[MatchTarget]] = {q.id: [] for q in queries}
    if queries:
        for target in session.scalars(
            select(MatchTarget).where(MatchTarget.query_id.in_(list(by_query)))
        ):
            by_query[target.query_id].append(target)
    return [QuerySummary(**_summary(q, by_query[q.id])) for q in queries]


def draft_references(session: Session, hits: Iterable[MatchHit]) -> dict[int, str]:
    """Request id → reference, for the drafts hits already led to."""
    from crossborder.requests.models import CooperationRequest

    ids = {h.draft_request_id for h in hits if h.draft_request_id is not None}
    if not ids:
        return {}
    rows = session.execute(
        select(CooperationRequest.id, CooperationRequest.reference).where(
            CooperationRequest.id.in_(ids)
        )
    )
    return {int(i): str(r) for i, r in rows}


def detail_out(session: Session, view: service.QueryView) -> QueryDetail:
    from crossborder.requests.models import CooperationRequest
    from crossborder.selectors.models import IdentSet

    query = view.query
    request_row = session.get(CooperationRequest, query.request_id) if query.request_id else None
    set_row = session.get(IdentSet, query.set_id) if query.set_id else None
    drafts = draft_references(session, [h.hit for h in view.hits])
    return QueryDetail(
        **_summary(query, [t for t, _ in view.targets]),
        request=request_row.reference if request_row is not None else None,
        set=set_row.public_id if set_row is not None else None,
        slack_seconds=query.slack_seconds,
        targets=[target_out(t, a) for t, a in view.targets],
        hits=[
            HitOut(
                id=h.hit.id,
                identifier=IdentifierOut(
                    kind=h.item.kind,
                    raw=h.item.raw,
                    canonical=h.item.canonical,
                    port=h.item.port,
                    seen_from=h.item.seen_from,
                    seen_until=h.item.seen_until,
                ),
                partner=partner_ref(h.partner),
                strength=h.hit.strength,
                matched=list(h.hit.matched or []),
                hours=list(h.hit.buckets or []),
                draft_request=drafts.get(h.hit.draft_request_id or 0),
            )
            for h in view.hits
        ],
    )


def policy_out(policy: MatchPolicy) -> PolicyOut:
    stored = policy.id is not None
    return PolicyOut(
        authority_id=policy.authority_id,
        answers=policy.answers,
        excluded_kinds=list(policy.excluded_kinds or []),
        max_query_elements=policy.max_query_elements,
        daily_queries=policy.daily_queries,
        daily_elements=policy.daily_elements,
        updated_by=policy.updated_by_label if stored else None,
        updated_at=policy.updated_at if stored else None,
    )


def rule_out(rule: MatchPartnerRule, partner: Authority) -> PartnerRuleOut:
    return PartnerRuleOut(
        authority_id=rule.authority_id,
        partner=partner_ref(partner),
        blocked=rule.blocked,
        daily_queries=rule.daily_queries,
        daily_elements=rule.daily_elements,
        updated_by=rule.updated_by_label,
        updated_at=rule.updated_at,
    )


def usage_out(
    session: Session, authority_id: int, partners: Iterable[Authority], now: datetime
) -> list[UsageOut]:
    out: list[UsageOut] = []
    for partner in partners:
        grant = responder.allowance(session, authority_id, partner.id)
        used = responder.usage(session, authority_id, partner.id, now)
        out.append(
            UsageOut(
                partner=partner_ref(partner),
                blocked=grant.blocked,
                daily_queries=grant.daily_queries,
                daily_elements=grant.daily_elements,
                queries_24h=used.queries,
                elements_24h=used.elements,
            )
        )
    return out


def status_out(
    session: Session, authority_id: int, partners: Iterable[Authority], now: datetime
) -> SetStatusOut:
    status = responder.set_status(session, authority_id)
    return SetStatusOut(
        authority_id=authority_id,
        elements=status.elements,
        segments=status.segments,
        stale_segments=status.stale_segments,
        built_at=status.built_at,
        bytes=status.bytes,
        usage=usage_out(session, authority_id, partners, now),
    )


def refresh_out(result: responder.RefreshResult) -> RefreshOut:
    return RefreshOut(
        authority_id=result.authority_id,
        elements=result.elements,
        added=result.added,
        removed=result.removed,
        segments_built=result.segments_built,
        segments=result.segments,
        seconds=round(result.seconds, 3),
    )


def inbound_out(row: MatchInbound, partner: Authority) -> InboundOut:
    return InboundOut(
        id=row.id,
        authority_id=row.authority_id,
        partner=partner_ref(partner),
        node=row.node_name,
        asked_by=row.asked_by_label,
        received_at=row.received_at,
        purpose=row.purpose,
        case_reference=row.case_reference,
        offences=list(row.offences or []),
        elements=row.elements,
        outcome=row.outcome,
        reason_code=row.reason_code,
        reason=row.reason,
        legal_basis=row.legal_basis,
        bytes_sent=row.bytes_sent,
    )


def optout_out(row: MatchOptOut) -> OptOutOut:
    return OptOutOut(
        scope_type=row.scope_type,
        scope_id=row.scope_id,
        authority_id=row.authority_id,
        reason=row.reason,
        added_by=row.added_by_label,
        created_at=row.created_at,
    )
