"""JSON routes of the directory (mounted under ``/api/v1``): parse, call the service, shape.

Authentication comes from ``api_principal`` (API token or browser session with CSRF header);
authorisation, validation against the database and auditing are the service's. Domain
exceptions propagate and are turned into RFC 9457 problems in one place.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.orm import Session

from crossborder.auth.deps import api_principal
from crossborder.auth.permissions import Principal
from crossborder.core.clock import utc_now
from crossborder.deps import get_session
from crossborder.directory import schemas, service
from crossborder.directory.hours import contact_point_status
from crossborder.directory.models import ContactPoint
from crossborder.directory.taxonomy import AuthorityRole

router = APIRouter(tags=["directory"])


@router.get("/directory/states", response_model=list[schemas.StateRead])
def list_states(
    q: str | None = Query(default=None, max_length=100),
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> list[schemas.StateRead]:
    return [
        schemas.StateRead.model_validate(s) for s in service.list_states(session, actor=actor, q=q)
    ]


@router.post(
    "/directory/states", response_model=schemas.StateRead, status_code=status.HTTP_201_CREATED
)
def create_state(
    body: schemas.StateCreate,
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> schemas.StateRead:
    return schemas.StateRead.model_validate(service.create_state(session, body, actor=actor))


@router.get("/directory/authorities", response_model=schemas.AuthorityPage)
def search_authorities(
    q: str | None = Query(default=None, max_length=200),
    state: str | None = Query(default=None, min_length=2, max_length=2),
    role: AuthorityRole | None = None,
    limit: int = Query(default=50, ge=1, le=service.MAX_PAGE),
    offset: int = Query(default=0, ge=0),
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> schemas.AuthorityPage:
    page = service.search_authorities(
        session,
        actor=actor,
        q=q,
        state=state,
        role=role.value if role else None,
        limit=limit,
        offset=offset,
    )
    return schemas.AuthorityPage(
        items=[schemas.AuthorityRead.model_validate(a) for a in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/directory/authorities/{authority_id}", response_model=schemas.AuthorityRead)
def get_authority(
    authority_id: int,
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> schemas.AuthorityRead:
    authority = service.get_authority(session, authority_id, actor=actor)
    return schemas.AuthorityRead.model_validate(authority)


@router.post(
    "/directory/authorities",
    response_model=schemas.AuthorityRead,
    status_code=status.HTTP_201_CREATED,
)
def create_authority(
    body: schemas.AuthorityCreate,
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> schemas.AuthorityRead:
    authority = service.create_authority(session, body, actor=actor)
    return schemas.AuthorityRead.model_validate(authority)


@router.patch("/directory/authorities/{authority_id}", response_model=schemas.AuthorityRead)
def update_authority(
    authority_id: int,
    body: schemas.AuthorityUpdate,
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> schemas.AuthorityRead:
    authority = service.update_authority(
        session, authority_id, body.changes(), actor=actor, expected_version=body.version
    )
    return schemas.AuthorityRead.model_validate(authority)


def _with_status(contact: ContactPoint) -> schemas.ContactPointWithStatus:
    now = contact_point_status(contact, utc_now())
    base = schemas.ContactPointRead.model_validate(contact).model_dump()
    return schemas.ContactPointWithStatus(
        **base, local_time=now.local_time, availability=now.availability
    )


@router.get(
    "/directory/authorities/{authority_id}/contact-points",
    response_model=list[schemas.ContactPointWithStatus],
)
def list_contact_points(
    authority_id: int,
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> list[schemas.ContactPointWithStatus]:
    contacts = service.list_contact_points(session, authority_id, actor=actor)
    return [_with_status(c) for c in contacts]


@router.post(
    "/directory/authorities/{authority_id}/contact-points",
    response_model=schemas.ContactPointWithStatus,
    status_code=status.HTTP_201_CREATED,
)
def add_contact_point(
    authority_id: int,
    body: schemas.ContactPointCreate,
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> schemas.ContactPointWithStatus:
    return _with_status(service.add_contact_point(session, authority_id, body, actor=actor))


@router.patch(
    "/directory/contact-points/{contact_point_id}", response_model=schemas.ContactPointWithStatus
)
def update_contact_point(
    contact_point_id: int,
    body: schemas.ContactPointChanges,
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> schemas.ContactPointWithStatus:
    contact = service.update_contact_point(session, contact_point_id, body, actor=actor)
    return _with_status(contact)


@router.get("/directory/instruments", response_model=list[schemas.InstrumentRead])
def list_instruments(
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> list[schemas.InstrumentRead]:
    instruments = service.list_instruments(session, actor=actor)
    return [schemas.InstrumentRead.model_validate(i) for i in instruments]


@router.post(
    "/directory/instruments",
    response_model=schemas.InstrumentRead,
    status_code=status.HTTP_201_CREATED,
)
def create_instrument(
    body: schemas.InstrumentCreate,
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> schemas.InstrumentRead:
    instrument = service.create_instrument(session, body, actor=actor)
    return schemas.InstrumentRead.model_validate(instrument)


@router.put("/directory/instruments/{code}/parties", response_model=schemas.InstrumentRead)
def set_party_status(
    code: str,
    body: schemas.PartySet,
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> schemas.InstrumentRead:
    service.set_party_status(session, code, body, actor=actor)
    instrument = service.get_instrument(session, code, actor=actor)
    return schemas.InstrumentRead.model_validate(instrument)


@router.get("/directory/nodes", response_model=list[schemas.NodeRead])
def list_nodes(
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> list[schemas.NodeRead]:
    return [schemas.NodeRead.model_validate(n) for n in service.list_nodes(session, actor=actor)]


@router.post(
    "/directory/nodes", response_model=schemas.NodeRead, status_code=status.HTTP_201_CREATED
)
def register_node(
    body: schemas.NodeCreate,
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> schemas.NodeRead:
    return schemas.NodeRead.model_validate(service.register_node(session, body, actor=actor))


@router.post("/directory/policy/evaluate", response_model=schemas.PolicyAnswer)
def evaluate_policy(
    body: schemas.PolicyQuery,
    session: Session = Depends(get_session),
    actor: Principal = Depends(api_principal),
) -> schemas.PolicyAnswer:
    result = service.evaluate_policy(session, body, actor=actor)
    return schemas.PolicyAnswer.from_result(result)
