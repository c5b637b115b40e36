"""Attachment rows and their chain-of-custody events.

- ``attachments`` describes a stored file: who it belongs to (``owner_type``/``owner_id``: a
  request, later a case or a BLO report — plain text, no foreign key, so evidence does not
  depend on the capabilities that use it), its SHA-256 (the name of the blob in the store),
  size, a sanitised file name and a validated media type. The bytes are not in the database.
- ``custody_events`` is the chain of custody: one row per thing that happened to the file
  (received, viewed, downloaded, exported, transmitted, verified, integrity_failed), who did it,
  when, and the SHA-256 observed at that moment. It is append-only by construction — the
  service has no update or delete — and the foreign key is ``RESTRICT``: an attachment that has
  custody events cannot be deleted, so the custody record cannot vanish with it.

Actor columns have no foreign key to ``users`` (as in the audit chain): custody must outlive
any change to user accounts, and the label keeps the name the actor had at the time. They are
null for the node itself (``via == "system"``, e.g. a file received from a peer node).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from crossborder.core.clock import utc_now
from crossborder.db.base import Base, intpk

FILENAME_MAX = 255
MEDIA_TYPE_MAX = 255


class CustodyKind(StrEnum):
    RECEIVED = "received"
    VIEWED = "viewed"
    DOWNLOADED = "downloaded"
    EXPORTED = "exported"
    TRANSMITTED = "transmitted"
    VERIFIED = "verified"
    INTEGRITY_FAILED = "integrity_failed"


_KIND_VALUES = ", ".join(f"'{kind.value}'" for kind in CustodyKind)


class Attachment(Base):
    """One evidence file as the node knows it; the bytes live in the blob store."""

    __tablename__ = "attachments"

    id: Mapped[intpk]
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    owner_type: Mapped[str] = mapped_column(String(40))
    owner_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[int | None] = mapped_column(Integer, index=True)
    filename: Mapped[str] = mapped_column(String(FILENAME_MAX))
    media_type: Mapped[str] = mapped_column(String(MEDIA_TYPE_MAX))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by_user_id: Mapped[int | None] = mapped_column(Integer)
    uploaded_by_authority_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (
        Index("ix_attachments_owner", "owner_type", "owner_id"),
        CheckConstraint("size >= 0", name="size_not_negative"),
    )


class CustodyEvent(Base):
    """One link of an attachment's chain of custody (append-only)."""

    __tablename__ = "custody_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    attachment_id: Mapped[int] = mapped_column(
        ForeignKey("attachments.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30))
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor_label: Mapped[str] = mapped_column(String(200))
    actor_authority_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utc_now)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The SHA-256 observed (or asserted) at the time of the event; null when the blob was gone.
    sha256: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (CheckConstraint(f"kind IN ({_KIND_VALUES})", name="kind_known"),)
