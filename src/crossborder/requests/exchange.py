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

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.audit.service import record
from crossborder.auth.permissions import Principal, Role
from crossborder.core.clock import utc_now
from crossborder.core.errors import Conflict, InvalidInput, NotFound
from crossborder.directory.models import Authority, Node
from crossborder.federation import service as federation
from crossborder.federation.envelope import Envelope
from crossborder.requests import catalogue, lifecycle
from crossborder.requests.models import CooperationRequest, RequestMessage

SUBMITTED = "request.submitted"
TRANSITION = "request.transition"
MESSAGE = "request.message"

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


def _authority_ref(authority: Authority) -> dict[str, str | None]:
    return {
        "state": authority.state.alpha2 if authority.state else None,
        "short_name": authority.short_name,
        "name": authority.name,
    }


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def announce_submitted(session: Session, req: CooperationRequest, actor: Principal) -> None:
    node_id = remote_node_of(req.receiver)
    if node_id is None:
        return
    body: dict[str, Any] = {name: getattr(req, name) for name in _FIELDS}
    body.update(
        {
            "sender": _authority_ref(req.sender),
            "receiver": _authority_ref(req.receiver),
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
    other = req.receiver if side is lifecycle.Side.SENDER else req.sender
    node_id = remote_node_of(other)
    if node_id is None:
        return
    acting = req.sender if side is lifecycle.Side.SENDER else req.receiver
    federation.enqueue(
        session,
        to_node_id=node_id,
        type=TRANSITION,
        body={
            "public_id": req.public_id,
            "action": action.value,
            "from_status": from_status.value,
            "acting_authority": _authority_ref(acting),
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
    other = req.receiver if side is lifecycle.Side.SENDER else req.sender
    node_id = remote_node_of(other)
    if node_id is None:
        return
    acting = req.sender if side is lifecycle.Side.SENDER else req.receiver
    federation.enqueue(
        session,
        to_node_id=node_id,
        type=MESSAGE,
        body={
            "public_id": req.public_id,
            "acting_authority": _authority_ref(acting),
            "author": message.author_label,
            "body": message.body,
            "at": message.created_at.isoformat(),
        },
    )


# --------------------------------------------------------------------------- receiving side


def _sender_node(session: Session, envelope: Envelope) -> Node:
    node = session.scalars(select(Node).where(Node.fingerprint == envelope.sender)).first()
    if node is None:
        raise NotFound("the sending node is not in the directory")
    return node


def _authority(session: Session, ref: object, *, field: str) -> Authority:
    if not isinstance(ref, dict) or not isinstance(ref.get("short_name"), str):
        raise InvalidInput("an authority is named by its state and short name", field=field)
    stmt = select(Authority).where(Authority.short_name == ref["short_name"])
    found = [
        a
        for a in session.scalars(stmt).unique()
        if (a.state.alpha2 if a.state else None) == ref.get("state")
    ]
    if len(found) != 1:
        raise NotFound(f"authority {ref['short_name']} is not (uniquely) in this directory")
    return found[0]


def _served_by(authority: Authority, node: Node) -> None:
    if authority.node_id != node.id or authority.is_local:
        raise InvalidInput(
            f"node {node.name} does not serve {authority.short_name}", field="acting_authority"
        )


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

    node = _sender_node(session, envelope)
    sender = _authority(session, body.get("sender"), field="sender")
    _served_by(sender, node)
    receiver = _authority(session, body.get("receiver"), field="receiver")
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

    node = _sender_node(session, envelope)
    req = service.find(session, str(body.get("public_id", "")), lock=True)
    if req is None:
        raise NotFound("the request has not arrived yet")  # retried: out-of-order delivery
    acting = _authority(session, body.get("acting_authority"), field="acting_authority")
    _served_by(acting, node)
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

    node = _sender_node(session, envelope)
    req = service.find(session, str(body.get("public_id", "")))
    if req is None:
        raise NotFound("the request has not arrived yet")
    acting = _authority(session, body.get("acting_authority"), field="acting_authority")
    _served_by(acting, node)
    text = body.get("body")
    if not isinstance(text, str) or not text.strip() or len(text) > 20_000:
        raise InvalidInput("a message has a body of 1 to 20,000 characters")
    session.add(
        RequestMessage(
            request_id=req.id,
            author_user_id=0,
            author_label=f"{body.get('author', '?')} ({node.name})",
            author_authority_id=acting.id,
            body=text,
            created_at=_when(body.get("at")) or utc_now(),
        )
    )
    record(
        session,
        actor=_remote_actor(acting, node, body.get("author", "?"), []),
        action="request.message_received",
        object_type="request",
        object_id=req.public_id,
    )


def register() -> None:
    """Route the request message types to these handlers (called when the app starts)."""
    for message_type, handler in (
        (SUBMITTED, on_submitted),
        (TRANSITION, on_transition),
        (MESSAGE, on_message),
    ):
        federation.register_handler(message_type, handler, replace=True)
