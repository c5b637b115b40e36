"""JSON routes for cooperation requests: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from crossborder.auth.deps import api_principal
from crossborder.auth.permissions import Principal
from crossborder.deps import get_session, get_settings
from crossborder.requests import present, schemas, service
from crossborder.settings import Settings

router = APIRouter(tags=["requests"])

Actor = Annotated[Principal, Depends(api_principal)]
Db = Annotated[Session, Depends(get_session)]


@router.get("/requests", response_model=schemas.RequestPage)
def list_requests(
    actor: Actor,
    session: Db,
    type: Annotated[str | None, Query(max_length=40)] = None,
    partner: int | None = None,
    status_: Annotated[str | None, Query(alias="status", max_length=30)] = None,
    overdue: bool = False,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> schemas.RequestPage:
    page = service.list_requests(
        session,
        actor=actor,
        filters=service.Filters(
            request_type=type, partner_authority_id=partner, status=status_, overdue=overdue, q=q
        ),
        limit=limit,
        offset=offset,
    )
    return schemas.RequestPage(
        items=[present.read(session, r) for r in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/requests", response_model=schemas.RequestDetail, status_code=status.HTTP_201_CREATED)
def create_request(body: schemas.DraftCreate, actor: Actor, session: Db) -> schemas.RequestDetail:
    req = service.create_draft(session, body, actor=actor)
    return present.detail(session, req, actor)


@router.get("/requests/{ref}", response_model=schemas.RequestDetail)
def get_request(ref: str, actor: Actor, session: Db) -> schemas.RequestDetail:
    req = service.get_request(session, ref, actor=actor)
    return present.detail(session, req, actor)


@router.patch("/requests/{ref}", response_model=schemas.RequestDetail)
def update_request(
    ref: str, body: schemas.DraftUpdate, actor: Actor, session: Db
) -> schemas.RequestDetail:
    req = service.update_draft(session, ref, body, actor=actor)
    return present.detail(session, req, actor)


@router.post("/requests/{ref}/transitions", response_model=schemas.RequestDetail)
def transition(
    ref: str, body: schemas.TransitionIn, actor: Actor, session: Db
) -> schemas.RequestDetail:
    req = service.transition(session, ref, body, actor=actor)
    return present.detail(session, req, actor)


@router.post(
    "/requests/{ref}/messages",
    response_model=schemas.MessageRead,
    status_code=status.HTTP_201_CREATED,
)
def add_message(
    ref: str, body: schemas.MessageIn, actor: Actor, session: Db
) -> schemas.MessageRead:
    message = service.add_message(session, ref, body, actor=actor)
    return schemas.MessageRead.model_validate(message)


@router.get("/requests-dashboard", response_model=list[schemas.DashboardRow])
def dashboard(actor: Actor, session: Db) -> list[schemas.DashboardRow]:
    return [
        present.dashboard_row(req, clock) for req, clock in service.dashboard(session, actor=actor)
    ]


@router.post(
    "/requests/{ref}/attachments",
    response_model=schemas.AttachmentRead,
    status_code=status.HTTP_201_CREATED,
)
async def upload_attachment(
    ref: str,
    request: Request,
    actor: Actor,
    session: Db,
    settings: Annotated[Settings, Depends(get_settings)],
    filename: Annotated[str, Query(min_length=1, max_length=255)],
) -> schemas.AttachmentRead:
    """Upload one file as the raw request body (any media type; ``?filename=`` names it).

    The SHA-256 is computed while the body streams in; an upload over the limit or cut off
    midway is refused and nothing is stored.
    """
    media_type = request.headers.get("content-type", "application/octet-stream")
    attachment = await service.add_attachment(
        session,
        ref,
        actor=actor,
        settings=settings,
        filename=filename,
        media_type=media_type,
        chunks=request.stream(),
    )
    return schemas.AttachmentRead.model_validate(attachment)


@router.get("/requests/{ref}/attachments/{attachment_id}")
def download_attachment(
    ref: str,
    attachment_id: str,
    actor: Actor,
    session: Db,
    settings: Annotated[Settings, Depends(get_settings)],
) -> FileResponse:
    attachment, path = service.open_attachment(
        session, ref, attachment_id, actor=actor, settings=settings
    )
    return FileResponse(
        path,
        media_type=attachment.media_type,
        filename=attachment.filename,
        headers={"X-Content-SHA256": attachment.sha256},
    )


@router.post("/requests/{ref}/export")
def export_request(
    ref: str,
    actor: Actor,
    session: Db,
    settings: Annotated[Settings, Depends(get_settings)],
) -> FileResponse:
    """A signed package of the request and its attachments (verify with
    ``crossborder evidence verify``)."""
    path = service.export_package(
        session, ref, actor=actor, settings=settings, out_dir=settings.data_dir / "exports"
    )
    return FileResponse(path, media_type="application/zip", filename=path.name)
