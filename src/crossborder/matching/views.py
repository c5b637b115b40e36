"""HTML pages for hit/no-hit: an authority's queries, the form that asks partners, one query's
answers and hits (each a button to a draft request), and the administrators' page of what the
node answers (policy, partner rules, the encrypted set, records kept out, inbound queries).

These pages are the HTML twin of ``matching.api`` and call the same service functions; the
rules (legal basis, allowances, who sees which query) live in the service. A query of another
authority answers 404, as if it did not exist. Every POST form carries the CSRF token; a POST
answers with a redirect and a flash, or the page again with the error and the input kept.

The request and identifier-set pages ask :func:`opted_out` (a template global) whether their
record is kept out, to draw the toggle.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import pass_context
from jinja2.runtime import Context
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crossborder.auth.deps import safe_next, web_principal
from crossborder.auth.permissions import Permission, Principal, require
from crossborder.core.clock import utc_now
from crossborder.core.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from crossborder.deps import get_session, get_settings
from crossborder.directory.models import Authority
from crossborder.directory.taxonomy import N_, OFFENCES, Offence
from crossborder.matching import responder, rules, schemas, service
from crossborder.matching.api import local_authority
from crossborder.matching.models import MatchInbound, MatchOptOut, MatchPartnerRule, MatchPolicy
from crossborder.selectors import scopes
from crossborder.selectors.views import LABELS as IDENTIFIER_LABELS
from crossborder.selectors.views import authority_tz, local_to_utc
from crossborder.settings import Settings
from crossborder.web.csrf import require_form_token
from crossborder.web.templating import ENV, gettext, render

router = APIRouter()

Actor = Annotated[Principal, Depends(web_principal)]
Db = Annotated[Session, Depends(get_session)]
Conf = Annotated[Settings, Depends(get_settings)]
CSRF = [Depends(require_form_token)]

INBOUND_SHOWN: Final = 200
#: The form names at most this many bad lines of identifiers (then stops reading).
LINE_ERRORS_SHOWN: Final = 20
#: Largest identifiers text the form reads (the body limit usually stops it first).
IDENTIFIERS_TEXT_MAX: Final = 10_000_000

# -- labels -------------------------------------------------------------------------------------

STATUS_LABELS: Final[dict[str, str]] = {
    "sent": N_("waiting"),
    "answered": N_("answered"),
    "refused": N_("refused"),
    "failed": N_("failed"),
    "expired": N_("no answer"),
}
STATUS_BADGES: Final[dict[str, str]] = {
    "sent": "",
    "answered": "badge-ok",
    "refused": "badge-bad",
    "failed": "badge-bad",
    "expired": "badge-warn",
}
STRENGTH_LABELS: Final[dict[str, str]] = {
    "match": N_("match"),
    "weak": N_("weak"),
    "variant": N_("variant"),
}
STRENGTH_HINTS: Final[dict[str, str]] = {
    "match": N_(
        "the same value (an IP address with port and time: the same port in the same hour)"
    ),
    "weak": N_("the same IP address, but not the port and hour asked, or a shared address"),
    "variant": N_("only a variant: the same address on another chain, another mailbox spelling"),
}
OUTCOME_LABELS: Final[dict[str, str]] = {
    "answered": N_("answered"),
    "refused": N_("refused"),
}
FIELD_LABELS: Final[dict[str, str]] = {
    "purpose": N_("Purpose"),
    "case_reference": N_("Case reference"),
    "offences": N_("Offences"),
    "identifiers": N_("Identifiers"),
    "partners": N_("Partners"),
    "slack_seconds": N_("Clock slack (seconds)"),
    "kinds": N_("Kinds never offered"),
    "max_query_elements": N_("Largest query (elements)"),
    "daily_queries": N_("Queries per partner in 24 hours"),
    "daily_elements": N_("Elements per partner in 24 hours"),
    "partner": N_("Partner"),
}
DONE_MESSAGES: Final[dict[str, str]] = {
    "sent": N_("The query was sent. Each partner answers when its node receives it."),
    "policy": N_("The policy was saved."),
    "rule": N_("The partner rule was saved."),
    "optout": N_("The record is kept out of hit/no-hit from the next refresh."),
    "optin": N_("The record is offered again from the next refresh."),
}
REQUEST_TYPE_LABELS: Final[dict[str, str]] = {
    "police_information": N_("Draft a police information request"),
    "preservation": N_("Draft a preservation request"),
}


class Labels:
    """Every label the matching templates need, as msgids (the templates translate them)."""

    statuses = STATUS_LABELS
    status_badges = STATUS_BADGES
    strengths = STRENGTH_LABELS
    strength_hints = STRENGTH_HINTS
    outcomes = OUTCOME_LABELS
    request_types = REQUEST_TYPE_LABELS
    offences = OFFENCES

    def kind(self, kind: str) -> str:
        return IDENTIFIER_LABELS.kind(kind)

    @property
    def kinds(self) -> dict[str, str]:
        return IDENTIFIER_LABELS.kinds

    def offence(self, code: str) -> str:
        try:
            return OFFENCES[Offence(code)].label
        except ValueError:
            return code


LABELS = Labels()


# -- small helpers ------------------------------------------------------------------------------


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _may_query(actor: Principal) -> None:
    require(actor, Permission.MATCHING_QUERY)


def _error_text(request: Request, exc: DomainError) -> str:
    """A domain error as one line, led by the label of the field it names."""
    name = getattr(exc, "field", None) or ""
    label = FIELD_LABELS.get(name.split(".")[0])
    return f"{gettext(request, label)}: {exc.detail}" if label else exc.detail


def _hour(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@pass_context
def opted_out(ctx: Context, scope_type: str, scope_id: str) -> bool:
    """Template global: is this record kept out of hit/no-hit? (own short-lived session)"""
    request = ctx.get("request")
    if request is None or scope_type not in responder.OPT_OUT_SCOPES or not scope_id:
        return False
    with request.app.state.session_factory() as session:
        return responder.is_opted_out(session, scope_type, str(scope_id))


ENV.globals["matching_opted_out"] = opted_out


# -- the index: my authority's queries ----------------------------------------------------------


@router.get("/matching", response_class=HTMLResponse)
def matching_index(request: Request, actor: Actor, session: Db) -> Response:
    """The queries of the user's authority, newest first; administrators go to their page."""
    if not actor.has(Permission.MATCHING_QUERY):
        if actor.has(Permission.MATCHING_MANAGE):
            return _redirect("/matching/admin")
        raise PermissionDenied("this page needs the permission 'matching:query'")
    queries = service.list_queries(session, actor)
    return render(
        request,
        "matching/index.html",
        {
            "queries": schemas.summaries(session, queries),
            "may_manage": actor.has(Permission.MATCHING_MANAGE),
            "tz": authority_tz(session, actor),
        },
    )


# -- the form that asks partners ----------------------------------------------------------------


@dataclass
class QueryForm:
    purpose: str = ""
    case_reference: str = ""
    offences: list[str] = field(default_factory=list)
    penalty: str = ""
    identifiers: str = ""
    partners: list[str] | None = None  # None: not chosen yet (every partner with a basis)
    slack: str = "0"
    request: str = ""
    set: str = ""


@dataclass
class Source:
    """The record whose identifiers are asked too (a request or an identifier set)."""

    scope_type: str
    label: str
    count: int


@dataclass
class PartnerRow:
    authority: Authority
    basis: str | None
    reason: str | None
    checked: bool  # the legal basis was checked for the offences chosen

    @property
    def may_ask(self) -> bool:
        return not self.checked or self.basis is not None


def _occurrences(session: Session, scope_type: str, scope_id: str) -> int:
    from crossborder.selectors.models import IdentOccurrence

    return int(
        session.scalar(
            select(func.count(IdentOccurrence.id)).where(
                IdentOccurrence.scope_type == scope_type, IdentOccurrence.scope_id == scope_id
            )
        )
        or 0
    )


def _source(session: Session, actor: Principal, form: QueryForm) -> Source | None:
    """The request or set named in the form, if the user may see it (else 404)."""
    if form.request:
        from crossborder.requests import service as requests_service

        req = requests_service.find(session, form.request)
        if req is None or not requests_service.may_see(req, actor):
            raise NotFound("no such request")
        return Source("request", req.reference, _occurrences(session, "request", req.public_id))
    if form.set:
        from crossborder.selectors import sets

        item = sets.get_set(session, actor, form.set)
        return Source("set", item.name, _occurrences(session, "set", item.public_id))
    return None


def _offence_list(form: QueryForm) -> tuple[list[dict[str, Any]], list[str]]:
    """The offences chosen with the penalty given, and the problems (msgids)."""
    problems: list[str] = []
    penalty: float | None = None
    if form.penalty.strip():
        try:
            penalty = float(form.penalty)
        except ValueError:
            penalty = -1.0
        if not 0 <= penalty <= 100:
            problems.append(N_("The maximum penalty is a number of years from 0 to 100."))
            penalty = None
    known = {o.value for o in Offence}
    if any(code not in known for code in form.offences):
        problems.append(N_("Choose offences from the list."))
    codes = [c for c in dict.fromkeys(form.offences) if c in known]
    return [{"code": c, "max_penalty_years": penalty} for c in codes], problems


def _partner_rows(
    session: Session, actor: Principal, offences: list[dict[str, Any]]
) -> list[PartnerRow]:
    """Every partner; with offences chosen, whether a legal basis lets it be asked."""
    if offences:
        try:
            checks = service.check_partners(session, actor, None, offences)
        except DomainError:
            checks = []
        else:
            return [PartnerRow(c.authority, c.basis, c.reason, True) for c in checks]
    return [PartnerRow(a, None, None, False) for a in service.partners(session, actor)]


def parse_identifiers(
    request: Request, text: str, tz: str
) -> tuple[list[service.ItemIn], list[str]]:
    """One identifier a line: ``kind,value[,port,from,until]`` (CSV), or ``kind value``.

    Times are ISO 8601; without an offset they are read in the authority's time zone.
    """
    items: list[service.ItemIn] = []
    errors: list[str] = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if len(errors) >= LINE_ERRORS_SHOWN:
            break
        if len(items) >= service.MAX_QUERY_ITEMS:
            errors.append(
                gettext(request, "At most %(num)s identifiers per query.")
                % {"num": f"{service.MAX_QUERY_ITEMS:,}"}
            )
            break
        if "," in line:
            try:
                fields = [f.strip() for f in next(csv.reader([line]))]
            except csv.Error:
                fields = []
        else:
            fields = line.split(None, 1)
        if len(fields) < 2 or len(fields) > 5 or not fields[1]:
            errors.append(
                gettext(request, "Line %(line)s: write kind,value[,port,from,until].")
                % {"line": number}
            )
            continue
        kind, value, port_text, start_text, end_text = [*fields, "", "", ""][:5]
        kind = kind.lower()
        if kind not in IDENTIFIER_LABELS.kinds:
            errors.append(
                gettext(request, "Line %(line)s: unknown kind %(kind)s.")
                % {"line": number, "kind": kind[:40]}
            )
            continue
        port: int | None = None
        if port_text:
            if port_text.isascii() and port_text.isdigit() and 0 < int(port_text) <= 65535:
                port = int(port_text)
            else:
                errors.append(
                    gettext(request, "Line %(line)s: the port is a number from 1 to 65535.")
                    % {"line": number}
                )
                continue
        times: list[datetime | None] = []
        for moment in (start_text, end_text):
            parsed = local_to_utc(moment.replace("Z", "+00:00"), tz) if moment else None
            if moment and parsed is None:
                errors.append(
                    gettext(request, "Line %(line)s: %(time)s is not a date and time.")
                    % {"line": number, "time": moment[:40]}
                )
            times.append(parsed)
        if any(
            moment and when is None
            for moment, when in zip((start_text, end_text), times, strict=True)
        ):
            continue
        items.append(service.ItemIn(kind, value[:2000], port, times[0], times[1]))
    return items, errors


def _new_page(
    request: Request,
    session: Session,
    actor: Principal,
    form: QueryForm,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    offences, _problems = _offence_list(form)
    return render(
        request,
        "matching/new.html",
        {
            "form": form,
            "source": _source(session, actor, form),
            "partners": _partner_rows(session, actor, offences),
            "labels": LABELS,
            "errors": errors or [],
            "tz": authority_tz(session, actor),
            "purpose_min": rules.PURPOSE_MIN,
            "purpose_max": rules.PURPOSE_MAX,
            "case_max": rules.CASE_REFERENCE_MAX,
            "max_items": f"{service.MAX_QUERY_ITEMS:,}",
        },
        status=status,
    )


@router.get("/matching/new", response_class=HTMLResponse)
def new_query(request: Request, actor: Actor, session: Db) -> HTMLResponse:
    """The form; ``?request=REF`` or ``?set=ID`` asks that record's identifiers too."""
    _may_query(actor)
    params = request.query_params
    form = QueryForm(
        request=(params.get("request") or "").strip()[:100],
        set=(params.get("set") or "").strip()[:80],
    )
    if form.request:
        from crossborder.requests import service as requests_service

        req = requests_service.find(session, form.request)
        if req is None or not requests_service.may_see(req, actor):
            raise NotFound("no such request")
        form.request = req.reference
        form.case_reference = req.reference
        form.offences = [str(o.get("code")) for o in req.offences if o.get("code")]
        penalties = [
            float(o["max_penalty_years"])
            for o in req.offences
            if isinstance(o.get("max_penalty_years"), int | float)
        ]
        form.penalty = f"{max(penalties):g}" if penalties else ""
    return _new_page(request, session, actor, form)


@router.post("/matching/new", response_class=HTMLResponse, dependencies=CSRF)
def send_query(
    request: Request,
    actor: Actor,
    session: Db,
    settings: Conf,
    purpose: Annotated[str, Form(max_length=20_000)] = "",
    case_reference: Annotated[str, Form(max_length=2000)] = "",
    offences: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI idiom
    max_penalty_years: Annotated[str, Form(max_length=20)] = "",
    identifiers: Annotated[str, Form(max_length=IDENTIFIERS_TEXT_MAX)] = "",
    partners: Annotated[list[str], Form()] = [],  # noqa: B006
    slack_seconds: Annotated[str, Form(max_length=20)] = "0",
    request_ref: Annotated[str, Form(alias="request", max_length=100)] = "",
    set_id: Annotated[str, Form(alias="set", max_length=80)] = "",
    action: Annotated[str, Form(max_length=20)] = "send",
) -> Response:
    """Check which partners may be asked (``action=check``), or send the query."""
    _may_query(actor)
    chosen = list(dict.fromkeys(p for p in partners[:1000] if p.isascii() and p.isdigit()))
    form = QueryForm(
        purpose=purpose,
        case_reference=case_reference,
        offences=[o[:60] for o in offences[:100]],
        penalty=max_penalty_years,
        identifiers=identifiers,
        partners=chosen,
        slack=slack_seconds,
        request=request_ref.strip(),
        set=set_id.strip(),
    )
    if action == "check":
        return _new_page(request, session, actor, form)
    tz = authority_tz(session, actor)
    offence_list, problems = _offence_list(form)
    errors = [gettext(request, p) for p in problems]
    items, line_errors = parse_identifiers(request, identifiers, tz)
    errors += line_errors
    slack = slack_seconds.strip() or "0"
    if not (slack.isascii() and slack.isdigit() and int(slack) <= 3600):
        errors.append(gettext(request, "The clock slack is a whole number of seconds, 0 to 3600."))
    if not chosen:
        errors.append(gettext(request, "Choose at least one partner to ask."))
    if errors:
        return _new_page(request, session, actor, form, errors=errors, status=422)
    try:
        sent = service.send_query(
            session,
            actor,
            settings.data_dir,
            purpose=purpose,
            case_reference=case_reference,
            offences=offence_list,
            identifiers=items,
            request_ref=form.request or None,
            set_id=form.set or None,
            partner_ids=[int(p[:12]) for p in chosen],
            slack_seconds=int(slack),
        )
    except InvalidInput as exc:
        return _new_page(
            request, session, actor, form, errors=[_error_text(request, exc)], status=exc.status
        )
    query = urlencode({"done": "sent", "not_asked": len(sent.refused)})
    return _redirect(f"/matching/queries/{sent.query.public_id}?{query}")


# -- one query ----------------------------------------------------------------------------------


def _query_page(
    request: Request,
    session: Session,
    actor: Principal,
    query_id: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    view = service.get_query(session, actor, query_id[:40])
    detail = schemas.detail_out(session, view)
    flashes: list[tuple[str, str]] = []
    params = request.query_params
    if error is None and params.get("done") == "sent":
        flashes.append(("ok", gettext(request, DONE_MESSAGES["sent"])))
        not_asked = params.get("not_asked", "")
        if not_asked.isdigit() and int(not_asked):
            flashes.append(
                (
                    "info",
                    gettext(request, "Partners not asked (no legal basis): %(num)s")
                    % {"num": int(not_asked)},
                )
            )
    return render(
        request,
        "matching/query.html",
        {
            "view": view,
            "detail": detail,
            "labels": LABELS,
            "tz": authority_tz(session, actor),
            "hour": _hour,
            "may_draft": actor.has(Permission.REQUESTS_WRITE),
            "flashes": flashes,
            "error": error,
        },
        status=status,
    )


@router.get("/matching/queries/{query_id}", response_class=HTMLResponse)
def query_page(query_id: str, request: Request, actor: Actor, session: Db) -> HTMLResponse:
    """Each partner's outcome, then the hits; another authority's query is a 404."""
    return _query_page(request, session, actor, query_id)


@router.post("/matching/hits/{hit_id}/draft", response_class=HTMLResponse, dependencies=CSRF)
def draft_from_hit(
    hit_id: int,
    request: Request,
    actor: Actor,
    session: Db,
    request_type: Annotated[str, Form(max_length=40)] = "police_information",
    query: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """A draft request to the partner that holds the identifier; opens it."""
    try:
        req = service.draft_from_hit(session, actor, hit_id, request_type=request_type)
    except InvalidInput as exc:
        if not query:
            raise
        return _query_page(request, session, actor, query, error=exc.detail, status=422)
    return _redirect(f"/requests/{req.reference}?done=created")


# -- what the node answers (administrators) -----------------------------------------------------


@dataclass
class RuleRow:
    partner: Authority
    rule: MatchPartnerRule | None
    grant: rules.Allowance
    used: rules.Usage


@dataclass
class Section:
    """One local authority on the administrators' page."""

    authority: Authority
    policy: MatchPolicy
    rows: list[RuleRow]
    status: responder.SetStatus
    optouts: list[tuple[MatchOptOut, scopes.ScopeLabel | None]]
    inbound: list[tuple[MatchInbound, Authority | None]]

    @property
    def anchor(self) -> str:
        return f"authority-{self.authority.id}"


@dataclass
class AdminForm:
    """A form sent back with its error: which authority, which form, what was typed."""

    authority_id: int
    kind: str  # policy | rule
    error: str
    values: dict[str, Any] = field(default_factory=dict)


def _sections(session: Session, actor: Principal) -> list[Section]:
    now = utc_now()
    partners = service.partners(session, actor)
    local = list(
        session.scalars(
            select(Authority)
            .where(Authority.is_local.is_(True))
            .order_by(Authority.name, Authority.id)
        ).unique()
    )
    out: list[Section] = []
    for authority in local:
        found = {r.partner_authority_id: r for r in responder.partner_rules(session, authority.id)}
        extra = schemas.authorities_by_id(
            session, [i for i in found if i not in {p.id for p in partners}]
        )
        rows = [
            RuleRow(
                p,
                found.get(p.id),
                responder.allowance(session, authority.id, p.id),
                responder.usage(session, authority.id, p.id, now),
            )
            for p in [*partners, *extra.values()]
        ]
        optouts = responder.list_optouts(session, [authority.id])
        labels = scopes.describe(session, [(o.scope_type, o.scope_id) for o in optouts])
        inbound = service.inbound(session, [authority.id], limit=INBOUND_SHOWN)
        names = schemas.authorities_by_id(session, [r.partner_authority_id for r in inbound])
        out.append(
            Section(
                authority=authority,
                policy=responder.policy_of(session, authority.id),
                rows=rows,
                status=responder.set_status(session, authority.id),
                optouts=[(o, labels.get((o.scope_type, o.scope_id))) for o in optouts],
                inbound=[(r, names.get(r.partner_authority_id)) for r in inbound],
            )
        )
    return out


def _refresh_message(request: Request) -> tuple[str, str] | None:
    params = request.query_params
    keys = ("elements", "added", "removed", "built")
    values = [params.get(k, "") for k in keys]
    if params.get("done") != "refreshed" or not all(v.isdigit() for v in values):
        return None
    text = gettext(
        request,
        "The set was refreshed: %(elements)s elements (%(added)s added, %(removed)s removed), "
        "%(built)s segments rebuilt.",
    ) % dict(zip(keys, values, strict=True))
    return ("ok", text)


def _admin_page(
    request: Request,
    session: Session,
    actor: Principal,
    *,
    form: AdminForm | None = None,
    status: int = 200,
) -> HTMLResponse:
    require(actor, Permission.MATCHING_MANAGE)
    flashes: list[tuple[str, str]] = []
    if form is None:
        refreshed = _refresh_message(request)
        done = request.query_params.get("done", "")
        if refreshed is not None:
            flashes.append(refreshed)
        elif done in DONE_MESSAGES:
            flashes.append(("ok", gettext(request, DONE_MESSAGES[done])))
    return render(
        request,
        "matching/admin.html",
        {
            "sections": _sections(session, actor),
            "labels": LABELS,
            "form": form,
            "flashes": flashes,
            "tz": authority_tz(session, actor),
            "inbound_shown": INBOUND_SHOWN,
        },
        status=status,
    )


@router.get("/matching/admin", response_class=HTMLResponse)
def admin_page(request: Request, actor: Actor, session: Db) -> HTMLResponse:
    """Per local authority: policy, partner rules, the set, records kept out, inbound."""
    return _admin_page(request, session, actor)


def _whole(text: str, name: str, *, optional: bool = False) -> int | None:
    text = text.strip()
    if not text and optional:
        return None
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput("a whole number", field=name)
    return int(text)


@router.post(
    "/matching/admin/{authority_id}/policy", response_class=HTMLResponse, dependencies=CSRF
)
def save_policy(
    authority_id: int,
    request: Request,
    actor: Actor,
    session: Db,
    answers: Annotated[str, Form(max_length=10)] = "yes",
    excluded_kinds: Annotated[list[str], Form()] = [],  # noqa: B006
    max_query_elements: Annotated[str, Form(max_length=20)] = "",
    daily_queries: Annotated[str, Form(max_length=20)] = "",
    daily_elements: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    authority = local_authority(session, actor, authority_id)
    values: dict[str, Any] = {
        "answers": answers,
        "excluded_kinds": excluded_kinds,
        "max_query_elements": max_query_elements,
        "daily_queries": daily_queries,
        "daily_elements": daily_elements,
    }
    try:
        responder.set_policy(
            session,
            actor,
            authority.id,
            answers=answers != "no",
            excluded_kinds=[k[:40] for k in excluded_kinds],
            max_query_elements=_whole(max_query_elements, "max_query_elements"),
            daily_queries=_whole(daily_queries, "daily_queries"),
            daily_elements=_whole(daily_elements, "daily_elements"),
        )
    except InvalidInput as exc:
        form = AdminForm(authority.id, "policy", _error_text(request, exc), values)
        return _admin_page(request, session, actor, form=form, status=exc.status)
    return _redirect(f"/matching/admin?done=policy#authority-{authority.id}")


@router.post(
    "/matching/admin/{authority_id}/partners", response_class=HTMLResponse, dependencies=CSRF
)
def save_partner_rule(
    authority_id: int,
    request: Request,
    actor: Actor,
    session: Db,
    partner_id: Annotated[str, Form(max_length=20)] = "",
    blocked: Annotated[bool, Form()] = False,
    daily_queries: Annotated[str, Form(max_length=20)] = "",
    daily_elements: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    authority = local_authority(session, actor, authority_id)
    values: dict[str, Any] = {
        "partner_id": partner_id,
        "blocked": blocked,
        "daily_queries": daily_queries,
        "daily_elements": daily_elements,
    }
    try:
        partner = _whole(partner_id, "partner")
        assert partner is not None
        responder.set_partner_rule(
            session,
            actor,
            authority.id,
            partner,
            blocked=blocked,
            daily_queries=_whole(daily_queries, "daily_queries", optional=True),
            daily_elements=_whole(daily_elements, "daily_elements", optional=True),
        )
    except InvalidInput as exc:
        form = AdminForm(authority.id, "rule", _error_text(request, exc), values)
        return _admin_page(request, session, actor, form=form, status=exc.status)
    return _redirect(f"/matching/admin?done=rule#authority-{authority.id}")


@router.post(
    "/matching/admin/{authority_id}/refresh", response_class=HTMLResponse, dependencies=CSRF
)
def refresh_set(
    authority_id: int, request: Request, actor: Actor, session: Db, settings: Conf
) -> Response:
    authority = local_authority(session, actor, authority_id)
    result = responder.refresh(session, settings.data_dir, authority.id)
    query = urlencode(
        {
            "done": "refreshed",
            "elements": result.elements,
            "added": result.added,
            "removed": result.removed,
            "built": result.segments_built,
        }
    )
    return _redirect(f"/matching/admin?{query}#authority-{authority.id}")


# -- keeping a record out -----------------------------------------------------------------------


def _back(next_path: str, done: str) -> RedirectResponse:
    target = safe_next(next_path, default="/matching")
    path, _, anchor = target.partition("#")
    joiner = "&" if "?" in path else "?"
    if path.startswith("/matching/admin"):
        path = f"{path}{joiner}done={done}"
    return _redirect(path + (f"#{anchor}" if anchor else ""))


@router.post("/matching/optouts", response_class=HTMLResponse, dependencies=CSRF)
def opt_out(
    request: Request,
    actor: Actor,
    session: Db,
    scope_type: Annotated[str, Form(max_length=20)] = "",
    scope_id: Annotated[str, Form(max_length=80)] = "",
    reason: Annotated[str, Form(max_length=300)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Keep a request or an identifier set out of what partners can match."""
    responder.opt_out(session, actor, scope_type, scope_id, reason=reason)
    return _back(next, "optout")


@router.post("/matching/optouts/remove", response_class=HTMLResponse, dependencies=CSRF)
def opt_in(
    request: Request,
    actor: Actor,
    session: Db,
    scope_type: Annotated[str, Form(max_length=20)] = "",
    scope_id: Annotated[str, Form(max_length=80)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Offer a record kept out again (from the next refresh of the set)."""
    responder.opt_in(session, actor, scope_type, scope_id)
    return _back(next, "optin")
