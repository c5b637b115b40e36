"""Requests between nodes: what travels, and how a node applies what its peer sent.

When the other authority on a request is served by another node, every change a node makes
is announced to that node through the federation outbox, in the same transaction as the change:

- ``request.submitted`` — the whole request, when it is submitted to a remote authority; the
  receiving node creates its copy (same ``public_id`` and reference), computes its own clocks;
- ``request.transition`` — each later step (acknowledge, execute, refuse, withdraw, …), with
  the status it started from;
- ``request.message`` — each message of the thread.

Rules on the receiving side:

- A node speaks only for the authorities it serves: the acting authority must be, in the
  receiver's own directory, an authority whose node is the envelope's sender. Anything else is
  refused (the inbox marks it failed, visibly).
- A message is applied once (the federation inbox deduplicates by message id) and in order: a
  transition that does not start from the copy's current status is not applied *yet* — the
  handler raises, the inbox keeps it as failed, and the worker retries it after the earlier
  message has arrived. If both sides acted at the same time (a withdrawal crossing an
  execution), the late one never applies and stays visible to the operators as failed.
- The copy's lifecycle rules are checked again (side, state), but not the acting user's
  roles: the sending node authenticated its user; the role it names is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from crossborder.audit.service import record
from crossborder.auth.permissions import Principal, Role
from crossborder.core.clock import utc_now
from crossborder.core.errors import Conflict, InvalidInput, NotFound
from crossborder.db.session import data_dir_of
from crossborder.directory.models import Authority, Node
from crossborder.evidence import service as evidence
from crossborder.evidence import storage
from crossborder.evidence.models import Attachment, CustodyKind
from crossborder.federation import parties
from crossborder.federation import service as federation
from crossborder.federation.envelope import Envelope
from crossborder.requests import catalogue, identifiers, lifecycle
from crossborder.requests.models import CooperationRequest, RequestMessage

SUBMITTED = "request.submitted"
TRANSITION = "request.transition"
MESSAGE = "request.message"
ATTACHMENT_CHUNK = "request.attachment_chunk"
CHUNK_BYTES = 2 * 1024 * 1024  # raw bytes per chunk; base64 in a body of at most 8 MiB
MAX_REMOTE_ATTACHMENT_BYTES = 2 * 1024**3

_FIELDS = (
    "public_id",
    "reference",
    "request_type",
    "channel",
    "urgency",
    "urgency_justification",
    "title",
    "summary_of_facts",
    "offences",
    "identifiers",
    "data_categories",
    "confidentiality",
    "use_conditions",
    "details",
    "eu_production_order",
    "legal_basis",
    "conditions",
)


# --------------------------------------------------------------------------- sending side


def remote_node_of(authority: Authority) -> int | None:
    """The node to tell, when ``authority`` is served by another node; None when local."""
    if authority.is_local or authority.node_id is None:
        return None
    return authority.node_id


def _route(req: CooperationRequest, side: lifecycle.Side) -> tuple[int, Authority] | None:
    """(the other party's node, the acting authority), or None when the other party is local."""
    sending = side is lifecycle.Side.SENDER
    node_id = remote_node_of(req.receiver if sending else req.sender)
    if node_id is None:
        return None
    return node_id, req.sender if sending else req.receiver


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def announce_submitted(session: Session, req: CooperationRequest, actor: Principal) -> None:
    node_id = remote_node_of(req.receiver)
    if node_id is None:
        return
    body: dict[str, Any] = {name: getattr(req, name) for name in _FIELDS}
    body.update(
        {
            "sender": parties.authority_ref(req.sender),
            "receiver": parties.authority_ref(req.receiver),
            "submitted_at": _ts(req.submitted_at),
            "requested_response_by": _ts(req.requested_response_by),
            "actor": actor.username,
        }
    )
    federation.enqueue(session, to_node_id=node_id, type=SUBMITTED, body=body)


def announce_transition(
    session: Session,
    req: CooperationRequest,
    *,
    actor: Principal,
    side: lifecycle.Side,
    action: lifecycle.Action,
    from_status: lifecycle.Status,
    ground: str | None,
    reasons: str | None,
    until: datetime | None,
    preserved_until: datetime | None,
) -> None:
    route = _route(req, side)
    if route is None:
        return
    node_id, acting = route
    federation.enqueue(
        session,
        to_node_id=node_id,
        type=TRANSITION,
        body={
            "public_id": req.public_id,
            "action": action.value,
            "from_status": from_status.value,
            "acting_authority": parties.authority_ref(acting),
            "actor": actor.username,
            "roles": sorted(r.value for r in actor.roles),
            "ground": ground,
            "reasons": reasons,
            "until": _ts(until),
            "preserved_until": _ts(preserved_until),
            "preserved_at": _ts(req.preserved_at),
            "at": utc_now().isoformat(),
        },
    )


def announce_message(
    session: Session, req: CooperationRequest, message: RequestMessage, side: lifecycle.Side
) -> None:
    route = _route(req, side)
    if route is None:
        return
    node_id, acting = route
    federation.enqueue(
        session,
        to_node_id=node_id,
        type=MESSAGE,
        body={
            "public_id": req.public_id,
            "acting_authority": parties.authority_ref(acting),
            "author": message.author_label,
            "body": message.body,
            "at": message.created_at.isoformat(),
        },
    )


def announce_attachment(
    session: Session,
    req: CooperationRequest,
    attachment: Attachment,
    *,
    side: lifecycle.Side,
    actor: Principal,
    blob: Path,
) -> int:
    """Send a file to the other party's node in hash-checked chunks; return how many."""
    route = _route(req, side)
    if route is None:
        return 0
    node_id, acting = route
    count = max(1, -(-attachment.size // CHUNK_BYTES))
    with blob.open("rb") as fh:
        for index in range(count):
            data = fh.read(CHUNK_BYTES)
            federation.enqueue(
                session,
                to_node_id=node_id,
                type=ATTACHMENT_CHUNK,
                body={
                    "public_id": req.public_id,
                    "acting_authority": parties.authority_ref(acting),
                    "author": actor.username,
                    "attachment_id": attachment.public_id,
                    "filename": attachment.filename,
                    "media_type": attachment.media_type,
                    "size": attachment.size,
                    "sha256": attachment.sha256,
                    "index": index,
                    "count": count,
                    "chunk_sha256": hashlib.sha256(data).hexdigest(),
                    "data": base64.b64encode(data).decode("ascii"),
                },
            )
    evidence.record_custody(
        session,
        actor=actor,
        attachment=attachment,
        kind=CustodyKind.TRANSMITTED,
        details={"chunks": count},
    )
    return count


# --------------------------------------------------------------------------- receiving side


def _remote_actor(authority: Authority, node: Node, label: object, roles: object) -> Principal:
    names = [r for r in roles if r in {x.value for x in Role}] if isinstance(roles, list) else []
    return Principal(
        user_id=0,
        username=f"{label} ({node.name})",
        authority_id=authority.id,
        roles=frozenset(Role(r) for r in names),
        via="federation",
    )


def _when(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("times are RFC 3339 strings")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise InvalidInput("times carry their offset")
    return parsed


def on_submitted(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
    from crossborder.requests import service

    node = parties.sender_node(session, envelope)
    sender = parties.named_authority(session, body.get("sender"), field="sender")
    parties.check_served_by(sender, node)
    receiver = parties.named_authority(session, body.get("receiver"), field="receiver")
    if not receiver.is_local:
        raise InvalidInput("the receiving authority is not served by this node", field="receiver")
    public_id = str(body.get("public_id", ""))
    if service.find(session, public_id) is not None:
        return  # already created (a replay under another message id): nothing to do
    catalogue.validate_fields(
        catalogue.RequestType(str(body.get("request_type"))), body.get("details") or {}
    )
    req = CooperationRequest(
        **{name: body.get(name) for name in _FIELDS},
        status=lifecycle.Status.SUBMITTED.value,
        sender_authority_id=sender.id,
        receiver_authority_id=receiver.id,
        requested_response_by=_when(body.get("requested_response_by")),
        submitted_at=_when(body.get("submitted_at")) or utc_now(),
        created_by_user_id=0,
    )
    session.add(req)
    session.flush()
    actor = _remote_actor(sender, node, body.get("actor", "?"), [])
    service.record_received(session, req, actor, node_name=node.name)


def on_transition(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
    from crossborder.requests import service

    node = parties.sender_node(session, envelope)
    req = service.find(session, str(body.get("public_id", "")), lock=True)
    if req is None:
        raise NotFound("the request has not arrived yet")  # retried: out-of-order delivery
    acting = parties.named_authority(
        session, body.get("acting_authority"), field="acting_authority"
    )
    parties.check_served_by(acting, node)
    if acting.id not in (req.sender_authority_id, req.receiver_authority_id):
        raise InvalidInput("the acting authority is not a party to this request")
    if req.status != body.get("from_status"):
        raise Conflict(
            f"the copy is '{req.status}', the step starts from '{body.get('from_status')}': "
            "waiting for an earlier message, or the two sides acted at the same time"
        )
    actor = _remote_actor(acting, node, body.get("actor", "?"), body.get("roles"))
    service.apply_remote_transition(
        session,
        req,
        actor=actor,
        action=lifecycle.Action(str(body.get("action"))),
        ground=body.get("ground") if isinstance(body.get("ground"), str) else None,
        reasons=body.get("reasons") if isinstance(body.get("reasons"), str) else None,
        until=_when(body.get("until")),
        preserved_until=_when(body.get("preserved_until")),
        preserved_at=_when(body.get("preserved_at")),
    )


def on_message(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
    from crossborder.requests import service

    node = parties.sender_node(session, envelope)
    req = service.find(session, str(body.get("public_id", "")))
    if req is None:
        raise NotFound("the request has not arrived yet")
    acting = parties.named_authority(
        session, body.get("acting_authority"), field="acting_authority"
    )
    parties.check_served_by(acting, node)
    text = body.get("body")
    if not isinstance(text, str) or not text.strip() or len(text) > 20_000:
        raise InvalidInput("a message has a body of 1 to 20,000 characters")
    message = RequestMessage(
        request_id=req.id,
        author_user_id=0,
        author_label=f"{body.get('author', '?')} ({node.name})",
        author_authority_id=acting.id,
        body=text,
        created_at=_when(body.get("at")) or utc_now(),
    )
    session.add(message)
    session.flush()
    identifiers.index_message(session, req, message)
    record(
        session,
        actor=_remote_actor(acting, node, body.get("author", "?"), []),
        action="request.message_received",
        object_type="request",
        object_id=req.public_id,
    )


def _chunk_fields(body: dict[str, Any]) -> tuple[str, int, int, int, str]:
    attachment_id, sha256 = body.get("attachment_id"), body.get("sha256")
    index, count, size = body.get("index"), body.get("count"), body.get("size")
    if not (
        isinstance(attachment_id, str)
        and len(attachment_id) == 36
        and isinstance(sha256, str)
        and isinstance(index, int)
        and isinstance(count, int)
        and isinstance(size, int)
        and 0 <= index < count <= 10_000
        and size >= 0
    ):
        raise InvalidInput("malformed attachment chunk")
    storage.check_sha256(sha256)
    return attachment_id, index, count, size, sha256


def on_attachment_chunk(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
    """Stage one chunk; when all have arrived, assemble, check the whole file's SHA-256 and
    record it with a "received" custody event. Chunks may arrive in any order or twice."""
    from crossborder.requests import service

    node = parties.sender_node(session, envelope)
    req = service.find(session, str(body.get("public_id", "")))
    if req is None:
        raise NotFound("the request has not arrived yet")
    acting = parties.named_authority(
        session, body.get("acting_authority"), field="acting_authority"
    )
    parties.check_served_by(acting, node)
    if acting.id not in (req.sender_authority_id, req.receiver_authority_id):
        raise InvalidInput("the acting authority is not a party to this request")
    attachment_id, index, count, size, sha256 = _chunk_fields(body)
    try:
        data = base64.b64decode(str(body.get("data", "")), validate=True)
    except ValueError:
        raise InvalidInput("the chunk is not base64") from None
    if hashlib.sha256(data).hexdigest() != body.get("chunk_sha256"):
        raise InvalidInput("the chunk does not match its hash")
    root = storage.evidence_root(data_dir_of(session))
    staging = root / "incoming" / attachment_id
    staging.mkdir(parents=True, exist_ok=True, mode=0o700)
    (staging / f"{index:05d}.part").write_bytes(data)
    parts = sorted(staging.glob("*.part"))
    if len(parts) < count or evidence_models_exist(session, attachment_id):
        return
    blob = storage.store_iter((p.read_bytes() for p in parts), root=root, max_bytes=size)
    if blob.sha256 != sha256 or blob.size != size:
        raise InvalidInput("the assembled file does not match the hash its sender declared")
    actor = _remote_actor(acting, node, body.get("author", "?"), [])
    attachment = evidence.register_blob(
        session,
        actor=actor,
        blob=blob,
        owner_type="request",
        owner_id=req.public_id,
        filename=str(body.get("filename", "attachment")),
        media_type=str(body.get("media_type", "application/octet-stream")),
    )
    attachment.public_id = attachment_id  # the same id on both nodes
    service.record_attachment_received(session, req, actor, attachment, node_name=node.name)
    # Remove the staged chunks only once the record is committed: if this transaction rolls
    # back, a retry of the last chunk must still find the others.
    event.listen(
        session, "after_commit", lambda _s: shutil.rmtree(staging, ignore_errors=True), once=True
    )


def evidence_models_exist(session: Session, attachment_id: str) -> bool:
    return (
        session.scalar(select(Attachment.id).where(Attachment.public_id == attachment_id))
        is not None
    )


def register() -> None:
    """Route the request message types to these handlers (called when the app starts)."""
    for message_type, handler in (
        (SUBMITTED, on_submitted),
        (TRANSITION, on_transition),
        (MESSAGE, on_message),
        (ATTACHMENT_CHUNK, on_attachment_chunk),
    ):
        federation.register_handler(message_type, handler, replace=True)
