"""A preservation request between two nodes: Viet Nam's and Australia's, each with its own
directory, keys and database. Both end up with the same state, timeline and clocks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from crossborder.auth.permissions import Principal, Role
from crossborder.core.clock import utc_now
from crossborder.core.errors import Conflict, InvalidInput
from crossborder.db.session import unit_of_work
from crossborder.directory.models import Authority, LegalInstrument, Node, State
from crossborder.federation.client import LocalTransport
from crossborder.federation.envelope import Envelope
from crossborder.requests import exchange, schemas, service
from tests.federation.test_two_nodes import LocalNode, nodes  # noqa: F401 - fixture
from tests.requests.conftest import preservation_draft


@pytest.fixture(autouse=True)
def _handlers() -> Iterator[None]:
    exchange.register()
    return


def _directory(node: LocalNode, *, local: str, remote: tuple[str, LocalNode]) -> dict[str, int]:
    """States, the local authority, the partner's authority served by its node, and the MoU."""
    remote_short, remote_node = remote
    with node.session() as s, unit_of_work(s):
        vn = State(alpha2="VN", alpha3="VNM", name="Viet Nam")
        au = State(alpha2="AU", alpha3="AUS", name="Australia")
        s.add_all([vn, au])
        partner_node = s.scalar(select(Node).where(Node.name == remote_node.name))
        assert partner_node is not None
        states = {"VN-A05": vn, "AU-AFP": au}
        zones = {"VN-A05": "Asia/Ho_Chi_Minh", "AU-AFP": "Australia/Sydney"}
        mine = Authority(
            state=states[local],
            name=local,
            short_name=local,
            roles=["police"],
            time_zone=zones[local],
            is_local=True,
        )
        theirs = Authority(
            state=states[remote_short],
            name=remote_short,
            short_name=remote_short,
            roles=["police"],
            time_zone=zones[remote_short],
            node_id=partner_node.id,
        )
        mou = LegalInstrument(
            code="AU-VN-POLICE-MOU",
            title="MoU",
            kind="mou",
            offences=["*"],
            channels=["point_of_contact_24_7", "police"],
            data_categories=["*"],
            conditions=[{"code": "CONFIDENTIALITY", "text": "Police only."}],
        )
        s.add_all([mine, theirs, mou])
        s.flush()
        from crossborder.directory.models import InstrumentParty

        s.add_all(
            [
                InstrumentParty(instrument=mou, state=vn, status="in_force"),
                InstrumentParty(instrument=mou, state=au, status="in_force"),
            ]
        )
        s.flush()
        return {"local": mine.id, "remote": theirs.id}


@pytest.fixture
def pair(nodes: Callable[[str], LocalNode]) -> dict[str, Any]:  # noqa: F811
    vn, au = nodes("vn-mps"), nodes("au-afp")
    vn.pin(au)
    au.pin(vn)
    transport = LocalTransport()
    for n in (vn, au):
        transport.add(n.url, n.settings, n.factory)
    vn_ids = _directory(vn, local="VN-A05", remote=("AU-AFP", au))
    au_ids = _directory(au, local="AU-AFP", remote=("VN-A05", vn))
    linh = Principal(
        user_id=1, username="linh", authority_id=vn_ids["local"], roles=frozenset({Role.OFFICER})
    )
    jack = Principal(
        user_id=1, username="jack", authority_id=au_ids["local"], roles=frozenset({Role.OFFICER})
    )
    return {
        "vn": vn,
        "au": au,
        "t": transport,
        "linh": linh,
        "jack": jack,
        "vn_ids": vn_ids,
        "au_ids": au_ids,
    }


def _act(node: LocalNode, ref: str, actor: Principal, action: str, **kw: Any) -> None:
    with node.session() as s:
        service.transition(
            s, ref, schemas.TransitionIn.model_validate({"action": action, **kw}), actor=actor
        )


def _view(node: LocalNode, ref: str, actor: Principal) -> dict[str, Any]:
    with node.session() as s:
        req = service.get_request(s, ref, actor=actor)
        return {
            "status": req.status,
            "reference": req.reference,
            "legal_basis": (req.legal_basis or {}).get("instrument_code"),
            "preserved_until": req.preserved_until,
            "timeline": [(e.action, e.to_status) for e in service.timeline(s, req)],
            "messages": [m.body for m in service.messages(s, req)],
            "clocks": {c.kind: c.due_at for c in req.clocks},
        }


def test_a_preservation_request_travels_and_both_nodes_agree(pair: dict[str, Any]) -> None:
    vn, au, t, linh, jack = pair["vn"], pair["au"], pair["t"], pair["linh"], pair["jack"]
    draft = preservation_draft(_Receiver(pair["vn_ids"]["remote"]))
    with vn.session() as s:
        ref = service.create_draft(s, draft, actor=linh).public_id
    _act(vn, ref, linh, "submit")
    assert vn.deliver(t).delivered == 1

    arrived = _view(au, ref, jack)
    assert arrived["status"] == "submitted"
    assert arrived["legal_basis"] == "AU-VN-POLICE-MOU"
    assert "acknowledgement" in arrived["clocks"]

    for step in ("acknowledge", "start"):
        _act(au, ref, jack, step)
    until = utc_now() + timedelta(days=90)
    _act(au, ref, jack, "execute", preserved_until=until.isoformat())
    with au.session() as s:
        service.add_message(
            s, ref, schemas.MessageIn(body="Preserved until the date given."), actor=jack
        )
    assert au.deliver(t).delivered == 4

    here, there = _view(vn, ref, linh), _view(au, ref, jack)
    assert here["status"] == there["status"] == "executed"
    assert here["reference"] == there["reference"]
    assert here["preserved_until"] == there["preserved_until"]
    # The draft's creation is the sender's own business; from submission on, one timeline.
    assert here["timeline"][0] == ("created", "draft")
    assert here["timeline"][1:] == there["timeline"]
    assert [a for a, _ in there["timeline"]] == ["submit", "acknowledge", "start", "execute"]
    assert here["clocks"]["preservation_expiry"] == there["clocks"]["preservation_expiry"]
    assert here["messages"] == ["Preserved until the date given."]

    _act(vn, ref, linh, "close")
    assert vn.deliver(t).delivered == 1
    assert _view(au, ref, jack)["status"] == "closed"


def test_a_step_that_arrives_before_its_predecessor_waits_for_it(pair: dict[str, Any]) -> None:
    vn, au, t, linh, jack = pair["vn"], pair["au"], pair["t"], pair["linh"], pair["jack"]
    with vn.session() as s:
        ref = service.create_draft(
            s, preservation_draft(_Receiver(pair["vn_ids"]["remote"])), actor=linh
        ).public_id
    _act(vn, ref, linh, "submit")
    vn.deliver(t)
    _act(au, ref, jack, "acknowledge")
    _act(au, ref, jack, "start")
    # Deliver "start" first: it cannot apply yet and stays visible as failed, then succeeds.
    with au.session() as s, unit_of_work(s):
        from crossborder.federation.models import OutboxMessage

        first, _second = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        first.next_attempt_at = utc_now() + timedelta(hours=1)
        first_id = first.id
    au.deliver(t)
    failed = [m for m in vn.inbox() if m.status == "failed"]
    assert len(failed) == 1
    assert _view(vn, ref, linh)["status"] == "submitted"
    with au.session() as s, unit_of_work(s):
        from crossborder.federation.models import OutboxMessage

        s.get(OutboxMessage, first_id).next_attempt_at = utc_now()  # type: ignore[union-attr]
    au.deliver(t)
    from crossborder.federation import service as federation

    with vn.session() as s:
        federation.retry_inbox(s, failed[0].id, actor=_admin(pair))
    assert _view(vn, ref, linh)["status"] == "in_progress"


def test_a_node_cannot_act_for_an_authority_it_does_not_serve(pair: dict[str, Any]) -> None:
    vn = pair["vn"]
    with vn.session() as s:
        ref = service.create_draft(
            s, preservation_draft(_Receiver(pair["vn_ids"]["remote"])), actor=pair["linh"]
        ).public_id
    _act(vn, ref, pair["linh"], "submit")
    au_fingerprint = pair["au"].identity.fingerprint
    forged = {
        "public_id": ref,
        "action": "withdraw",
        "from_status": "submitted",
        "acting_authority": {"state": "VN", "short_name": "VN-A05"},
        "actor": "mallory",
        "roles": ["officer"],
        "reasons": "forged",
    }
    envelope = _envelope(au_fingerprint, vn.identity.fingerprint)
    with vn.session() as s, pytest.raises(InvalidInput), unit_of_work(s):
        exchange.on_transition(s, envelope, forged)
    assert _view(vn, ref, pair["linh"])["status"] == "submitted"


def test_a_step_from_the_wrong_state_is_refused(pair: dict[str, Any]) -> None:
    vn = pair["vn"]
    with vn.session() as s:
        ref = service.create_draft(
            s, preservation_draft(_Receiver(pair["vn_ids"]["remote"])), actor=pair["linh"]
        ).public_id
    _act(vn, ref, pair["linh"], "submit")
    body = {
        "public_id": ref,
        "action": "execute",
        "from_status": "in_progress",
        "acting_authority": {"state": "AU", "short_name": "AU-AFP"},
        "actor": "jack",
        "roles": ["officer"],
    }
    envelope = _envelope(pair["au"].identity.fingerprint, vn.identity.fingerprint)
    with vn.session() as s, pytest.raises(Conflict), unit_of_work(s):
        exchange.on_transition(s, envelope, body)


class _Receiver:
    """Stands in for an Authority where preservation_draft only needs the id."""

    def __init__(self, authority_id: int) -> None:
        self.id = authority_id


def _envelope(sender: str, receiver: str) -> Envelope:
    import dataclasses

    fields = {f.name for f in dataclasses.fields(Envelope)}
    values: dict[str, Any] = {
        "id": "m-1",
        "type": exchange.TRANSITION,
        "sender": sender,
        "receiver": receiver,
        "created": utc_now(),
    }
    for name in fields - set(values):
        values[name] = None
    return Envelope(**values)


def _admin(pair: dict[str, Any]) -> Principal:
    return Principal(
        user_id=9,
        username="admin",
        authority_id=pair["vn_ids"]["local"],
        roles=frozenset({Role.ADMINISTRATOR}),
    )


def test_an_attachment_travels_in_hash_checked_chunks(
    pair: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import hashlib

    from crossborder.evidence import service as evidence

    monkeypatch.setattr(exchange, "CHUNK_BYTES", 1000)
    vn, au, t, linh, jack = pair["vn"], pair["au"], pair["t"], pair["linh"], pair["jack"]
    with vn.session() as s:
        ref = service.create_draft(
            s, preservation_draft(_Receiver(pair["vn_ids"]["remote"])), actor=linh
        ).public_id
    _act(vn, ref, linh, "submit")
    vn.deliver(t)
    content = b"2026-10-14T02:40:07+07:00 203.0.113.45:51234 -> 198.51.100.7:443\n" * 40

    async def chunks() -> Any:
        yield content

    with au.session() as s:
        att = asyncio.run(
            service.add_attachment(
                s,
                ref,
                actor=jack,
                settings=au.settings,
                filename="logs.txt",
                media_type="text/plain",
                chunks=chunks(),
            )
        )
        sent_id = att.public_id
        assert [e.kind for e in evidence.custody_chain(s, att.id)] == ["received", "transmitted"]
    assert au.deliver(t).delivered == 3  # ceil(2,640 / 1,000) chunks
    with vn.session() as s:
        req = service.get_request(s, ref, actor=linh)
        (got,) = service.attachments(s, req)
        assert got.public_id == sent_id
        assert got.sha256 == hashlib.sha256(content).hexdigest()
        _opened, path = service.open_attachment(
            s, ref, got.public_id, actor=linh, settings=vn.settings
        )
        assert path.read_bytes() == content
        assert [e.kind for e in evidence.custody_chain(s, got.id)] == ["received", "downloaded"]
    staged = vn.settings.data_dir / "evidence" / "incoming" / sent_id
    assert not staged.exists()  # chunks removed once the attachment was committed


def test_a_tampered_chunk_is_refused(pair: dict[str, Any]) -> None:
    import base64
    import hashlib

    vn = pair["vn"]
    with vn.session() as s:
        ref = service.create_draft(
            s, preservation_draft(_Receiver(pair["vn_ids"]["remote"])), actor=pair["linh"]
        ).public_id
    _act(vn, ref, pair["linh"], "submit")
    original = b"genuine bytes"
    body = {
        "public_id": ref,
        "acting_authority": {"state": "AU", "short_name": "AU-AFP"},
        "author": "jack",
        "attachment_id": "0" * 8 + "-0000-4000-8000-" + "0" * 12,
        "filename": "x.bin",
        "media_type": "application/octet-stream",
        "size": len(original),
        "sha256": hashlib.sha256(original).hexdigest(),
        "index": 0,
        "count": 1,
        "chunk_sha256": hashlib.sha256(original).hexdigest(),
        "data": base64.b64encode(b"forged bytes!").decode(),
    }
    envelope = _envelope(pair["au"].identity.fingerprint, vn.identity.fingerprint)
    with vn.session() as s, pytest.raises(InvalidInput), unit_of_work(s):
        exchange.on_attachment_chunk(s, envelope, body)
