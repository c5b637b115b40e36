"""The STIX 2.1 store: collections (sharing groups), object versions, TAXII status resources.

- ``intel_collections`` are TAXII collections and, at the same time, sharing groups: the
  authority that owns one, and ``intel_grants`` saying which authority or which API token
  (a private partner) may read and/or write it.
- ``intel_objects`` hold one row per object *version* (``stix_id`` + ``version``, where the
  version is ``modified``, else ``created``, else the time it was added), the object itself as
  canonical JSON text, and what its markings say, read once on arrival: TLP, named recipients,
  handling codes, source reliability and information accuracy. ``origin_authority_id`` is the
  authority whose object it is (the one that may pass it on); ``date_added`` (microseconds,
  strictly increasing per collection) orders TAXII pages and ``added_after``.
- ``intel_statuses`` are TAXII status resources of writes (counts and per-object outcomes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crossborder.core.clock import utc_now
from crossborder.db.base import Base, intpk

BIGINT = BigInteger().with_variant(Integer, "sqlite")
STIX_ID_MAX = 100  # "<type>--<uuid>": type names are at most 250 in theory, 60 in practice


class IntelCollection(Base):
    __tablename__ = "intel_collections"

    id: Mapped[intpk]
    public_id: Mapped[str] = mapped_column(String(36), unique=True)  # the TAXII collection id
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    alias: Mapped[str | None] = mapped_column(String(100), unique=True)
    owner_authority_id: Mapped[int] = mapped_column(
        ForeignKey("authorities.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class IntelGrant(Base):
    """Read/write access to a collection for an authority, or for one API token (a partner)."""

    __tablename__ = "intel_grants"

    id: Mapped[intpk]
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("intel_collections.id", ondelete="CASCADE"), index=True
    )
    authority_id: Mapped[int | None] = mapped_column(
        ForeignKey("authorities.id", ondelete="CASCADE"), index=True
    )
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )
    can_read: Mapped[bool] = mapped_column(Boolean, default=True)
    can_write: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        CheckConstraint("(authority_id IS NULL) <> (token_id IS NULL)", name="one_grantee"),
        UniqueConstraint("collection_id", "authority_id", "token_id"),
    )


class IntelObject(Base):
    __tablename__ = "intel_objects"

    id: Mapped[int] = mapped_column(BIGINT, primary_key=True, autoincrement=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("intel_collections.id", ondelete="CASCADE")
    )
    stix_id: Mapped[str] = mapped_column(String(STIX_ID_MAX))
    type: Mapped[str] = mapped_column(String(60))
    spec_version: Mapped[str] = mapped_column(String(10), default="2.1")
    version: Mapped[datetime] = mapped_column()
    date_added: Mapped[datetime] = mapped_column()
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[str] = mapped_column(Text)  # the object, canonical JSON
    tlp: Mapped[str] = mapped_column(String(20))
    recipients: Mapped[list[Any]] = mapped_column(JSON, default=list)
    handling_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    source_reliability: Mapped[str | None] = mapped_column(String(1))
    information_accuracy: Mapped[str | None] = mapped_column(String(1))
    origin_authority_id: Mapped[int | None] = mapped_column(Integer)
    added_by_label: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("collection_id", "stix_id", "version"),
        # Pages are ordered by (date_added, id): with id in the index PostgreSQL reads the first
        # page straight from it instead of sorting the whole collection.
        Index("ix_intel_objects_added", "collection_id", "date_added", "id"),
        Index("ix_intel_objects_type", "collection_id", "type", "date_added", "id"),
    )


class IntelStatus(Base):
    __tablename__ = "intel_statuses"

    id: Mapped[intpk]
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("intel_collections.id", ondelete="CASCADE"), index=True
    )
    requested_by_label: Mapped[str] = mapped_column(String(200))
    requested_by_user_id: Mapped[int | None] = mapped_column(Integer)
    request_timestamp: Mapped[datetime] = mapped_column(default=utc_now)
    status: Mapped[str] = mapped_column(String(20), default="complete")
    total_count: Mapped[int] = mapped_column(Integer, default=0)
    success_count: Mapped[int] = mapped_column(Integer, default=0)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    pending_count: Mapped[int] = mapped_column(Integer, default=0)
    successes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    failures: Mapped[list[Any]] = mapped_column(JSON, default=list)
    pendings: Mapped[list[Any]] = mapped_column(JSON, default=list)


class IntelFeed(Base):
    """A partner's or vendor's TAXII collection this node pulls from or pushes to.

    ``secret`` holds the credentials (HTTP basic ``user:password`` or a bearer token)
    encrypted with a key derived from the node's secret key — never in clear text.
    ``cursor`` is the last ``X-TAXII-Date-Added-Last`` seen: the next pull asks only for what
    was added after it.
    """

    __tablename__ = "intel_feeds"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(200), unique=True)
    direction: Mapped[str] = mapped_column(String(10))  # pull | push
    api_root_url: Mapped[str] = mapped_column(String(500))
    remote_collection_id: Mapped[str] = mapped_column(String(100))
    auth_kind: Mapped[str] = mapped_column(String(10), default="none")  # none | basic | bearer
    secret: Mapped[str | None] = mapped_column(Text)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("intel_collections.id", ondelete="CASCADE"), index=True
    )
    origin_authority_id: Mapped[int | None] = mapped_column(Integer)
    interval_minutes: Mapped[int] = mapped_column(Integer, default=60)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    cursor: Mapped[str | None] = mapped_column(String(40))
    last_run_at: Mapped[datetime | None] = mapped_column()
    next_run_at: Mapped[datetime | None] = mapped_column()
    last_outcome: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (
        CheckConstraint("direction IN ('pull', 'push')", name="direction_known"),
        CheckConstraint("auth_kind IN ('none', 'basic', 'bearer')", name="auth_kind_known"),
    )
