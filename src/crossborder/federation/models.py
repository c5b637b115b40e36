"""Federation tables: pinned peer keys, the transactional outbox, the inbox, refusals.

- ``fed_peers``: one row per directory ``Node`` this node exchanges envelopes with. The
  fingerprint stays on ``nodes.fingerprint`` (the directory's pin); this table holds both raw
  public keys, the previous keys during a rotation's grace period, and the route (``via``:
  a hub that relays for a peer this node cannot reach directly).
- ``fed_outbox``: what capabilities queued in their own transaction. The body is stored as
  JSON and sealed only at delivery, so each attempt is fresh (``created`` within the
  receiver's window) and uses the keys in force then (rotation applies to queued messages).
  A hub's relayed token is the exception: it is stored sealed (``envelope``), since the hub
  cannot read it.
- ``fed_inbox``: every accepted envelope, stored raw (the JWE) and as the verified inner JWS
  (the sender's signature, kept as proof) *before* it is processed. ``message_id`` is unique:
  that is what makes a replay or a re-delivery a no-op.
- ``fed_rejections``: envelopes refused before they could be attributed (bad signature, not
  for this node, ...): reason code, size and hash, never content. Each is also audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crossborder.core.clock import utc_now
from crossborder.db.base import Base, intpk
from crossborder.directory.models import Node


class FedPeer(Base):
    __tablename__ = "fed_peers"

    id: Mapped[intpk]
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), unique=True)
    signing_key: Mapped[str] = mapped_column(String(64))  # base64url, raw Ed25519
    encryption_key: Mapped[str] = mapped_column(String(64))  # base64url, raw X25519
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | suspended
    via_node_id: Mapped[int | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="SET NULL"), index=True
    )
    # [{"fingerprint", "signing_key", "encryption_key", "until"}] during a rotation's grace
    previous_keys: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    last_contact_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)

    node: Mapped[Node] = relationship(foreign_keys=[node_id], lazy="joined")
    via: Mapped[Node | None] = relationship(foreign_keys=[via_node_id], lazy="joined")


class OutboxMessage(Base):
    __tablename__ = "fed_outbox"
    __table_args__ = (Index("ix_fed_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[intpk]
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    to_node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="RESTRICT"), index=True)
    type: Mapped[str] = mapped_column(String(100))
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    envelope: Mapped[str | None] = mapped_column(Text)  # a relayed, already sealed token
    sign_with: Mapped[str | None] = mapped_column(String(64))  # key fingerprint; None: current
    # pending | in_flight | failed (will retry) | delivered | dead (gave up or refused)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utc_now)
    lease_until: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    delivered_at: Mapped[datetime | None]
    receipt: Mapped[str | None] = mapped_column(Text)

    to_node: Mapped[Node] = relationship(lazy="joined")


class InboxMessage(Base):
    __tablename__ = "fed_inbox"
    __table_args__ = (Index("ix_fed_inbox_due", "status", "next_attempt_at"),)

    id: Mapped[intpk]
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    from_node_id: Mapped[int | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="SET NULL"), index=True
    )
    from_fingerprint: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(100))
    envelope: Mapped[str] = mapped_column(Text)  # the JWE exactly as received
    signed: Mapped[str] = mapped_column(Text)  # the verified inner JWS (sender's proof)
    created: Mapped[datetime]  # the sender's `created`
    received_at: Mapped[datetime] = mapped_column(default=utc_now)
    # received | processed | failed | rejected
    status: Mapped[str] = mapped_column(String(20), default="received")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]

    from_node: Mapped[Node | None] = relationship(lazy="joined")


class Rejection(Base):
    __tablename__ = "fed_rejections"

    id: Mapped[intpk]
    at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(String(500))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    claimed_from: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(36))
