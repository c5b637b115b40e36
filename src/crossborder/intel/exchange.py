"""Intelligence between nodes: STIX objects shared with an authority another node serves.

``intel.objects`` carries STIX objects in the federation's signed and encrypted envelopes —
the same channel as requests (docs/federation.md), not an open feed:

- The sender picks a collection and an authority served by a peer node. What travels is
  decided by the one rule of every path, ``markings.may_pass_on`` for that authority (through
  ``service.export_bundle``, which audits what it left out): AMBER and RED only if this node's
  authority originated them, AMBER+STRICT never, H1 never for a recipient, TLP:RED only to
  one of its named recipients. Named recipients are authority ids of this node's directory,
  which mean nothing to the other node: the LE-handling marking definitions travel with
  ``recipient_authorities`` (state and short name) instead of ``recipients`` and partner
  names, and the receiving node maps them onto its own directory — an authority it does not
  know is dropped, and numeric ``recipients`` from another node are never trusted.
- The receiving node stores them in a collection of the addressed authority named after the
  sending node (``from-<node>-<authority>``, created on first use), with the sending authority
  as their originator — so the receiving authority may read them and may not pass on what it
  received under AMBER. Invalid objects are counted in the status; a node may only speak for
  the authorities it serves.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.audit.service import record
from crossborder.auth.permissions import Permission, Principal, Role, require
from crossborder.core.errors import InvalidInput, NotFound
from crossborder.directory.models import Authority
from crossborder.federation import parties
from crossborder.federation import service as federation
from crossborder.federation.envelope import Envelope
from crossborder.intel import markings, service, stix
from crossborder.intel.models import IntelCollection

OBJECTS: Final = "intel.objects"
OBJECTS_PER_MESSAGE: Final = 500
BODY_BUDGET: Final = 6 * 1024 * 1024
RECIPIENT_AUTHORITIES: Final = "recipient_authorities"


@dataclass
class ShareResult:
    sent: int = 0
    messages: int = 0
    left_out: dict[str, str] = field(default_factory=dict)  # stix id -> reason


def _size(obj: dict[str, Any]) -> int:
    return len(orjson.dumps(obj))


def share(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    *,
    to_authority_id: int,
    types: Sequence[str] = (),
    ids: Sequence[str] = (),
) -> ShareResult:
    """Queue the objects the actor may pass on to a remote authority (caller's transaction)."""
    require(actor, Permission.INTEL_WRITE)
    target = session.get(Authority, to_authority_id)
    if target is None:
        raise NotFound("no such authority in the directory")
    if target.is_local or target.node_id is None:
        raise InvalidInput(
            "that authority is served by this node: grant it the collection instead",
            field="to_authority_id",
        )
    me = session.get(Authority, actor.authority_id)
    if me is None:
        raise NotFound("your authority is not in the directory")
    audience = markings.Audience(markings.AudienceKind.AUTHORITY, target.id)
    bundle, _left = service.export_bundle(
        session, actor, collection, types=types, ids=ids, audience=audience
    )
    result = ShareResult()
    batch: list[dict[str, Any]] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if not batch:
            return
        federation.enqueue(
            session,
            to_node_id=int(target.node_id or 0),
            type=OBJECTS,
            body={
                "from_authority": parties.authority_ref(me),
                "to_authority": parties.authority_ref(target),
                "actor": actor.username,
                "objects": list(batch),
            },
        )
        result.messages += 1
        batch.clear()
        size = 0

    for original in bundle["objects"]:
        obj = portable(session, original)
        obj_size = _size(obj)
        if batch and (len(batch) >= OBJECTS_PER_MESSAGE or size + obj_size > BODY_BUDGET):
            flush()
        batch.append(obj)
        size += obj_size
        if obj.get("type") not in ("marking-definition", "extension-definition"):
            result.sent += 1
    flush()
    record(
        session,
        actor=actor,
        action="intel.shared",
        object_type="intel_collection",
        object_id=collection.public_id,
        details={
            "to_authority_id": target.id,
            "sent": result.sent,
            "messages": result.messages,
            "left_out": len(result.left_out),
        },
    )
    return result


def _handling_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj.get("type") != "marking-definition":
        return None
    extensions = obj.get("extensions")
    spec = extensions.get(stix.LE_HANDLING_EXTENSION) if isinstance(extensions, dict) else None
    return spec if isinstance(spec, dict) else None


def portable(session: Session, obj: dict[str, Any]) -> dict[str, Any]:
    """The object as it may travel: named recipients by state and short name, not by id."""
    spec = _handling_spec(obj)
    if spec is None or not ({"recipients", "partner_recipients"} & set(spec)):
        return obj
    ids = [r for r in spec.get("recipients", []) if isinstance(r, int)]
    named = [a for a in (session.get(Authority, i) for i in ids) if a is not None]
    travelling = {k: v for k, v in spec.items() if k not in ("recipients", "partner_recipients")}
    travelling[RECIPIENT_AUTHORITIES] = [parties.authority_ref(a) for a in named]
    return {**obj, "extensions": {**obj["extensions"], stix.LE_HANDLING_EXTENSION: travelling}}


def localised(session: Session, obj: dict[str, Any]) -> dict[str, Any]:
    """A received object with its named recipients mapped onto this node's directory."""
    spec = _handling_spec(obj)
    if spec is None:
        return obj
    local: set[int] = set()
    refs = spec.get(RECIPIENT_AUTHORITIES)
    for ref in refs if isinstance(refs, list) else []:
        try:
            local.add(parties.named_authority(session, ref, field=RECIPIENT_AUTHORITIES).id)
        except (InvalidInput, NotFound):
            continue  # an authority this directory does not know cannot be a recipient here
    kept = {
        k: v
        for k, v in spec.items()
        if k not in ("recipients", "partner_recipients", RECIPIENT_AUTHORITIES)
    }
    if local:
        kept["recipients"] = sorted(local)
    return {**obj, "extensions": {**obj["extensions"], stix.LE_HANDLING_EXTENSION: kept}}


# --- receiving side ---------------------------------------------------------------------------


def _inbox_collection(
    session: Session, receiver: Authority, node_name: str, sender: Authority
) -> IntelCollection:
    alias = f"from-{node_name}-{sender.short_name or sender.id}-to-{receiver.id}".lower()[:100]
    found = session.scalar(select(IntelCollection).where(IntelCollection.alias == alias))
    if found is not None:
        return found
    collection = IntelCollection(
        public_id=str(uuid.uuid4()),
        title=f"From {sender.name} ({node_name})"[:200],
        description="Intelligence shared through the federation; its markings travel with it.",
        alias=alias,
        owner_authority_id=receiver.id,
    )
    session.add(collection)
    session.flush()
    return collection


def on_objects(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
    node = parties.sender_node(session, envelope)
    sender = parties.named_authority(session, body.get("from_authority"), field="from_authority")
    parties.check_served_by(sender, node, field="from_authority")
    receiver = parties.named_authority(session, body.get("to_authority"), field="to_authority")
    if not receiver.is_local:
        raise InvalidInput("the addressed authority is not served by this node")
    objects = body.get("objects")
    if not isinstance(objects, list) or not objects or len(objects) > OBJECTS_PER_MESSAGE * 2:
        raise InvalidInput("intel.objects carries a list of 1 to 1,000 STIX objects")
    collection = _inbox_collection(session, receiver, node.name, sender)
    # The receiving authority files what it was sent; the sender stays the originator.
    clerk = Principal(
        user_id=0,
        username=f"{body.get('actor', '?')} ({node.name})"[:150],
        authority_id=receiver.id,
        roles=frozenset({Role.ANALYST}),
        via="federation",
    )
    status = service.add_objects(
        session,
        clerk,
        collection,
        [localised(session, o) for o in objects if isinstance(o, dict)],
        origin_authority_id=sender.id,
        source="received",
    )
    record(
        session,
        actor=clerk,
        action="intel.received",
        object_type="intel_collection",
        object_id=collection.public_id,
        details={
            "node": node.name,
            "from_authority_id": sender.id,
            "stored": status.success_count,
            "refused": status.failure_count,
        },
    )


def register() -> None:
    federation.register_handler(OBJECTS, on_objects, replace=True)
