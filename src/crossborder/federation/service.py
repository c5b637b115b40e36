"""Federation service: the transactional outbox, the inbox, delivery, peers, rotation, relay.

Federation carries envelopes and knows nothing of requests or intelligence. A capability
registers a handler for each message type it understands (``register_handler``) and queues
outbound messages with ``enqueue`` *inside its own transaction*: the message exists if and
only if the change it announces was committed.

Guarantees, and where they come from:

- **At-least-once delivery**: an outbox row is marked ``delivered`` only on the peer's signed
  receipt for that message id; anything else (network error, refusal, bad receipt) schedules
  a retry with exponential backoff and jitter, and ``dead`` after ``MAX_ATTEMPTS``.
- **One claimant per message**: workers claim due rows with one ``UPDATE … WHERE id IN (SELECT
  … FOR UPDATE SKIP LOCKED)`` that stamps a claim token and a lease; the result is written back
  only under the same token. A worker killed mid-delivery leaves ``in_flight`` with a lease
  that expires, and the row is claimed again.
- **At-most-once processing**: the inbox's unique ``message_id`` makes a re-delivered or
  replayed envelope a ``duplicate`` (acknowledged, not processed). Processing flips the row to
  ``processed`` with a compare-and-set at the start of the handler's transaction, so a worker
  retrying a failed row and the request path can never both run the handler.
- **Nothing lost**: the raw envelope is committed to the inbox *before* the handler runs; a
  failing handler rolls back only its own work, the row becomes ``failed`` with the reason,
  and the worker retries it.

Every refusal of an incoming envelope is stored (``fed_rejections``) and audited with its
reason code; contents are never logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crossborder.audit import service as audit
from crossborder.auth.permissions import SYSTEM, Permission, Principal, require
from crossborder.core.clock import utc_now
from crossborder.core.errors import Conflict, DomainError, InvalidInput, NotFound
from crossborder.db.session import unit_of_work
from crossborder.directory.models import Node
from crossborder.federation import envelope as env
from crossborder.federation import identity
from crossborder.federation.envelope import Envelope, EnvelopeError, PeerKeys, Reason
from crossborder.federation.models import FedPeer, InboxMessage, OutboxMessage, Rejection
from crossborder.settings import Settings

log = logging.getLogger("crossborder.federation")

MAX_BODY_BYTES = 8 * 1024 * 1024  # a queued body; sealed it grows by about a third
MAX_ATTEMPTS = 30  # about a day with the schedule below
BASE_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(hours=1)
LEASE = timedelta(minutes=2)  # longer than the transport timeout
INBOX_MAX_ATTEMPTS = 10
ROTATION_GRACE = timedelta(days=7)
MAX_PEER_GRACE = timedelta(days=30)

OUTBOX_STATUSES = ("pending", "in_flight", "failed", "delivered", "dead")
INBOX_STATUSES = ("received", "processed", "failed", "rejected")

TYPE_RELAY = "federation.relay"
TYPE_KEY_ROTATION = "federation.key_rotation"
TYPE_PING = "federation.ping"


class Handler(Protocol):
    def __call__(self, session: Session, envelope: Envelope, body: dict[str, Any], /) -> None: ...


_HANDLERS: dict[str, Handler] = {}


def register_handler(message_type: str, fn: Handler, *, replace: bool = False) -> None:
    """Route incoming messages of ``message_type`` to ``fn(session, envelope, body)``.

    The handler runs inside a transaction that also marks the inbox row processed; raising
    rolls both back and leaves the row ``failed`` for a retry. It must not commit itself.
    """
    env.check_type(message_type)
    if message_type in _HANDLERS and not replace and _HANDLERS[message_type] is not fn:
        raise ValueError(f"a handler for {message_type!r} is already registered")
    _HANDLERS[message_type] = fn


def unregister_handler(message_type: str) -> None:
    _HANDLERS.pop(message_type, None)


@contextmanager
def handler_registered(message_type: str, fn: Handler) -> Iterator[None]:
    """Register a handler for the duration of a block (tests, benchmarks)."""
    previous = _HANDLERS.get(message_type)
    register_handler(message_type, fn, replace=True)
    try:
        yield
    finally:
        if previous is None:
            unregister_handler(message_type)
        else:
            _HANDLERS[message_type] = previous


def registered_types() -> list[str]:
    return sorted(_HANDLERS)


# -- keys -------------------------------------------------------------------------------------

_KEYRING_CACHE: dict[Path, tuple[tuple[int, ...], identity.KeyRing]] = {}
_KEYRING_LOCK = threading.Lock()


def _keys_stamp(data_dir: Path) -> tuple[int, ...]:
    directory = identity.keys_dir(data_dir)
    stamps: list[int] = []
    for path in (
        directory / identity.SIGNING_KEY_FILE,
        directory / identity.ENCRYPTION_KEY_FILE,
        directory / identity.RETIRED_DIR,
    ):
        try:
            st = path.stat()
            stamps.extend((st.st_mtime_ns, st.st_ino))
        except FileNotFoundError:
            stamps.append(0)
    return tuple(stamps)


def keyring(data_dir: Path, now: datetime | None = None) -> identity.KeyRing:
    """This node's keys (cached; reloaded when the key files change)."""
    at = now or utc_now()
    resolved = data_dir.resolve()
    stamp = _keys_stamp(resolved)
    with _KEYRING_LOCK:
        cached = _KEYRING_CACHE.get(resolved)
    if cached is not None and cached[0] == stamp:
        ring = cached[1]
    else:
        ring = identity.load_keyring(resolved, at)
        with _KEYRING_LOCK:
            _KEYRING_CACHE[resolved] = (stamp, ring)
    return ring


# -- peers ------------------------------------------------------------------------------------


def _raw(text: str) -> bytes:
    raw = identity.b64url_decode(text)
    if len(raw) != 32:
        raise ValueError("an OKP public key is 32 bytes")
    return raw


def _previous_keys(peer: FedPeer, now: datetime) -> list[dict[str, Any]]:
    valid = []
    for item in peer.previous_keys or []:
        try:
            until = env.parse_time(item.get("until"))
        except ValueError:
            continue
        if until > now:
            valid.append(item)
    return valid


def peer_keys(peer: FedPeer, now: datetime) -> list[PeerKeys]:
    """The peer's current keys first, then those still in a rotation's grace period."""
    keys = [
        PeerKeys(
            fingerprint=peer.node.fingerprint,
            signing_key=_raw(peer.signing_key),
            encryption_key=_raw(peer.encryption_key),
            node_id=peer.node_id,
        )
    ]
    for item in _previous_keys(peer, now):
        keys.append(
            PeerKeys(
                fingerprint=item["fingerprint"],
                signing_key=_raw(item["signing_key"]),
                encryption_key=_raw(item["encryption_key"]),
                node_id=peer.node_id,
            )
        )
    return keys


def find_peer(session: Session, fingerprint: str, now: datetime) -> FedPeer | None:
    """The active peer whose current or grace-period fingerprint this is."""
    peer = session.scalar(
        select(FedPeer)
        .join(Node, FedPeer.node_id == Node.id)
        .where(Node.fingerprint == fingerprint)
    )
    if peer is None:
        for candidate in session.scalars(select(FedPeer).where(FedPeer.status == "active")):
            if any(p["fingerprint"] == fingerprint for p in _previous_keys(candidate, now)):
                peer = candidate
                break
    if peer is None or peer.status != "active":
        return None
    return peer


def lookup_peer_keys(session: Session, fingerprint: str, now: datetime) -> PeerKeys | None:
    peer = find_peer(session, fingerprint, now)
    if peer is None:
        return None
    return next((k for k in peer_keys(peer, now) if k.fingerprint == fingerprint), None)


def keys_from_jwks(jwks: object) -> tuple[bytes, bytes]:
    """(Ed25519 signing key, X25519 encryption key) from a JWK Set like /federation/v1/identity."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise InvalidInput('the public keys must be a JWK Set ({"keys": [...]})', field="jwks")
    found: dict[str, bytes] = {}
    for jwk in jwks["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or "d" in jwk:
            continue
        crv, x = jwk.get("crv"), jwk.get("x")
        if crv in {"Ed25519", "X25519"} and isinstance(x, str) and crv not in found:
            try:
                found[crv] = _raw(x)
            except ValueError:
                raise InvalidInput(f"the {crv} key is not 32 bytes", field="jwks") from None
    if set(found) != {"Ed25519", "X25519"}:
        raise InvalidInput("the JWK Set needs one Ed25519 and one X25519 public key", field="jwks")
    return found["Ed25519"], found["X25519"]


def add_peer(
    session: Session,
    *,
    actor: Principal,
    name: str,
    base_url: str,
    fingerprint: str,
    signing_key: bytes,
    encryption_key: bytes,
    via_node_id: int | None = None,
) -> FedPeer:
    """Pin a peer's keys. The fingerprint comes out of band; the keys must match it."""
    require(actor, Permission.FEDERATION_MANAGE)
    fingerprint = fingerprint.strip().lower().replace(":", "")
    if identity.fingerprint_of(signing_key) != fingerprint:
        raise InvalidInput(
            "the signing key does not match the pinned fingerprint", field="fingerprint"
        )
    if len(encryption_key) != 32:
        raise InvalidInput("the encryption key is not an X25519 key", field="encryption_key")
    if not base_url.startswith(("https://", "http://")) or len(base_url) > 500:
        raise InvalidInput("the URL must start with https:// (or http:// for tests)", field="url")
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("a peer needs a name of at most 200 characters", field="name")
    with unit_of_work(session):
        node = session.scalar(select(Node).where(Node.fingerprint == fingerprint))
        if node is None:
            node = session.scalar(select(Node).where(Node.name == name))
            if node is not None:
                existing = session.scalar(select(FedPeer).where(FedPeer.node_id == node.id))
                if existing is not None:
                    raise Conflict(
                        f"the peer {name!r} is pinned to another key; key changes arrive by "
                        "rotation, or remove the peer first"
                    )
                audit.record(
                    session,
                    actor=actor,
                    action="federation.peer.repinned",
                    object_type="node",
                    object_id=node.id,
                    details={"old_fingerprint": node.fingerprint, "fingerprint": fingerprint},
                )
                node.fingerprint = fingerprint
        if node is None:
            node = Node(name=name, base_url=base_url, fingerprint=fingerprint)
            session.add(node)
        node.base_url = base_url.rstrip("/")
        node.public_key = identity.b64url(signing_key)
        session.flush()
        if via_node_id is not None:
            via_peer = session.scalar(select(FedPeer).where(FedPeer.node_id == via_node_id))
            if via_peer is None:
                raise InvalidInput("the relay hub must itself be a peer", field="via")
        peer = session.scalar(select(FedPeer).where(FedPeer.node_id == node.id))
        if peer is None:
            peer = FedPeer(node_id=node.id, previous_keys=[], status="active")
            session.add(peer)
        peer.signing_key = identity.b64url(signing_key)
        peer.encryption_key = identity.b64url(encryption_key)
        peer.via_node_id = via_node_id
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="federation.peer.added",
            object_type="node",
            object_id=node.id,
            details={"fingerprint": fingerprint, "via_node_id": via_node_id},
        )
    session.refresh(peer)
    return peer


def set_peer_status(session: Session, peer_id: int, status: str, *, actor: Principal) -> FedPeer:
    require(actor, Permission.FEDERATION_MANAGE)
    if status not in {"active", "suspended"}:
        raise InvalidInput("status is active or suspended", field="status")
    with unit_of_work(session):
        peer = session.get(FedPeer, peer_id)
        if peer is None:
            raise NotFound(f"no peer {peer_id}")
        peer.status = status
        audit.record(
            session,
            actor=actor,
            action=f"federation.peer.{'suspended' if status == 'suspended' else 'activated'}",
            object_type="node",
            object_id=peer.node_id,
        )
    return peer


def list_peers(session: Session, *, actor: Principal) -> list[FedPeer]:
    require(actor, Permission.FEDERATION_MANAGE)
    return list(session.scalars(select(FedPeer).join(FedPeer.node).order_by(Node.name)))


def list_outbox(
    session: Session, *, actor: Principal, status: str | None = None, limit: int = 50
) -> list[OutboxMessage]:
    require(actor, Permission.FEDERATION_MANAGE)
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(min(max(limit, 1), 500))
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    return list(session.scalars(stmt))


def list_inbox(
    session: Session, *, actor: Principal, status: str | None = None, limit: int = 50
) -> list[InboxMessage]:
    require(actor, Permission.FEDERATION_MANAGE)
    stmt = select(InboxMessage).order_by(InboxMessage.id.desc()).limit(min(max(limit, 1), 500))
    if status:
        stmt = stmt.where(InboxMessage.status == status)
    return list(session.scalars(stmt))


def list_rejections(session: Session, *, actor: Principal, limit: int = 50) -> list[Rejection]:
    require(actor, Permission.FEDERATION_MANAGE)
    return list(
        session.scalars(select(Rejection).order_by(Rejection.id.desc()).limit(min(limit, 500)))
    )


def counts(session: Session) -> dict[str, dict[str, int]]:
    """Rows per status in the outbox and the inbox (for the operator view and the worker)."""
    from sqlalchemy import func

    result: dict[str, dict[str, int]] = {"outbox": {}, "inbox": {}}
    for status, n in session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    ):
        result["outbox"][status] = n
    for status, n in session.execute(
        select(InboxMessage.status, func.count()).group_by(InboxMessage.status)
    ):
        result["inbox"][status] = n
    return result


# -- outbox -----------------------------------------------------------------------------------


def enqueue(
    session: Session,
    *,
    to_node_id: int,
    type: str,
    body: dict[str, Any],
    message_id: str | None = None,
    sign_with: str | None = None,
    now: datetime | None = None,
) -> OutboxMessage:
    """Queue a message in the caller's transaction (no commit here: transactional outbox).

    The node must be in the directory; whether it is a peer is checked at delivery, so a
    missing peering shows up as a visible, retried failure rather than a lost change.
    """
    try:
        env.check_type(type)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="type") from None
    if not isinstance(body, dict):
        raise InvalidInput("a message body is a JSON object", field="body")
    try:
        size = len(env.canonical_json(body))
    except (TypeError, ValueError):
        raise InvalidInput("the message body is not JSON-serialisable", field="body") from None
    if size > MAX_BODY_BYTES:
        raise InvalidInput(f"the message body exceeds {MAX_BODY_BYTES} bytes", field="body")
    if session.get(Node, to_node_id) is None:
        raise NotFound(f"node {to_node_id} is not in the directory")
    row = OutboxMessage(
        message_id=message_id or str(uuid.uuid4()),
        to_node_id=to_node_id,
        type=type,
        body=body,
        sign_with=sign_with,
        status="pending",
        attempts=0,
        next_attempt_at=now or utc_now(),
        created_at=now or utc_now(),
    )
    session.add(row)
    session.flush()
    return row


def _enqueue_relayed(
    session: Session, *, to_node_id: int, message_id: str, token: str, now: datetime
) -> OutboxMessage | None:
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.message_id == message_id)):
        return None  # already forwarding this message
    row = OutboxMessage(
        message_id=message_id,
        to_node_id=to_node_id,
        type=TYPE_RELAY,
        body=None,
        envelope=token,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def backoff(attempts: int) -> timedelta:
    """5 s * 2^(attempts-1), capped at 1 h, with ±20 % jitter (so retries do not herd)."""
    exponent = min(max(attempts - 1, 0), 20)
    base = min(BASE_DELAY * (2**exponent), MAX_DELAY)
    jitter = 0.8 + secrets.randbelow(401) / 1000  # 0.8 … 1.2
    delay: timedelta = base * jitter
    return delay


@dataclass
class TransportResponse:
    status: int
    content_type: str
    body: bytes


class TransportError(Exception):
    """The peer could not be reached (connection refused, timeout, TLS, ...)."""


class Transport(Protocol):
    def post(self, base_url: str, token: str) -> TransportResponse: ...


@dataclass
class DeliveryStats:
    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


def claim_due(session: Session, *, limit: int, now: datetime, lease: timedelta = LEASE) -> str:
    """Claim up to ``limit`` due rows for this worker; return the claim token.

    One statement: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)``. On PostgreSQL
    concurrent workers skip each other's rows; SQLite serialises writers, so the statement is
    atomic there too. Expired leases (a worker died mid-delivery) are due again.
    """
    token = secrets.token_hex(16)
    due = or_(
        and_(OutboxMessage.status.in_(("pending", "failed")), OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == "in_flight", OutboxMessage.lease_until <= now),
    )
    ids = (
        select(OutboxMessage.id)
        .where(due)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with unit_of_work(session):
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids.scalar_subquery()))
            .values(
                status="in_flight",
                claim_token=token,
                lease_until=now + lease,
                attempts=OutboxMessage.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
    return token


def deliver_due(
    session_factory: Callable[[], Session],
    *,
    settings: Settings,
    transport: Transport,
    limit: int = 50,
    now: datetime | None = None,
) -> DeliveryStats:
    """Claim due outbox rows and deliver each; return what happened."""
    stats = DeliveryStats()
    session = session_factory()
    try:
        at = now or utc_now()
        token = claim_due(session, limit=limit, now=at)
        rows = list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.claim_token == token, OutboxMessage.status == "in_flight")
                .order_by(OutboxMessage.id)
                .execution_options(populate_existing=True)
            )
        )
        # Detach the claimed rows: they are read-only snapshots from here on, so the per-message
        # rollbacks below neither expire nor reload them.
        session.expunge_all()
        session.rollback()  # end the read transaction before any network call
        stats.claimed = len(rows)
        for row in rows:
            outcome = _deliver_one(
                session, row, token, settings=settings, transport=transport, now=now
            )
            if outcome == "delivered":
                stats.delivered += 1
            elif outcome == "dead":
                stats.dead += 1
            else:
                stats.failed += 1
    finally:
        session.close()
    return stats


def _rowcount(result: Any) -> int:
    count: int = result.rowcount  # a CursorResult for UPDATE statements
    return count


class _Failure(Exception):
    def __init__(self, reason: str, *, permanent: bool = False, contacted: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.contacted = contacted


def _seal_for(
    session: Session, row: OutboxMessage, *, ring: identity.KeyRing, now: datetime
) -> tuple[str, str, list[PeerKeys], str]:
    """(token, url, expected receipt signers, expected receipt_for) for one attempt."""
    peer = session.scalar(select(FedPeer).where(FedPeer.node_id == row.to_node_id))
    if peer is None:
        raise _Failure("no pinned keys for this node: add it with `crossborder peer add`")
    if peer.status != "active":
        raise _Failure("the peer is suspended")
    final_keys = peer_keys(peer, now)
    if row.envelope is not None:  # a hub forwarding a sealed token unchanged
        return row.envelope, peer.node.base_url, final_keys, row.message_id
    signer = ring.by_fingerprint(row.sign_with) if row.sign_with else ring.current
    if signer is None:
        raise _Failure("the key this message must be signed with has expired", permanent=True)
    assert row.body is not None
    inner = env.seal(
        signer, final_keys[0], type=row.type, body=row.body, message_id=row.message_id, created=now
    )
    if peer.via_node_id is None:
        return inner.token, peer.node.base_url, final_keys, row.message_id
    hub = session.scalar(select(FedPeer).where(FedPeer.node_id == peer.via_node_id))
    if hub is None or hub.status != "active":
        raise _Failure("the relay hub for this peer is not an active peer")
    hub_keys = peer_keys(hub, now)
    outer = env.seal(
        signer,
        hub_keys[0],
        type=TYPE_RELAY,
        body={"token": inner.token, "message_id": row.message_id, "to": final_keys[0].fingerprint},
        created=now,
    )
    return outer.token, hub.node.base_url, hub_keys, outer.message_id


def _interpret(
    response: TransportResponse, *, signers: list[PeerKeys], expected_for: str
) -> env.Receipt:
    content_type = response.content_type.split(";")[0].strip().lower()
    if content_type == env.MEDIA_TYPE:
        try:
            receipt = env.open_receipt(response.body, signers=signers, expected_for=expected_for)
        except EnvelopeError as exc:
            raise _Failure(f"invalid receipt ({exc.reason.value})", contacted=True) from None
        if receipt.status == "rejected":
            raise _Failure(
                f"refused by the peer: {receipt.reason or 'rejected'}",
                permanent=True,
                contacted=True,
            )
        return receipt
    code = None
    if content_type.endswith("json") and len(response.body) < 64_000:
        try:
            problem = json.loads(response.body)
            code = problem.get("code") if isinstance(problem, dict) else None
        except ValueError:
            code = None
    label = f"refused by the peer: {code}" if isinstance(code, str) else "unexpected answer"
    raise _Failure(f"{label} (HTTP {response.status})"[:200], contacted=True)


def _deliver_one(
    session: Session,
    row: OutboxMessage,
    claim: str,
    *,
    settings: Settings,
    transport: Transport,
    now: datetime | None,
) -> str:
    at = now or utc_now()
    try:
        ring = keyring(settings.data_dir, at)
        token, url, signers, expected_for = _seal_for(session, row, ring=ring, now=at)
        session.rollback()  # no transaction held across the network call
        try:
            response = transport.post(url, token)
        except TransportError as exc:
            raise _Failure(f"unreachable: {exc}"[:300]) from None
        receipt = _interpret(response, signers=signers, expected_for=expected_for)
    except _Failure as failure:
        session.rollback()
        return _record_failure(session, row, claim, failure, now=now or utc_now())
    done = now or utc_now()
    with unit_of_work(session):
        updated = _rowcount(
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.claim_token == claim)
                .values(
                    status="delivered",
                    delivered_at=done,
                    receipt=response.body.decode("ascii", "replace"),
                    last_error=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
        )
        _touch_peer(session, row.to_node_id, done, error=None)
        if updated:
            audit.record(
                session,
                actor=SYSTEM,
                action="federation.message.delivered",
                object_type="fed_outbox",
                object_id=row.id,
                details={
                    "message_id": row.message_id,
                    "type": row.type,
                    "to_node_id": row.to_node_id,
                    "receipt": receipt.status,
                },
            )
    return "delivered" if updated else "lost-claim"


def _record_failure(
    session: Session, row: OutboxMessage, claim: str, failure: _Failure, *, now: datetime
) -> str:
    current = session.get(OutboxMessage, row.id, populate_existing=True)
    attempts = current.attempts if current is not None else row.attempts
    dead = failure.permanent or attempts >= MAX_ATTEMPTS
    status = "dead" if dead else "failed"
    with unit_of_work(session):
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id, OutboxMessage.claim_token == claim)
            .values(
                status=status,
                last_error=failure.reason[:1000],
                next_attempt_at=now + backoff(attempts),
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        _touch_peer(
            session, row.to_node_id, now if failure.contacted else None, error=failure.reason
        )
        if dead:
            audit.record(
                session,
                actor=SYSTEM,
                action="federation.message.dead",
                object_type="fed_outbox",
                object_id=row.id,
                outcome="failed",
                reason=failure.reason[:200],
                details={"message_id": row.message_id, "type": row.type, "attempts": attempts},
            )
    log.warning(
        "outbox %s (%s) to node %s: %s [attempt %d, %s]",
        row.message_id,
        row.type,
        row.to_node_id,
        failure.reason,
        attempts,
        status,
    )
    return status


def _touch_peer(
    session: Session, node_id: int, contact: datetime | None, *, error: str | None
) -> None:
    values: dict[str, Any] = {"last_error": error[:500] if error else None}
    if contact is not None:
        values["last_contact_at"] = contact
    session.execute(
        update(FedPeer)
        .where(FedPeer.node_id == node_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def retry_outbox(session: Session, outbox_id: int, *, actor: Principal) -> OutboxMessage:
    """Make a failed or dead message due now (a dead one gets a fresh set of attempts)."""
    require(actor, Permission.FEDERATION_MANAGE)
    with unit_of_work(session):
        row = session.get(OutboxMessage, outbox_id)
        if row is None:
            raise NotFound(f"no outbox message {outbox_id}")
        if row.status not in {"failed", "dead", "pending"}:
            raise Conflict(f"the message is {row.status}; only failed or dead ones are retried")
        if row.status == "dead":
            row.attempts = 0
        row.status = "pending"
        row.next_attempt_at = utc_now()
        audit.record(
            session,
            actor=actor,
            action="federation.outbox.retried",
            object_type="fed_outbox",
            object_id=row.id,
            details={"message_id": row.message_id},
        )
    return row


# -- inbox ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acknowledgement:
    """What the inbox answers: a signed receipt (``accepted``, ``duplicate`` or ``rejected``)."""

    token: str
    status: str
    message_id: str
    reason: str | None = None


def record_refusal(
    session: Session,
    error: EnvelopeError,
    *,
    raw: bytes | str,
    remote_addr: str | None,
    size: int | None = None,
) -> None:
    """Store and audit one refused envelope (reason code, size, hash — never content)."""
    data = raw.encode("ascii", "replace") if isinstance(raw, str) else raw
    with unit_of_work(session):
        session.add(
            Rejection(
                at=utc_now(),
                reason=error.reason.value,
                detail=error.detail[:500],
                remote_addr=remote_addr,
                size=size if size is not None else len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                claimed_from=error.claimed_from,
                message_id=error.message_id,
            )
        )
        audit.record(
            session,
            actor=None,
            action="federation.envelope.refused",
            object_type="envelope",
            object_id=error.message_id,
            outcome="refused",
            reason=error.reason.value,
            ip=remote_addr,
            details={"claimed_from": error.claimed_from, "size": size or len(data)},
        )
    log.warning(
        "refused envelope from %s: %s (%s)", remote_addr or "-", error.reason.value, error.detail
    )


def receive(
    session: Session,
    token: str | bytes,
    *,
    settings: Settings,
    remote_addr: str | None = None,
    now: datetime | None = None,
    max_skew: timedelta = env.DEFAULT_MAX_SKEW,
    max_age: timedelta = env.DEFAULT_MAX_AGE,
    max_bytes: int = env.MAX_ENVELOPE_BYTES,
) -> Acknowledgement:
    """Check, store, then process one envelope; raise EnvelopeError (already audited) if refused."""
    at = now or utc_now()
    ring = keyring(settings.data_dir, at)
    try:
        opened = env.open_envelope(
            token,
            my_identity=ring.current,
            retired=ring.retired,
            peer_lookup=lambda fp: lookup_peer_keys(session, fp, at),
            now=at,
            max_skew=max_skew,
            max_age=max_age,
            max_bytes=max_bytes,
        )
    except EnvelopeError as error:
        session.rollback()
        record_refusal(session, error, raw=token, remote_addr=remote_addr)
        raise
    raw = token.decode("ascii") if isinstance(token, bytes) else token
    me = ring.by_fingerprint(opened.receiver) or ring.current  # answer with the key addressed

    def ack(status: str, reason: str | None = None) -> Acknowledgement:
        receipt = env.make_receipt(
            me, receipt_for=opened.id, status=status, to=opened.sender, at=utc_now(), reason=reason
        )
        return Acknowledgement(receipt, status, opened.id, reason)

    existing = session.scalar(select(InboxMessage).where(InboxMessage.message_id == opened.id))
    if existing is not None:
        return _duplicate(session, existing, opened, ack, at)
    handler = _HANDLERS.get(opened.type)
    try:
        with unit_of_work(session):
            row = InboxMessage(
                message_id=opened.id,
                from_node_id=opened.sender_node_id,
                from_fingerprint=opened.sender,
                type=opened.type,
                envelope=raw.strip(),
                signed=opened.signed,
                created=opened.created,
                received_at=at,
                status="received" if handler else "rejected",
                attempts=0,
                # the request path processes it now; the worker only after this lease
                next_attempt_at=at + LEASE if handler else None,
                last_error=None if handler else f"{Reason.UNKNOWN_TYPE.value}: {opened.type}",
            )
            session.add(row)
            session.flush()
            if opened.sender_node_id is not None:
                _touch_peer(session, opened.sender_node_id, at, error=None)
            audit.record(
                session,
                actor=None,
                action="federation.message.received" if handler else "federation.message.rejected",
                object_type="fed_inbox",
                object_id=row.id,
                outcome="ok" if handler else "refused",
                reason=None if handler else Reason.UNKNOWN_TYPE.value,
                ip=remote_addr,
                details={
                    "message_id": opened.id,
                    "type": opened.type,
                    "from_node_id": opened.sender_node_id,
                },
            )
    except IntegrityError:
        # The same message id arrived twice at once: the other copy won.
        existing = session.scalar(select(InboxMessage).where(InboxMessage.message_id == opened.id))
        if existing is None:
            raise
        return _duplicate(session, existing, opened, ack, at)
    if handler is None:
        log.warning("rejected message %s: no handler for type %s", opened.id, opened.type)
        return ack("rejected", Reason.UNKNOWN_TYPE.value)
    process_inbox_message(session, row.id, now=at)
    return ack("accepted")


def _duplicate(
    session: Session,
    existing: InboxMessage,
    opened: Envelope,
    ack: Callable[..., Acknowledgement],
    at: datetime,
) -> Acknowledgement:
    status = "rejected" if existing.status == "rejected" else "duplicate"
    reason = Reason.UNKNOWN_TYPE.value if status == "rejected" else None
    with unit_of_work(session):
        if opened.sender_node_id is not None:
            _touch_peer(session, opened.sender_node_id, at, error=None)
    result: Acknowledgement = ack(status, reason)
    return result


def _describe(exc: BaseException) -> str:
    """A failure reason safe to show operators: our own messages, else only the type."""
    if isinstance(exc, DomainError):
        return f"{type(exc).__name__}: {exc.detail}"[:1000]
    return f"{type(exc).__name__} in the handler (see the node's log)"


def process_inbox_message(session: Session, inbox_id: int, *, now: datetime | None = None) -> str:
    """Run the handler once; return processed, failed, skipped (someone else did) or rejected."""
    at = now or utc_now()
    row = session.get(InboxMessage, inbox_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no inbox message {inbox_id}")
    handler = _HANDLERS.get(row.type)
    if handler is None:
        return "rejected"
    message_id, message_type = row.message_id, row.type
    envelope = env.envelope_from_signed(row.signed, sender_node_id=row.from_node_id)
    try:
        with unit_of_work(session):
            claimed = _rowcount(
                session.execute(
                    update(InboxMessage)
                    .where(
                        InboxMessage.id == inbox_id,
                        InboxMessage.status.in_(("received", "failed", "rejected")),
                    )
                    .values(
                        status="processed",
                        processed_at=at,
                        attempts=InboxMessage.attempts + 1,
                        last_error=None,
                        next_attempt_at=None,
                    )
                    .execution_options(synchronize_session=False)
                )
            )
            if not claimed:
                return "skipped"
            handler(session, envelope, envelope.body)
    except Exception as exc:  # any handler failure: keep the message, show why, retry later
        session.rollback()
        reason = _describe(exc)
        with unit_of_work(session):
            current = session.get(InboxMessage, inbox_id, populate_existing=True)
            assert current is not None
            current.attempts += 1
            current.status = "failed"
            current.last_error = reason
            current.next_attempt_at = (
                at + backoff(current.attempts) if current.attempts < INBOX_MAX_ATTEMPTS else None
            )
            audit.record(
                session,
                actor=SYSTEM,
                action="federation.message.failed",
                object_type="fed_inbox",
                object_id=inbox_id,
                outcome="failed",
                reason=reason[:200],
                details={"message_id": message_id, "type": message_type},
            )
        log.warning("inbox %s (%s) failed: %s", message_id, message_type, type(exc).__name__)
        return "failed"
    return "processed"


def process_pending_inbox(
    session_factory: Callable[[], Session], *, limit: int = 50, now: datetime | None = None
) -> dict[str, int]:
    """Retry inbox rows that are due (failed, or received and never processed)."""
    at = now or utc_now()
    result: dict[str, int] = {}
    session = session_factory()
    try:
        ids = list(
            session.scalars(
                select(InboxMessage.id)
                .where(
                    InboxMessage.status.in_(("received", "failed")),
                    InboxMessage.next_attempt_at <= at,
                )
                .order_by(InboxMessage.next_attempt_at, InboxMessage.id)
                .limit(limit)
            )
        )
        session.rollback()
        for inbox_id in ids:
            outcome = process_inbox_message(session, inbox_id, now=at)
            result[outcome] = result.get(outcome, 0) + 1
    finally:
        session.close()
    return result


def retry_inbox(session: Session, inbox_id: int, *, actor: Principal) -> str:
    """Process a failed (or, once its handler exists, a rejected) message again, now."""
    require(actor, Permission.FEDERATION_MANAGE)
    row = session.get(InboxMessage, inbox_id)
    if row is None:
        raise NotFound(f"no inbox message {inbox_id}")
    if row.status not in {"failed", "rejected", "received"}:
        raise Conflict(f"the message is {row.status}; only failed or rejected ones are retried")
    with unit_of_work(session):
        audit.record(
            session,
            actor=actor,
            action="federation.inbox.retried",
            object_type="fed_inbox",
            object_id=inbox_id,
            details={"message_id": row.message_id},
        )
    if row.type not in _HANDLERS:
        raise Conflict(f"there is still no handler for the type {row.type}")
    return process_inbox_message(session, inbox_id)


# -- the worker's cycle -----------------------------------------------------------------------


def run_cycle(
    settings: Settings,
    session_factory: Callable[[], Session],
    *,
    transport: Transport | None = None,
    limit: int = 100,
) -> dict[str, int]:
    """One pass for ``crossborder worker``: deliver due outbox rows, retry due inbox rows."""
    if transport is None:
        from crossborder.federation.client import HttpTransport

        transport = HttpTransport()
    stats = deliver_due(session_factory, settings=settings, transport=transport, limit=limit)
    inbox = process_pending_inbox(session_factory, limit=limit)
    return {
        "outbox_delivered": stats.delivered,
        "outbox_failed": stats.failed,
        "outbox_dead": stats.dead,
        "inbox_processed": inbox.get("processed", 0),
        "inbox_failed": inbox.get("failed", 0),
    }


# -- built-in handlers: ping, relay, key rotation ---------------------------------------------


def _ping(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
    """A no-op message: proves peering and the path end to end."""


def _relay(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
    """A hub forwarding a sealed token it cannot read to the peer named in its header."""
    token, message_id, to = body.get("token"), body.get("message_id"), body.get("to")
    if not isinstance(token, str) or not isinstance(message_id, str) or not isinstance(to, str):
        raise InvalidInput("a relay body is {token, message_id, to}")
    if len(token) > env.MAX_ENVELOPE_BYTES:
        raise InvalidInput("the relayed envelope is too large")
    try:
        header = env.peek_header(token)
    except EnvelopeError:
        raise InvalidInput("the relayed token is not a compact JWE") from None
    if header.get("to") != to:
        raise InvalidInput("the relayed token is addressed to another node than `to`")
    at = utc_now()
    destination = find_peer(session, to, at)
    if destination is None:
        raise InvalidInput(f"this hub has no active peer {to[:16]}…")
    row = _enqueue_relayed(
        session, to_node_id=destination.node_id, message_id=message_id, token=token, now=at
    )
    audit.record(
        session,
        actor=SYSTEM,
        action="federation.message.relayed",
        object_type="fed_outbox",
        object_id=row.id if row else None,
        details={
            "message_id": message_id,
            "from_node_id": envelope.sender_node_id,
            "to_node_id": destination.node_id,
            "already_queued": row is None,
        },
    )


def rotation_proof(new: identity.NodeIdentity, *, previous: str, until: datetime) -> str:
    """The new key signs the announcement too: proof that whoever announces it holds it."""
    from joserfc import jws

    payload = {
        "previous": previous,
        "fingerprint": new.fingerprint,
        "signing_key": identity.b64url(new.signing_public_key),
        "encryption_key": identity.b64url(new.encryption_public_key),
        "until": env.format_time(until),
    }
    return jws.serialize_compact(
        {"alg": env.JWS_ALG, "kid": new.fingerprint},
        env.canonical_json(payload),
        identity.jose_signing_key(new),
        registry=env._JWS,
    )


def _key_rotation(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
    """A peer announces new keys, signed by its old (pinned) key and by the new one."""
    from joserfc import jws
    from joserfc.errors import JoseError

    peer = find_peer(session, envelope.sender, utc_now())
    if peer is None:
        raise InvalidInput("key rotation from a node that is not an active peer")
    fingerprint, signing, encryption = (
        body.get("fingerprint"),
        body.get("signing_key"),
        body.get("encryption_key"),
    )
    if not all(isinstance(v, str) for v in (fingerprint, signing, encryption)):
        raise InvalidInput("a key rotation names fingerprint, signing_key and encryption_key")
    assert isinstance(fingerprint, str)
    assert isinstance(signing, str)
    assert isinstance(encryption, str)
    if peer.node.fingerprint == fingerprint:
        return  # announced twice: already applied
    if body.get("previous") != envelope.sender or peer.node.fingerprint != envelope.sender:
        raise InvalidInput("the rotation must be signed by the peer's current key")
    try:
        signing_raw = _raw(signing)
        _raw(encryption)  # must be a 32-byte key too
        proof = jws.deserialize_compact(
            str(body.get("proof", "")), env.public_okp(signing_raw, "Ed25519"), registry=env._JWS
        )
        proven = env.strict_json(proof.payload)
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidInput("the new key's proof does not verify") from None
    if identity.fingerprint_of(signing_raw) != fingerprint or not isinstance(proven, dict):
        raise InvalidInput("the new fingerprint does not match the new signing key")
    if (
        proven.get("previous") != envelope.sender
        or proven.get("fingerprint") != fingerprint
        or proven.get("encryption_key") != encryption
    ):
        raise InvalidInput("the proof does not cover this announcement")
    if session.scalar(select(Node.id).where(Node.fingerprint == fingerprint)) is not None:
        raise Conflict("another node already has the announced fingerprint")
    now = utc_now()
    try:
        until = min(env.parse_time(body.get("until")), now + MAX_PEER_GRACE)
    except ValueError:
        until = now + ROTATION_GRACE
    old = {
        "fingerprint": peer.node.fingerprint,
        "signing_key": peer.signing_key,
        "encryption_key": peer.encryption_key,
        "until": env.format_time(until),
    }
    peer.previous_keys = [*_previous_keys(peer, now), old]
    peer.signing_key = signing
    peer.encryption_key = encryption
    peer.node.fingerprint = fingerprint
    peer.node.public_key = signing
    audit.record(
        session,
        actor=SYSTEM,
        action="federation.peer.keys_rotated",
        object_type="node",
        object_id=peer.node_id,
        details={"old_fingerprint": old["fingerprint"], "fingerprint": fingerprint},
    )


@dataclass(frozen=True)
class Rotation:
    old_fingerprint: str
    new_fingerprint: str
    announced_to: int


def rotate_keys(
    session: Session,
    *,
    settings: Settings,
    actor: Principal,
    grace: timedelta = ROTATION_GRACE,
) -> Rotation:
    """New node keys; the old ones stay usable for ``grace``; every peer is told.

    The announcement is signed with the old key (the one peers have pinned) and carries a
    proof signed by the new key. Messages sealed after this use the new key.
    """
    require(actor, Permission.FEDERATION_MANAGE)
    now = utc_now()
    old, new = identity.rotate_identity(settings.data_dir, grace=grace, now=now)
    until = now + grace
    body = {
        "previous": old.fingerprint,
        "fingerprint": new.fingerprint,
        "signing_key": identity.b64url(new.signing_public_key),
        "encryption_key": identity.b64url(new.encryption_public_key),
        "until": env.format_time(until),
        "proof": rotation_proof(new, previous=old.fingerprint, until=until),
    }
    with unit_of_work(session):
        peers = list(session.scalars(select(FedPeer).where(FedPeer.status == "active")))
        for peer in peers:
            enqueue(
                session,
                to_node_id=peer.node_id,
                type=TYPE_KEY_ROTATION,
                body=body,
                sign_with=old.fingerprint,
            )
        audit.record(
            session,
            actor=actor,
            action="federation.keys.rotated",
            details={
                "old_fingerprint": old.fingerprint,
                "fingerprint": new.fingerprint,
                "peers": len(peers),
            },
        )
    return Rotation(old.fingerprint, new.fingerprint, len(peers))


def install_builtin_handlers() -> None:
    for message_type, fn in (
        (TYPE_PING, _ping),
        (TYPE_RELAY, _relay),
        (TYPE_KEY_ROTATION, _key_rotation),
    ):
        register_handler(message_type, fn, replace=True)


install_builtin_handlers()


def identity_document(settings: Settings) -> dict[str, Any]:
    """What GET /federation/v1/identity publishes: public keys and fingerprint only."""
    ring = keyring(settings.data_dir)
    document = ring.current.public_jwk()
    document["fingerprint"] = ring.current.fingerprint
    document["name"] = settings.node_name
    document["protocol"] = "crossborder-federation/1"
    document["inbox"] = "/federation/v1/inbox"
    return document
