"""The operator's federation page: peers and their last contact, outbox and inbox with their
failures and reasons, refused envelopes, and the forms to add a peer and retry a message.

Administrators only (``federation:manage``): the page shows message types and routing, not
contents, but it is where the node's trust (pinned keys) is managed. Every form carries the
CSRF token; every action goes through the service, which audits it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from crossborder.auth.deps import web_principal
from crossborder.auth.permissions import Permission, Principal, require
from crossborder.core.errors import DomainError
from crossborder.deps import get_session
from crossborder.federation import service
from crossborder.federation.client import fetch_identity
from crossborder.federation.service import TransportError
from crossborder.web.csrf import require_form_token
from crossborder.web.templating import gettext, render

router = APIRouter()

DONE_MESSAGES = {
    "peer-added": "Peer added and its keys pinned.",
    "peer-status": "Peer status changed.",
    "outbox-retried": "The message will be delivered again.",
    "inbox-processed": "The message was processed.",
    "inbox-failed": "The message failed again; see the reason below.",
}


def _page(
    request: Request,
    session: Session,
    actor: Principal,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    params = request.query_params
    outbox_status = params.get("outbox") or None
    if outbox_status not in service.OUTBOX_STATUSES:
        outbox_status = None
    inbox_status = params.get("inbox") or None
    if inbox_status not in service.INBOX_STATUSES:
        inbox_status = None
    done = params.get("done")
    context: dict[str, Any] = {
        "identity": service.identity_document(request.app.state.settings),
        "peers": service.list_peers(session, actor=actor),
        "outbox": service.list_outbox(session, actor=actor, status=outbox_status),
        "inbox": service.list_inbox(session, actor=actor, status=inbox_status),
        "rejections": service.list_rejections(session, actor=actor, limit=20),
        "counts": service.counts(session),
        "outbox_statuses": service.OUTBOX_STATUSES,
        "inbox_statuses": service.INBOX_STATUSES,
        "outbox_status": outbox_status or "",
        "inbox_status": inbox_status or "",
        "done": DONE_MESSAGES.get(done or ""),
        "form": form or {},
        "error": error,
    }
    return render(request, "federation/index.html", context, status=status)


@router.get("/federation", response_class=HTMLResponse)
def federation_page(
    request: Request,
    session: Session = Depends(get_session),
    actor: Principal = Depends(web_principal),
) -> HTMLResponse:
    require(actor, Permission.FEDERATION_MANAGE)
    return _page(request, session, actor)


def _redirect(done: str) -> RedirectResponse:
    return RedirectResponse(f"/federation?done={done}", status_code=303)


@router.post(
    "/federation/peers", response_class=HTMLResponse, dependencies=[Depends(require_form_token)]
)
def add_peer(
    request: Request,
    name: str = Form("", max_length=200),
    url: str = Form("", max_length=500),
    fingerprint: str = Form("", max_length=100),
    public_jwk: str = Form("", max_length=20_000),
    session: Session = Depends(get_session),
    actor: Principal = Depends(web_principal),
) -> Response:
    require(actor, Permission.FEDERATION_MANAGE)
    form = {"name": name, "url": url, "fingerprint": fingerprint, "public_jwk": public_jwk}
    try:
        if public_jwk.strip():
            try:
                jwks = json.loads(public_jwk)
            except ValueError:
                raise DomainError(gettext(request, "The public keys are not valid JSON.")) from None
        else:
            try:
                jwks = fetch_identity(url.strip())
            except TransportError:
                raise DomainError(
                    gettext(
                        request,
                        "The peer's public keys could not be fetched; paste its JWK Set instead.",
                    )
                ) from None
        signing, encryption = service.keys_from_jwks(jwks)
        service.add_peer(
            session,
            actor=actor,
            name=name,
            base_url=url.strip(),
            fingerprint=fingerprint,
            signing_key=signing,
            encryption_key=encryption,
        )
    except DomainError as exc:
        session.rollback()
        return _page(request, session, actor, form=form, error=exc.detail, status=422)
    return _redirect("peer-added")


@router.post("/federation/peers/{peer_id}/status", dependencies=[Depends(require_form_token)])
def peer_status(
    peer_id: int,
    status: str = Form("", max_length=20),
    session: Session = Depends(get_session),
    actor: Principal = Depends(web_principal),
) -> Response:
    service.set_peer_status(session, peer_id, status, actor=actor)
    return _redirect("peer-status")


@router.post("/federation/outbox/{outbox_id}/retry", dependencies=[Depends(require_form_token)])
def outbox_retry(
    outbox_id: int,
    session: Session = Depends(get_session),
    actor: Principal = Depends(web_principal),
) -> Response:
    service.retry_outbox(session, outbox_id, actor=actor)
    return _redirect("outbox-retried")


@router.post("/federation/inbox/{inbox_id}/retry", dependencies=[Depends(require_form_token)])
def inbox_retry(
    inbox_id: int,
    session: Session = Depends(get_session),
    actor: Principal = Depends(web_principal),
) -> Response:
    outcome = service.retry_inbox(session, inbox_id, actor=actor)
    return _redirect("inbox-processed" if outcome == "processed" else "inbox-failed")
