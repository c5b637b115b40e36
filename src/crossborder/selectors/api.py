"""JSON routes for identifiers: lookups, a record's identifiers, sets and bulk import."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from crossborder.auth.deps import api_principal
from crossborder.auth.permissions import Principal
from crossborder.core.errors import InvalidInput
from crossborder.db.session import unit_of_work
from crossborder.deps import get_session, get_settings
from crossborder.requests.identifiers import region_of
from crossborder.requests.schemas import IdentifierKind
from crossborder.selectors import present, service, sets
from crossborder.settings import Settings

router = APIRouter(tags=["identifiers"])

Actor = Annotated[Principal, Depends(api_principal)]
Db = Annotated[Session, Depends(get_session)]
Conf = Annotated[Settings, Depends(get_settings)]
MAX_IMPORT_BYTES = 50 * 1024 * 1024


@router.get("/identifiers/lookup")
def lookup(
    actor: Actor,
    session: Db,
    settings: Conf,
    type: IdentifierKind,
    value: Annotated[str, Query(min_length=1, max_length=2000)],
    port: Annotated[int | None, Query(ge=1, le=65535)] = None,
    seen_from: AwareDatetime | None = None,
    seen_until: AwareDatetime | None = None,
    region: Annotated[str | None, Query(min_length=2, max_length=2)] = None,
) -> dict[str, Any]:
    """Where else a value (or, for ``ip``, every address in a CIDR network) appears. Audited."""
    with unit_of_work(session):
        result = service.lookup(
            session,
            actor,
            kind=type.value,
            value=value,
            config=service.Config.from_settings(settings),
            port=port,
            seen_from=seen_from,
            seen_until=seen_until,
            default_region=region or region_of(session, actor.authority_id),
        )
    return {
        "type": result.kind,
        "query": result.query,
        "network": result.network,
        "truncated": result.truncated,
        "values": present.correlation_json(result.correlations),
    }


def _scope_identifiers(
    session: Session, actor: Principal, settings: Settings, scope_type: str, scope_id: str
) -> list[dict[str, Any]]:
    with unit_of_work(session):
        items = service.record_identifiers(
            session,
            actor,
            scope_type,
            scope_id,
            config=service.Config.from_settings(settings),
        )
        service.audit_disclosure(
            session,
            actor,
            [i.correlation for i in items if i.correlation is not None],
            action="identifiers.viewed",
            object_type=scope_type,
            object_id=scope_id,
        )
    return [present.record_identifier_json(i) for i in items]


@router.get("/requests/{ref}/identifiers")
def request_identifiers(ref: str, actor: Actor, session: Db, settings: Conf) -> dict[str, Any]:
    """A request's identifiers (its fields, messages, attachments) with their correlations."""
    from crossborder.requests import service as requests_service

    req = requests_service.get_request(session, ref, actor=actor)
    return {"items": _scope_identifiers(session, actor, settings, "request", req.public_id)}


class SetIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=5000)] = ""


def _set_json(item: Any, count: int | None = None) -> dict[str, Any]:
    data = {
        "id": item.public_id,
        "name": item.name,
        "description": item.description,
        "authority_id": item.authority_id,
        "created_by": item.created_by_label,
        "created_at": item.created_at.isoformat(),
    }
    if count is not None:
        data["identifiers"] = count
    return data


@router.get("/identifier-sets")
def list_sets(actor: Actor, session: Db) -> dict[str, Any]:
    return {"items": [_set_json(s.item, s.identifiers) for s in sets.list_sets(session, actor)]}


@router.post("/identifier-sets", status_code=status.HTTP_201_CREATED)
def create_set(body: SetIn, actor: Actor, session: Db) -> dict[str, Any]:
    with unit_of_work(session):
        item = sets.create_set(session, actor, name=body.name, description=body.description)
    return _set_json(item, 0)


@router.get("/identifier-sets/{set_id}")
def get_set(set_id: str, actor: Actor, session: Db, settings: Conf) -> dict[str, Any]:
    item = sets.get_set(session, actor, set_id)
    return {
        **_set_json(item),
        "items": _scope_identifiers(session, actor, settings, "set", item.public_id),
    }


@router.post("/identifier-sets/{set_id}/import")
async def import_csv(
    set_id: str,
    request: Request,
    actor: Actor,
    session: Db,
    skip_invalid: bool = False,
) -> dict[str, Any]:
    """Append the identifiers of a CSV body (``text/csv``, UTF-8, header row) to a set.

    All-or-nothing unless ``skip_invalid``: a file with an invalid row stores nothing and the
    problem names the first bad lines.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("text/csv", "text/plain"):
        raise InvalidInput("send the file as text/csv", field="content-type")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_IMPORT_BYTES:
            raise InvalidInput(
                f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB; "
                "use `crossborder identifiers import`",
                field="file",
            )
    with unit_of_work(session):
        item = sets.get_set(session, actor, set_id)
        report = sets.import_csv(
            session,
            actor,
            item,
            sets.read_text(bytes(data)),
            default_region=region_of(session, actor.authority_id),
            skip_invalid=skip_invalid,
        )
    return {
        "rows": report.rows,
        "stored": report.stored,
        "invalid": report.invalid,
        "known_elsewhere": report.known_elsewhere,
        "errors": report.errors,
    }


class WarningIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    type: IdentifierKind
    value: Annotated[str, Field(min_length=1, max_length=2000)]
    reason: Annotated[str, Field(min_length=1, max_length=300)]


@router.get("/identifiers/warninglists")
def warninglists(actor: Actor, session: Db, settings: Conf) -> dict[str, Any]:
    """The warning lists in force, the node's own entries and the correlation limit."""
    config = service.Config.from_settings(settings)
    index = config.warning_index()
    local = service.list_local_warnings(session, actor)
    return {
        "correlation_limit": config.correlation_limit,
        "lists": [
            {
                "slug": i.slug,
                "name": i.name,
                "type": i.type,
                "entries": i.size,
                "kinds": sorted(i.kinds),
            }
            for i in (index.lists if index is not None else ())
        ],
        "local": [
            {"type": w.kind, "value": w.value, "reason": w.reason, "added_by": w.added_by_label}
            for w in local
        ],
    }


@router.post("/identifiers/warninglists/local", status_code=status.HTTP_201_CREATED)
def add_warning(body: WarningIn, actor: Actor, session: Db) -> dict[str, Any]:
    with unit_of_work(session):
        entry = service.add_local_warning(
            session, actor, kind=body.type.value, value=body.value, reason=body.reason
        )
    return {"type": entry.kind, "value": entry.value, "reason": entry.reason}


@router.delete("/identifiers/warninglists/local", status_code=status.HTTP_204_NO_CONTENT)
def remove_warning(
    actor: Actor,
    session: Db,
    type: IdentifierKind,
    value: Annotated[str, Query(min_length=1, max_length=2000)],
) -> None:
    with unit_of_work(session):
        service.remove_local_warning(session, actor, kind=type.value, value=value)
