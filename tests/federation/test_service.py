"""The federation service: transactional outbox, inbox, receipts, retries, refusals, claims.

The node under test is the run's database (SQLite or PostgreSQL) with its keys in the test's
data directory; the peer is a bare identity answering through a fake transport.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from crossborder.audit.models import AuditEvent
from crossborder.auth.permissions import SYSTEM, Role
from crossborder.core.clock import utc_now
from crossborder.core.errors import Conflict, InvalidInput, PermissionDenied
from crossborder.db.session import make_engine, unit_of_work
from crossborder.directory.models import Node
from crossborder.federation import envelope as env
from crossborder.federation import service
from crossborder.federation.envelope import Envelope, EnvelopeError, PeerKeys, Reason
from crossborder.federation.identity import NodeIdentity, b64url, ensure_identity
from crossborder.federation.models import FedPeer, InboxMessage, OutboxMessage, Rejection
from crossborder.federation.service import TransportError, TransportResponse
from crossborder.settings import Settings


def keys_of(node: NodeIdentity) -> PeerKeys:
    return PeerKeys(node.fingerprint, node.signing_public_key, node.encryption_public_key)


def pin(
    session: Session, node: NodeIdentity, name: str, url: str = "https://peer.invalid"
) -> FedPeer:
    return service.add_peer(
        session,
        actor=SYSTEM,
        name=name,
        base_url=url,
        fingerprint=node.fingerprint,
        signing_key=node.signing_public_key,
        encryption_key=node.encryption_public_key,
    )


def factory_for(db: Session) -> Callable[[], Session]:
    def make() -> Session:
        return Session(
            bind=db.get_bind(), join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    return make


class FakePeer:
    """A remote node reduced to its keys: opens what it gets and signs a receipt."""

    def __init__(self, identity: NodeIdentity, sender: NodeIdentity) -> None:
        self.identity = identity
        self.sender = keys_of(sender)
        self.down = False
        self.seen: list[str] = []
        self.now: datetime | None = None
        self.answer: Callable[[Envelope], TransportResponse] | None = None
        self.lock = threading.Lock()
        self.delay = 0.0

    def post(self, base_url: str, token: str) -> TransportResponse:
        if self.down:
            raise TransportError("ConnectError")
        if self.delay:
            time.sleep(self.delay)
        opened = env.open_envelope(
            token,
            my_identity=self.identity,
            peer_lookup={self.sender.fingerprint: self.sender}.get,
            now=self.now or utc_now(),
        )
        if self.answer is not None:
            return self.answer(opened)
        with self.lock:
            status = "duplicate" if opened.id in self.seen else "accepted"
            self.seen.append(opened.id)
        receipt = env.make_receipt(
            self.identity, receipt_for=opened.id, status=status, to=opened.sender, at=utc_now()
        )
        return TransportResponse(200, env.MEDIA_TYPE, receipt.encode())


@pytest.fixture
def me(settings: Settings) -> NodeIdentity:
    return ensure_identity(settings.data_dir)


@pytest.fixture
def peer_identity(tmp_path: Path) -> NodeIdentity:
    return ensure_identity(tmp_path / "peer")


@pytest.fixture
def peer(db: Session, peer_identity: NodeIdentity) -> FedPeer:
    return pin(db, peer_identity, f"Peer {uuid.uuid4().hex[:6]}")


@pytest.fixture
def fake(peer_identity: NodeIdentity, me: NodeIdentity) -> FakePeer:
    return FakePeer(peer_identity, me)


@pytest.fixture
def calls() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def handler(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
        if body.get("fail"):
            raise InvalidInput("the test handler was told to fail")
        seen.append({"id": envelope.id, "body": body, "from": envelope.sender_node_id})

    with service.handler_registered("test.note", handler):
        yield seen


def audit_events(db: Session, action: str) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def from_peer(peer_identity: NodeIdentity, me: NodeIdentity, **kw: Any) -> str:
    args: dict[str, Any] = {"type": "test.note", "body": {"n": 1}, "created": utc_now()}
    args.update(kw)
    return env.seal(peer_identity, keys_of(me), **args).token


# -- outbox: transactional ------------------------------------------------------------------


def test_enqueue_joins_the_callers_transaction(db: Session, peer: FedPeer) -> None:
    def change_that_fails() -> None:
        with unit_of_work(db):
            service.enqueue(db, to_node_id=peer.node_id, type="test.note", body={"n": 1})
            raise RuntimeError("the change it announces failed")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    with unit_of_work(db):
        row = service.enqueue(db, to_node_id=peer.node_id, type="test.note", body={"n": 2})
    assert db.get(OutboxMessage, row.id) is not None
    assert row.status == "pending"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"type": "Bad Type"}, "type"), ({"body": {"x": float("nan")}}, "body")],
)
def test_enqueue_validates(db: Session, peer: FedPeer, kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"to_node_id": peer.node_id, "type": "test.note", "body": {}}
    args.update(kwargs)
    with pytest.raises(InvalidInput) as info:
        service.enqueue(db, **args)
    assert info.value.field == field


# -- inbox ----------------------------------------------------------------------------------


def test_receive_stores_processes_and_acknowledges(
    db: Session,
    settings: Settings,
    me: NodeIdentity,
    peer: FedPeer,
    peer_identity: NodeIdentity,
    calls: list[dict[str, Any]],
) -> None:
    token = from_peer(peer_identity, me, body={"ref": "A-1"})
    ack = service.receive(db, token, settings=settings, remote_addr="192.0.2.1")
    assert ack.status == "accepted"
    receipt = env.open_receipt(ack.token, signers=[keys_of(me)], expected_for=ack.message_id)
    assert receipt.to == peer_identity.fingerprint
    assert calls == [{"id": ack.message_id, "body": {"ref": "A-1"}, "from": peer.node_id}]
    row = db.scalar(select(InboxMessage).where(InboxMessage.message_id == ack.message_id))
    assert row is not None
    assert (row.status, row.attempts, row.envelope) == ("processed", 1, token)
    assert row.signed.count(".") == 2  # the sender's signed JWS is kept as proof
    assert audit_events(db, "federation.message.received")
    db.refresh(peer)
    assert peer.last_contact_at is not None


def test_duplicate_is_acknowledged_but_processed_once(
    db: Session,
    settings: Settings,
    me: NodeIdentity,
    peer: FedPeer,
    peer_identity: NodeIdentity,
    calls: list[dict[str, Any]],
) -> None:
    message_id = str(uuid.uuid4())
    first = service.receive(
        db, from_peer(peer_identity, me, message_id=message_id), settings=settings
    )
    # the same message re-sealed (a retry after a lost receipt), and the exact token replayed
    again = service.receive(
        db, from_peer(peer_identity, me, message_id=message_id), settings=settings
    )
    replay = service.receive(
        db, from_peer(peer_identity, me, message_id=message_id), settings=settings
    )
    assert [first.status, again.status, replay.status] == ["accepted", "duplicate", "duplicate"]
    assert len(calls) == 1
    count = db.scalar(
        select(func.count()).select_from(InboxMessage).where(InboxMessage.message_id == message_id)
    )
    assert count == 1


def test_out_of_order_messages_are_all_accepted(
    db: Session,
    settings: Settings,
    me: NodeIdentity,
    peer: FedPeer,
    peer_identity: NodeIdentity,
    calls: list[dict[str, Any]],
) -> None:
    now = utc_now()
    later = from_peer(peer_identity, me, body={"n": 2}, created=now)
    earlier = from_peer(peer_identity, me, body={"n": 1}, created=now - timedelta(minutes=5))
    for token in (later, earlier):
        assert service.receive(db, token, settings=settings).status == "accepted"
    assert [c["body"]["n"] for c in calls] == [2, 1]  # handlers see arrival order


def _tamper(token: str) -> str:
    parts = token.split(".")
    parts[3] = ("A" if parts[3][0] != "A" else "B") + parts[3][1:]
    return ".".join(parts)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p, me, o: _tamper(from_peer(p, me)), Reason.UNDECRYPTABLE),
        (lambda p, me, o: from_peer(o, me), Reason.UNKNOWN_SENDER),
        (lambda p, me, o: from_peer(p, me, created=utc_now() - timedelta(days=4)), Reason.STALE),
        (
            lambda p, me, o: from_peer(p, me, created=utc_now() + timedelta(hours=1)),
            Reason.FROM_FUTURE,
        ),
        (lambda p, me, o: from_peer(p, keys_node(o)), Reason.NOT_FOR_ME),
        (lambda p, me, o: "garbage" * 10, Reason.MALFORMED),
        (lambda p, me, o: from_peer(p, me, body={"x": "y" * 70_000}), Reason.TOO_LARGE),
    ],
)
def test_refusals_are_stored_audited_and_not_processed(
    db: Session,
    settings: Settings,
    me: NodeIdentity,
    peer: FedPeer,
    peer_identity: NodeIdentity,
    tmp_path: Path,
    calls: list[dict[str, Any]],
    make: Callable[[NodeIdentity, NodeIdentity, NodeIdentity], str],
    reason: Reason,
) -> None:
    other = ensure_identity(tmp_path / "other")
    token = make(peer_identity, me, other)
    with pytest.raises(EnvelopeError) as info:
        service.receive(db, token, settings=settings, remote_addr="198.51.100.7", max_bytes=65_536)
    assert info.value.reason is reason
    assert calls == []
    assert db.scalar(select(func.count()).select_from(InboxMessage)) == 0
    rejection = db.scalars(select(Rejection).order_by(Rejection.id.desc())).first()
    assert rejection is not None
    assert (rejection.reason, rejection.remote_addr) == (reason.value, "198.51.100.7")
    event = audit_events(db, "federation.envelope.refused")[-1]
    assert (event.reason, event.outcome, event.ip) == (reason.value, "refused", "198.51.100.7")
    assert "y" * 100 not in str(event.details)


def keys_node(node: NodeIdentity) -> NodeIdentity:
    return node


def test_suspended_peer_is_an_unknown_sender(
    db: Session, settings: Settings, me: NodeIdentity, peer: FedPeer, peer_identity: NodeIdentity
) -> None:
    service.set_peer_status(db, peer.id, "suspended", actor=SYSTEM)
    with pytest.raises(EnvelopeError) as info:
        service.receive(
            db, from_peer(peer_identity, me, type="federation.ping", body={}), settings=settings
        )
    assert info.value.reason is Reason.UNKNOWN_SENDER


def test_unknown_type_is_rejected_with_a_signed_receipt_then_retried(
    db: Session, settings: Settings, me: NodeIdentity, peer: FedPeer, peer_identity: NodeIdentity
) -> None:
    token = from_peer(peer_identity, me, type="test.unknown_kind")
    ack = service.receive(db, token, settings=settings)
    assert (ack.status, ack.reason) == ("rejected", "UNKNOWN_TYPE")
    assert (
        env.open_receipt(ack.token, signers=[keys_of(me)], expected_for=ack.message_id).status
        == "rejected"
    )
    row = db.scalar(select(InboxMessage).where(InboxMessage.message_id == ack.message_id))
    assert row is not None
    assert row.status == "rejected"
    assert audit_events(db, "federation.message.rejected")[-1].reason == "UNKNOWN_TYPE"
    # sent again: still rejected, still not processed
    again = service.receive(db, token, settings=settings)
    assert again.status == "rejected"
    with pytest.raises(Conflict, match="no handler"):
        service.retry_inbox(db, row.id, actor=SYSTEM)
    seen: list[str] = []
    with service.handler_registered("test.unknown_kind", lambda s, e, b: seen.append(e.id)):
        assert service.retry_inbox(db, row.id, actor=SYSTEM) == "processed"
    assert seen == [ack.message_id]


def test_failed_processing_is_kept_visible_and_retried(
    db: Session,
    settings: Settings,
    me: NodeIdentity,
    peer: FedPeer,
    peer_identity: NodeIdentity,
    calls: list[dict[str, Any]],
) -> None:
    ack = service.receive(db, from_peer(peer_identity, me, body={"fail": True}), settings=settings)
    assert ack.status == "accepted"  # stored safely: the sender is done
    row = db.scalar(select(InboxMessage).where(InboxMessage.message_id == ack.message_id))
    assert row is not None
    assert row.status == "failed"
    assert row.last_error == "InvalidInput: the test handler was told to fail"
    assert row.next_attempt_at is not None
    assert calls == []
    # not due yet
    factory = factory_for(db)
    assert service.process_pending_inbox(factory, now=utc_now()) == {}

    def fixed(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
        calls.append({"id": envelope.id})

    with service.handler_registered("test.note", fixed):
        done = service.process_pending_inbox(factory, now=utc_now() + timedelta(hours=2))
        assert done == {"processed": 1}
        assert service.process_pending_inbox(factory, now=utc_now() + timedelta(hours=3)) == {}
    db.refresh(row)
    assert (row.status, row.attempts, row.last_error) == ("processed", 2, None)
    assert calls == [{"id": ack.message_id}]


def test_a_handler_that_fails_unexpectedly_does_not_leak_its_message(
    db: Session, settings: Settings, me: NodeIdentity, peer: FedPeer, peer_identity: NodeIdentity
) -> None:
    def broken(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
        raise KeyError("secret-selector-value")

    with service.handler_registered("test.broken", broken):
        ack = service.receive(
            db, from_peer(peer_identity, me, type="test.broken"), settings=settings
        )
    row = db.scalar(select(InboxMessage).where(InboxMessage.message_id == ack.message_id))
    assert row is not None
    assert row.last_error is not None
    assert "secret-selector-value" not in row.last_error


# -- delivery -------------------------------------------------------------------------------


def test_delivery_marks_delivered_only_on_a_signed_receipt(
    db: Session, settings: Settings, peer: FedPeer, fake: FakePeer
) -> None:
    with unit_of_work(db):
        row = service.enqueue(db, to_node_id=peer.node_id, type="test.note", body={"n": 1})
    stats = service.deliver_due(factory_for(db), settings=settings, transport=fake)
    assert (stats.claimed, stats.delivered) == (1, 1)
    db.refresh(row)
    assert row.status == "delivered"
    assert row.receipt is not None
    assert row.attempts == 1
    assert fake.seen == [row.message_id]
    assert audit_events(db, "federation.message.delivered")
    # nothing left to do
    assert service.deliver_due(factory_for(db), settings=settings, transport=fake).claimed == 0


def test_receiver_down_then_back_is_retried_with_backoff(
    db: Session, settings: Settings, peer: FedPeer, fake: FakePeer
) -> None:
    factory = factory_for(db)
    with unit_of_work(db):
        row = service.enqueue(db, to_node_id=peer.node_id, type="test.note", body={})
    fake.down = True
    t0 = utc_now()
    delays = []
    for _ in range(3):
        db.refresh(row)
        at = row.next_attempt_at
        fake.now = at
        stats = service.deliver_due(factory, settings=settings, transport=fake, now=at)
        assert stats.failed == 1
        db.refresh(row)
        assert row.status == "failed"
        assert row.last_error == "unreachable: ConnectError"
        delays.append((row.next_attempt_at - at).total_seconds())
        # not due before the backoff elapses
        early = at + timedelta(seconds=1)
        assert (
            service.deliver_due(factory, settings=settings, transport=fake, now=early).claimed == 0
        )
    assert 4 <= delays[0] <= 6
    assert 8 <= delays[1] <= 12
    assert 16 <= delays[2] <= 24
    db.refresh(peer)
    assert peer.last_error == "unreachable: ConnectError"
    fake.down = False
    at = row.next_attempt_at
    fake.now = at
    assert service.deliver_due(factory, settings=settings, transport=fake, now=at).delivered == 1
    db.refresh(row)
    assert (row.status, row.attempts) == ("delivered", 4)
    assert fake.seen == [row.message_id]
    assert row.delivered_at is not None
    assert row.delivered_at >= t0


def test_killed_worker_lease_expires_and_message_is_delivered_once(
    db: Session, settings: Settings, peer: FedPeer, fake: FakePeer
) -> None:
    factory = factory_for(db)
    with unit_of_work(db):
        row = service.enqueue(db, to_node_id=peer.node_id, type="test.note", body={})
    now = utc_now()
    session = factory()
    service.claim_due(session, limit=10, now=now)  # ... and the worker dies here
    session.close()
    db.refresh(row)
    assert row.status == "in_flight"
    assert service.deliver_due(factory, settings=settings, transport=fake, now=now).claimed == 0
    later = now + service.LEASE + timedelta(seconds=1)
    fake.now = later
    stats = service.deliver_due(factory, settings=settings, transport=fake, now=later)
    assert stats.delivered == 1
    db.refresh(row)
    assert row.status == "delivered"
    assert fake.seen == [row.message_id]


def test_a_stale_worker_cannot_overwrite_the_new_claimants_result(
    db: Session, settings: Settings, peer: FedPeer, fake: FakePeer
) -> None:
    factory = factory_for(db)
    with unit_of_work(db):
        row = service.enqueue(db, to_node_id=peer.node_id, type="test.note", body={})
    now = utc_now()
    s1 = factory()
    old_claim = service.claim_due(s1, limit=1, now=now)
    later = now + service.LEASE + timedelta(seconds=1)
    fake.now = later
    assert service.deliver_due(factory, settings=settings, transport=fake, now=later).delivered == 1
    # the first worker wakes up and reports a failure under its stale claim: ignored
    stale = s1.get(OutboxMessage, row.id)
    assert stale is not None
    service._record_failure(s1, stale, old_claim, service._Failure("late"), now=later)
    s1.close()
    db.refresh(row)
    assert row.status == "delivered"


def test_rejected_receipt_is_dead_at_once(
    db: Session, settings: Settings, peer: FedPeer, fake: FakePeer, peer_identity: NodeIdentity
) -> None:
    def reject(opened: Envelope) -> TransportResponse:
        receipt = env.make_receipt(
            peer_identity,
            receipt_for=opened.id,
            status="rejected",
            reason="UNKNOWN_TYPE",
            to=opened.sender,
            at=utc_now(),
        )
        return TransportResponse(422, env.MEDIA_TYPE, receipt.encode())

    fake.answer = reject
    with unit_of_work(db):
        row = service.enqueue(db, to_node_id=peer.node_id, type="test.note", body={})
    assert service.deliver_due(factory_for(db), settings=settings, transport=fake).dead == 1
    db.refresh(row)
    assert (row.status, row.last_error) == ("dead", "refused by the peer: UNKNOWN_TYPE")
    assert audit_events(db, "federation.message.dead")
    service.retry_outbox(db, row.id, actor=SYSTEM)
    db.refresh(row)
    assert (row.status, row.attempts) == ("pending", 0)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (
            TransportResponse(403, "application/problem+json", b'{"code": "UNKNOWN_SENDER"}'),
            "refused by the peer: UNKNOWN_SENDER (HTTP 403)",
        ),
        (
            TransportResponse(502, "text/html", b"<h1>bad gateway</h1>"),
            "unexpected answer (HTTP 502)",
        ),
        (TransportResponse(200, env.MEDIA_TYPE, b"not-a-receipt"), "invalid receipt (MALFORMED)"),
    ],
)
def test_refusals_and_bad_answers_are_retried(
    db: Session,
    settings: Settings,
    peer: FedPeer,
    fake: FakePeer,
    response: TransportResponse,
    error: str,
) -> None:
    fake.answer = lambda opened: response
    with unit_of_work(db):
        row = service.enqueue(db, to_node_id=peer.node_id, type="test.note", body={})
    assert service.deliver_due(factory_for(db), settings=settings, transport=fake).failed == 1
    db.refresh(row)
    assert (row.status, row.last_error) == ("failed", error)


def test_receipt_signed_by_someone_else_is_not_a_delivery(
    db: Session, settings: Settings, peer: FedPeer, fake: FakePeer, tmp_path: Path
) -> None:
    impostor = ensure_identity(tmp_path / "impostor")

    def forged(opened: Envelope) -> TransportResponse:
        receipt = env.make_receipt(
            impostor, receipt_for=opened.id, status="accepted", to=opened.sender, at=utc_now()
        )
        return TransportResponse(200, env.MEDIA_TYPE, receipt.encode())

    fake.answer = forged
    with unit_of_work(db):
        row = service.enqueue(db, to_node_id=peer.node_id, type="test.note", body={})
    service.deliver_due(factory_for(db), settings=settings, transport=fake)
    db.refresh(row)
    assert (row.status, row.last_error) == ("failed", "invalid receipt (UNKNOWN_SENDER)")


def test_gives_up_after_max_attempts(
    db: Session, settings: Settings, peer: FedPeer, fake: FakePeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_ATTEMPTS", 3)
    fake.down = True
    with unit_of_work(db):
        row = service.enqueue(db, to_node_id=peer.node_id, type="test.note", body={})
    for _ in range(3):
        db.refresh(row)
        service.deliver_due(
            factory_for(db), settings=settings, transport=fake, now=row.next_attempt_at
        )
    db.refresh(row)
    assert (row.status, row.attempts) == ("dead", 3)


def test_message_to_a_node_without_pinned_keys_fails_visibly(
    db: Session, settings: Settings, fake: FakePeer
) -> None:
    node = Node(
        name=f"unpeered {uuid.uuid4().hex[:6]}",
        base_url="https://x.invalid",
        fingerprint=uuid.uuid4().hex * 2,
    )
    db.add(node)
    db.flush()
    row = service.enqueue(db, to_node_id=node.id, type="test.note", body={})
    db.commit()
    service.deliver_due(factory_for(db), settings=settings, transport=fake)
    db.refresh(row)
    assert row.status == "failed"
    assert row.last_error is not None
    assert "crossborder peer add" in row.last_error


def test_backoff_grows_and_is_capped() -> None:
    for attempts, low, high in [(1, 4, 6), (2, 8, 12), (5, 64, 96), (30, 2880, 4320)]:
        seconds = service.backoff(attempts).total_seconds()
        assert low <= seconds <= high, (attempts, seconds)


# -- peers and permissions ------------------------------------------------------------------


def test_add_peer_refuses_keys_that_do_not_match_the_fingerprint(
    db: Session, peer_identity: NodeIdentity, tmp_path: Path
) -> None:
    other = ensure_identity(tmp_path / "other")
    with pytest.raises(InvalidInput, match="does not match"):
        service.add_peer(
            db,
            actor=SYSTEM,
            name="impostor",
            base_url="https://x.invalid",
            fingerprint=peer_identity.fingerprint,
            signing_key=other.signing_public_key,
            encryption_key=other.encryption_public_key,
        )


def test_keys_from_jwks(peer_identity: NodeIdentity) -> None:
    signing, encryption = service.keys_from_jwks(peer_identity.public_jwk())
    assert (signing, encryption) == (
        peer_identity.signing_public_key,
        peer_identity.encryption_public_key,
    )
    with pytest.raises(InvalidInput):
        service.keys_from_jwks({"keys": [peer_identity.public_jwk()["keys"][0]]})
    with pytest.raises(InvalidInput):
        service.keys_from_jwks({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64url(b"short")}]})


def test_operator_functions_need_the_permission(
    db: Session, make_principal: Callable[..., Any], peer: FedPeer
) -> None:
    officer = make_principal(Role.OFFICER)
    admin = make_principal(Role.ADMINISTRATOR)
    for fn in (
        service.list_peers,
        service.list_outbox,
        service.list_inbox,
        service.list_rejections,
    ):
        with pytest.raises(PermissionDenied):
            fn(db, actor=officer)
        fn(db, actor=admin)


# -- several workers on PostgreSQL ----------------------------------------------------------


def test_two_workers_never_deliver_the_same_message_twice(
    database_url: str, engine: Engine, tmp_path: Path, settings: Settings
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip(
            "FOR UPDATE SKIP LOCKED between workers needs PostgreSQL (SQLite has one writer)"
        )
    me = ensure_identity(settings.data_dir)
    remote = ensure_identity(tmp_path / "remote")
    fake = FakePeer(remote, me)
    fake.delay = 0.005
    setup = Session(engine, expire_on_commit=False)
    name = f"concurrency {uuid.uuid4().hex[:8]}"
    peer = pin(setup, remote, name)
    ids = []
    with unit_of_work(setup):
        for n in range(60):
            ids.append(
                service.enqueue(setup, to_node_id=peer.node_id, type="test.note", body={"n": n}).id
            )
    engines = [make_engine(database_url) for _ in range(2)]
    errors: list[BaseException] = []

    def work(worker_engine: Engine) -> None:
        try:
            factory = lambda: Session(worker_engine, expire_on_commit=False)  # noqa: E731
            for _ in range(200):
                if (
                    service.deliver_due(factory, settings=settings, transport=fake, limit=5).claimed
                    == 0
                ):
                    break
        except BaseException as exc:  # reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=work, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert len(fake.seen) == 60
        assert len(set(fake.seen)) == 60
        statuses = setup.scalars(
            select(OutboxMessage.status).where(OutboxMessage.id.in_(ids))
        ).all()
        assert set(statuses) == {"delivered"}
    finally:
        for e in engines:
            e.dispose()
        with unit_of_work(setup):
            setup.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
            setup.execute(delete(FedPeer).where(FedPeer.id == peer.id))
            setup.execute(delete(Node).where(Node.name == name))
        setup.close()
