"""HTML pages of the directory: find a partner, see who is at the desk now, check a legal basis.

All three pages are GET-only (searching and evaluating change nothing), so they are
bookmarkable and need no CSRF token. Opening an authority's page lists its contact points,
which is an audited read of personal data (the service records it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from crossborder.auth.deps import web_principal
from crossborder.auth.permissions import Permission, Principal
from crossborder.core.clock import utc_now
from crossborder.core.errors import InvalidInput
from crossborder.deps import get_session
from crossborder.directory import messages, policy, schemas, service, taxonomy
from crossborder.directory.hours import contact_point_status
from crossborder.web import i18n
from crossborder.web.templating import country_name, language, render

router = APIRouter()

PAGE_SIZE = 25


def _labels() -> dict[str, Any]:
    return {
        "role_labels": taxonomy.AUTHORITY_ROLE_LABELS,
        "channel_labels": taxonomy.CHANNEL_LABELS,
        "category_labels": taxonomy.DATA_CATEGORY_LABELS,
        "offences": taxonomy.OFFENCES,
        "kind_labels": taxonomy.INSTRUMENT_KIND_LABELS,
        "condition_labels": taxonomy.CONDITION_LABELS,
    }


def _int_param(raw: str | None, default: int) -> int:
    try:
        return max(int(raw), 0) if raw is not None else default
    except ValueError:
        return default


@router.get("/directory", response_class=HTMLResponse)
def directory_search(
    request: Request,
    session: Session = Depends(get_session),
    actor: Principal = Depends(web_principal),
) -> HTMLResponse:
    params = request.query_params
    q = (params.get("q") or "").strip()[:200]
    state = (params.get("state") or "").strip().upper()[:2]
    role = params.get("role") or ""
    if role not in {r.value for r in taxonomy.AuthorityRole}:
        role = ""
    offset = _int_param(params.get("offset"), 0)
    page = service.search_authorities(
        session,
        actor=actor,
        q=q or None,
        state=state or None,
        role=role or None,
        limit=PAGE_SIZE,
        offset=offset,
    )
    return render(
        request,
        "directory/search.html",
        {
            **_labels(),
            "q": q,
            "state": state,
            "role": role,
            "page": page,
            "states": service.list_states(session, actor=actor),
            "nodes": {n.id: n for n in service.list_nodes(session, actor=actor)},
            "prev_offset": max(offset - PAGE_SIZE, 0) if offset > 0 else None,
            "next_offset": offset + PAGE_SIZE if offset + PAGE_SIZE < page.total else None,
        },
    )


@router.get("/directory/authorities/{authority_id}", response_class=HTMLResponse)
def authority_detail(
    authority_id: int,
    request: Request,
    session: Session = Depends(get_session),
    actor: Principal = Depends(web_principal),
) -> HTMLResponse:
    authority = service.get_authority(session, authority_id, actor=actor)
    contacts: list[Any] | None = None
    if actor.has(Permission.DIRECTORY_CONTACTS_READ):
        now = utc_now()
        contacts = [
            (cp, contact_point_status(cp, now))
            for cp in service.list_contact_points(session, authority_id, actor=actor)
        ]
    return render(
        request,
        "directory/authority.html",
        {
            **_labels(),
            "authority": authority,
            "contacts": contacts,
        },
    )


def _policy_input(request: Request) -> dict[str, Any]:
    params = request.query_params
    penalty = (params.get("max_penalty_years") or "").strip()
    return {
        "sender_state": (params.get("sender_state") or "").strip(),
        "receiver_state": (params.get("receiver_state") or "").strip(),
        "channel": params.get("channel") or "",
        "offences": [
            {"code": code, "max_penalty_years": penalty or None}
            for code in params.getlist("offences")
        ],
        "data_categories": params.getlist("data_categories"),
        "on_date": (params.get("on_date") or "").strip() or None,
    }


def reason_presenter(request: Request) -> Callable[[policy.Reason], str]:
    lang = language(request)
    translations = i18n.translations(lang)

    def present(reason: policy.Reason) -> str:
        return messages.reason_text(
            reason,
            gettext=translations.gettext,
            country=lambda alpha2: country_name(alpha2, alpha2, lang),
            lang=lang,
        )

    return present


def _field_errors(exc: ValidationError) -> list[str]:
    """One line per invalid field, named as in the form (``offences.0.code`` and so on)."""
    return [
        f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors()
    ]


@router.get("/directory/legal-basis", response_class=HTMLResponse)
def legal_basis(
    request: Request,
    session: Session = Depends(get_session),
    actor: Principal = Depends(web_principal),
) -> HTMLResponse:
    form = _policy_input(request)
    result, errors = None, []
    if "sender_state" in request.query_params:
        try:
            query = schemas.PolicyQuery.model_validate(form)
            result = service.evaluate_policy(session, query, actor=actor)
        except ValidationError as exc:
            errors = _field_errors(exc)
        except InvalidInput as exc:
            errors = [exc.detail]
    return render(
        request,
        "directory/legal_basis.html",
        {
            **_labels(),
            "form": form,
            "selected_offences": {o["code"] for o in form["offences"]},
            "penalty": request.query_params.get("max_penalty_years", ""),
            "states": service.list_states(session, actor=actor),
            "result": result,
            "reason_text": reason_presenter(request),
            "errors": errors,
        },
        status=422 if errors else 200,
    )
