"""The identifier index: one row per canonical value, one row per place it occurs.

- ``ident_values`` is the global index. A value is keyed by ``digest`` — the first 16 bytes of
  SHA-256 over ``kind`` and the canonical form — so lookups and joins use a short fixed-size
  key whatever the value's length. ``related_key`` groups values that are different but point
  at the same thing (one EVM address on several chains, Gmail dot and ``+tag`` variants, an
  IPv4 address and its IPv4-mapped IPv6 form). ``ip_key`` (a version byte and the packed
  address) orders IP values so that CIDR containment and "same IPv6 /64" are range scans.
  Whether a value is noise is *not* stored: warning lists change, so it is asked of the
  loaded lists (microseconds) every time a value is shown or correlated.
- ``ident_occurrences`` says where a value was seen: the exact record (``record_type`` /
  ``record_id``: a request, a message, an attachment, an identifier set, an intelligence
  object), the *scope* whose need-to-know governs it (``scope_type`` / ``scope_id``: the
  request for its messages and attachments), the authority that contributed it (the one
  another officer is told to contact), the text as written, and for IP addresses the source
  port and the time window the address was observed in (UTC; the zone it was read in kept).
- ``ident_sets`` are named lists of identifiers an authority keeps (a seized phone's contacts,
  a case's wallets); they are visible to that authority only.
- ``ident_scans`` records that a record's text (an attachment, for now) was searched for
  identifiers, so the worker does each one once and the UI can say what was found.
- ``ident_local_warnings`` is the node's own warning list, kept by its administrators.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
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
CANONICAL_MAX = 2100
RAW_MAX = 500


class IdentValue(Base):
    __tablename__ = "ident_values"

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(16), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    canonical: Mapped[str] = mapped_column(String(CANONICAL_MAX))
    related_key: Mapped[bytes | None] = mapped_column(LargeBinary(16), index=True)
    ip_key: Mapped[bytes | None] = mapped_column(LargeBinary(17), index=True)
    flags: Mapped[list[str]] = mapped_column(default=list)
    first_seen: Mapped[datetime] = mapped_column(default=utc_now)


class IdentOccurrence(Base):
    __tablename__ = "ident_occurrences"

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=True)
    value_id: Mapped[int] = mapped_column(
        ForeignKey("ident_values.id", ondelete="RESTRICT"), index=True
    )
    record_type: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[str] = mapped_column(String(80))
    scope_type: Mapped[str] = mapped_column(String(20))
    scope_id: Mapped[str] = mapped_column(String(80))
    owner_authority_id: Mapped[int | None] = mapped_column(Integer)
    raw: Mapped[str] = mapped_column(String(RAW_MAX))
    source: Mapped[str] = mapped_column(String(20))  # entered | extracted | imported | received
    location: Mapped[str | None] = mapped_column(String(200))
    port: Mapped[int | None] = mapped_column(Integer)
    seen_from: Mapped[datetime | None] = mapped_column()
    seen_until: Mapped[datetime | None] = mapped_column()
    time_zone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (
        Index("ix_ident_occurrences_record", "record_type", "record_id"),
        Index("ix_ident_occurrences_scope", "scope_type", "scope_id"),
    )


class IdentSet(Base):
    __tablename__ = "ident_sets"

    id: Mapped[intpk]
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    authority_id: Mapped[int] = mapped_column(
        ForeignKey("authorities.id", ondelete="RESTRICT"), index=True
    )
    created_by_user_id: Mapped[int | None] = mapped_column(Integer)
    created_by_label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class IdentScan(Base):
    __tablename__ = "ident_scans"

    id: Mapped[intpk]
    record_type: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[str] = mapped_column(String(80))
    scanned_at: Mapped[datetime] = mapped_column(default=utc_now)
    found: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (UniqueConstraint("record_type", "record_id"),)


class IdentLocalWarning(Base):
    __tablename__ = "ident_local_warnings"

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(CANONICAL_MAX))  # a canonical form, or a CIDR
    reason: Mapped[str] = mapped_column(String(300))
    added_by_label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (UniqueConstraint("kind", "value"),)
