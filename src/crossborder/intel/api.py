"""JSON routes for intelligence collections: list, create, grant, import and export bundles.

The TAXII 2.1 server is separate; these routes are the node's own API.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from crossborder.auth.deps import api_principal
from crossborder.auth.permissions import Principal
from crossborder.core.errors import DomainError
from crossborder.db.session import unit_of_work
from crossborder.deps import get_session
from crossborder.intel import bundles, present, service

router = APIRouter(tags=["intelligence"])

Actor = Annotated[Principal, Depends(api_principal)]
Db = Annotated[Session, Depends(get_session)]
BUNDLE_MEDIA_TYPES = ("application/json", "application/stix+json")


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=5000)] = ""
    alias: Annotated[str | None, Field(min_length=1, max_length=100)] = None


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    authority_id: int | None = None
    token_id: int | None = None
    can_read: bool = True
    can_write: bool = False


@router.get("/intel/collections")
def list_collections(actor: Actor, session: Db) -> dict[str, Any]:
    return {"items": [present.access_json(c) for c in service.list_collections(session, actor)]}


@router.post("/intel/collections", status_code=status.HTTP_201_CREATED)
def create_collection(body: CollectionIn, actor: Actor, session: Db) -> dict[str, Any]:
    with unit_of_work(session):
        item = service.create_collection(
            session, actor, title=body.title, description=body.description, alias=body.alias
        )
        read, write = service.access(session, actor, item)
    return present.collection_json(item, can_read=read, can_write=write)


@router.post("/intel/collections/{ref}/grants", status_code=status.HTTP_201_CREATED)
def grant(ref: str, body: GrantIn, actor: Actor, session: Db) -> dict[str, Any]:
    """Give an authority or an API token access; neither read nor write takes it away."""
    with unit_of_work(session):
        item = service.get_collection(session, actor, ref)
        service.grant(
            session,
            actor,
            item,
            authority_id=body.authority_id,
            token_id=body.token_id,
            can_read=body.can_read,
            can_write=body.can_write,
        )
    return body.model_dump()


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise bundles.TooLarge(f"the bundle is larger than {limit:,} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise bundles.TooLarge(f"the bundle is larger than {limit:,} bytes")
    return bytes(data)


@router.post("/intel/collections/{ref}/bundles")
async def import_bundle(ref: str, request: Request, actor: Actor, session: Db) -> dict[str, Any]:
    """Import a STIX 2.1 bundle (``application/stix+json`` or ``application/json``).

    Each object is checked; invalid ones and those already present are counted, the others
    stored, all in one transaction.
    """
    if _media_type(request) not in BUNDLE_MEDIA_TYPES:
        raise UnsupportedMediaType("send the bundle as application/stix+json or application/json")
    objects = bundles.parse(await _body(request, bundles.MAX_BUNDLE_BYTES))

    def store() -> bundles.ImportReport:
        with unit_of_work(session):
            item = service.get_collection(session, actor, ref)
            return bundles.import_objects(session, actor, item, objects)

    report = await run_in_threadpool(store)  # a large bundle must not block the event loop
    return report.as_json()


@router.get("/intel/collections/{ref}/bundle")
def export_bundle(
    ref: str,
    actor: Actor,
    session: Db,
    type: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006 - FastAPI idiom
    id: Annotated[list[str], Query(max_length=1000)] = [],  # noqa: B006
    audience: Annotated[str, Query(max_length=300)] = "public",
) -> Response:
    """The newest versions the caller may read and may pass on to ``audience``, as a bundle.

    ``audience``: ``public`` (default), ``authority:<short name or id>`` or
    ``partner:<name>``. The number of objects left out is in ``X-Crossborder-Left-Out``.
    """
    with unit_of_work(session):
        item = service.get_collection(session, actor, ref)
        bundle, left_out = service.export_bundle(
            session,
            actor,
            item,
            types=type,
            ids=id,
            audience=service.parse_audience(session, audience),
        )
    return Response(
        content=orjson.dumps(bundle),
        media_type=service.MEDIA_TYPE,
        headers={"X-Crossborder-Left-Out": str(len(left_out))},
    )
