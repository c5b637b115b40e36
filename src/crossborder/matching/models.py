"""Hit/no-hit tables, on both sides of a query.

Responder side (this node answers partners):

- ``match_keys`` — one secret P-256 scalar per local authority, sealed with the node's secret
  key (HKDF → Fernet). It never leaves the node; it is what makes the encrypted set useless
  to anyone who has not had a query answered.
- ``match_elements`` / ``match_segments`` — the authority's elements (16 bytes each, see
  ``protocol``) and the encrypted, compressed sets built from them, one per segment of at
  most ``protocol.SEGMENT_CAPACITY`` elements. A refresh adds new elements to the open
  segment and rebuilds only the segments whose elements changed.
- ``match_policies`` / ``match_partner_rules`` — whether the authority answers at all, the
  identifier kinds it never offers, the largest query and the daily allowance per partner,
  with per-partner overrides (or a block).
- ``match_optouts`` — records (a request, an identifier set) kept out of matching.
- ``match_inbound`` — every query a partner sent, answered or refused, with its purpose and
  case reference: the audit on this side, the replay guard and the rate-limit ledger.

Querier side:

- ``match_queries`` / ``match_query_items`` — what an officer asked, why (purpose, case
  reference, offences) and the identifiers in their canonical forms.
- ``match_targets`` — one per partner authority asked: the query's own secret scalar (sealed,
  erased once answered), what was sent and received, the outcome.
- ``match_answer_parts`` — an answer too large for one envelope, until all its parts arrive.
- ``match_hits`` — which identifier the partner holds, and how strongly it matched.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crossborder.core.clock import utc_now
from crossborder.db.base import Base, intpk

BIGINT = BigInteger().with_variant(Integer, "sqlite")


class MatchKey(Base):
    __tablename__ = "match_keys"

    id: Mapped[intpk]
    authority_id: Mapped[int] = mapped_column(
        ForeignKey("authorities.id", ondelete="CASCADE"), unique=True
    )
    sealed_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    refreshed_at: Mapped[datetime | None] = mapped_column()  # the last refresh, changed or not
    fingerprint: Mapped[str | None] = mapped_column(String(64))  # of the inputs of that refresh


class MatchSegment(Base):
    __tablename__ = "match_segments"

    id: Mapped[intpk]
    authority_id: Mapped[int] = mapped_column(
        ForeignKey("authorities.id", ondelete="CASCADE"), index=True
    )
    element_count: Mapped[int] = mapped_column(Integer, default=0)
    max_query: Mapped[int] = mapped_column(Integer)
    setup: Mapped[bytes | None] = mapped_column(LargeBinary)
    stale: Mapped[bool] = mapped_column(Boolean, default=True)
    built_at: Mapped[datetime | None] = mapped_column()
    build_seconds: Mapped[float | None] = mapped_column(Float)


class MatchElement(Base):
    __tablename__ = "match_elements"

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authorities.id", ondelete="CASCADE"))
    element: Mapped[bytes] = mapped_column(LargeBinary(16))
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("match_segments.id", ondelete="CASCADE"), index=True
    )

    __table_args__ = (UniqueConstraint("authority_id", "element"),)


class MatchPolicy(Base):
    __tablename__ = "match_policies"

    id: Mapped[intpk]
    authority_id: Mapped[int] = mapped_column(
        ForeignKey("authorities.id", ondelete="CASCADE"), unique=True
    )
    answers: Mapped[bool] = mapped_column(Boolean, default=True)
    excluded_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_query_elements: Mapped[int] = mapped_column(Integer)
    daily_queries: Mapped[int] = mapped_column(Integer)
    daily_elements: Mapped[int] = mapped_column(Integer)
    updated_by_label: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class MatchPartnerRule(Base):
    __tablename__ = "match_partner_rules"

    id: Mapped[intpk]
    authority_id: Mapped[int] = mapped_column(ForeignKey("authorities.id", ondelete="CASCADE"))
    partner_authority_id: Mapped[int] = mapped_column(
        ForeignKey("authorities.id", ondelete="CASCADE")
    )
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    daily_queries: Mapped[int | None] = mapped_column(Integer)
    daily_elements: Mapped[int | None] = mapped_column(Integer)
    updated_by_label: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (UniqueConstraint("authority_id", "partner_authority_id"),)


class MatchOptOut(Base):
    __tablename__ = "match_optouts"

    id: Mapped[intpk]
    scope_type: Mapped[str] = mapped_column(String(20))
    scope_id: Mapped[str] = mapped_column(String(80))
    authority_id: Mapped[int] = mapped_column(ForeignKey("authorities.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(300), default="")
    added_by_label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (UniqueConstraint("scope_type", "scope_id"),)


class MatchInbound(Base):
    __tablename__ = "match_inbound"

    id: Mapped[intpk]
    query_ref: Mapped[str] = mapped_column(String(36))
    partner_authority_id: Mapped[int] = mapped_column(
        ForeignKey("authorities.id", ondelete="RESTRICT")
    )
    authority_id: Mapped[int] = mapped_column(ForeignKey("authorities.id", ondelete="RESTRICT"))
    node_name: Mapped[str] = mapped_column(String(200))
    asked_by_label: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    case_reference: Mapped[str] = mapped_column(String(200))
    offences: Mapped[list[Any]] = mapped_column(JSON, default=list)
    elements: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(20))  # answered | refused
    reason_code: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(500))
    legal_basis: Mapped[str | None] = mapped_column(String(100))
    segments: Mapped[int] = mapped_column(Integer, default=0)
    bytes_sent: Mapped[int] = mapped_column(BIGINT, default=0)
    received_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (
        UniqueConstraint("partner_authority_id", "query_ref"),
        Index(
            "ix_match_inbound_partner_day", "authority_id", "partner_authority_id", "received_at"
        ),
    )


class MatchQuery(Base):
    __tablename__ = "match_queries"

    id: Mapped[intpk]
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    authority_id: Mapped[int] = mapped_column(
        ForeignKey("authorities.id", ondelete="RESTRICT"), index=True
    )
    created_by_user_id: Mapped[int | None] = mapped_column(Integer)
    created_by_label: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    case_reference: Mapped[str] = mapped_column(String(200))
    offences: Mapped[list[Any]] = mapped_column(JSON, default=list)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("coop_requests.id", ondelete="SET NULL")
    )
    set_id: Mapped[int | None] = mapped_column(ForeignKey("ident_sets.id", ondelete="SET NULL"))
    slack_seconds: Mapped[int] = mapped_column(Integer, default=0)
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    element_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class MatchQueryItem(Base):
    __tablename__ = "match_query_items"

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("match_queries.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    canonical: Mapped[str] = mapped_column(String(2100))
    raw: Mapped[str] = mapped_column(String(500))
    port: Mapped[int | None] = mapped_column(Integer)
    seen_from: Mapped[datetime | None] = mapped_column()
    seen_until: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("query_id", "position"),)


class MatchTarget(Base):
    __tablename__ = "match_targets"

    id: Mapped[intpk]
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    query_id: Mapped[int] = mapped_column(
        ForeignKey("match_queries.id", ondelete="CASCADE"), index=True
    )
    partner_authority_id: Mapped[int] = mapped_column(
        ForeignKey("authorities.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(String(20))  # sent | answered | refused | failed
    legal_basis: Mapped[str | None] = mapped_column(String(100))
    sealed_key: Mapped[str | None] = mapped_column(Text)  # erased once answered
    elements: Mapped[int] = mapped_column(Integer, default=0)
    bytes_sent: Mapped[int] = mapped_column(BIGINT, default=0)
    bytes_received: Mapped[int] = mapped_column(BIGINT, default=0)
    segments: Mapped[int] = mapped_column(Integer, default=0)
    set_size: Mapped[int | None] = mapped_column(Integer)
    set_built_at: Mapped[datetime | None] = mapped_column()
    reason_code: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(500))
    hit_count: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime] = mapped_column(default=utc_now)
    answered_at: Mapped[datetime | None] = mapped_column()


class MatchAnswerPart(Base):
    __tablename__ = "match_answer_parts"

    id: Mapped[intpk]
    target_id: Mapped[int] = mapped_column(ForeignKey("match_targets.id", ondelete="CASCADE"))
    part: Mapped[int] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (UniqueConstraint("target_id", "part"),)


class MatchHit(Base):
    __tablename__ = "match_hits"

    id: Mapped[intpk]
    target_id: Mapped[int] = mapped_column(
        ForeignKey("match_targets.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("match_query_items.id", ondelete="CASCADE"))
    strength: Mapped[str] = mapped_column(String(20))  # match | weak | variant
    matched: Mapped[list[str]] = mapped_column(JSON, default=list)  # element kinds that hit
    buckets: Mapped[list[str]] = mapped_column(JSON, default=list)  # hours, for IP + port
    draft_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("coop_requests.id", ondelete="SET NULL")
    )
