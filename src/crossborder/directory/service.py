"""Directory service: every read and change of the directory goes through here.

Each function takes the session first and the acting principal as keyword ``actor``. Changes
run in one transaction (``atomic``) that also carries their audit event; reading contact
points (personal data) is audited too. Input arrives as validated schemas (format rules live
in :mod:`crossborder.directory.schemas`); this module adds the rules that need the database —
references exist, names are free, versions are current — and raises NotFound, Conflict or
InvalidInput naming the field at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pycountry
from sqlalchemy import Select, String, cast, func, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from crossborder.audit.service import record
from crossborder.auth.permissions import Permission, Principal, require
from crossborder.core.clock import utc_now
from crossborder.core.errors import Conflict, InvalidInput, NotFound
from crossborder.db.session import atomic
from crossborder.directory import policy, schemas
from crossborder.directory.models import (
    Authority,
    ContactPoint,
    InstrumentParty,
    LegalInstrument,
    Node,
    State,
)
from crossborder.directory.taxonomy import (
    BILATERAL_KINDS,
    Channel,
    InstrumentKind,
    PartyStatus,
)

MAX_PAGE = 200


@dataclass(frozen=True)
class Page:
    items: list[Authority]
    total: int
    limit: int
    offset: int


# -- lookups ----------------------------------------------------------------------------


def _state(session: Session, alpha2: str, *, field: str) -> State:
    state = session.scalar(select(State).where(State.alpha2 == alpha2.upper()))
    if state is None:
        raise InvalidInput(f"the state {alpha2} is not in the directory", field=field)
    return state


def _authority(session: Session, authority_id: int) -> Authority:
    authority = session.get(Authority, authority_id)
    if authority is None:
        raise NotFound(f"authority {authority_id} not found")
    return authority


def _check_node(session: Session, node_id: int | None) -> None:
    if node_id is not None and session.get(Node, node_id) is None:
        raise InvalidInput(f"node {node_id} is not in the directory", field="node_id")


def _check_name_free(
    session: Session, state_id: int | None, name: str, *, except_id: int | None = None
) -> None:
    stmt = select(Authority.id).where(Authority.name == name, Authority.state_id == state_id)
    if state_id is None:
        stmt = select(Authority.id).where(Authority.name == name, Authority.state_id.is_(None))
    existing = session.scalar(stmt)
    if existing is not None and existing != except_id:
        raise Conflict(f"an authority named {name!r} already exists for this state")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# -- states -----------------------------------------------------------------------------


def list_states(session: Session, *, actor: Principal, q: str | None = None) -> list[State]:
    require(actor, Permission.DIRECTORY_READ)
    stmt = select(State).order_by(State.name)
    if q:
        pattern = _like(q.strip())
        stmt = stmt.where(
            or_(State.name.ilike(pattern, escape="\\"), State.alpha2 == q.strip().upper())
        )
    return list(session.scalars(stmt))


@atomic
def create_state(session: Session, data: schemas.StateCreate, *, actor: Principal) -> State:
    require(actor, Permission.DIRECTORY_WRITE)
    country = pycountry.countries.get(alpha_2=data.alpha2)
    assert country is not None  # StateCreate checked the code
    if data.alpha3 is not None and data.alpha3 != country.alpha_3:
        raise InvalidInput(
            f"{data.alpha3} is not the alpha-3 code of {data.alpha2}", field="alpha3"
        )
    if session.scalar(select(State.id).where(State.alpha2 == data.alpha2)) is not None:
        raise Conflict(f"the state {data.alpha2} is already in the directory")
    state = State(alpha2=data.alpha2, alpha3=country.alpha_3, name=data.name or country.name)
    session.add(state)
    session.flush()
    record(
        session,
        actor=actor,
        action="directory.state.created",
        object_type="state",
        object_id=state.id,
        details={"alpha2": state.alpha2},
    )
    return state


# -- authorities ------------------------------------------------------------------------


def search_authorities(
    session: Session,
    *,
    actor: Principal,
    q: str | None = None,
    state: str | None = None,
    role: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """Authorities matching a text (name or acronym), a state and a role, by name."""
    require(actor, Permission.DIRECTORY_READ)
    limit, offset = min(max(limit, 1), MAX_PAGE), max(offset, 0)
    stmt = select(Authority).outerjoin(State, Authority.state_id == State.id)
    if q and q.strip():
        pattern = _like(q.strip())
        stmt = stmt.where(
            or_(
                Authority.name.ilike(pattern, escape="\\"),
                Authority.short_name.ilike(pattern, escape="\\"),
            )
        )
    if state:
        stmt = stmt.where(State.alpha2 == state.strip().upper())
    if role:
        # Roles are enum codes (no quotes inside), stored as a JSON list of strings: matching
        # the quoted code in the JSON text works the same on SQLite and PostgreSQL.
        stmt = stmt.where(cast(Authority.roles, String).like(_like(f'"{role}"'), escape="\\"))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Authority.name, Authority.id).limit(limit).offset(offset))
    return Page(items=list(rows.unique()), total=total, limit=limit, offset=offset)


def get_authority(session: Session, authority_id: int, *, actor: Principal) -> Authority:
    require(actor, Permission.DIRECTORY_READ)
    return _authority(session, authority_id)


@atomic
def create_authority(
    session: Session, data: schemas.AuthorityCreate, *, actor: Principal
) -> Authority:
    require(actor, Permission.DIRECTORY_WRITE)
    state = _state(session, data.state, field="state") if data.state else None
    _check_node(session, data.node_id)
    _check_name_free(session, state.id if state else None, data.name)
    authority = Authority(
        state=state,
        name=data.name,
        short_name=data.short_name,
        roles=[r.value for r in data.roles],
        languages=list(data.languages),
        time_zone=data.time_zone,
        node_id=data.node_id,
        website=data.website,
        is_local=data.is_local,
    )
    session.add(authority)
    session.flush()
    record(
        session,
        actor=actor,
        action="directory.authority.created",
        object_type="authority",
        object_id=authority.id,
        details={"state": data.state, "roles": authority.roles, "is_local": data.is_local},
    )
    return authority


_REQUIRED_AUTHORITY_FIELDS = ("name", "roles", "languages", "time_zone", "is_local")


@atomic
def update_authority(
    session: Session,
    authority_id: int,
    changes: schemas.AuthorityChanges,
    *,
    actor: Principal,
    expected_version: int,
) -> Authority:
    """Apply the fields present in ``changes``; Conflict if the authority moved on since read."""
    require(actor, Permission.DIRECTORY_WRITE)
    authority = _authority(session, authority_id)
    if authority.version != expected_version:
        raise Conflict(
            f"authority {authority_id} was changed by someone else (version "
            f"{authority.version}, you edited version {expected_version}): reload and retry"
        )
    values = changes.model_dump(exclude_unset=True)
    for name in _REQUIRED_AUTHORITY_FIELDS:
        if name in values and values[name] is None:
            raise InvalidInput(f"{name} cannot be empty", field=name)
    _apply_authority_changes(session, authority, values)
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(f"authority {authority_id} was changed concurrently: reload") from exc
    record(
        session,
        actor=actor,
        action="directory.authority.updated",
        object_type="authority",
        object_id=authority.id,
        details={"fields": sorted(values), "version": authority.version},
    )
    return authority


def _apply_authority_changes(
    session: Session, authority: Authority, values: dict[str, Any]
) -> None:
    """Check every change against the database first, then assign (no premature autoflush)."""
    target_state = authority.state
    if "state" in values:
        code = values.pop("state")
        target_state = _state(session, code, field="state") if code else None
    if values.get("node_id") is not None:
        _check_node(session, values["node_id"])
    if target_state is not authority.state or "name" in values:
        _check_name_free(
            session,
            target_state.id if target_state else None,
            values.get("name", authority.name),
            except_id=authority.id,
        )
    if "roles" in values:
        values["roles"] = [str(r) for r in values["roles"]]
    authority.state = target_state
    for name, value in values.items():
        setattr(authority, name, value)


# -- contact points ---------------------------------------------------------------------


@atomic
def add_contact_point(
    session: Session, authority_id: int, data: schemas.ContactPointCreate, *, actor: Principal
) -> ContactPoint:
    require(actor, Permission.DIRECTORY_WRITE)
    authority = _authority(session, authority_id)
    values = data.model_dump()
    values["time_zone"] = data.time_zone or authority.time_zone
    contact = ContactPoint(authority=authority, **values)
    session.add(contact)
    session.flush()
    record(
        session,
        actor=actor,
        action="directory.contact.created",
        object_type="contact_point",
        object_id=contact.id,
        details={"authority_id": authority.id},
    )
    return contact


_REQUIRED_CONTACT_FIELDS = ("name", "is_desk", "time_zone", "office_hours", "languages", "is_24_7")


@atomic
def update_contact_point(
    session: Session,
    contact_point_id: int,
    changes: schemas.ContactPointChanges,
    *,
    actor: Principal,
) -> ContactPoint:
    require(actor, Permission.DIRECTORY_WRITE)
    contact = session.get(ContactPoint, contact_point_id)
    if contact is None:
        raise NotFound(f"contact point {contact_point_id} not found")
    values = changes.model_dump(exclude_unset=True)
    for name in _REQUIRED_CONTACT_FIELDS:
        if name in values and values[name] is None:
            raise InvalidInput(f"{name} cannot be empty", field=name)
    for name, value in values.items():
        setattr(contact, name, value)
    session.flush()
    record(
        session,
        actor=actor,
        action="directory.contact.updated",
        object_type="contact_point",
        object_id=contact.id,
        details={"authority_id": contact.authority_id, "fields": sorted(values)},
    )
    return contact


@atomic
def list_contact_points(
    session: Session, authority_id: int, *, actor: Principal
) -> list[ContactPoint]:
    """The contact points of an authority. Personal data: the read itself is audited."""
    require(actor, Permission.DIRECTORY_CONTACTS_READ)
    authority = _authority(session, authority_id)
    contacts = list(
        session.scalars(
            select(ContactPoint)
            .where(ContactPoint.authority_id == authority.id)
            .order_by(ContactPoint.is_24_7.desc(), ContactPoint.name, ContactPoint.id)
        )
    )
    record(
        session,
        actor=actor,
        action="directory.contacts.viewed",
        object_type="authority",
        object_id=authority.id,
        details={"contact_point_ids": [c.id for c in contacts]},
    )
    return contacts


# -- nodes ------------------------------------------------------------------------------


def list_nodes(session: Session, *, actor: Principal) -> list[Node]:
    require(actor, Permission.DIRECTORY_READ)
    return list(session.scalars(select(Node).order_by(Node.name)))


@atomic
def register_node(session: Session, data: schemas.NodeCreate, *, actor: Principal) -> Node:
    """Register a peer with its key fingerprint pinned: envelopes are checked against it."""
    require(actor, Permission.DIRECTORY_WRITE)
    if session.scalar(select(Node.id).where(Node.fingerprint == data.fingerprint)) is not None:
        raise Conflict("a node with this key fingerprint is already registered")
    if session.scalar(select(Node.id).where(Node.name == data.name)) is not None:
        raise Conflict(f"a node named {data.name!r} is already registered")
    node = Node(
        name=data.name,
        base_url=data.base_url,
        fingerprint=data.fingerprint,
        public_key=data.public_key,
    )
    session.add(node)
    session.flush()
    record(
        session,
        actor=actor,
        action="directory.node.registered",
        object_type="node",
        object_id=node.id,
        details={"fingerprint": node.fingerprint},
    )
    return node


# -- legal instruments ------------------------------------------------------------------


def _instrument_query() -> Select[LegalInstrument]:
    return select(LegalInstrument).options(selectinload(LegalInstrument.parties))


def list_instruments(session: Session, *, actor: Principal) -> list[LegalInstrument]:
    require(actor, Permission.DIRECTORY_READ)
    return list(session.scalars(_instrument_query().order_by(LegalInstrument.code)))


def get_instrument(session: Session, code: str, *, actor: Principal) -> LegalInstrument:
    require(actor, Permission.DIRECTORY_READ)
    instrument = session.scalar(_instrument_query().where(LegalInstrument.code == code))
    if instrument is None:
        raise NotFound(f"instrument {code} not found")
    return instrument


@atomic
def create_instrument(
    session: Session, data: schemas.InstrumentCreate, *, actor: Principal
) -> LegalInstrument:
    require(actor, Permission.DIRECTORY_WRITE)
    if session.scalar(select(LegalInstrument.id).where(LegalInstrument.code == data.code)):
        raise Conflict(f"an instrument with the code {data.code} already exists")
    values = data.model_dump(mode="json", exclude={"valid_from", "valid_until"})
    instrument = LegalInstrument(**values, valid_from=data.valid_from, valid_until=data.valid_until)
    session.add(instrument)
    session.flush()
    record(
        session,
        actor=actor,
        action="directory.instrument.created",
        object_type="legal_instrument",
        object_id=instrument.id,
        details={"code": instrument.code, "kind": instrument.kind},
    )
    return instrument


@atomic
def set_party_status(
    session: Session, instrument_code: str, data: schemas.PartySet, *, actor: Principal
) -> InstrumentParty:
    """Add a party to an instrument or update its standing (status, dates, reservations)."""
    require(actor, Permission.DIRECTORY_WRITE)
    instrument = get_instrument(session, instrument_code, actor=actor)
    party = _find_or_new_party(session, instrument, data)
    values = data.model_dump(mode="json", exclude={"state", "authority_id"})
    for name in ("signed_on", "ratified_on", "in_force_on", "withdrawn_on"):
        values[name] = getattr(data, name)
    for name, value in values.items():
        setattr(party, name, value)
    session.flush()
    record(
        session,
        actor=actor,
        action="directory.instrument.party_set",
        object_type="legal_instrument",
        object_id=instrument.id,
        details={
            "party_id": party.id,
            "state": data.state,
            "authority_id": data.authority_id,
            "status": data.status.value,
        },
    )
    return party


def _find_or_new_party(
    session: Session, instrument: LegalInstrument, data: schemas.PartySet
) -> InstrumentParty:
    if data.state is not None:
        state = _state(session, data.state, field="state")
        existing = next((p for p in instrument.parties if p.state_id == state.id), None)
        new = InstrumentParty(state=state)
    else:
        assert data.authority_id is not None  # guaranteed by PartySet
        if session.get(Authority, data.authority_id) is None:
            raise InvalidInput(f"authority {data.authority_id} not found", field="authority_id")
        existing = next(
            (p for p in instrument.parties if p.authority_id == data.authority_id), None
        )
        new = InstrumentParty(authority_id=data.authority_id)
    if existing is not None:
        return existing
    if instrument.kind == InstrumentKind.BILATERAL_TREATY and len(instrument.parties) >= 2:
        raise InvalidInput(
            "a bilateral treaty has exactly two parties",
            field="state" if data.state else "authority_id",
        )
    instrument.parties.append(new)
    return new


# -- policy -----------------------------------------------------------------------------


def evaluate_policy(
    session: Session, query: schemas.PolicyQuery, *, actor: Principal
) -> policy.PolicyResult:
    """Which instruments let this flow happen on the date, with their conditions, or why not."""
    require(actor, Permission.POLICY_EVALUATE)
    on = query.on_date or utc_now().date()  # the node's calendar is UTC
    sender = _side(session, query.sender_state, query.sender_authority_id, "sender")
    receiver = _side(session, query.receiver_state, query.receiver_authority_id, "receiver")
    facts = [_instrument_fact(i) for i in _relevant_instruments(session, sender, receiver)]
    claims = tuple(policy.OffenceClaim(o.code, o.max_penalty_years) for o in query.offences)
    return policy.evaluate(
        facts,
        policy.Query(
            sender=sender,
            receiver=receiver,
            channel=Channel(query.channel).value,
            offences=claims,
            data_categories=tuple(c.value for c in query.data_categories),
            on=on,
        ),
    )


def _side(session: Session, alpha2: str, authority_id: int | None, role: str) -> policy.Side:
    state = _state(session, alpha2, field=f"{role}_state")
    if authority_id is not None:
        authority = session.get(Authority, authority_id)
        if authority is None or authority.state_id != state.id:
            raise InvalidInput(
                f"authority {authority_id} is not an authority of {alpha2}",
                field=f"{role}_authority_id",
            )
    return policy.Side(state=state.alpha2, authority_id=authority_id)


def _relevant_instruments(
    session: Session, sender: policy.Side, receiver: policy.Side
) -> Sequence[LegalInstrument]:
    """Every multilateral instrument, and the bilateral ones either side is a party to."""
    codes = (sender.state, receiver.state)
    party_of_side = (
        select(InstrumentParty.instrument_id)
        .outerjoin(State, InstrumentParty.state_id == State.id)
        .outerjoin(Authority, InstrumentParty.authority_id == Authority.id)
        .where(
            or_(
                State.alpha2.in_(codes),
                Authority.state_id.in_(select(State.id).where(State.alpha2.in_(codes))),
            )
        )
    )
    stmt = _instrument_query().where(
        or_(
            LegalInstrument.kind.not_in([k.value for k in BILATERAL_KINDS]),
            LegalInstrument.id.in_(party_of_side),
        )
    )
    return list(session.scalars(stmt.order_by(LegalInstrument.code)))


def _instrument_fact(instrument: LegalInstrument) -> policy.InstrumentFact:
    return policy.InstrumentFact(
        code=instrument.code,
        title=instrument.title,
        kind=InstrumentKind(instrument.kind),
        parties=tuple(_party_fact(p) for p in instrument.parties),
        offences=frozenset(instrument.offences),
        channels=frozenset(instrument.channels),
        data_categories=frozenset(instrument.data_categories),
        articles=dict(instrument.articles),
        conditions=tuple(policy.ConditionFact(c["code"], c["text"]) for c in instrument.conditions),
        valid_from=instrument.valid_from,
        valid_until=instrument.valid_until,
        min_penalty_years=instrument.min_penalty_years,
        serious_crime_min_years=instrument.serious_crime_min_years,
    )


def _party_fact(party: InstrumentParty) -> policy.PartyFact:
    authority = party.authority
    return policy.PartyFact(
        status=PartyStatus(party.status),
        state=party.state.alpha2 if party.state else None,
        authority_id=party.authority_id,
        authority_state=authority.state_code if authority else None,
        authority_name=(authority.short_name or authority.name) if authority else None,
        in_force_on=party.in_force_on,
        excluded_offences=frozenset(party.excluded_offences),
        excluded_channels=frozenset(party.excluded_channels),
    )
