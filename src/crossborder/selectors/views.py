"""HTML pages for identifiers: "where else does this appear?", identifier sets, the graph of a
record, the warning lists in force — and the panel that a record's page embeds.

These pages are the HTML twin of ``selectors.api`` and call the same service functions; the
rules (normalisation, correlation, need-to-know) live in the service. A hit in a record the
user may not open is only ever shown as "another authority holds this — contact X", and
naming X is audited: lookups audit themselves, and every page that shows a record's
correlations calls :func:`~crossborder.selectors.service.audit_disclosure` (see
:func:`identifiers_panel`). Searching is a GET (bookmarkable, changes nothing but the audit
trail); every POST form carries the CSRF token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Final, NamedTuple
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from crossborder.auth.deps import web_principal
from crossborder.auth.permissions import Permission, Principal, require
from crossborder.core.errors import DomainError, InvalidInput, NotFound
from crossborder.db.session import unit_of_work
from crossborder.deps import get_session, get_settings
from crossborder.directory.models import Authority
from crossborder.directory.taxonomy import N_
from crossborder.requests.identifiers import region_of
from crossborder.selectors import correlate as rules
from crossborder.selectors import graph as graphs
from crossborder.selectors import scopes, service, sets
from crossborder.settings import Settings
from crossborder.web import i18n
from crossborder.web.csrf import require_form_token
from crossborder.web.templating import gettext, language, render

router = APIRouter()

Actor = Annotated[Principal, Depends(web_principal)]
Db = Annotated[Session, Depends(get_session)]
Conf = Annotated[Settings, Depends(get_settings)]
CSRF = [Depends(require_form_token)]

#: At most this many identifiers of one record are correlated and listed on a page.
PANEL_MAX: Final = 500
GRAPH_SCOPES: Final = ("request", "set")
VALUE_MAX: Final = 2000

# -- labels -----------------------------------------------------------------------------------

RELATION_LABELS: dict[str, str] = {
    "same": N_("same value"),
    "related": N_("a variant of this value"),
    "network": N_("in the network searched"),
    "prefix": N_("same IPv6 /64"),
}
#: What "related" means for each kind of value (see ``correlate.related_form``).
RELATED_LABELS: dict[str, str] = {
    "crypto": N_("same address on another chain"),
    "email": N_("same mailbox (dots or +tag ignored)"),
    "ip": N_("same address (IPv4 and IPv4-mapped IPv6)"),
}
STRENGTH_LABELS: dict[str, str] = {
    "match": N_("match"),
    "weak": N_("weak"),
    "mismatch": N_("other sighting"),
}
STRENGTH_HINTS: dict[str, str] = {
    "weak": N_("no port or time to compare"),
    "mismatch": N_("different port or time: probably another subscriber"),
}
PREFIX_HINT = N_("another address in the same /64")
SOURCE_LABELS: dict[str, str] = {
    "entered": N_("entered"),
    "extracted": N_("found in the text"),
    "imported": N_("imported"),
    "received": N_("received from the partner"),
}
FLAG_LABELS: dict[str, str] = {
    "public": N_("public address"),
    "private": N_("private address"),
    "cgnat": N_("shared address (carrier-grade NAT)"),
    "loopback": N_("loopback"),
    "link_local": N_("link-local"),
    "documentation": N_("documentation range"),
    "multicast": N_("multicast"),
    "reserved": N_("reserved"),
    "unspecified": N_("unspecified address"),
    "ipv4_mapped": N_("IPv4-mapped IPv6"),
    "unknown_tld": N_("unknown top-level domain"),
    "defanged": N_("was defanged"),
    "userinfo": N_("URL with user name"),
    "evm": N_("EVM address, chain not given"),
    "unverified": N_("format not verified"),
    "zero_width_removed": N_("invisible characters removed"),
}
LOCATION_LABELS: dict[str, str] = {
    "summary of facts": N_("summary of the facts"),
    "message": N_("a message"),
    "attachment": N_("an attachment"),
}
LINE_LABEL = N_("line %(line)s")
_LINE = re.compile(r"line (\d+)")


class Location(NamedTuple):
    """Where an identifier was found, as a msgid and its parameters (msgid "" = show as is)."""

    msgid: str
    args: dict[str, str]


class Labels:
    """Every label the identifier templates need, as msgids (the templates translate them)."""

    relations = RELATION_LABELS
    strengths = STRENGTH_LABELS
    strength_hints = STRENGTH_HINTS
    sources = SOURCE_LABELS
    flags = FLAG_LABELS

    @property
    def kinds(self) -> dict[str, str]:
        # Imported here: the requests pages embed the identifiers panel (no import cycle).
        from crossborder.requests.views import IDENTIFIER_KIND_LABELS

        return IDENTIFIER_KIND_LABELS

    def kind(self, kind: str) -> str:
        return self.kinds.get(kind, kind)

    def relation(self, relation: str, kind: str) -> str:
        if relation == "related" and kind in RELATED_LABELS:
            return RELATED_LABELS[kind]
        return RELATION_LABELS.get(relation, relation)

    def hint(self, strength: str, relation: str) -> str:
        if strength == "weak" and relation == "prefix":
            return PREFIX_HINT
        return STRENGTH_HINTS.get(strength, "")

    def location(self, text: str) -> Location:
        if text in LOCATION_LABELS:
            return Location(LOCATION_LABELS[text], {})
        line = _LINE.fullmatch(text)
        if line:
            return Location(LINE_LABEL, {"line": line.group(1)})
        return Location("", {})


LABELS = Labels()


# -- the panel of a record's identifiers (request page, set page, graph) ------------------------


@dataclass
class Panel:
    """A record's identifiers with their correlations, ready for ``identifiers/_panel.html``."""

    allowed: bool
    scope_type: str
    scope_id: str
    identifiers: list[service.RecordIdentifier] = field(default_factory=list)
    total: int = 0
    tz: str = "UTC"
    correlation_limit: int = 50
    list_names: dict[str, str] = field(default_factory=dict)
    labels: Labels = LABELS

    @property
    def graph_url(self) -> str:
        return "/identifiers/graph?" + urlencode({"scope": f"{self.scope_type}:{self.scope_id}"})

    @property
    def truncated(self) -> bool:
        return len(self.identifiers) < self.total

    @property
    def correlations(self) -> list[service.Correlation]:
        return [i.correlation for i in self.identifiers if i.correlation is not None]


def authority_tz(session: Session, actor: Principal) -> str:
    own = session.get(Authority, actor.authority_id)
    return own.time_zone if own is not None and own.time_zone else "UTC"


def list_names(config: service.Config) -> dict[str, str]:
    index = config.warning_index()
    return {info.slug: info.name for info in index.lists} if index is not None else {}


def correlated_identifiers(
    session: Session,
    actor: Principal,
    config: service.Config,
    scope_type: str,
    scope_id: str,
    *,
    limit: int = PANEL_MAX,
) -> tuple[list[service.RecordIdentifier], int]:
    """The first ``limit`` identifiers of a scope, correlated, and how many it holds in all.

    Raises :class:`NotFound` when the scope is not visible to the actor. No audit here.
    """
    items = service.record_identifiers(
        session, actor, scope_type, scope_id, config=config, correlate_them=False
    )
    shown = items[:limit]
    if shown:
        probes = [
            service.Probe(
                i.kind, i.canonical, i.flags, rules.Sighting(i.port, i.seen_from, i.seen_until)
            )
            for i in shown
        ]
        found = service.correlate(
            session, actor, probes, config=config, exclude=(scope_type, scope_id)
        )
        shown = [replace(i, correlation=c) for i, c in zip(shown, found, strict=True)]
    return shown, len(items)


def _audit_shown(
    session: Session,
    actor: Principal,
    shown: list[service.RecordIdentifier],
    scope: tuple[str, str],
) -> None:
    """Record that these correlations were shown (only if one names another authority)."""
    scope_type, scope_id = scope
    service.audit_disclosure(
        session,
        actor,
        [i.correlation for i in shown if i.correlation is not None],
        action="identifiers.viewed",
        object_type=scope_type,
        object_id=scope_id,
    )


def identifiers_panel(
    session: Session,
    actor: Principal,
    settings: Settings,
    scope_type: str,
    scope_id: str,
    *,
    limit: int = PANEL_MAX,
) -> Panel:
    """A record's identifiers and their correlations, for a page that shows them.

    Audits (``identifiers.viewed``, in its own unit of work) when a withheld hit names another
    authority. A user without ``identifiers:read``, or who may not see the record's
    identifiers, gets a panel with ``allowed`` false, which the template does not draw.
    """
    if not actor.has(Permission.IDENTIFIERS_READ):
        return Panel(False, scope_type, scope_id)
    config = service.Config.from_settings(settings)
    try:
        with unit_of_work(session):
            items, total = correlated_identifiers(
                session, actor, config, scope_type, scope_id, limit=limit
            )
            _audit_shown(session, actor, items, (scope_type, scope_id))
    except NotFound:
        return Panel(False, scope_type, scope_id)
    return Panel(
        True,
        scope_type,
        scope_id,
        items,
        total,
        tz=authority_tz(session, actor),
        correlation_limit=config.correlation_limit,
        list_names=list_names(config),
    )


# -- small helpers ------------------------------------------------------------------------------


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_to_utc(raw: str, tz: str) -> datetime | None:
    """A ``datetime-local`` value read in ``tz``, as aware UTC; None if it is not a time."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(tz))
    return parsed.astimezone(UTC)


def size_text(size: int) -> str:
    """A byte count as the web body limit is configured: 1 MB, 500 kB."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:g} MB"
    return f"{max(size // 1000, 1)} kB"


def authority_url(authority_id: int | None) -> str | None:
    return f"/directory/authorities/{authority_id}" if authority_id is not None else None


# -- "where else does this appear?" -------------------------------------------------------------

DONE_MESSAGES: dict[str, str] = {
    "created": N_("The identifier set was created."),
    "added": N_("The value was added to the node's warning list."),
    "removed": N_("The value was removed from the node's warning list."),
}


@dataclass
class LookupForm:
    type: str = "ip"
    value: str = ""
    port: str = ""
    time: str = ""


def _lookup_page(
    request: Request,
    session: Session,
    actor: Principal,
    settings: Settings,
    *,
    form: LookupForm,
    result: service.Lookup | None = None,
    errors: list[str] | None = None,
    set_form: dict[str, str] | None = None,
    set_error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    config = service.Config.from_settings(settings)
    return render(
        request,
        "identifiers/lookup.html",
        {
            "labels": LABELS,
            "form": form,
            "result": result,
            "errors": errors or [],
            "tz": authority_tz(session, actor),
            "list_names": list_names(config),
            "correlation_limit": config.correlation_limit,
            "network_max": service.NETWORK_LOOKUP_MAX,
            "sets": sets.list_sets(session, actor),
            "may_write": actor.has(Permission.IDENTIFIERS_WRITE),
            "set_form": set_form or {},
            "set_error": set_error,
        },
        status=status,
    )


@router.get("/identifiers", response_class=HTMLResponse)
def lookup_page(request: Request, actor: Actor, session: Db, settings: Conf) -> HTMLResponse:
    """Search a value (or an IP network) across every record; show the authority's sets."""
    require(actor, Permission.IDENTIFIERS_READ)
    params = request.query_params
    form = LookupForm(
        type=(params.get("type") or "ip").strip(),
        value=(params.get("value") or "").strip(),
        port=(params.get("port") or "").strip(),
        time=(params.get("time") or "").strip(),
    )
    if "value" not in params:
        return _lookup_page(request, session, actor, settings, form=form)
    tz = authority_tz(session, actor)
    errors: list[str] = []
    if form.type not in LABELS.kinds:
        errors.append(gettext(request, "Choose one of the listed values."))
    if not form.value:
        errors.append(gettext(request, "Enter a value to search for."))
    elif len(form.value) > VALUE_MAX:
        errors.append(gettext(request, "This text is too long."))
    port: int | None = None
    if form.port:
        if form.port.isdigit() and 0 < int(form.port) <= 65535:
            port = int(form.port)
        else:
            errors.append(gettext(request, "The source port is a whole number from 1 to 65535."))
    moment: datetime | None = None
    if form.time:
        moment = local_to_utc(form.time, tz)
        if moment is None:
            errors.append(gettext(request, "Enter a valid date and time."))
    result = None
    if not errors:
        try:
            with unit_of_work(session):
                result = service.lookup(
                    session,
                    actor,
                    kind=form.type,
                    value=form.value,
                    config=service.Config.from_settings(settings),
                    port=port,
                    seen_from=moment,
                    seen_until=moment,
                    default_region=region_of(session, actor.authority_id),
                )
        except InvalidInput as exc:
            errors.append(exc.detail)
    return _lookup_page(
        request,
        session,
        actor,
        settings,
        form=form,
        result=result,
        errors=errors,
        status=422 if errors else 200,
    )


# -- identifier sets ----------------------------------------------------------------------------


@router.post("/identifiers/sets", response_class=HTMLResponse, dependencies=CSRF)
def create_set(
    request: Request,
    actor: Actor,
    session: Db,
    settings: Conf,
    name: Annotated[str, Form(max_length=200)] = "",
    description: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    require(actor, Permission.IDENTIFIERS_READ)
    try:
        with unit_of_work(session):
            item = sets.create_set(session, actor, name=name, description=description)
    except DomainError as exc:
        return _lookup_page(
            request,
            session,
            actor,
            settings,
            form=LookupForm(),
            set_form={"name": name, "description": description},
            set_error=exc.detail,
            status=exc.status,
        )
    return _redirect(f"/identifiers/sets/{item.public_id}?done=created")


def _import_message(request: Request) -> tuple[str, str] | None:
    """The flash after a CSV import: the counts come back in the redirect's query."""
    params = request.query_params
    stored, rows, invalid = (params.get(k, "") for k in ("stored", "rows", "invalid"))
    if params.get("done") != "imported" or not (stored.isdigit() and rows.isdigit()):
        return None
    t = i18n.translations(language(request))
    text = t.ngettext(
        "%(num)d identifier stored from %(rows)d rows",
        "%(num)d identifiers stored from %(rows)d rows",
        int(stored),
    ) % {"num": int(stored), "rows": int(rows)}
    if invalid.isdigit() and int(invalid):
        text += " " + t.ngettext(
            "(%(num)d invalid row skipped)", "(%(num)d invalid rows skipped)", int(invalid)
        ) % {"num": int(invalid)}
    return ("ok", text)


def _set_page(
    request: Request,
    session: Session,
    actor: Principal,
    settings: Settings,
    item: Any,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    panel = identifiers_panel(session, actor, settings, "set", item.public_id)
    flashes: list[tuple[str, str]] = []
    done = request.query_params.get("done", "")
    if error is None:
        imported = _import_message(request)
        if imported is not None:
            flashes.append(imported)
        elif done in DONE_MESSAGES:
            flashes.append(("ok", gettext(request, DONE_MESSAGES[done])))
    return render(
        request,
        "identifiers/set.html",
        {
            "item": item,
            "panel": panel,
            "flashes": flashes,
            "error": error,
            "may_write": actor.has(Permission.IDENTIFIERS_WRITE),
            "max_body": size_text(settings.max_body_bytes),
        },
        status=status,
    )


@router.get("/identifiers/sets/{set_id}", response_class=HTMLResponse)
def set_page(
    set_id: str, request: Request, actor: Actor, session: Db, settings: Conf
) -> HTMLResponse:
    item = sets.get_set(session, actor, set_id)
    return _set_page(request, session, actor, settings, item)


@router.post("/identifiers/sets/{set_id}/import", response_class=HTMLResponse, dependencies=CSRF)
def import_set(
    set_id: str,
    request: Request,
    actor: Actor,
    session: Db,
    settings: Conf,
    file: Annotated[UploadFile | None, File()] = None,
    skip_invalid: Annotated[bool, Form()] = False,
) -> Response:
    """Append the identifiers of an uploaded CSV file to a set (all or nothing by default)."""
    item = sets.get_set(session, actor, set_id)
    limit = settings.max_body_bytes
    error: str | None = None
    if file is None or not file.filename:
        error = gettext(request, "Choose a CSV file to import.")
    else:
        data = file.file.read(limit + 1)
        if len(data) > limit:
            error = gettext(
                request,
                "The file is too large for the web form: use `crossborder identifiers import`.",
            )
        else:
            try:
                with unit_of_work(session):
                    report = sets.import_csv(
                        session,
                        actor,
                        item,
                        sets.read_text(data),
                        default_region=region_of(session, actor.authority_id),
                        skip_invalid=skip_invalid,
                    )
            except InvalidInput as exc:
                error = exc.detail
            else:
                query = urlencode(
                    {
                        "done": "imported",
                        "stored": report.stored,
                        "rows": report.rows,
                        "invalid": report.invalid,
                    }
                )
                return _redirect(f"/identifiers/sets/{item.public_id}?{query}")
    item = sets.get_set(session, actor, set_id)
    return _set_page(request, session, actor, settings, item, error=error, status=422)


# -- the graph ----------------------------------------------------------------------------------


def graph_items(items: list[service.RecordIdentifier]) -> list[graphs.Item]:
    """A record's correlated identifiers as the graph layout's input."""
    out: list[graphs.Item] = []
    for index, ident in enumerate(items):
        c = ident.correlation
        links: list[graphs.Link] = []
        if c is not None and not c.suppressed:
            links.extend(
                graphs.Link(
                    f"{h.scope_type}:{h.scope_id}",
                    h.label,
                    h.url,
                    withheld=False,
                    strength=h.strength.value,
                    relation=h.relation,
                )
                for h in c.hits
            )
            links.extend(
                graphs.Link(
                    f"authority:{w.authority_id if w.authority_id is not None else 'unknown'}",
                    w.authority_name,
                    authority_url(w.authority_id),
                    withheld=True,
                    strength="",
                    relation="",
                )
                for w in c.withheld
            )
        label = ident.canonical
        if ident.port is not None:
            label = f"{label} :{ident.port}"
        out.append(
            graphs.Item(
                f"identifier-{index}",
                ident.kind,
                label,
                suppressed=bool(c and c.suppressed),
                links=tuple(links),
            )
        )
    return out


@router.get("/identifiers/graph", response_class=HTMLResponse)
def graph_page(
    request: Request, actor: Actor, session: Db, settings: Conf, scope: str = ""
) -> HTMLResponse:
    """The record at the centre, its identifiers around it, what they correlate with outside."""
    require(actor, Permission.IDENTIFIERS_READ)
    scope_type, _, scope_id = scope.partition(":")
    if scope_type not in GRAPH_SCOPES or not scope_id:
        raise NotFound("no such record, or not visible to your authority")
    config = service.Config.from_settings(settings)
    with unit_of_work(session):
        items, total = correlated_identifiers(session, actor, config, scope_type, scope_id)
        _audit_shown(session, actor, items, (scope_type, scope_id))
    centre = scopes.describe(session, [(scope_type, scope_id)]).get((scope_type, scope_id))
    label = centre.label if centre is not None else scope_id
    url = centre.url if centre is not None else None
    drawn = graphs.layout(f"{scope_type}:{scope_id}", label, url, graph_items(items))
    return render(
        request,
        "identifiers/graph.html",
        {
            "labels": LABELS,
            "graph": drawn,
            "centre_label": label,
            "centre_url": url,
            "scope_type": scope_type,
            "identifiers_total": max(total, drawn.identifiers_total),
        },
    )


# -- warning lists ------------------------------------------------------------------------------


def _noise_page(
    request: Request,
    session: Session,
    actor: Principal,
    settings: Settings,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    local = service.list_local_warnings(session, actor)  # identifiers:read or :manage
    config = service.Config.from_settings(settings)
    index = config.warning_index()
    done = request.query_params.get("done", "")
    flashes = [("ok", gettext(request, DONE_MESSAGES[done]))] if done in DONE_MESSAGES else []
    return render(
        request,
        "identifiers/noise.html",
        {
            "labels": LABELS,
            "lists": sorted(index.lists, key=lambda i: i.slug) if index is not None else [],
            "correlation_limit": config.correlation_limit,
            "local": local,
            "tz": authority_tz(session, actor),
            "may_manage": actor.has(Permission.IDENTIFIERS_MANAGE),
            "may_read": actor.has(Permission.IDENTIFIERS_READ),
            "form": form or {},
            "error": error,
            "flashes": [] if error else flashes,
        },
        status=status,
    )


@router.get("/identifiers/noise", response_class=HTMLResponse)
def noise_page(request: Request, actor: Actor, session: Db, settings: Conf) -> HTMLResponse:
    """The warning lists in force, the correlation limit and the node's own warning list."""
    return _noise_page(request, session, actor, settings)


@router.post("/identifiers/noise/local", response_class=HTMLResponse, dependencies=CSRF)
def add_warning(
    request: Request,
    actor: Actor,
    session: Db,
    settings: Conf,
    type: Annotated[str, Form(max_length=20)] = "",
    value: Annotated[str, Form(max_length=VALUE_MAX)] = "",
    reason: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    require(actor, Permission.IDENTIFIERS_MANAGE)
    form = {"type": type, "value": value, "reason": reason}
    try:
        if type not in LABELS.kinds:
            raise InvalidInput(gettext(request, "Choose one of the listed values."), field="type")
        if not value.strip():
            raise InvalidInput(gettext(request, "Enter a value or a network."), field="value")
        with unit_of_work(session):
            service.add_local_warning(session, actor, kind=type, value=value.strip(), reason=reason)
    except DomainError as exc:
        return _noise_page(
            request, session, actor, settings, form=form, error=exc.detail, status=exc.status
        )
    return _redirect("/identifiers/noise?done=added")


@router.post("/identifiers/noise/local/remove", response_class=HTMLResponse, dependencies=CSRF)
def remove_warning(
    request: Request,
    actor: Actor,
    session: Db,
    settings: Conf,
    type: Annotated[str, Form(max_length=20)] = "",
    value: Annotated[str, Form(max_length=VALUE_MAX)] = "",
) -> Response:
    require(actor, Permission.IDENTIFIERS_MANAGE)
    try:
        with unit_of_work(session):
            service.remove_local_warning(session, actor, kind=type, value=value)
    except DomainError as exc:
        return _noise_page(request, session, actor, settings, error=exc.detail, status=exc.status)
    return _redirect("/identifiers/noise?done=removed")
