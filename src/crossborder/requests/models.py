"""Cooperation requests, their links, timeline, messages and deadline clocks.

Codes (type, status, channel, urgency, offences, grounds) are the values of the enums in
``catalogue``, ``lifecycle`` and ``directory.taxonomy``; columns stay plain strings so that a
new code needs no migration. Type-specific fields live in ``details`` (JSON), validated by the
type's Pydantic model in ``catalogue`` before anything is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crossborder.core.clock import utc_now
from crossborder.db.base import Base, intpk
from crossborder.directory.models import Authority

BIGINT = BigInteger().with_variant(Integer, "sqlite")


class CooperationRequest(Base):
    __tablename__ = "coop_requests"

    id: Mapped[intpk]
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    reference: Mapped[str] = mapped_column(String(60), unique=True)
    request_type: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(30), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    urgency: Mapped[str] = mapped_column(String(20))
    urgency_justification: Mapped[str | None] = mapped_column(Text)
    sender_authority_id: Mapped[int] = mapped_column(
        ForeignKey("authorities.id", ondelete="RESTRICT"), index=True
    )
    receiver_authority_id: Mapped[int] = mapped_column(
        ForeignKey("authorities.id", ondelete="RESTRICT"), index=True
    )
    sender_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact_points.id", ondelete="SET NULL")
    )
    receiver_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact_points.id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(String(200))
    summary_of_facts: Mapped[str] = mapped_column(Text)
    offences: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    identifiers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    data_categories: Mapped[list[str]] = mapped_column(default=list)
    confidentiality: Mapped[str] = mapped_column(String(30))
    use_conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_response_by: Mapped[datetime | None]
    eu_production_order: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when the request is submitted, from the directory's policy.
    legal_basis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Outcome.
    outcome: Mapped[str | None] = mapped_column(String(30))
    refusal_ground: Mapped[str | None] = mapped_column(String(60))
    outcome_reasons: Mapped[str | None] = mapped_column(Text)
    postponed_until: Mapped[datetime | None]
    preserved_at: Mapped[datetime | None]
    preserved_until: Mapped[datetime | None]
    created_by_user_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
    submitted_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)

    sender: Mapped[Authority] = relationship(foreign_keys=[sender_authority_id], lazy="joined")
    receiver: Mapped[Authority] = relationship(foreign_keys=[receiver_authority_id], lazy="joined")
    clocks: Mapped[list[RequestClock]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="RequestClock.due_at"
    )

    __mapper_args__ = {"version_id_col": version}


class RequestLink(Base):
    """``from_request`` refers to ``to_request`` (an MLA request following a preservation, …)."""

    __tablename__ = "coop_request_links"
    __table_args__ = (UniqueConstraint("from_request_id", "to_request_id", "kind"),)

    id: Mapped[intpk]
    from_request_id: Mapped[int] = mapped_column(
        ForeignKey("coop_requests.id", ondelete="CASCADE"), index=True
    )
    to_request_id: Mapped[int] = mapped_column(
        ForeignKey("coop_requests.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class RequestEvent(Base):
    """One step in a request's timeline (both parties see the same timeline)."""

    __tablename__ = "coop_request_events"

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("coop_requests.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utc_now)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor_label: Mapped[str] = mapped_column(String(200))
    actor_authority_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str | None] = mapped_column(String(30))
    ground: Mapped[str | None] = mapped_column(String(60))
    note: Mapped[str | None] = mapped_column(Text)


class RequestMessage(Base):
    """A message in a request's thread, from either side."""

    __tablename__ = "coop_request_messages"

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("coop_requests.id", ondelete="CASCADE"), index=True
    )
    author_user_id: Mapped[int] = mapped_column(Integer)
    author_label: Mapped[str] = mapped_column(String(200))
    author_authority_id: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class RequestClock(Base):
    """A deadline on a request; the worker's sweep keeps ``state`` current."""

    __tablename__ = "coop_request_clocks"
    __table_args__ = (
        UniqueConstraint("request_id", "kind"),
        Index("ix_coop_request_clocks_state_due", "state", "due_at"),
    )

    id: Mapped[intpk]
    request_id: Mapped[int] = mapped_column(
        ForeignKey("coop_requests.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime]
    warn_at: Mapped[datetime]
    basis: Mapped[str] = mapped_column(Text)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(20), default="ok")
    met_at: Mapped[datetime | None]

    request: Mapped[CooperationRequest] = relationship(back_populates="clocks")
