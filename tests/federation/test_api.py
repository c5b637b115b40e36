"""The federation HTTP endpoints (inbox, identity) and the operator's web page."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from crossborder.audit.models import AuditEvent
from crossborder.auth.models import User
from crossborder.auth.permissions import SYSTEM, Role
from crossborder.core.clock import utc_now
from crossborder.db.base import Base
from crossborder.db.session import make_engine, make_session_factory, unit_of_work
from crossborder.federation import api, service, views
from crossborder.federation import envelope as env
from crossborder.federation.client import HttpTransport
from crossborder.federation.envelope import Envelope, PeerKeys
from crossborder.federation.identity import NodeIdentity, ensure_identity
from crossborder.federation.models import FedPeer, InboxMessage, OutboxMessage, Rejection
from crossborder.settings import Settings
from tests.fixtures.web import build_app, csrf_for, make_client


def mount(app: FastAPI) -> FastAPI:
    """Add the federation routers unless app.py already does (the lead wires them)."""
    paths = {getattr(r, "path", "") for r in app.routes}
    if "/federation/v1/inbox" not in paths:
        app.include_router(api.router)
    if "/federation" not in paths:
        app.include_router(views.router)
    return app


@pytest.fixture
def fed_app(app: FastAPI) -> FastAPI:
    return mount(app)


@pytest.fixture
def fed_client(fed_app: FastAPI, client: TestClient) -> TestClient:
    """The shared test client (``logged_in`` logs in on it), with federation mounted."""
    return client


@pytest.fixture
def me(settings: Settings) -> NodeIdentity:
    return ensure_identity(settings.data_dir)


@pytest.fixture
def remote(tmp_path: Path) -> NodeIdentity:
    return ensure_identity(tmp_path / "remote")


@pytest.fixture
def pinned(db: Session, remote: NodeIdentity) -> FedPeer:
    return service.add_peer(
        db,
        actor=SYSTEM,
        name=f"Remote {uuid.uuid4().hex[:6]}",
        base_url="https://remote.invalid",
        fingerprint=remote.fingerprint,
        signing_key=remote.signing_public_key,
        encryption_key=remote.encryption_public_key,
    )


def keys_of(node: NodeIdentity) -> PeerKeys:
    return PeerKeys(node.fingerprint, node.signing_public_key, node.encryption_public_key)


def post(client: TestClient, body: bytes | str, content_type: str = env.MEDIA_TYPE) -> Any:
    return client.post("/federation/v1/inbox", content=body, headers={"Content-Type": content_type})


def test_identity_document_publishes_public_keys_only(
    fed_client: TestClient, me: NodeIdentity
) -> None:
    response = fed_client.get("/federation/v1/identity")
    assert response.status_code == 200
    document = response.json()
    assert document["fingerprint"] == me.fingerprint
    assert service.keys_from_jwks(document) == (me.signing_public_key, me.encryption_public_key)
    assert all("d" not in key for key in document["keys"])
    assert document["inbox"] == "/federation/v1/inbox"


def test_inbox_accepts_and_answers_with_a_signed_receipt(
    fed_client: TestClient, db: Session, me: NodeIdentity, remote: NodeIdentity, pinned: FedPeer
) -> None:
    sealed = env.seal(remote, keys_of(me), type="federation.ping", body={}, created=utc_now())
    response = post(fed_client, sealed.token)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jose")
    receipt = env.open_receipt(
        response.content, signers=[keys_of(me)], expected_for=sealed.message_id
    )
    assert receipt.status == "accepted"
    again = post(fed_client, sealed.token)
    assert (
        env.open_receipt(
            again.content, signers=[keys_of(me)], expected_for=sealed.message_id
        ).status
        == "duplicate"
    )
    rows = db.scalars(
        select(InboxMessage).where(InboxMessage.message_id == sealed.message_id)
    ).all()
    assert [r.status for r in rows] == ["processed"]


def test_unknown_type_gets_a_rejected_receipt(
    fed_client: TestClient, me: NodeIdentity, remote: NodeIdentity, pinned: FedPeer
) -> None:
    sealed = env.seal(remote, keys_of(me), type="nobody.handles_this", body={}, created=utc_now())
    response = post(fed_client, sealed.token)
    assert response.status_code == 422
    receipt = env.open_receipt(
        response.content, signers=[keys_of(me)], expected_for=sealed.message_id
    )
    assert (receipt.status, receipt.reason) == ("rejected", "UNKNOWN_TYPE")


def _last_refusal(db: Session) -> tuple[Rejection | None, AuditEvent | None]:
    rejection = db.scalars(select(Rejection).order_by(Rejection.id.desc())).first()
    event = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "federation.envelope.refused")
        .order_by(AuditEvent.seq.desc())
    ).first()
    return rejection, event


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("garbage", 400, "MALFORMED"),
        ("a.b.c.d.e", 400, "MALFORMED"),
        (b"\xff\xfe\xfd.a.b.c.d", 400, "MALFORMED"),
    ],
)
def test_refusals_are_problems_with_a_code_and_audited(
    fed_client: TestClient, db: Session, me: NodeIdentity, body: bytes | str, status: int, code: str
) -> None:
    response = post(fed_client, body)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    rejection, event = _last_refusal(db)
    assert rejection is not None
    assert event is not None
    assert rejection.reason == event.reason == code


def test_unknown_sender_over_http(
    fed_client: TestClient, db: Session, me: NodeIdentity, remote: NodeIdentity
) -> None:
    token = env.seal(remote, keys_of(me), type="federation.ping", body={}, created=utc_now()).token
    response = post(fed_client, token)
    assert (response.status_code, response.json()["code"]) == (403, "UNKNOWN_SENDER")
    assert _last_refusal(db)[0].claimed_from == remote.fingerprint  # type: ignore[union-attr]


def test_wrong_media_type_is_refused(fed_client: TestClient, me: NodeIdentity) -> None:
    assert post(fed_client, "x", content_type="application/json").status_code == 415


def test_oversized_body_is_refused_while_streaming(
    settings: Settings, db: Session, me: NodeIdentity
) -> None:
    roomy = settings.model_copy(update={"max_body_bytes": 64 * 1024 * 1024})
    app = mount(build_app(roomy, db))
    with make_client(app) as client:

        def chunks() -> Iterator[bytes]:
            block = b"A" * (1024 * 1024)
            for _ in range(17):
                yield block

        response = client.post(
            "/federation/v1/inbox", content=chunks(), headers={"Content-Type": env.MEDIA_TYPE}
        )
    assert response.status_code == 413
    assert response.json()["code"] == "TOO_LARGE"
    rejection, event = _last_refusal(db)
    assert rejection is not None
    assert event is not None
    assert rejection.reason == event.reason == "TOO_LARGE"
    assert rejection.size > env.MAX_ENVELOPE_BYTES


def test_delivery_over_the_http_route(
    fed_client: TestClient,
    settings: Settings,
    db: Session,
    me: NodeIdentity,
    remote: NodeIdentity,
    pinned: FedPeer,
    tmp_path: Path,
) -> None:
    """A second node (own SQLite and keys) delivers to the app through HttpTransport."""
    import crossborder.models  # noqa: F401

    data_dir = tmp_path / "remote"
    url = f"sqlite:///{data_dir / 'node.sqlite3'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    sender_settings = settings.model_copy(update={"data_dir": data_dir, "database_url": url})
    factory = make_session_factory(engine)
    try:
        with factory() as session:
            peer = service.add_peer(
                session,
                actor=SYSTEM,
                name="the app",
                base_url="http://testserver",
                fingerprint=me.fingerprint,
                signing_key=me.signing_public_key,
                encryption_key=me.encryption_public_key,
            )
            with unit_of_work(session):
                row = service.enqueue(
                    session, to_node_id=peer.node_id, type="test.api_note", body={"k": 1}
                )
        seen: list[str] = []

        def handler(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
            seen.append(envelope.id)

        with service.handler_registered("test.api_note", handler):
            transport = HttpTransport(client=fed_client)
            stats = service.deliver_due(factory, settings=sender_settings, transport=transport)
        assert stats.delivered == 1
        assert seen == [row.message_id]
        with factory() as session:
            stored = session.get(OutboxMessage, row.id)
            assert stored is not None
            assert stored.status == "delivered"
    finally:
        engine.dispose()


# -- the operator page ----------------------------------------------------------------------


def test_page_is_for_administrators_only(
    fed_client: TestClient, logged_in: Callable[..., User], me: NodeIdentity
) -> None:
    logged_in(roles=[Role.OFFICER])
    assert fed_client.get("/federation").status_code == 403


def test_page_shows_peers_queues_and_failures(
    fed_client: TestClient,
    db: Session,
    logged_in: Callable[..., User],
    me: NodeIdentity,
    pinned: FedPeer,
) -> None:
    with unit_of_work(db):
        row = service.enqueue(
            db, to_node_id=pinned.node_id, type="test.note", body={"secret": "s3cr3t"}
        )
        row.status = "failed"
        row.last_error = "unreachable: ConnectError"
    logged_in(roles=[Role.ADMINISTRATOR])
    page = fed_client.get("/federation")
    assert page.status_code == 200
    html = page.text
    assert me.fingerprint in html
    assert pinned.node.name in html
    assert row.message_id in html
    assert "unreachable: ConnectError" in html
    assert "s3cr3t" not in html
    assert 'data-testid="outbox-retry"' in html
    assert "<script>" not in html
    assert " style=" not in html


def test_retry_from_the_page(
    fed_client: TestClient,
    settings: Settings,
    db: Session,
    logged_in: Callable[..., User],
    me: NodeIdentity,
    pinned: FedPeer,
) -> None:
    with unit_of_work(db):
        row = service.enqueue(db, to_node_id=pinned.node_id, type="test.note", body={})
        row.status = "dead"
        row.attempts = 30
    logged_in(roles=[Role.ADMINISTRATOR])
    no_csrf = fed_client.post(f"/federation/outbox/{row.id}/retry", data={})
    assert no_csrf.status_code == 403
    done = fed_client.post(
        f"/federation/outbox/{row.id}/retry", data={"csrf_token": csrf_for(fed_client, settings)}
    )
    assert done.status_code == 303
    db.refresh(row)
    assert (row.status, row.attempts) == ("pending", 0)


def test_add_peer_from_the_page(
    fed_client: TestClient,
    settings: Settings,
    db: Session,
    logged_in: Callable[..., User],
    me: NodeIdentity,
    remote: NodeIdentity,
) -> None:
    import json

    logged_in(roles=[Role.ADMINISTRATOR])
    form = {
        "csrf_token": csrf_for(fed_client, settings),
        "name": "Partner node",
        "url": "https://partner.invalid",
        "fingerprint": "0" * 64,
        "public_jwk": json.dumps(remote.public_jwk()),
    }
    refused = fed_client.post("/federation/peers", data=form)
    assert refused.status_code == 422
    assert "does not match" in refused.text
    form["fingerprint"] = remote.fingerprint
    added = fed_client.post("/federation/peers", data=form)
    assert added.status_code == 303, added.text
    peer = db.scalar(select(FedPeer).where(FedPeer.node.has(fingerprint=remote.fingerprint)))
    assert peer is not None
    assert peer.node.name == "Partner node"
