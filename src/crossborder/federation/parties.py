"""Who is speaking in an incoming message: the sending node and the authorities it names.

Capabilities that exchange messages between nodes (requests, intelligence) name authorities
by state and short name — ids differ from one directory to the next — and a node may only
speak for the authorities it serves. These checks are the same for every message type.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.core.errors import InvalidInput, NotFound
from crossborder.directory.models import Authority, Node
from crossborder.federation.envelope import Envelope


def authority_ref(authority: Authority) -> dict[str, str | None]:
    """How a message names an authority: state, short name (and the name, for people)."""
    return {
        "state": authority.state.alpha2 if authority.state else None,
        "short_name": authority.short_name,
        "name": authority.name,
    }


def sender_node(session: Session, envelope: Envelope) -> Node:
    node = session.scalars(select(Node).where(Node.fingerprint == envelope.sender)).first()
    if node is None:
        raise NotFound("the sending node is not in the directory")
    return node


def named_authority(session: Session, ref: object, *, field: str) -> Authority:
    """The one authority of this directory a message names, or a clear refusal."""
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


def check_served_by(authority: Authority, node: Node, *, field: str = "acting_authority") -> None:
    """Refuse a node speaking for an authority it does not serve (per this directory)."""
    if authority.node_id != node.id or authority.is_local:
        raise InvalidInput(f"node {node.name} does not serve {authority.short_name}", field=field)
