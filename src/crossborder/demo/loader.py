"""Load the demo data through the services (so it is validated and audited like any change)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.auth import service as auth_service
from crossborder.auth.permissions import SYSTEM
from crossborder.cli.context import session_scope
from crossborder.db.session import unit_of_work
from crossborder.demo import data
from crossborder.demo.cases import load_cases
from crossborder.directory import schemas
from crossborder.directory import service as directory
from crossborder.directory.models import State
from crossborder.settings import Settings


@dataclass(frozen=True)
class LoadResult:
    loaded: bool
    users: list[tuple[str, str, str]]  # username, roles, authority


def _users_summary() -> list[tuple[str, str, str]]:
    return [(u, ", ".join(roles), auth) for u, auth, roles, _ in data.USERS]


def load(settings: Settings) -> LoadResult:
    with session_scope(settings) as session:
        if session.scalars(select(State).limit(1)).first() is not None:
            return LoadResult(False, _users_summary())
        with unit_of_work(session):
            authority_ids = _load_all(session)
            load_cases(session, authority_ids)
    return LoadResult(True, _users_summary())


SINGLE_NODE = "vn-mps"
# On the single demo node the Australian authorities' officers work here too (see data.USERS).
SERVED_ON_SINGLE_NODE = frozenset({"VN-A05", "VN-SPP", "VN-BLO-CT", "AU-AFP", "AU-AGD"})


def _load_all(
    session: Session, *, here: str | None = None, peers: dict[str, int] | None = None
) -> dict[str, int]:
    """Load the directory, instruments and users.

    ``here`` names this node in a federation demo (``vn-mps``, ``au-afp``, ``ma-dgsn``) and
    ``peers`` maps the other nodes' names to their directory ids (pinned, real keys); the
    single-node demo passes neither. An authority is served here, or by the node named in
    its spec; only the users of authorities served here are created.
    """
    peers = peers or {}
    for alpha2 in data.STATES:
        directory.create_state(session, schemas.StateCreate(alpha2=alpha2), actor=SYSTEM)
    nodes = dict(peers)
    for n in data.NODES:
        if n["name"] not in nodes and n["name"] != (here or SINGLE_NODE):
            nodes[n["name"]] = directory.register_node(
                session, schemas.NodeCreate(**n), actor=SYSTEM
            ).id
    authority_ids: dict[str, int] = {}
    for spec in data.AUTHORITIES:
        fields = {k: v for k, v in spec.items() if k not in {"key", "node", "contacts"}}
        served_here = spec.get("node") == here if here else spec["key"] in SERVED_ON_SINGLE_NODE
        fields["is_local"] = served_here
        if not served_here and spec.get("node") in nodes:
            fields["node_id"] = nodes[spec["node"]]
        authority = directory.create_authority(
            session, schemas.AuthorityCreate(**fields), actor=SYSTEM
        )
        authority_ids[spec["key"]] = authority.id
        for contact in spec.get("contacts", []):
            directory.add_contact_point(
                session, authority.id, schemas.ContactPointCreate(**contact), actor=SYSTEM
            )
    for spec in data.INSTRUMENTS:
        fields = {k: v for k, v in spec.items() if k != "parties"}
        directory.create_instrument(session, schemas.InstrumentCreate(**fields), actor=SYSTEM)
        for party in spec["parties"]:
            directory.set_party_status(
                session, spec["code"], schemas.PartySet(**party), actor=SYSTEM
            )
    local_keys = {k for k, i in authority_ids.items() if _is_local(session, i)}
    for username, key, roles, display_name in data.USERS:
        if key not in local_keys:
            continue
        auth_service.create_user(
            session,
            actor=SYSTEM,
            username=username,
            password=data.DEMO_PASSWORD,
            authority_id=authority_ids[key],
            roles=roles,
            display_name=display_name,
            require_totp=True,
            bootstrap=True,
        )
    return authority_ids


def summary(result: LoadResult) -> str:
    lines = ["demo data loaded" if result.loaded else "demo data already present"]
    lines.append(
        f"demo logins (password: {data.DEMO_PASSWORD}; second factor relaxed in demo mode):"
    )
    lines.extend(f"  {u:<8} {roles:<22} {auth}" for u, roles, auth in result.users)
    return "\n".join(lines)


def _is_local(session: Session, authority_id: int) -> bool:
    from crossborder.directory.models import Authority

    found = session.get(Authority, authority_id)
    return bool(found and found.is_local)
