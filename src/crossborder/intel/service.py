"""The STIX 2.1 store: collections and grants, object versions, TAXII reads, bundle export.

Access to a collection (:func:`access`):

* the users of the authority that owns it read it (``intel:read``) and write it
  (``intel:write``);
* a grant to an authority gives that authority's users what the grant says;
* a grant to an API token makes the token a *private partner*: it reaches only the
  collections granted to the token itself, as far as each grant allows, and reads as a
  partner under the markings (:func:`audience_of`).

Markings are read once, when an object is stored (:func:`add_objects`): TLP from
``object_marking_refs`` (and granular markings: the strictest applies; no TLP means AMBER),
handling codes, source reliability, information accuracy and TLP:RED recipients from marking
definitions of the node's LE-handling extension (:data:`stix.LE_HANDLING_EXTENSION`), in the
same call or already in the collection. Every read (:func:`query`, :func:`export_bundle`,
the identifier index through :class:`IntelScopes`) applies :func:`markings.may_read`, and
every export :func:`markings.may_pass_on`.

Identifiers inside stored objects join the identifier index; their scope is the object in its
collection, ``"<collection row id>/<STIX id>"`` (an occurrence's scope id is at most 80
characters: objects of types longer than 40 characters are stored but not indexed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
from sqlalchemy import ColumnElement, Select, and_, delete, func, insert, or_, select
from sqlalchemy.orm import Session, aliased

from crossborder.audit.service import record
from crossborder.auth.models import ApiToken
from crossborder.auth.permissions import Permission, Principal, require
from crossborder.core.clock import utc_now
from crossborder.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from crossborder.db import maintenance
from crossborder.db.session import atomic
from crossborder.directory.models import Authority
from crossborder.intel import markings, stix
from crossborder.intel.models import (
    STIX_ID_MAX,
    IntelCollection,
    IntelGrant,
    IntelObject,
    IntelStatus,
)
from crossborder.selectors import service as selectors
from crossborder.selectors.models import IdentOccurrence
from crossborder.selectors.scopes import ScopeLabel

MEDIA_TYPE: Final = "application/stix+json;version=2.1"
READ_IDS_AUDITED: Final = 100
ALREADY_PRESENT: Final = "already present"
DEFAULT_PAGE: Final = 100
MAX_PAGE: Final = 1000
STORED_TYPE_MAX: Final = 60
SCOPE_ID_MAX: Final = 80
INDEX_SOURCES: Final = ("imported", "received")
LEFT_OUT_AUDITED: Final = 200
_CHUNK: Final = 500
# A write of at least this many objects refreshes the planner's statistics when they are stale
# (autovacuum may be off or late; without them PostgreSQL sorts a whole collection for a page).
# Smaller writes skip the check (a catalog query each); the worker's sweep catches up on them.
ANALYZE_AFTER: Final = 100
_MICROSECOND: Final = timedelta(microseconds=1)
_ALIAS_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_RELIABILITY_ORDER: Final = {v: i for i, v in enumerate(markings.SOURCE_RELIABILITY)}
_CODES: Final = frozenset(c.value for c in markings.HandlingCode)


# --- collections and who may use them ---------------------------------------------------------


def partner_name(token_id: int) -> str:
    """The name a partner (an API token with its own grant) goes by in markings."""
    return f"token:{token_id}"


def _is_partner(session: Session, actor: Principal) -> bool:
    if actor.token_id is None:
        return False
    found = session.scalar(
        select(IntelGrant.id).where(IntelGrant.token_id == actor.token_id).limit(1)
    )
    return found is not None


def _grants_of(session: Session, actor: Principal) -> tuple[bool, dict[int, tuple[bool, bool]]]:
    """Whether the actor reads as a partner, and its grants by collection row id."""
    partner = _is_partner(session, actor)
    grantee = (
        IntelGrant.token_id == actor.token_id
        if partner
        else IntelGrant.authority_id == actor.authority_id
    )
    rows = session.execute(
        select(IntelGrant.collection_id, IntelGrant.can_read, IntelGrant.can_write).where(grantee)
    ).all()
    return partner, {int(c): (bool(r), bool(w)) for c, r, w in rows}


def _access_with(
    actor: Principal,
    collection: IntelCollection,
    partner: bool,
    grants: dict[int, tuple[bool, bool]],
) -> tuple[bool, bool]:
    if not partner and collection.owner_authority_id == actor.authority_id:
        read, write = True, True
    else:
        read, write = grants.get(collection.id, (False, False))
    return read and actor.has(Permission.INTEL_READ), write and actor.has(Permission.INTEL_WRITE)


def access(session: Session, actor: Principal, collection: IntelCollection) -> tuple[bool, bool]:
    """(may read, may write) ``collection``: ownership or grants, and the permissions."""
    partner, grants = _grants_of(session, actor)
    return _access_with(actor, collection, partner, grants)


def audience_of(session: Session, actor: Principal) -> markings.Audience:
    """Whom the actor reads as: a partner (its token has grants) or its authority."""
    if actor.token_id is not None and _is_partner(session, actor):
        return markings.Audience(
            markings.AudienceKind.PARTNER, partner=partner_name(actor.token_id)
        )
    return markings.Audience(markings.AudienceKind.AUTHORITY, authority_id=actor.authority_id)


def _holder(session: Session, actor: Principal) -> int | None:
    """The authority that holds what the actor exports (a partner holds nothing as its own)."""
    return None if _is_partner(session, actor) else actor.authority_id


@dataclass(frozen=True)
class CollectionAccess:
    collection: IntelCollection
    can_read: bool
    can_write: bool


@atomic
def create_collection(
    session: Session,
    actor: Principal,
    *,
    title: str,
    description: str = "",
    alias: str | None = None,
) -> IntelCollection:
    require(actor, Permission.INTEL_MANAGE)
    title = title.strip()
    if not 1 <= len(title) <= 200:
        raise InvalidInput("a collection needs a title of 1 to 200 characters", field="title")
    if len(description) > 5000:
        raise InvalidInput("the description is longer than 5,000 characters", field="description")
    if alias is not None:
        alias = alias.strip().lower()
        if not _ALIAS_RE.fullmatch(alias):
            raise InvalidInput(
                "an alias is 1-100 characters of a-z, 0-9, '.', '_' and '-'", field="alias"
            )
        if session.scalar(select(IntelCollection.id).where(IntelCollection.alias == alias)):
            raise Conflict(f"the alias '{alias}' is taken")
    item = IntelCollection(
        public_id=str(uuid.uuid4()),
        title=title,
        description=description.strip(),
        alias=alias,
        owner_authority_id=actor.authority_id,
    )
    session.add(item)
    session.flush()
    record(
        session,
        actor=actor,
        action="intel.collection_created",
        object_type="intel_collection",
        object_id=item.public_id,
    )
    return item


def _find(session: Session, ref: str) -> IntelCollection | None:
    ref = ref.strip()
    try:
        uuid.UUID(ref)
    except ValueError:
        return session.scalar(select(IntelCollection).where(IntelCollection.alias == ref.lower()))
    return session.scalar(select(IntelCollection).where(IntelCollection.public_id == ref))


def get_collection(session: Session, actor: Principal, public_id_or_alias: str) -> IntelCollection:
    """A collection the actor may read or write (or, for its owner's administrators, manage)."""
    item = _find(session, public_id_or_alias)
    if item is not None:
        manages = (
            actor.has(Permission.INTEL_MANAGE) and item.owner_authority_id == actor.authority_id
        )
        if manages or any(access(session, actor, item)):
            return item
    raise NotFound("no such collection, or not shared with you")


def list_collections(session: Session, actor: Principal) -> list[CollectionAccess]:
    """The collections the actor may read or write, oldest first."""
    partner, grants = _grants_of(session, actor)
    stmt = select(IntelCollection).order_by(IntelCollection.created_at, IntelCollection.id)
    granted = IntelCollection.id.in_(list(grants)) if grants else None
    if partner:
        if granted is None:
            return []
        stmt = stmt.where(granted)
    else:
        owned = IntelCollection.owner_authority_id == actor.authority_id
        stmt = stmt.where(or_(owned, granted) if granted is not None else owned)
    found = []
    for item in session.scalars(stmt):
        read, write = _access_with(actor, item, partner, grants)
        if read or write:
            found.append(CollectionAccess(item, read, write))
    return found


@atomic
def grant(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    *,
    authority_id: int | None = None,
    token_id: int | None = None,
    can_read: bool,
    can_write: bool,
) -> IntelGrant | None:
    """Give (or, with neither read nor write, take away) access to an authority or a token."""
    require(actor, Permission.INTEL_MANAGE)
    if collection.owner_authority_id != actor.authority_id:
        raise PermissionDenied("only the administrators of the owning authority grant access")
    if (authority_id is None) == (token_id is None):
        raise InvalidInput("grant to exactly one authority or one API token", field="grantee")
    if authority_id is not None:
        if session.get(Authority, authority_id) is None:
            raise NotFound("no such authority")
        if authority_id == collection.owner_authority_id:
            raise InvalidInput("the owning authority always has access", field="authority_id")
        grantee = IntelGrant.authority_id == authority_id
    else:
        token = session.get(ApiToken, token_id)
        if token is None or token.revoked_at is not None:
            raise NotFound("no such API token, or revoked")
        grantee = IntelGrant.token_id == token_id
    existing = session.scalar(
        select(IntelGrant).where(IntelGrant.collection_id == collection.id, grantee)
    )
    result: IntelGrant | None
    if not can_read and not can_write:
        if existing is not None:
            session.delete(existing)
        result = None
    elif existing is not None:
        existing.can_read, existing.can_write = can_read, can_write
        result = existing
    else:
        result = IntelGrant(
            collection_id=collection.id,
            authority_id=authority_id,
            token_id=token_id,
            can_read=can_read,
            can_write=can_write,
        )
        session.add(result)
    session.flush()
    record(
        session,
        actor=actor,
        action="intel.grant",
        object_type="intel_collection",
        object_id=collection.public_id,
        details={
            "authority_id": authority_id,
            "token_id": token_id,
            "can_read": can_read,
            "can_write": can_write,
        },
    )
    return result


def list_grants(
    session: Session, actor: Principal, collection: IntelCollection
) -> list[IntelGrant]:
    require(actor, Permission.INTEL_MANAGE)
    if collection.owner_authority_id != actor.authority_id:
        raise PermissionDenied("only the administrators of the owning authority see the grants")
    return list(
        session.scalars(
            select(IntelGrant)
            .where(IntelGrant.collection_id == collection.id)
            .order_by(IntelGrant.id)
        )
    )


def require_read(session: Session, actor: Principal, collection: IntelCollection) -> None:
    require(actor, Permission.INTEL_READ)
    if not access(session, actor, collection)[0]:
        raise PermissionDenied("you may not read this collection")


def require_write(session: Session, actor: Principal, collection: IntelCollection) -> None:
    require(actor, Permission.INTEL_WRITE)
    if not access(session, actor, collection)[1]:
        raise PermissionDenied("you may not write to this collection")


# --- markings of stored rows ------------------------------------------------------------------


def handling_of_row(row: IntelObject) -> markings.Handling:
    """What a stored version's markings say (an unknown TLP reads as RED: never wider)."""
    try:
        tlp = markings.Tlp(row.tlp)
    except ValueError:
        tlp = markings.Tlp.RED
    recipients = row.recipients or []
    return markings.Handling(
        tlp=tlp,
        recipients=frozenset(r for r in recipients if isinstance(r, int)),
        partner_recipients=frozenset(r for r in recipients if isinstance(r, str)),
        codes=frozenset(markings.HandlingCode(c) for c in row.handling_codes or [] if c in _CODES),
        source_reliability=row.source_reliability,
        information_accuracy=row.information_accuracy,
    )


def _readable(row: IntelObject, audience: markings.Audience) -> bool:
    return bool(markings.may_read(handling_of_row(row), row.origin_authority_id, audience))


def _marking_refs(obj: Mapping[str, Any]) -> list[str]:
    refs = [r for r in obj.get("object_marking_refs") or [] if isinstance(r, str)]
    for item in obj.get("granular_markings") or []:
        if isinstance(item, Mapping) and isinstance(item.get("marking_ref"), str):
            refs.append(item["marking_ref"])
    return refs


def _merge(specs: Sequence[stix.HandlingSpec]) -> dict[str, Any]:
    """Several handling markings on one object: the strictest reading of them together."""
    if not specs:
        return {"codes": frozenset(), "recipients": frozenset(), "partners": frozenset()}
    named = [s for s in specs if s.recipients or s.partner_recipients]
    recipients = frozenset.intersection(*(s.recipients for s in named)) if named else frozenset()
    partners = (
        frozenset.intersection(*(s.partner_recipients for s in named)) if named else frozenset()
    )
    reliabilities = [s.source_reliability for s in specs if s.source_reliability]
    accuracies = [s.information_accuracy for s in specs if s.information_accuracy]
    return {
        "codes": frozenset().union(*(s.codes for s in specs)),
        "recipients": recipients,
        "partners": partners,
        "reliability": max(reliabilities, key=_RELIABILITY_ORDER.__getitem__, default=None),
        "accuracy": max(accuracies, default=None),
    }


def handling_for(
    obj: Mapping[str, Any], definitions: Mapping[str, Mapping[str, Any]]
) -> markings.Handling:
    """Read an object's markings, with the marking definitions it may reference."""
    tlp_refs: list[str] = []
    specs: list[stix.HandlingSpec] = []
    for ref in _marking_refs(obj):
        if ref in markings.TLP_BY_ID:
            tlp_refs.append(ref)
            continue
        definition = definitions.get(ref)
        if definition is None:
            continue
        level = stix.tlp_of_definition(definition)
        if level is not None:
            tlp_refs.append(markings.TLP2_IDS[level])
        spec = stix.handling_of(definition)
        if spec is not None:
            specs.append(spec)
    merged = _merge(specs)
    return markings.Handling(
        tlp=markings.tlp_of(tlp_refs) or markings.DEFAULT_TLP,
        recipients=merged["recipients"],
        partner_recipients=merged["partners"],
        codes=merged["codes"],
        source_reliability=merged.get("reliability"),
        information_accuracy=merged.get("accuracy"),
        conditions="; ".join(s.conditions for s in specs if s.conditions),
    )


# --- adding objects ---------------------------------------------------------------------------


@dataclass
class StatusResult:
    """A TAXII status resource: the outcome of one write."""

    id: str
    status: str
    request_timestamp: datetime
    total_count: int
    success_count: int
    failure_count: int
    pending_count: int
    successes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    pendings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def already_present(self) -> int:
        return sum(1 for f in self.failures if f.get("message") == ALREADY_PRESENT)

    @property
    def invalid(self) -> int:
        return self.failure_count - self.already_present

    @classmethod
    def of(cls, row: IntelStatus) -> StatusResult:
        return cls(
            id=row.public_id,
            status=row.status,
            request_timestamp=row.request_timestamp,
            total_count=row.total_count,
            success_count=row.success_count,
            failure_count=row.failure_count,
            pending_count=row.pending_count,
            successes=list(row.successes or []),
            failures=list(row.failures or []),
            pendings=list(row.pendings or []),
        )


@dataclass
class _Candidate:
    obj: Any
    stix_id: str
    version_text: str | None
    version: datetime | None
    errors: list[str]


def _candidate(obj: Any) -> _Candidate:
    errors = stix.validate(obj)
    if not isinstance(obj, dict):
        return _Candidate(obj, "", None, None, errors)
    raw_id = obj.get("id")
    stix_id = raw_id if isinstance(raw_id, str) else ""
    text = obj.get("modified") if "modified" in obj else obj.get("created")
    version_text = text if isinstance(text, str) else None
    if not errors:
        if len(str(obj["type"])) > STORED_TYPE_MAX:
            errors.append(f"type: longer than {STORED_TYPE_MAX} characters, not stored here")
        elif len(stix_id) > STIX_ID_MAX:
            errors.append(f"id: longer than {STIX_ID_MAX} characters, not stored here")
    return _Candidate(obj, stix_id[:STIX_ID_MAX], version_text, stix.version(obj), errors)


def _existing_versions(
    session: Session, collection: IntelCollection, ids: Collection[str]
) -> dict[str, set[datetime]]:
    found: dict[str, set[datetime]] = {}
    unique = list(set(ids))
    for start in range(0, len(unique), _CHUNK):
        rows = session.execute(
            select(IntelObject.stix_id, IntelObject.version).where(
                IntelObject.collection_id == collection.id,
                IntelObject.stix_id.in_(unique[start : start + _CHUNK]),
            )
        )
        for stix_id, version in rows:
            found.setdefault(stix_id, set()).add(version)
    return found


def _latest_clause() -> ColumnElement[bool]:
    """``IntelObject.version`` is the newest version of its object in its collection."""
    other = aliased(IntelObject)
    newest = (
        select(func.max(other.version))
        .where(
            other.collection_id == IntelObject.collection_id,
            other.stix_id == IntelObject.stix_id,
        )
        .scalar_subquery()
    )
    return IntelObject.version == newest


def _stored_definitions(
    session: Session, collection: IntelCollection, refs: Collection[str]
) -> dict[str, dict[str, Any]]:
    """The newest stored version of each marking definition named in ``refs``."""
    found: dict[str, dict[str, Any]] = {}
    wanted = [r for r in set(refs) if r.startswith("marking-definition--")]
    for start in range(0, len(wanted), _CHUNK):
        rows = session.scalars(
            select(IntelObject.body).where(
                IntelObject.collection_id == collection.id,
                IntelObject.stix_id.in_(wanted[start : start + _CHUNK]),
                _latest_clause(),
            )
        )
        for body in rows:
            obj = orjson.loads(body)
            found[obj["id"]] = obj
    return found


def _definitions_for(
    session: Session, collection: IntelCollection, valid: Sequence[_Candidate]
) -> dict[str, dict[str, Any]]:
    in_batch = {c.stix_id: c.obj for c in valid if c.obj["type"] == "marking-definition"}
    referenced = {ref for c in valid for ref in _marking_refs(c.obj)}
    missing = referenced - set(in_batch) - set(markings.TLP_BY_ID)
    return _stored_definitions(session, collection, missing) | in_batch


def _last_added(session: Session, collection: IntelCollection) -> datetime | None:
    return session.scalar(
        select(func.max(IntelObject.date_added)).where(IntelObject.collection_id == collection.id)
    )


def scope_id_of(collection: IntelCollection, stix_id: str) -> str:
    return f"{collection.id}/{stix_id}"


def _row(
    collection: IntelCollection,
    candidate: _Candidate,
    handling: markings.Handling,
    *,
    version: datetime,
    date_added: datetime,
    origin: int | None,
    label: str,
) -> dict[str, Any]:
    obj = candidate.obj
    return {
        "collection_id": collection.id,
        "stix_id": candidate.stix_id,
        "type": obj["type"],
        "spec_version": str(obj.get("spec_version", "2.1"))[:10],
        "version": version,
        "date_added": date_added,
        "revoked": obj.get("revoked") is True,
        "body": orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode(),
        "tlp": handling.tlp.value,
        "recipients": sorted(handling.recipients) + sorted(handling.partner_recipients),
        "handling_codes": sorted(c.value for c in handling.codes),
        "source_reliability": handling.source_reliability,
        "information_accuracy": handling.information_accuracy,
        "origin_authority_id": origin,
        "added_by_label": label[:200],
    }


def _index(
    session: Session,
    collection: IntelCollection,
    latest: Mapping[str, Any],
    existed: Collection[str],
    origin: int | None,
    source: str,
) -> None:
    """Index the identifiers of each object's newest version (replacing the older ones').

    What ``selectors.index_record`` does per record, batched: one removal for the objects
    that had versions before, the values created once for the whole batch, then the
    occurrences of each object. Entries that do not normalise are skipped.
    """
    replaced = [
        scope_id_of(collection, s)
        for s in latest
        if s in existed and len(scope_id_of(collection, s)) <= SCOPE_ID_MAX
    ]
    for start in range(0, len(replaced), _CHUNK):
        session.execute(
            delete(IdentOccurrence).where(
                IdentOccurrence.record_type == "intel",
                IdentOccurrence.record_id.in_(replaced[start : start + _CHUNK]),
                IdentOccurrence.source.in_(INDEX_SOURCES),
            )
        )
    prepared: dict[str, list[selectors.Prepared]] = {}
    for stix_id, obj in latest.items():
        scope = scope_id_of(collection, stix_id)
        if len(scope) > SCOPE_ID_MAX:
            continue
        for kind, value in stix.identifiers_in(obj):
            try:
                item = selectors.prepare(selectors.Entry(kind, value))
            except InvalidInput:
                continue
            prepared.setdefault(scope, []).append(item)
    # Whom another officer is told to contact: the originator if it is an authority in the
    # directory, else (a vendor's feed) the authority that holds the collection.
    contact = origin if origin is not None and origin > 0 else collection.owner_authority_id
    selectors.append_many(
        session,
        [
            (selectors.Where("intel", scope, "intel", scope, contact), items)
            for scope, items in prepared.items()
        ],
        source=source,
    )


@atomic
def add_objects(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    objects: Iterable[dict[str, Any]],
    *,
    origin_authority_id: int | None = None,
    source: str = "imported",
) -> StatusResult:
    """Validate and store objects (one transaction); returns the persisted status.

    An object whose id and version are already in the collection is a failure ("already
    present"), so importing the same objects again stores nothing twice.
    """
    if source not in INDEX_SOURCES:
        raise ValueError(f"unknown source {source!r}")
    require_write(session, actor, collection)
    session.execute(
        select(IntelCollection.id).where(IntelCollection.id == collection.id).with_for_update()
    )
    candidates = [_candidate(obj) for obj in objects]
    valid = [c for c in candidates if not c.errors]
    existing = _existing_versions(session, collection, [c.stix_id for c in valid])
    definitions = _definitions_for(session, collection, valid)
    origin = origin_authority_id if origin_authority_id is not None else actor.authority_id
    now = utc_now()
    last = _last_added(session, collection)
    newest = {k: max(v) for k, v in existing.items()}
    seen: dict[str, set[datetime | None]] = {}
    rows: list[dict[str, Any]] = []
    latest: dict[str, Any] = {}
    status = IntelStatus(
        public_id=str(uuid.uuid4()),
        collection_id=collection.id,
        requested_by_label=actor.label[:200],
        requested_by_user_id=actor.user_id if actor.via != "system" else None,
        request_timestamp=now,
        status="complete",
        pending_count=0,
        pendings=[],
    )
    successes: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for c in candidates:
        outcome = {"id": c.stix_id, "version": c.version_text}
        if c.errors:
            failures.append({**outcome, "message": "; ".join(c.errors)})
            continue
        batch_versions = seen.setdefault(c.stix_id, set())
        if c.version is None:  # an SCO without a version: its id is its content
            duplicate = c.stix_id in existing or bool(batch_versions)
        else:
            duplicate = c.version in existing.get(c.stix_id, ()) or c.version in batch_versions
        if duplicate:
            failures.append({**outcome, "message": ALREADY_PRESENT})
            continue
        batch_versions.add(c.version)
        date_added = now if last is None or now > last else last + _MICROSECOND
        last = date_added
        version = c.version or date_added
        handling = handling_for(c.obj, definitions)
        rows.append(
            _row(
                collection,
                c,
                handling,
                version=version,
                date_added=date_added,
                origin=origin,
                label=actor.label,
            )
        )
        if c.stix_id not in newest or version > newest[c.stix_id]:
            newest[c.stix_id] = version
            latest[c.stix_id] = c.obj
        successes.append(
            {"id": c.stix_id, "version": c.version_text or stix.format_timestamp(version)}
        )
    for start in range(0, len(rows), _CHUNK):
        session.execute(insert(IntelObject), rows[start : start + _CHUNK])
    _index(session, collection, latest, existing, origin, source)
    if len(rows) >= ANALYZE_AFTER:
        maintenance.analyze_stale(
            session,
            ["intel_objects", "ident_values", "ident_occurrences"],
            pending={"intel_objects": len(rows)},
        )
    status.total_count = len(candidates)
    status.success_count = len(successes)
    status.failure_count = len(failures)
    status.successes = successes
    status.failures = failures
    session.add(status)
    session.flush()
    result = StatusResult.of(status)
    record(
        session,
        actor=actor,
        action="intel.objects_added",
        object_type="intel_collection",
        object_id=collection.public_id,
        details={
            "status": status.public_id,
            "total": result.total_count,
            "stored": result.success_count,
            "already_present": result.already_present,
            "invalid": result.invalid,
            "source": source,
        },
    )
    return result


def get_status(session: Session, actor: Principal, public_id: str) -> StatusResult:
    row = session.scalar(select(IntelStatus).where(IntelStatus.public_id == public_id))
    if row is not None:
        collection = session.get(IntelCollection, row.collection_id)
        if collection is not None and any(access(session, actor, collection)):
            return StatusResult.of(row)
    raise NotFound("no such status")


# --- reading with TAXII semantics -------------------------------------------------------------


@dataclass(frozen=True)
class ManifestEntry:
    id: str
    date_added: datetime
    version: datetime
    media_type: str = MEDIA_TYPE


@dataclass
class Page:
    objects: list[dict[str, Any]]
    manifest: list[ManifestEntry]
    more: bool
    next: str | None
    first_added: datetime | None
    last_added: datetime | None


@dataclass(frozen=True)
class _Filters:
    added_after: datetime | None
    ids: tuple[str, ...]
    types: tuple[str, ...]
    versions: tuple[str, ...]
    times: tuple[datetime, ...]
    spec_versions: tuple[str, ...]
    newest_first: bool = False

    def digest(self, collection: IntelCollection) -> str:
        data = {
            "c": collection.public_id,
            "o": "desc" if self.newest_first else "asc",
            "a": self.added_after.isoformat() if self.added_after else None,
            "i": sorted(self.ids),
            "t": sorted(self.types),
            "v": sorted(self.versions),
            "m": sorted(t.isoformat() for t in self.times),
            "s": sorted(self.spec_versions),
        }
        return hashlib.sha256(orjson.dumps(data)).hexdigest()[:24]


def _filters(
    added_after: datetime | None,
    match_id: Iterable[str],
    match_type: Iterable[str],
    match_version: str | Iterable[str | datetime],
    match_spec_version: Iterable[str],
) -> _Filters:
    wanted = [match_version] if isinstance(match_version, str) else list(match_version)
    keywords: list[str] = []
    times: list[datetime] = []
    for item in wanted or ["last"]:
        if isinstance(item, datetime):
            times.append(item)
        elif item in ("last", "first", "all"):
            keywords.append(item)
        else:
            parsed = stix.parse_timestamp(item)
            if parsed is None:
                raise InvalidInput(
                    "match[version]: last, first, all or STIX timestamps", field="match[version]"
                )
            times.append(parsed)
    if added_after is not None and added_after.tzinfo is None:
        raise InvalidInput("added_after needs a time zone", field="added_after")
    return _Filters(
        added_after=added_after,
        ids=tuple(dict.fromkeys(match_id)),
        types=tuple(dict.fromkeys(match_type)),
        versions=tuple(dict.fromkeys(keywords)),
        times=tuple(dict.fromkeys(times)),
        spec_versions=tuple(dict.fromkeys(match_spec_version)),
    )


def _version_clause(filters: _Filters) -> ColumnElement[bool] | None:
    if "all" in filters.versions:
        return None
    clauses: list[ColumnElement[bool]] = []
    other = aliased(IntelObject)
    for keyword, pick in (("last", func.max), ("first", func.min)):
        if keyword in filters.versions:
            edge = (
                select(pick(other.version))
                .where(
                    other.collection_id == IntelObject.collection_id,
                    other.stix_id == IntelObject.stix_id,
                )
                .scalar_subquery()
            )
            clauses.append(IntelObject.version == edge)
    if filters.times:
        clauses.append(IntelObject.version.in_(filters.times))
    return or_(*clauses) if clauses else None


def _base(collection: IntelCollection, filters: _Filters) -> Select[IntelObject]:
    stmt = select(IntelObject).where(IntelObject.collection_id == collection.id)
    if filters.added_after is not None:
        stmt = stmt.where(IntelObject.date_added > filters.added_after)
    if filters.ids:
        stmt = stmt.where(IntelObject.stix_id.in_(filters.ids))
    if filters.types:
        stmt = stmt.where(IntelObject.type.in_(filters.types))
    if filters.spec_versions:
        stmt = stmt.where(IntelObject.spec_version.in_(filters.spec_versions))
    clause = _version_clause(filters)
    return stmt.where(clause) if clause is not None else stmt


def _encode_next(row: IntelObject, digest: str) -> str:
    data = orjson.dumps({"d": row.date_added.isoformat(), "r": row.id, "f": digest})
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _decode_next(token: str, digest: str) -> tuple[datetime, int]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = (datetime.fromisoformat(data["d"]), int(data["r"]))
        filters = data["f"]
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise InvalidInput("next: not a page token of this collection", field="next") from None
    if filters != digest:
        raise InvalidInput("next: the filters changed between pages", field="next")
    return cursor


def _page_rows(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    filters: _Filters,
    limit: int,
    next_token: str | None,
) -> tuple[list[IntelObject], bool, str | None]:
    require_read(session, actor, collection)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit: from 1 to {MAX_PAGE}", field="limit")
    digest = filters.digest(collection)
    cursor = _decode_next(next_token, digest) if next_token else None
    audience = audience_of(session, actor)
    if filters.newest_first:
        order = (IntelObject.date_added.desc(), IntelObject.id.desc())
    else:
        order = (IntelObject.date_added.asc(), IntelObject.id.asc())
    base = _base(collection, filters).order_by(*order)
    chunk = max(limit + 1, 100)
    found: list[IntelObject] = []
    while len(found) <= limit:
        stmt = base.limit(chunk)
        if cursor is not None:
            when, row_id = cursor
            if filters.newest_first:
                after = or_(
                    IntelObject.date_added < when,
                    and_(IntelObject.date_added == when, IntelObject.id < row_id),
                )
            else:
                after = or_(
                    IntelObject.date_added > when,
                    and_(IntelObject.date_added == when, IntelObject.id > row_id),
                )
            stmt = stmt.where(after)
        batch = list(session.scalars(stmt))
        for row in batch:
            cursor = (row.date_added, row.id)
            if _readable(row, audience):
                found.append(row)
                if len(found) > limit:
                    break
        if len(batch) < chunk:
            break
    more = len(found) > limit
    page = found[:limit]
    return page, more, (_encode_next(page[-1], digest) if more else None)


def query(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    *,
    added_after: datetime | None = None,
    match_id: Iterable[str] = (),
    match_type: Iterable[str] = (),
    match_version: str | Iterable[str | datetime] = "last",
    match_spec_version: Iterable[str] = (),
    limit: int = DEFAULT_PAGE,
    next_token: str | None = None,
    newest_first: bool = False,
) -> Page:
    """One page of objects in ``date_added`` order (TAXII 2.1's; the web pages ask for the
    newest first), as TAXII 2.1 filters them.

    Objects the actor may not read under their markings are left out without a word.
    ``next`` continues with the same filters and order; others with it are refused.
    """
    filters = _filters(added_after, match_id, match_type, match_version, match_spec_version)
    if newest_first:
        filters = replace(filters, newest_first=True)
    rows, more, token = _page_rows(session, actor, collection, filters, limit, next_token)
    return Page(
        objects=[orjson.loads(row.body) for row in rows],
        manifest=[ManifestEntry(r.stix_id, r.date_added, r.version) for r in rows],
        more=more,
        next=token,
        first_added=rows[0].date_added if rows else None,
        last_added=rows[-1].date_added if rows else None,
    )


def audit_read(
    session: Session, actor: Principal, collection: IntelCollection, page: Page, *, via: str
) -> None:
    """Who was shown which objects (caller's transaction): the ids of the page (the first
    100) and its ``date_added`` range, so the rest can be told from the collection."""
    ids = [entry.id for entry in page.manifest]
    record(
        session,
        actor=actor,
        action="intel.read",
        object_type="intel_collection",
        object_id=collection.public_id,
        details={
            "via": via,
            "objects": len(ids),
            "ids": ids[:READ_IDS_AUDITED],
            "first_added": page.first_added.isoformat() if page.first_added else None,
            "last_added": page.last_added.isoformat() if page.last_added else None,
        },
    )


def get_versions(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    stix_id: str,
    *,
    added_after: datetime | None = None,
    match_spec_version: Iterable[str] = (),
    limit: int = MAX_PAGE,
    next_token: str | None = None,
) -> Page:
    """The versions of one object the actor may read (``manifest``; ``objects`` stays empty)."""
    filters = _filters(added_after, (stix_id,), (), "all", match_spec_version)
    rows, more, token = _page_rows(session, actor, collection, filters, limit, next_token)
    if not rows and next_token is None and added_after is None:
        raise NotFound("no such object in this collection")
    return Page(
        objects=[],
        manifest=[ManifestEntry(r.stix_id, r.date_added, r.version) for r in rows],
        more=more,
        next=token,
        first_added=rows[0].date_added if rows else None,
        last_added=rows[-1].date_added if rows else None,
    )


@atomic
def delete_object(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    stix_id: str,
    *,
    match_version: str | Iterable[str | datetime] = "all",
    match_spec_version: Iterable[str] = (),
) -> int:
    """Delete the versions of an object the filters select (all by default); audited.

    The identifier index follows the newest version left: it is re-indexed if the newest
    one went, and the object leaves the index when no version is left.
    """
    require_write(session, actor, collection)
    rows = list(
        session.scalars(
            select(IntelObject).where(
                IntelObject.collection_id == collection.id, IntelObject.stix_id == stix_id
            )
        )
    )
    audience = audience_of(session, actor)
    newest = max(rows, key=lambda r: r.version) if rows else None
    if newest is None or not _readable(newest, audience):
        raise NotFound("no such object in this collection")
    filters = _filters(None, (stix_id,), (), match_version, match_spec_version)
    chosen = set(session.scalars(_base(collection, filters).with_only_columns(IntelObject.id)))
    if not chosen:
        raise NotFound("no version of this object matches the filters")
    session.execute(delete(IntelObject).where(IntelObject.id.in_(chosen)))
    left = [r for r in rows if r.id not in chosen]
    scope = scope_id_of(collection, stix_id)
    if not left:
        selectors.remove_record(session, "intel", scope)
    elif newest.id in chosen:
        now_newest = max(left, key=lambda r: r.version)
        selectors.remove_record(session, "intel", scope)
        _index(
            session,
            collection,
            {stix_id: orjson.loads(now_newest.body)},
            (),
            now_newest.origin_authority_id,
            "imported",
        )
    record(
        session,
        actor=actor,
        action="intel.object_deleted",
        object_type="intel_collection",
        object_id=collection.public_id,
        details={"stix_id": stix_id, "versions": len(chosen), "versions_left": len(left)},
    )
    return len(chosen)


# --- export -----------------------------------------------------------------------------------


def _latest_rows(
    session: Session, collection: IntelCollection, types: Sequence[str], ids: Sequence[str]
) -> Iterator[IntelObject]:
    stmt = (
        select(IntelObject)
        .where(IntelObject.collection_id == collection.id, _latest_clause())
        .order_by(IntelObject.date_added, IntelObject.id)
    )
    if types:
        stmt = stmt.where(IntelObject.type.in_(list(types)))
    if ids:
        stmt = stmt.where(IntelObject.stix_id.in_(list(ids)))
    yield from session.scalars(stmt.execution_options(yield_per=_CHUNK))


def _supporting(
    session: Session, collection: IntelCollection, objects: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Marking and extension definitions the exported objects need (not already in them)."""
    present = {o["id"] for o in objects}
    refs = {ref for o in objects for ref in _marking_refs(o)} - present
    found: list[dict[str, Any]] = [
        stix.TLP_MARKINGS[r] for r in sorted(refs) if r in stix.TLP_MARKINGS
    ]
    stored = _stored_definitions(session, collection, refs - set(stix.TLP_MARKINGS))
    found.extend(stored[r] for r in sorted(stored))
    extensions: set[str] = set()
    for obj in [*objects, *found]:
        declared = obj.get("extensions")
        if isinstance(declared, Mapping):
            extensions |= {k for k in declared if k in stix.EXTENSION_DEFINITIONS}
    extensions -= present
    found.extend(stix.EXTENSION_DEFINITIONS[e] for e in sorted(extensions))
    if extensions and stix.NODE_IDENTITY_ID not in present:
        found.append(stix.NODE_IDENTITY)
    return found


def _audience_details(audience: markings.Audience) -> dict[str, Any]:
    return {
        "kind": audience.kind.value,
        "authority_id": audience.authority_id,
        "partner": audience.partner,
    }


def export_bundle(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    *,
    types: Sequence[str] = (),
    ids: Sequence[str] = (),
    audience: markings.Audience,
) -> tuple[dict[str, Any], list[str]]:
    """A bundle of the newest versions the actor may read and may pass on to ``audience``.

    Returns the bundle and the ids left out because they may not be passed on (objects the
    actor may not read at all are left out silently). Audited, with the reasons. Call
    inside a unit of work.
    """
    require_read(session, actor, collection)
    reader = audience_of(session, actor)
    holder = _holder(session, actor)
    objects: list[dict[str, Any]] = []
    left_out: list[tuple[str, str]] = []
    for row in _latest_rows(session, collection, types, ids):
        handling = handling_of_row(row)
        if not markings.may_read(handling, row.origin_authority_id, reader):
            continue
        decision = markings.may_pass_on(handling, row.origin_authority_id, holder, audience)
        if not decision:
            left_out.append((row.stix_id, decision.reason))
            continue
        objects.append(orjson.loads(row.body))
    objects.extend(_supporting(session, collection, objects))
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
    record(
        session,
        actor=actor,
        action="intel.exported",
        object_type="intel_collection",
        object_id=collection.public_id,
        details={
            "bundle": bundle["id"],
            "audience": _audience_details(audience),
            "exported": len(objects),
            "left_out_count": len(left_out),
            "left_out": [{"id": i, "reason": r} for i, r in left_out[:LEFT_OUT_AUDITED]],
        },
    )
    return bundle, [i for i, _ in left_out]


# --- the identifier index: who may see an object's identifiers --------------------------------


def _parse_scope(scope_id: str) -> tuple[int, str] | None:
    head, sep, stix_id = scope_id.partition("/")
    if not sep or not head.isdigit() or not stix.is_stix_id(stix_id):
        return None
    return int(head), stix_id


def _latest_by_scope(session: Session, scope_ids: Collection[str]) -> dict[str, IntelObject]:
    parsed = {s: p for s in scope_ids if (p := _parse_scope(s)) is not None}
    if not parsed:
        return {}
    wanted = {p: s for s, p in parsed.items()}
    found: dict[str, IntelObject] = {}
    stix_ids = list({p[1] for p in parsed.values()})
    for start in range(0, len(stix_ids), _CHUNK):
        rows = session.scalars(
            select(IntelObject).where(
                IntelObject.collection_id.in_({p[0] for p in parsed.values()}),
                IntelObject.stix_id.in_(stix_ids[start : start + _CHUNK]),
                _latest_clause(),
            )
        )
        for row in rows:
            scope = wanted.get((row.collection_id, row.stix_id))
            if scope is not None:
                found[scope] = row
    return found


class IntelScopes:
    """Scope resolver for ``scope_type`` "intel": an object in a collection."""

    def visible(self, session: Session, actor: Principal, ids: Collection[str]) -> set[str]:
        if not actor.has(Permission.INTEL_READ):
            return set()
        rows = _latest_by_scope(session, ids)
        if not rows:
            return set()
        partner, grants = _grants_of(session, actor)
        collections = {
            c.id: c
            for c in session.scalars(
                select(IntelCollection).where(
                    IntelCollection.id.in_({r.collection_id for r in rows.values()})
                )
            )
        }
        readable = {
            cid for cid, c in collections.items() if _access_with(actor, c, partner, grants)[0]
        }
        audience = audience_of(session, actor)
        return {
            scope
            for scope, row in rows.items()
            if row.collection_id in readable and _readable(row, audience)
        }

    def disclosable(self, session: Session, ids: Collection[str]) -> set[str]:
        """RED and AMBER+STRICT objects are never named to those who may not read them."""
        secret = {markings.Tlp.RED.value, markings.Tlp.AMBER_STRICT.value}
        return {
            scope for scope, row in _latest_by_scope(session, ids).items() if row.tlp not in secret
        }

    def describe(self, session: Session, ids: Collection[str]) -> dict[str, ScopeLabel]:
        labels: dict[str, ScopeLabel] = {}
        for scope, row in _latest_by_scope(session, ids).items():
            obj = orjson.loads(row.body)
            name = obj.get("name") or obj.get("value") or obj.get("pattern") or row.stix_id
            labels[scope] = ScopeLabel(f"{row.type} {name}"[:200], None)
        return labels


# --- naming grantees and audiences (CLI, API) -------------------------------------------------


def find_authority(session: Session, ref: str) -> Authority:
    """An authority by its short name (case-insensitive) or its id."""
    ref = ref.strip()
    found = (
        session.get(Authority, int(ref))
        if ref.isdigit()
        else session.scalar(
            select(Authority).where(func.lower(Authority.short_name) == ref.lower())
        )
    )
    if found is None:
        raise NotFound(f"no authority '{ref}'")
    return found


def parse_audience(session: Session, text: str) -> markings.Audience:
    """``public``, ``authority:<short name or id>`` or ``partner:<name>``."""
    kind, _, rest = text.strip().partition(":")
    match kind.lower():
        case "public" if not rest:
            return markings.Audience(markings.AudienceKind.PUBLIC)
        case "authority" if rest:
            authority = find_authority(session, rest)
            return markings.Audience(markings.AudienceKind.AUTHORITY, authority_id=authority.id)
        case "partner" if rest.strip():
            return markings.Audience(markings.AudienceKind.PARTNER, partner=rest.strip())
        case _:
            raise InvalidInput(
                "audience: public, authority:<short name or id> or partner:<name>",
                field="audience",
            )
