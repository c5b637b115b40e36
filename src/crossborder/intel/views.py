"""HTML pages for threat intelligence: collections, their objects under their markings, bundle
upload and export, grants, and the feeds (read only).

These pages are the HTML twin of ``intel.api`` and call the same service functions; the rules
live there and in ``markings``: :func:`service.query` and :func:`service.get_versions` leave out
what the reader may not see (an object the user may not read answers 404, as if it did not
exist), :func:`service.export_bundle` keeps only what may be passed on to the chosen audience
and audits what it left out. What this module adds is words: each marking explained, and
whether *this* viewer may pass the object on (:func:`markings.may_pass_on`). Every POST form
carries the CSRF token; a POST answers with a redirect and a flash, or the page again with
the error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from crossborder.auth.deps import web_principal
from crossborder.auth.models import ApiToken
from crossborder.auth.permissions import Permission, Principal, require
from crossborder.core.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from crossborder.db.session import unit_of_work
from crossborder.deps import get_session, get_settings
from crossborder.directory.models import Authority
from crossborder.directory.taxonomy import N_
from crossborder.intel import bundles, feeds, markings, service, stix
from crossborder.intel.models import IntelCollection, IntelFeed, IntelObject
from crossborder.selectors.views import LABELS as IDENTIFIER_LABELS
from crossborder.selectors.views import authority_tz, size_text
from crossborder.settings import Settings
from crossborder.web.csrf import require_form_token
from crossborder.web.templating import gettext, render

router = APIRouter()

Actor = Annotated[Principal, Depends(web_principal)]
Db = Annotated[Session, Depends(get_session)]
Conf = Annotated[Settings, Depends(get_settings)]
CSRF = [Depends(require_form_token)]

#: Objects per page of a collection.
PAGE_SIZE: Final = 50
#: The index counts the objects a user may see up to this many, then says "more than".
COUNT_CAP: Final = 10_000
#: Import statuses named in the redirect after an upload (a 1 MB bundle makes a few).
MAX_STATUSES: Final = 20
SUMMARY_MAX: Final = 200
_TYPE_RE: Final = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_FILENAME_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
#: An authority that is neither an object's originator nor one of its named recipients: ids
#: start at 1, and feeds from outside the directory carry a negative origin.
_SOME_OTHER_AUTHORITY: Final = 0

# -- labels -------------------------------------------------------------------------------------

TLP_LABELS: Final[dict[str, str]] = {t.value: f"TLP:{t.value.upper()}" for t in markings.Tlp}
TLP_MEANINGS: Final[dict[str, str]] = {
    "clear": N_("no limit on disclosure"),
    "green": N_("the community: authorities and partners this node shares with, never the public"),
    "amber": N_("your organisation and its clients on a need-to-know basis"),
    "amber+strict": N_("your organisation only, on a need-to-know basis"),
    "red": N_("its named recipients only, no further disclosure"),
}
PASS_ON_LABELS: Final[dict[str, str]] = {
    "anyone": N_("you may pass it on, to anyone"),
    "community": N_("you may pass it on to other authorities and partners, not to the public"),
    "named": N_("you may pass it on to its named recipients only"),
    "no": N_("you may not pass it on"),
}
PASS_ON_REASONS: Final[dict[str, str]] = {
    "h1": N_("handling code H1: not without the originator's permission"),
    "recipient": N_("only its originator may pass it on"),
    "strict": N_("it stays within the originating authority"),
    "unnamed": N_("it names no recipient"),
}
HANDLING_CODE_LABELS: Final[dict[str, str]] = {
    "H0": N_("may be used for any law-enforcement purpose"),
    "H1": N_("not to be passed on without the originator's permission"),
    "H2": N_(
        "not to be used as evidence in judicial proceedings without the originator's permission"
    ),
    "H3": N_("other restrictions apply"),
}
RELIABILITY_LABELS: Final[dict[str, str]] = {
    "A": N_("completely reliable"),
    "B": N_("usually reliable"),
    "C": N_("not usually reliable"),
    "X": N_("cannot be assessed"),
}
ACCURACY_LABELS: Final[dict[str, str]] = {
    "1": N_("known to be true without reservation"),
    "2": N_("known personally to the source but not to the officer"),
    "3": N_("not known personally to the source but corroborated"),
    "4": N_("cannot be judged"),
}
DIRECTION_LABELS: Final[dict[str, str]] = {
    "pull": N_("pull (receive)"),
    "push": N_("push (send)"),
}
DONE_MESSAGES: Final[dict[str, str]] = {
    "created": N_("The collection was created."),
    "granted": N_("Access was granted."),
    "revoked": N_("Access was taken away."),
}
#: Types offered in the filter (any other valid type name may be typed in).
KNOWN_TYPES: Final = tuple(
    sorted(
        {
            *stix.SDO_REQUIRED,
            *stix.SRO_REQUIRED,
            *stix.SMO_REQUIRED,
            *stix.SCO_REQUIRED,
            *stix.CUSTOM_SCOS,
        }
    )
)


class Labels:
    """Every label the intel templates need, as msgids (the templates translate them)."""

    tlp = TLP_LABELS
    tlp_meanings = TLP_MEANINGS
    pass_on = PASS_ON_LABELS
    pass_on_reasons = PASS_ON_REASONS
    codes = HANDLING_CODE_LABELS
    reliability = RELIABILITY_LABELS
    accuracy = ACCURACY_LABELS
    directions = DIRECTION_LABELS

    def identifier_kind(self, kind: str) -> str:
        return IDENTIFIER_LABELS.kind(kind)


LABELS = Labels()


# -- small helpers ------------------------------------------------------------------------------


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def ref_of(item: IntelCollection) -> str:
    """How the pages name a collection in URLs: its alias, else its id."""
    return item.alias or item.public_id


def collection_url(item: IntelCollection) -> str:
    return f"/intel/collections/{ref_of(item)}"


def object_url(item: IntelCollection, stix_id: str, version: datetime | None = None) -> str:
    url = f"{collection_url(item)}/objects/{stix_id}"
    if version is None:
        return url
    return url + "?" + urlencode({"version": stix.format_timestamp(version)})


def _may_use_intel(actor: Principal) -> bool:
    return any(
        actor.has(p)
        for p in (Permission.INTEL_READ, Permission.INTEL_WRITE, Permission.INTEL_MANAGE)
    )


def _manages(actor: Principal, item: IntelCollection) -> bool:
    return actor.has(Permission.INTEL_MANAGE) and item.owner_authority_id == actor.authority_id


def _require_manager(actor: Principal, item: IntelCollection) -> None:
    require(actor, Permission.INTEL_MANAGE)
    if item.owner_authority_id != actor.authority_id:
        raise PermissionDenied("only the administrators of the owning authority grant access")


def _authorities(session: Session) -> list[Authority]:
    """The directory's authorities, by name (for grant and export forms)."""
    return list(session.scalars(select(Authority).order_by(Authority.name, Authority.id)).unique())


def _authorities_by_id(session: Session, ids: Sequence[int | None]) -> dict[int, Authority]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.scalars(select(Authority).where(Authority.id.in_(wanted))).unique()
    return {a.id: a for a in rows}


def _stix_time(value: object) -> datetime | None:
    return stix.parse_timestamp(value) if isinstance(value, str) else None


def summary_of(obj: Mapping[str, Any]) -> tuple[str, bool]:
    """What to call an object in a list (its name, else a value, pattern, address…), and
    whether that is code (shown in a monospace font) rather than prose."""
    for key in ("name", "content"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value[:SUMMARY_MAX], False
    for key in ("value", "pattern", "address", "iban", "number", "path"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value[:SUMMARY_MAX], True
    if obj.get("type") == "relationship":
        parts = (str(obj.get(k, "")) for k in ("source_ref", "relationship_type", "target_ref"))
        return " ".join(parts)[:SUMMARY_MAX], True
    if obj.get("type") == "sighting" and isinstance(obj.get("sighting_of_ref"), str):
        return str(obj["sighting_of_ref"]), True
    hashes = obj.get("hashes")
    if isinstance(hashes, Mapping):
        for algorithm, value in hashes.items():
            if isinstance(value, str):
                return f"{algorithm}: {value}"[:SUMMARY_MAX], True
    return "", True


def _rows_of(
    session: Session, item: IntelCollection, manifest: Sequence[service.ManifestEntry]
) -> dict[tuple[str, datetime], IntelObject]:
    """The stored rows of versions the service already let the reader see (for markings)."""
    if not manifest:
        return {}
    wanted = {(m.id, m.version) for m in manifest}
    rows = session.scalars(
        select(IntelObject)
        .options(defer(IntelObject.body))
        .where(
            IntelObject.collection_id == item.id,
            IntelObject.stix_id.in_({m.id for m in manifest}),
            IntelObject.version.in_({m.version for m in manifest}),
        )
    )
    return {(r.stix_id, r.version): r for r in rows if (r.stix_id, r.version) in wanted}


# -- markings in words --------------------------------------------------------------------------


@dataclass(frozen=True)
class PassOn:
    """May the viewer pass an object on: a key of :data:`PASS_ON_LABELS` and, when not, why."""

    verdict: str
    reason: str = ""


def pass_on_for(
    handling: markings.Handling, origin: int | None, actor: Principal, *, partner: bool = False
) -> PassOn:
    """What :func:`markings.may_pass_on` says for this viewer, for the widest audience allowed."""
    holder = None if partner else actor.authority_id
    public = markings.Audience(markings.AudienceKind.PUBLIC)
    other = markings.Audience(markings.AudienceKind.AUTHORITY, authority_id=_SOME_OTHER_AUTHORITY)
    named = [
        *(
            markings.Audience(markings.AudienceKind.AUTHORITY, authority_id=r)
            for r in sorted(handling.recipients)
        ),
        *(
            markings.Audience(markings.AudienceKind.PARTNER, partner=p)
            for p in sorted(handling.partner_recipients)
        ),
    ]
    if markings.may_pass_on(handling, origin, holder, public):
        return PassOn("anyone")
    if markings.may_pass_on(handling, origin, holder, other):
        return PassOn("community")
    if any(markings.may_pass_on(handling, origin, holder, a) for a in named):
        return PassOn("named")
    originator = holder is not None and holder == origin
    if markings.HandlingCode.H1 in handling.codes and not originator:
        reason = "h1"
    elif not originator:
        reason = "recipient"
    elif handling.tlp is markings.Tlp.AMBER_STRICT:
        reason = "strict"
    else:
        reason = "unnamed"
    return PassOn("no", reason)


@dataclass
class Marked:
    """An object version with what its markings say, ready for the templates."""

    obj: dict[str, Any]
    stix_id: str
    type: str
    summary: str
    version: datetime
    date_added: datetime
    url: str
    handling: markings.Handling
    origin_authority_id: int | None
    modified: datetime | None = None
    summary_is_code: bool = True

    @property
    def tlp(self) -> str:
        return self.handling.tlp.value

    @property
    def codes(self) -> list[str]:
        return sorted(c.value for c in self.handling.codes)


def _marked(
    item: IntelCollection,
    obj: dict[str, Any],
    entry: service.ManifestEntry,
    row: IntelObject | None,
) -> Marked:
    # A version the service returned always has its row; were it gone, read it as RED.
    handling = (
        service.handling_of_row(row) if row is not None else markings.Handling(tlp=markings.Tlp.RED)
    )
    summary, is_code = summary_of(obj)
    return Marked(
        obj=obj,
        stix_id=entry.id,
        type=str(obj.get("type", "")),
        summary=summary,
        version=entry.version,
        date_added=entry.date_added,
        url=object_url(item, entry.id),
        handling=handling,
        origin_authority_id=row.origin_authority_id if row is not None else None,
        modified=_stix_time(obj.get("modified") or obj.get("created")),
        summary_is_code=is_code or not summary,
    )


# -- the index: collections ---------------------------------------------------------------------


@dataclass
class Listed:
    collection: IntelCollection
    can_read: bool
    can_write: bool
    manages: bool
    owner: Authority | None
    visible: int | None = None  # objects the user may see (None: may not read)
    capped: bool = False

    @property
    def url(self) -> str:
        return collection_url(self.collection)


def visible_count(
    session: Session, actor: Principal, item: IntelCollection, cap: int = COUNT_CAP
) -> tuple[int, bool]:
    """How many objects (newest versions) the actor may see, counted up to ``cap``."""
    count, token = 0, None
    while count < cap:
        page = service.query(
            session, actor, item, limit=min(service.MAX_PAGE, cap - count), next_token=token
        )
        count += len(page.manifest)
        if not page.more or page.next is None:
            return count, False
        token = page.next
    return count, True


def _listed(session: Session, actor: Principal) -> list[Listed]:
    found = {c.collection.id: c for c in service.list_collections(session, actor)}
    items: list[tuple[IntelCollection, bool, bool]] = [
        (c.collection, c.can_read, c.can_write) for c in found.values()
    ]
    if actor.has(Permission.INTEL_MANAGE):
        # Administrators manage their authority's collections (grants, feeds) without reading
        # them: list those too.
        owned = session.scalars(
            select(IntelCollection)
            .where(IntelCollection.owner_authority_id == actor.authority_id)
            .order_by(IntelCollection.created_at, IntelCollection.id)
        )
        items.extend((c, False, False) for c in owned if c.id not in found)
    owners = _authorities_by_id(session, [c.owner_authority_id for c, _, _ in items])
    listed: list[Listed] = []
    for collection, read, write in items:
        entry = Listed(
            collection,
            read,
            write,
            _manages(actor, collection),
            owners.get(collection.owner_authority_id),
        )
        if read:
            entry.visible, entry.capped = visible_count(session, actor, collection)
        listed.append(entry)
    return listed


def _index_page(
    request: Request,
    session: Session,
    actor: Principal,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "intel/index.html",
        {
            "collections": _listed(session, actor),
            "may_manage": actor.has(Permission.INTEL_MANAGE),
            "form": form or {},
            "error": error,
            "count_cap": COUNT_CAP,
        },
        status=status,
    )


@router.get("/intel", response_class=HTMLResponse)
def intel_index(request: Request, actor: Actor, session: Db) -> HTMLResponse:
    """The collections the user may read or write (and, for administrators, manage)."""
    if not _may_use_intel(actor):
        raise PermissionDenied("this page needs the permission 'intel:read' or 'intel:manage'")
    return _index_page(request, session, actor)


@router.post("/intel/collections", response_class=HTMLResponse, dependencies=CSRF)
def create_collection(
    request: Request,
    actor: Actor,
    session: Db,
    title: Annotated[str, Form(max_length=200)] = "",
    alias: Annotated[str, Form(max_length=100)] = "",
    description: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    require(actor, Permission.INTEL_MANAGE)
    try:
        with unit_of_work(session):
            item = service.create_collection(
                session,
                actor,
                title=title,
                description=description,
                alias=alias.strip() or None,
            )
    except DomainError as exc:
        form = {"title": title, "alias": alias, "description": description}
        return _index_page(request, session, actor, form=form, error=exc.detail, status=exc.status)
    return _redirect(f"{collection_url(item)}?done=created")


# -- one collection -----------------------------------------------------------------------------


@dataclass
class ImportSummary:
    """The outcome of an upload, read back from the status resources it wrote."""

    stored: int = 0
    already_present: int = 0
    invalid: int = 0
    errors: list[str] = field(default_factory=list)


def _import_summary(session: Session, actor: Principal, request: Request) -> ImportSummary | None:
    params = request.query_params
    if params.get("done") != "imported":
        return None
    summary = ImportSummary()
    found = False
    for status_id in params.getlist("status")[:MAX_STATUSES]:
        try:
            status = service.get_status(session, actor, status_id)
        except NotFound:
            continue
        found = True
        summary.stored += status.success_count
        summary.already_present += status.already_present
        summary.invalid += status.invalid
        for failure in status.failures:
            if failure.get("message") == service.ALREADY_PRESENT:
                continue
            if len(summary.errors) < bundles.MAX_ERRORS_SHOWN:
                summary.errors.append(f"{failure.get('id') or '(no id)'}: {failure['message']}")
    return summary if found else None


@dataclass
class Grantee:
    authority_id: int | None
    token_id: int | None
    can_read: bool
    can_write: bool
    label: str


def _grantees(session: Session, actor: Principal, item: IntelCollection) -> list[Grantee]:
    grants = service.list_grants(session, actor, item)
    names = _authorities_by_id(session, [g.authority_id for g in grants])
    found: list[Grantee] = []
    for g in grants:
        if g.authority_id is not None:
            authority = names.get(g.authority_id)
            label = authority.name if authority is not None else f"#{g.authority_id}"
        else:
            token = session.get(ApiToken, g.token_id)
            label = f"{service.partner_name(g.token_id or 0)}" + (
                f" — {token.name}" if token is not None else ""
            )
        found.append(Grantee(g.authority_id, g.token_id, g.can_read, g.can_write, label))
    return found


def _collection_page(
    request: Request,
    session: Session,
    actor: Principal,
    settings: Settings,
    item: IntelCollection,
    *,
    upload_error: str | None = None,
    grant_error: str | None = None,
    grant_form: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    can_read, can_write = service.access(session, actor, item)
    manages = _manages(actor, item)
    params = request.query_params
    type_filter = (params.get("type") or "").strip()
    next_token = (params.get("next") or "").strip() or None
    errors: list[str] = []
    objects: list[Marked] = []
    more_url: str | None = None
    if type_filter and (len(type_filter) > 60 or not _TYPE_RE.fullmatch(type_filter)):
        errors.append(gettext(request, "A STIX type is lower-case letters, digits and hyphens."))
        type_filter = ""
    if can_read:
        try:
            page = service.query(
                session,
                actor,
                item,
                match_type=[type_filter] if type_filter else (),
                limit=PAGE_SIZE,
                next_token=next_token,
                newest_first=True,
            )
        except InvalidInput:
            errors.append(gettext(request, "This page link is no longer valid: start again."))
            page = service.query(
                session,
                actor,
                item,
                match_type=[type_filter] if type_filter else (),
                limit=PAGE_SIZE,
                newest_first=True,
            )
            next_token = None
        with unit_of_work(session):
            service.audit_read(session, actor, item, page, via="web")
        rows = _rows_of(session, item, page.manifest)
        objects = [
            _marked(item, obj, entry, rows.get((entry.id, entry.version)))
            for obj, entry in zip(page.objects, page.manifest, strict=True)
        ]
        if page.more and page.next:
            query = {"type": type_filter} if type_filter else {}
            more_url = f"{collection_url(item)}?" + urlencode({**query, "next": page.next})
    flashes: list[tuple[str, str]] = []
    done = params.get("done", "")
    if done in DONE_MESSAGES and upload_error is None and grant_error is None:
        flashes.append(("ok", gettext(request, DONE_MESSAGES[done])))
    imported = _import_summary(session, actor, request) if upload_error is None else None
    authorities = _authorities(session)
    return render(
        request,
        "intel/collection.html",
        {
            "item": item,
            "ref": ref_of(item),
            "url": collection_url(item),
            "owner": session.get(Authority, item.owner_authority_id),
            "can_read": can_read,
            "can_write": can_write,
            "manages": manages,
            "labels": LABELS,
            "objects": objects,
            "type_filter": type_filter,
            "known_types": KNOWN_TYPES,
            "paged": next_token is not None,
            "more_url": more_url,
            "errors": errors,
            "flashes": flashes,
            "imported": imported,
            "upload_error": upload_error,
            "max_body": size_text(settings.max_body_bytes),
            "grants": _grantees(session, actor, item) if manages else [],
            "grant_error": grant_error,
            "grant_form": grant_form or {},
            "authorities": authorities,
            "grantable": [a for a in authorities if a.id != item.owner_authority_id],
            "tz": authority_tz(session, actor),
        },
        status=422 if errors and status == 200 else status,
    )


@router.get("/intel/collections/{ref}", response_class=HTMLResponse)
def collection_page(
    ref: str, request: Request, actor: Actor, session: Db, settings: Conf
) -> HTMLResponse:
    """The objects the user may see, the upload form, the export form and (owners) grants."""
    item = service.get_collection(session, actor, ref)
    return _collection_page(request, session, actor, settings, item)


@router.post("/intel/collections/{ref}/bundles", response_class=HTMLResponse, dependencies=CSRF)
def upload_bundle(
    ref: str,
    request: Request,
    actor: Actor,
    session: Db,
    settings: Conf,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Import an uploaded STIX 2.1 bundle (up to the web body limit) into the collection."""
    item = service.get_collection(session, actor, ref)
    service.require_write(session, actor, item)
    limit = settings.max_body_bytes
    error: str | None = None
    if file is None or not file.filename:
        error = gettext(request, "Choose a STIX 2.1 bundle (a JSON file) to import.")
    else:
        data = file.file.read(limit + 1)
        if len(data) > limit:
            error = gettext(
                request, "The file is too large for the web form: use `crossborder intel import`."
            )
        else:
            try:
                objects = bundles.parse(data)
                with unit_of_work(session):
                    report = bundles.import_objects(session, actor, item, objects)
            except InvalidInput as exc:
                error = (
                    gettext(request, "Nothing was imported: the file is not a STIX 2.1 bundle.")
                    + " "
                    + exc.detail
                )
            else:
                query = urlencode([("done", "imported"), *(("status", s) for s in report.statuses)])
                return _redirect(f"{collection_url(item)}?{query}")
    item = service.get_collection(session, actor, ref)
    return _collection_page(request, session, actor, settings, item, upload_error=error, status=422)


def _optional_id(raw: str, name: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise InvalidInput(f"{name}: a number", field=name)
    return int(raw)


@router.post("/intel/collections/{ref}/grants", response_class=HTMLResponse, dependencies=CSRF)
def grant_access(
    ref: str,
    request: Request,
    actor: Actor,
    session: Db,
    settings: Conf,
    authority_id: Annotated[str, Form(max_length=20)] = "",
    token_id: Annotated[str, Form(max_length=20)] = "",
    can_read: Annotated[bool, Form()] = False,
    can_write: Annotated[bool, Form()] = False,
) -> Response:
    """Give an authority or an API token read and/or write; neither takes access away."""
    item = service.get_collection(session, actor, ref)
    _require_manager(actor, item)
    form = {
        "authority_id": authority_id,
        "token_id": token_id,
        "can_read": "true" if can_read else "",
        "can_write": "true" if can_write else "",
    }
    try:
        with unit_of_work(session):
            service.grant(
                session,
                actor,
                item,
                authority_id=_optional_id(authority_id, "authority_id"),
                token_id=_optional_id(token_id, "token_id"),
                can_read=can_read,
                can_write=can_write,
            )
    except DomainError as exc:
        item = service.get_collection(session, actor, ref)
        return _collection_page(
            request,
            session,
            actor,
            settings,
            item,
            grant_error=exc.detail,
            grant_form=form,
            status=exc.status,
        )
    done = "granted" if can_read or can_write else "revoked"
    return _redirect(f"{collection_url(item)}?done={done}#grants")


def _audience_text(audience: str, partner: str) -> str:
    audience, partner = audience.strip(), partner.strip()
    if audience == "partner":
        return f"partner:{partner}" if partner else "partner:"
    return audience or "public"


@router.get("/intel/collections/{ref}/export")
def export_bundle(
    ref: str,
    actor: Actor,
    session: Db,
    audience: str = "public",
    partner: str = "",
) -> Response:
    """Download what the user may pass on to ``audience`` (``public``, ``authority:<short
    name or id>``, ``partner:<name>``; or ``partner`` with the name in ``partner``)."""
    wanted = _audience_text(audience[:300], partner[:200])
    with unit_of_work(session):
        item = service.get_collection(session, actor, ref)
        bundle, left_out = service.export_bundle(
            session, actor, item, audience=service.parse_audience(session, wanted)
        )
    name = _FILENAME_UNSAFE.sub("-", f"{ref_of(item)}-{wanted}").strip("-")[:120]
    return Response(
        content=orjson.dumps(bundle),
        media_type=service.MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{name}.json"',
            "X-Crossborder-Left-Out": str(len(left_out)),
        },
    )


# -- one object ---------------------------------------------------------------------------------


@dataclass
class ContainedIdentifier:
    """An identifier an object holds, with its identifier-search link."""

    kind: str
    value: str

    @property
    def search_url(self) -> str:
        return "/identifiers?" + urlencode({"type": self.kind, "value": self.value})


def _conditions(
    session: Session, actor: Principal, item: IntelCollection, obj: Mapping[str, Any]
) -> str:
    """The H3 conditions of the handling marking definitions the object references."""
    refs = [r for r in obj.get("object_marking_refs") or [] if isinstance(r, str)]
    for granular in obj.get("granular_markings") or []:
        if isinstance(granular, Mapping) and isinstance(granular.get("marking_ref"), str):
            refs.append(granular["marking_ref"])
    refs = [r for r in dict.fromkeys(refs) if r not in markings.TLP_BY_ID]
    if not refs:
        return ""
    page = service.query(
        session,
        actor,
        item,
        match_id=refs[:100],
        match_type=["marking-definition"],
        limit=100,
    )
    definitions = {d["id"]: d for d in page.objects}
    return service.handling_for(obj, definitions).conditions


@router.get("/intel/collections/{ref}/objects/{stix_id}", response_class=HTMLResponse)
def object_page(
    ref: str, stix_id: str, request: Request, actor: Actor, session: Db
) -> HTMLResponse:
    """One object: its versions, its markings in words, its JSON and the identifiers in it.

    An object the user may not read is answered as one that does not exist (404).
    """
    gone = NotFound("no such object in this collection")
    item = service.get_collection(session, actor, ref)
    if not stix.is_stix_id(stix_id) or not service.access(session, actor, item)[0]:
        raise gone
    versions = service.get_versions(session, actor, item, stix_id)
    if not versions.manifest:
        raise gone
    wanted = request.query_params.get("version")
    if wanted:
        chosen = [m for m in versions.manifest if stix.format_timestamp(m.version) == wanted]
        if not chosen:
            raise gone
        entry = chosen[0]
    else:
        entry = max(versions.manifest, key=lambda m: m.version)
    page = service.query(
        session, actor, item, match_id=[stix_id], match_version=[entry.version], limit=1
    )
    if not page.objects:
        raise gone
    with unit_of_work(session):
        service.audit_read(session, actor, item, page, via="web")
    obj = page.objects[0]
    row = _rows_of(session, item, page.manifest).get((entry.id, entry.version))
    shown = _marked(item, obj, page.manifest[0], row)
    partner = service.audience_of(session, actor).kind is markings.AudienceKind.PARTNER
    handling = shown.handling
    names = _authorities_by_id(session, [shown.origin_authority_id, *handling.recipients])
    return render(
        request,
        "intel/object.html",
        {
            "item": item,
            "url": collection_url(item),
            "shown": shown,
            "latest": entry.version == max(m.version for m in versions.manifest),
            "versions": [
                (m, object_url(item, stix_id, m.version))
                for m in sorted(versions.manifest, key=lambda m: m.version, reverse=True)
            ],
            "more_versions": versions.more,
            "labels": LABELS,
            "pass_on": pass_on_for(handling, shown.origin_authority_id, actor, partner=partner),
            "originator": names.get(shown.origin_authority_id or 0),
            "own": shown.origin_authority_id == actor.authority_id,
            "recipients": [names[r] for r in sorted(handling.recipients) if r in names],
            "partner_recipients": sorted(handling.partner_recipients),
            "conditions": (
                _conditions(session, actor, item, obj)
                if markings.HandlingCode.H3 in handling.codes
                else ""
            ),
            "identifiers": [ContainedIdentifier(k, v) for k, v in stix.identifiers_in(obj)],
            "may_search": actor.has(Permission.IDENTIFIERS_READ),
            "pretty": orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode(),
            "tz": authority_tz(session, actor),
        },
    )


# -- feeds --------------------------------------------------------------------------------------


@dataclass
class FeedRow:
    feed: IntelFeed
    collection: IntelCollection | None

    @property
    def remote(self) -> str:
        return f"{self.feed.api_root_url} · {self.feed.remote_collection_id}"


@router.get("/intel/feeds", response_class=HTMLResponse)
def feeds_page(request: Request, actor: Actor, session: Db) -> HTMLResponse:
    """The TAXII feeds of the authority's collections (read only: they are set up in the CLI)."""
    found = feeds.list_feeds(session, actor)  # intel:manage
    collections = {
        c.id: c
        for c in session.scalars(
            select(IntelCollection).where(IntelCollection.id.in_({f.collection_id for f in found}))
        )
    }
    return render(
        request,
        "intel/feeds.html",
        {
            "rows": [FeedRow(f, collections.get(f.collection_id)) for f in found],
            "labels": LABELS,
            "tz": authority_tz(session, actor),
            "collection_url": collection_url,
        },
    )
