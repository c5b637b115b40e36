"""Directory tables: states, authorities, contact points, peer nodes, legal instruments, parties.

The directory is the reference data every other capability leans on: who the partners are,
how to reach them (and when someone is at the desk), which node carries their messages under
which pinned key, and which instruments bind which party. Codes stored here (roles, channels,
offences, statuses) are the values of the enums in :mod:`crossborder.directory.taxonomy`;
the service validates them, the columns stay plain strings so adding a code needs no migration.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crossborder.core.clock import utc_now
from crossborder.db.base import Base, intpk


class _Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class State(_Timestamps, Base):
    """A state (party or potential party), identified by its ISO 3166-1 codes."""

    __tablename__ = "states"

    id: Mapped[intpk]
    alpha2: Mapped[str] = mapped_column(String(2), unique=True)
    alpha3: Mapped[str] = mapped_column(String(3), unique=True)
    name: Mapped[str] = mapped_column(String(200))

    authorities: Mapped[list[Authority]] = relationship(back_populates="state")


class Node(_Timestamps, Base):
    """A peer node; its signing key is pinned by SHA-256 fingerprint (lower-case hex)."""

    __tablename__ = "nodes"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(200), unique=True)
    base_url: Mapped[str] = mapped_column(String(500))
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    public_key: Mapped[str | None] = mapped_column(Text)

    authorities: Mapped[list[Authority]] = relationship(back_populates="node")


class Authority(_Timestamps, Base):
    """A competent authority (or an international body when ``state_id`` is null)."""

    __tablename__ = "authorities"
    __table_args__ = (UniqueConstraint("state_id", "name"),)

    id: Mapped[intpk]
    state_id: Mapped[int | None] = mapped_column(
        ForeignKey("states.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), index=True)
    short_name: Mapped[str | None] = mapped_column(String(40))
    roles: Mapped[list[str]] = mapped_column(default=list)
    languages: Mapped[list[str]] = mapped_column(default=list)
    time_zone: Mapped[str] = mapped_column(String(64))
    node_id: Mapped[int | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="SET NULL"), index=True
    )
    website: Mapped[str | None] = mapped_column(String(500))
    is_local: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)

    state: Mapped[State | None] = relationship(back_populates="authorities", lazy="joined")
    node: Mapped[Node | None] = relationship(back_populates="authorities", lazy="joined")
    contact_points: Mapped[list[ContactPoint]] = relationship(
        back_populates="authority", cascade="all, delete-orphan", order_by="ContactPoint.id"
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def state_code(self) -> str | None:
        return self.state.alpha2 if self.state else None


class ContactPoint(_Timestamps, Base):
    """A person or a desk at an authority. Personal data: reading it is audited."""

    __tablename__ = "contact_points"

    id: Mapped[intpk]
    authority_id: Mapped[int] = mapped_column(
        ForeignKey("authorities.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    is_desk: Mapped[bool] = mapped_column(Boolean, default=False)
    title: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    email: Mapped[str | None] = mapped_column(String(320))
    time_zone: Mapped[str] = mapped_column(String(64))
    office_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    languages: Mapped[list[str]] = mapped_column(default=list)
    is_24_7: Mapped[bool] = mapped_column(Boolean, default=False)

    authority: Mapped[Authority] = relationship(back_populates="contact_points")


class LegalInstrument(_Timestamps, Base):
    """A convention, protocol, bilateral treaty or MoU, with its scope.

    Scope lists hold taxonomy codes or ``"*"`` (all). ``articles`` maps a channel (or ``"*"``)
    to the article that provides for it; ``conditions`` is a list of ``{"code", "text"}``
    that must travel with data received under this instrument.
    """

    __tablename__ = "legal_instruments"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(30), index=True)
    articles: Mapped[dict[str, Any]] = mapped_column(default=dict)
    offences: Mapped[list[str]] = mapped_column(default=list)
    channels: Mapped[list[str]] = mapped_column(default=list)
    data_categories: Mapped[list[str]] = mapped_column(default=list)
    conditions: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    min_penalty_years: Mapped[float | None] = mapped_column(Float)
    serious_crime_min_years: Mapped[float | None] = mapped_column(Float)
    notes: Mapped[str | None] = mapped_column(Text)

    parties: Mapped[list[InstrumentParty]] = relationship(
        back_populates="instrument", cascade="all, delete-orphan", order_by="InstrumentParty.id"
    )


class InstrumentParty(_Timestamps, Base):
    """A state's (or, for agency MoUs, an authority's) standing under an instrument."""

    __tablename__ = "instrument_parties"
    __table_args__ = (
        UniqueConstraint("instrument_id", "state_id"),
        UniqueConstraint("instrument_id", "authority_id"),
        CheckConstraint(
            "(state_id IS NULL AND authority_id IS NOT NULL)"
            " OR (state_id IS NOT NULL AND authority_id IS NULL)",
            name="state_xor_authority",
        ),
    )

    id: Mapped[intpk]
    instrument_id: Mapped[int] = mapped_column(
        ForeignKey("legal_instruments.id", ondelete="CASCADE"), index=True
    )
    state_id: Mapped[int | None] = mapped_column(
        ForeignKey("states.id", ondelete="RESTRICT"), index=True
    )
    authority_id: Mapped[int | None] = mapped_column(
        ForeignKey("authorities.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    signed_on: Mapped[date | None] = mapped_column(Date)
    ratified_on: Mapped[date | None] = mapped_column(Date)
    in_force_on: Mapped[date | None] = mapped_column(Date)
    withdrawn_on: Mapped[date | None] = mapped_column(Date)
    reservations: Mapped[str | None] = mapped_column(Text)
    declarations: Mapped[str | None] = mapped_column(Text)
    excluded_offences: Mapped[list[str]] = mapped_column(default=list)
    excluded_channels: Mapped[list[str]] = mapped_column(default=list)

    instrument: Mapped[LegalInstrument] = relationship(back_populates="parties")
    state: Mapped[State | None] = relationship(lazy="joined")
    authority: Mapped[Authority | None] = relationship(lazy="joined")
