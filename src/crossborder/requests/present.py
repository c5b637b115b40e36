"""Turn requests into API shapes: clocks in both parties' local time, timeline, thread."""

from __future__ import annotations

from sqlalchemy.orm import Session

from crossborder.auth.permissions import Principal
from crossborder.requests import deadlines, schemas, service
from crossborder.requests.models import CooperationRequest, RequestClock


def _local(value: object, tz: str) -> str:
    from datetime import datetime

    assert isinstance(value, datetime)
    return deadlines.local(value, tz).isoformat()


def clock(req: CooperationRequest, row: RequestClock) -> schemas.ClockRead:
    out = schemas.ClockRead.model_validate(row)
    out.due_at_sender_local = _local(row.due_at, req.sender.time_zone)
    out.due_at_receiver_local = _local(row.due_at, req.receiver.time_zone)
    return out


def read(session: Session, req: CooperationRequest) -> schemas.RequestRead:
    out = schemas.RequestRead.model_validate(req)
    out.clocks = [clock(req, c) for c in req.clocks]
    return out


def detail(session: Session, req: CooperationRequest, actor: Principal) -> schemas.RequestDetail:
    base = read(session, req)
    return schemas.RequestDetail(
        **base.model_dump(),
        timeline=[schemas.EventRead.model_validate(e) for e in service.timeline(session, req)],
        messages=[schemas.MessageRead.model_validate(m) for m in service.messages(session, req)],
        attachments=[
            schemas.AttachmentRead.model_validate(a) for a in service.attachments(session, req)
        ],
        links=service.links(session, req),
        available_actions=[a.value for a in service.available_actions(req, actor)],
    )


def dashboard_row(req: CooperationRequest, row: RequestClock) -> schemas.DashboardRow:
    return schemas.DashboardRow(
        public_id=req.public_id,
        reference=req.reference,
        title=req.title,
        request_type=req.request_type,
        status=req.status,
        clock=clock(req, row),
    )
