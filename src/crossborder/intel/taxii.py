"""A TAXII 2.1 server over the STIX store (OASIS TAXII 2.1, 10 June 2021; §n below is its section).

Endpoints (``router``, to be included in the app *without* a prefix: the paths carry
``/taxii2``); each answers with or without its trailing slash (§3.1 asks clients for the slash):

* ``GET /taxii2/`` — discovery (§4.1), one API root, ``/taxii2/api1/``, as absolute URLs built
  from the request's base URL;
* ``GET /taxii2/api1/`` — the API root (§4.2); ``GET /taxii2/api1/status/{id}/`` (§4.3);
* ``GET /taxii2/api1/collections/`` and ``…/collections/{id}/`` (§5.1, §5.2): the collections
  of the store the requester may read or write, ``can_read``/``can_write`` as the store's
  :func:`~crossborder.intel.service.access` says for this requester. ``{id}`` may also be the
  collection's alias (§5.2.1);
* ``GET …/manifest/`` (§5.3); ``GET|POST …/objects/`` (§5.4, §5.5);
  ``GET|DELETE …/objects/{object-id}/`` (§5.6, §5.7); ``GET …/objects/{object-id}/versions/``
  (§5.8).

Decisions, with the section they rest on:

* **Every** response, errors included, is ``Content-Type: application/taxii+json;version=2.1``
  (§3.1); errors carry the error message of §3.6.1 (``title``, ``description``,
  ``http_status`` as a string, ``error_code``). The route class :class:`TaxiiRoute` turns every
  exception of a TAXII route into such a body; a catch-all route answers 404 (or 405) for
  unknown paths under ``/taxii2/``, so nothing under it falls through to RFC 9457 problems.
* ``Accept`` must name a TAXII media range: ``application/taxii+json;version=2.1`` or
  ``application/taxii+json`` without a version, which §1.6.8.2 defines as "the latest version
  the server supports", i.e. 2.1. Anything else (no header, ``*/*``, another version, q=0)
  is 406 (§3.1: a request MUST include a TAXII media range).
* ``POST`` needs ``Content-Type: application/taxii+json`` (version 2.1 or none), else 415
  (§5.5); a body over ``max_content_length`` is 413 (§4.2.1, §5.5), refused from
  ``Content-Length`` before reading, or while streaming; a body that is not a JSON envelope
  with a non-empty ``objects`` list is 422 (§5.5: "malformed body"; §2: empty lists are
  prohibited). Each object is then validated by the store and counted in the Status: invalid
  objects and versions already present are failures; valid ones are stored in one
  transaction (nothing half-imported when the database fails).
* Authentication (§1.6.9, §8.2.2): API tokens only — ``Authorization: Bearer <token>``,
  ``Token <token>`` (taxii2-client's ``TokenAuth``) or HTTP Basic with the token as the
  password (any user name), because §8.2.2 asks servers to offer Basic and many TAXII clients
  know nothing else. A user's own password is never accepted here (it has a second factor).
  Missing or bad credentials: 401 with ``WWW-Authenticate: Bearer, Basic`` on every endpoint,
  discovery included (§4.1 lists 401).
* A collection the requester can neither read nor write is 404, as if it did not exist
  (§5.2 allows 404 for "no access"; §5.7 makes it mandatory for DELETE); one it can see but
  not read (GET) or not write (POST) is 403 (§5.3-§5.6). DELETE needs both ``can_read`` and
  ``can_write``; one of them alone is 403 (§5.7).
* Filters (§3.4): ``added_after`` (a timestamp), ``limit`` (a positive integer; larger than
  :data:`MAX_PAGE` is capped, §3.4 allows fewer objects than asked), ``next`` (the store's
  opaque page token, tied to the filters: other filters with it are 400), ``match[id]``,
  ``match[type]``, ``match[version]`` (``first``, ``last``, ``all`` or timestamps; default
  ``last``; ``all`` with anything else, or a value twice, is 400), ``match[spec_version]``.
  Any of them twice in one request, malformed, or empty is 400; unknown ``match[...]`` fields
  are ignored (§3.4 lets servers ignore them). Without ``limit`` a page holds
  :data:`DEFAULT_PAGE` objects.
* Envelopes (§3.7) and the manifest and versions resources omit empty lists (§2); ``more`` is
  always present and ``next`` whenever ``more`` is true. ``X-TAXII-Date-Added-First`` /
  ``-Last`` (§3.2) carry the ``date_added`` of the first and last object of the page, with
  microseconds (§2 ``timestamp``); a page with no object has no date to give, so they are
  left out.
* Markings: the store leaves out, without a word, any object the requester may not read
  (TLP 2.0, named recipients of TLP:RED, AMBER+STRICT stays with its authority); §1.6.9 and
  §8.2.2 allow a server to omit objects from any response.
* Getting one object (§5.6) that is not in the collection, or not readable by the requester,
  is 404; one that exists but that the filters leave out gives an empty envelope.
* DELETE (§5.7) removes every version of the object, or those ``match[version]`` (``last``,
  ``first``, ``all``, timestamps) and ``match[spec_version]`` select; none selected is 404.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from crossborder.auth import service as auth_service
from crossborder.auth.permissions import Principal
from crossborder.core.errors import AuthenticationRequired, DomainError, InvalidInput
from crossborder.db.session import unit_of_work
from crossborder.deps import client_ip, get_session, get_settings
from crossborder.intel import service, stix
from crossborder.intel.models import IntelCollection

TAXII_MEDIA_TYPE: Final = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE: Final = "application/stix+json;version=2.1"
API_ROOT: Final = "api1"
MAX_CONTENT_LENGTH: Final = 10 * 1024 * 1024  # octets of a POST body (the API root says so)
MAX_PAGE: Final = service.MAX_PAGE
DEFAULT_PAGE: Final = service.DEFAULT_PAGE
MAX_MATCH_VALUES: Final = 1000
MAX_NEXT_LENGTH: Final = 2000
WWW_AUTHENTICATE: Final = 'Bearer realm="taxii2", Basic realm="taxii2", charset="UTF-8"'
DATE_FIRST: Final = "X-TAXII-Date-Added-First"
DATE_LAST: Final = "X-TAXII-Date-Added-Last"

log = logging.getLogger("crossborder.taxii")

_TITLES: Final = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
}
_SPEC_VERSION_RE: Final = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}")
_DIGITS_RE: Final = re.compile(r"[0-9]+")
_VERSION_KEYWORDS: Final = ("first", "last", "all")
_SINGLE_PARAMS: Final = ("added_after", "limit", "next")


# --- errors and responses ---------------------------------------------------------------------


class TaxiiError(Exception):
    """An HTTP error answered with a TAXII error message (§3.6.1)."""

    def __init__(
        self,
        status: int,
        description: str,
        *,
        title: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.title = title or _TITLES.get(status, "Error")
        self.code = code
        self.headers = headers or {}


def taxii_json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=orjson.dumps(body), status_code=status, media_type=TAXII_MEDIA_TYPE, headers=headers
    )


def error_response(error: TaxiiError) -> Response:
    body: dict[str, Any] = {
        "title": error.title,
        "description": error.description,
        "http_status": str(error.status),
    }
    if error.code:
        body["error_code"] = error.code
    return taxii_json(body, error.status, error.headers or None)


def _as_taxii_error(exc: Exception, request: Request) -> TaxiiError:
    if isinstance(exc, TaxiiError):
        return exc
    if isinstance(exc, AuthenticationRequired):
        return TaxiiError(
            401, exc.detail, code=exc.code, headers={"WWW-Authenticate": WWW_AUTHENTICATE}
        )
    if isinstance(exc, DomainError):
        return TaxiiError(exc.status, exc.detail, title=exc.title, code=exc.code)
    if isinstance(exc, RequestValidationError):
        return TaxiiError(400, "the request could not be understood")
    if isinstance(exc, StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else ""
        headers = dict(exc.headers) if exc.headers else None
        return TaxiiError(
            exc.status_code, detail or _TITLES.get(exc.status_code, ""), headers=headers
        )
    # Log the type and route only: exception text may carry protected data.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return TaxiiError(500, "an internal error occurred; it has been logged")


# --- content negotiation ----------------------------------------------------------------------


@dataclass(frozen=True)
class MediaRange:
    media_type: str
    params: dict[str, str]


def parse_media_ranges(header: str) -> list[MediaRange]:
    """``Accept`` or ``Content-Type`` split into media types (lower case) and parameters."""
    found: list[MediaRange] = []
    for item in header.split(","):
        media_type, *raw_params = (part.strip() for part in item.split(";"))
        if not media_type:
            continue
        params: dict[str, str] = {}
        for raw in raw_params:
            name, sep, value = raw.partition("=")
            if sep:
                params[name.strip().lower()] = value.strip().strip('"')
        found.append(MediaRange(media_type.lower(), params))
    return found


def _is_taxii21(found: MediaRange) -> bool:
    return found.media_type == "application/taxii+json" and found.params.get("version", "2.1") == (
        "2.1"
    )


def _accepted(found: MediaRange) -> bool:
    try:
        quality = float(found.params.get("q", "1"))
    except ValueError:
        return False
    return quality > 0 and _is_taxii21(found)


def negotiate(request: Request) -> None:
    """406 unless ``Accept`` names TAXII 2.1 (§1.6.8, §3.1)."""
    accept = request.headers.get("accept", "")
    if not any(_accepted(r) for r in parse_media_ranges(accept)):
        raise TaxiiError(
            406,
            f"the Accept header must include {TAXII_MEDIA_TYPE} (or application/taxii+json); "
            f"got {accept[:200]!r}",
        )


def require_taxii_content(request: Request) -> None:
    """415 unless the body is declared ``application/taxii+json`` (version 2.1 or none)."""
    declared = request.headers.get("content-type", "")
    ranges = parse_media_ranges(declared)
    if len(ranges) != 1 or not _is_taxii21(ranges[0]):
        raise TaxiiError(
            415, f"send the envelope as Content-Type: {TAXII_MEDIA_TYPE}; got {declared[:200]!r}"
        )


class TaxiiRoute(APIRoute):
    """A route whose every answer is TAXII: Accept checked first, every error a TAXII error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def taxii_handler(request: Request) -> Response:
            try:
                negotiate(request)
                return await handler(request)
            except Exception as exc:  # every error leaves as a TAXII error message
                return error_response(_as_taxii_error(exc, request))

        return taxii_handler


router = APIRouter(prefix="/taxii2", route_class=TaxiiRoute, tags=["taxii"])


def _taxii_route(
    path: str, methods: Sequence[str]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an endpoint with its trailing slash and, out of the schema, without it."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(path, fn, methods=list(methods), response_class=Response)
        router.add_api_route(
            path.rstrip("/"),
            fn,
            methods=list(methods),
            response_class=Response,
            include_in_schema=False,
        )
        return fn

    return decorator


# --- authentication ---------------------------------------------------------------------------


def _credential(header: str) -> str:
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    kind = scheme.lower()
    if kind in ("bearer", "token") and credentials:
        return credentials
    if kind == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationRequired("malformed HTTP Basic credentials") from None
        _user, sep, password = decoded.partition(":")
        if sep and password:
            return password
    raise AuthenticationRequired(
        "use 'Authorization: Bearer <API token>' (or HTTP Basic with the token as the password)"
    )


def taxii_principal(request: Request, session: Session = Depends(get_session)) -> Principal:
    """The API token's principal (Bearer, Token or Basic with the token as password); else 401."""
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationRequired("present an API token: 'Authorization: Bearer <API token>'")
    with unit_of_work(session):  # commits the token's last use
        principal = auth_service.authenticate_token(
            session, raw=_credential(header), ip=client_ip(request)
        )
    request.state.principal = principal
    return principal


Actor = Annotated[Principal, Depends(taxii_principal)]
Db = Annotated[Session, Depends(get_session)]


def _api_root(api_root: str) -> str:
    if api_root != API_ROOT:
        raise TaxiiError(404, "no such API root")
    return api_root


Root = Annotated[str, Depends(_api_root)]


# --- formatting -------------------------------------------------------------------------------


def taxii_timestamp(value: datetime) -> str:
    """A TAXII timestamp: UTC, always with microseconds (§2)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def collection_resource(
    item: IntelCollection, *, can_read: bool, can_write: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": item.public_id, "title": item.title}
    if item.description:
        body["description"] = item.description
    if item.alias:
        body["alias"] = item.alias
    body.update(can_read=can_read, can_write=can_write, media_types=[STIX_MEDIA_TYPE])
    return body


def _details(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in entry.items() if v is not None} for entry in entries]


def status_resource(status: service.StatusResult) -> dict[str, Any]:
    """A Status resource (§4.3.1): counts always, the lists only when they are not empty."""
    body: dict[str, Any] = {
        "id": status.id,
        "status": status.status,
        "request_timestamp": taxii_timestamp(status.request_timestamp),
        "total_count": status.total_count,
        "success_count": status.success_count,
        "failure_count": status.failure_count,
        "pending_count": status.pending_count,
    }
    for name, entries in (
        ("successes", status.successes),
        ("failures", status.failures),
        ("pendings", status.pendings),
    ):
        if entries:
            body[name] = _details(entries)
    return body


def _date_headers(page: service.Page) -> dict[str, str]:
    if page.first_added is None or page.last_added is None:
        return {}
    return {
        DATE_FIRST: taxii_timestamp(page.first_added),
        DATE_LAST: taxii_timestamp(page.last_added),
    }


def _paged(page: service.Page, key: str, items: list[Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"more": page.more}
    if page.more and page.next:
        body["next"] = page.next
    if items:
        body[key] = items
    return body


# --- query parameters (§3.4) ------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    added_after: datetime | None = None
    limit: int = DEFAULT_PAGE
    next: str | None = None
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    versions: tuple[str, ...] = ("last",)
    spec_versions: tuple[str, ...] = ()
    version_given: bool = False


def _bad(description: str) -> TaxiiError:
    return TaxiiError(400, description)


def _values(name: str, raw: str) -> tuple[str, ...]:
    values = tuple(raw.split(","))
    if any(not v or v != v.strip() for v in values):
        raise _bad(f"{name}: comma-separated values, without spaces or empty values")
    if len(values) > MAX_MATCH_VALUES:
        raise _bad(f"{name}: at most {MAX_MATCH_VALUES} values")
    return values


def _timestamp(name: str, raw: str) -> datetime:
    parsed = stix.parse_timestamp(raw)
    if parsed is None:
        raise _bad(f"{name}: a timestamp such as 2024-01-31T12:00:00.000000Z")
    return parsed


def _limit(raw: str) -> int:
    digits = raw.lstrip("0") if _DIGITS_RE.fullmatch(raw) else ""
    if not digits:
        raise _bad("limit: a positive integer")
    return MAX_PAGE if len(digits) > 9 else min(int(digits), MAX_PAGE)


def _versions(raw: str) -> tuple[str, ...]:
    values = _values("match[version]", raw)
    if len(set(values)) != len(values):
        raise _bad("match[version]: a value may not be given twice")
    if "all" in values and len(values) > 1:
        raise _bad("match[version]: 'all' may not be combined with other values")
    for value in values:
        if value not in _VERSION_KEYWORDS:
            _timestamp("match[version]", value)
    return values


def _match(params: dict[str, str], field: str) -> tuple[str, ...]:
    name = f"match[{field}]"
    return _values(name, params[name]) if name in params else ()


def parse_filters(request: Request, *, default_limit: int = DEFAULT_PAGE) -> Filters:
    """The §3.4 parameters of a request; 400 for anything malformed or given twice."""
    items = request.query_params.multi_items()
    seen: set[str] = set()
    for name, _ in items:
        if (name in _SINGLE_PARAMS or name.startswith("match[")) and name in seen:
            raise _bad(f"{name}: given more than once")
        seen.add(name)
    params = dict(items)
    added_after = params.get("added_after")
    limit = params.get("limit")
    next_token = params.get("next")
    if next_token is not None and not 0 < len(next_token) <= MAX_NEXT_LENGTH:
        raise _bad("next: the value of 'next' of the previous page")
    spec_versions = _match(params, "spec_version")
    if not all(_SPEC_VERSION_RE.fullmatch(v) for v in spec_versions):
        raise _bad("match[spec_version]: versions such as 2.1")
    version = params.get("match[version]")
    return Filters(
        added_after=_timestamp("added_after", added_after) if added_after is not None else None,
        limit=_limit(limit) if limit is not None else default_limit,
        next=next_token,
        ids=_match(params, "id"),
        types=_match(params, "type"),
        versions=_versions(version) if version is not None else ("last",),
        spec_versions=spec_versions,
        version_given=version is not None,
    )


# --- collections and access -------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    collection: IntelCollection
    can_read: bool
    can_write: bool


def find_collection(session: Session, actor: Principal, ref: str) -> Found:
    """A collection the requester may read or write; 404 for any other (§5.2, §5.7)."""
    item = service.get_collection(session, actor, ref)
    can_read, can_write = service.access(session, actor, item)
    if not (can_read or can_write):
        raise TaxiiError(404, "no such collection, or not shared with you")
    return Found(item, can_read, can_write)


def _readable(session: Session, actor: Principal, ref: str) -> Found:
    found = find_collection(session, actor, ref)
    if not found.can_read:
        raise TaxiiError(403, "you may not read this collection (can_read is false)")
    return found


def _query(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    filters: Filters,
    *,
    ids: tuple[str, ...] | None = None,
    types: tuple[str, ...] | None = None,
) -> service.Page:
    try:
        return service.query(
            session,
            actor,
            collection,
            added_after=filters.added_after,
            match_id=filters.ids if ids is None else ids,
            match_type=filters.types if types is None else types,
            match_version=list(filters.versions),
            match_spec_version=filters.spec_versions,
            limit=filters.limit,
            next_token=filters.next,
        )
    except InvalidInput as exc:  # a filter or page token the store refuses: §3.4 says 400
        raise _bad(exc.detail) from None


# --- server information (§4) -----------------------------------------------------------------


@_taxii_route("/", ["GET"])
def discovery(request: Request, actor: Actor) -> Response:
    """Server discovery (§4.1)."""
    settings = get_settings(request)
    root = f"{_base_url(request)}{router.prefix}/{API_ROOT}/"
    return taxii_json(
        {
            "title": f"{settings.node_name} — TAXII 2.1",
            "description": "Threat intelligence shared by this crossborder node: STIX 2.1 "
            "collections under TLP 2.0 and law-enforcement handling codes.",
            "contact": f"the administrators of {settings.node_name}",
            "default": root,
            "api_roots": [root],
        }
    )


@_taxii_route("/{api_root}/", ["GET"])
def api_root_information(request: Request, actor: Actor, root: Root) -> Response:
    """The API root (§4.2)."""
    settings = get_settings(request)
    return taxii_json(
        {
            "title": f"{settings.node_name} — intelligence collections",
            "description": "Collections are sharing groups: each lists what the requester may "
            "read and write. Objects the requester's markings forbid are never returned.",
            "versions": [TAXII_MEDIA_TYPE],
            "max_content_length": MAX_CONTENT_LENGTH,
        }
    )


@_taxii_route("/{api_root}/status/{status_id}/", ["GET"])
def get_status(status_id: str, actor: Actor, root: Root, session: Db) -> Response:
    """A Status resource (§4.3): 404 for an unknown one, or one of a collection not shared."""
    with unit_of_work(session):
        status = service.get_status(session, actor, status_id)
    return taxii_json(status_resource(status))


# --- collections (§5) -------------------------------------------------------------------------


@_taxii_route("/{api_root}/collections/", ["GET"])
def get_collections(actor: Actor, root: Root, session: Db) -> Response:
    """The collections the requester may read or write (§5.1), oldest first."""
    with unit_of_work(session):
        found = service.list_collections(session, actor)
    items = [
        collection_resource(f.collection, can_read=f.can_read, can_write=f.can_write) for f in found
    ]
    return taxii_json({"collections": items} if items else {})


@_taxii_route("/{api_root}/collections/{collection_id}/", ["GET"])
def get_collection(collection_id: str, actor: Actor, root: Root, session: Db) -> Response:
    """One collection (§5.2), by id or alias."""
    with unit_of_work(session):
        found = find_collection(session, actor, collection_id)
    return taxii_json(
        collection_resource(found.collection, can_read=found.can_read, can_write=found.can_write)
    )


@_taxii_route("/{api_root}/collections/{collection_id}/manifest/", ["GET"])
def get_manifest(
    request: Request, collection_id: str, actor: Actor, root: Root, session: Db
) -> Response:
    """Manifest records of the objects the requester may read (§5.3)."""
    filters = parse_filters(request)
    with unit_of_work(session):
        found = _readable(session, actor, collection_id)
        page = _query(session, actor, found.collection, filters)
        service.audit_read(session, actor, found.collection, page, via="taxii manifest")
    records = [
        {
            "id": entry.id,
            "date_added": taxii_timestamp(entry.date_added),
            "version": stix.format_timestamp(entry.version),
            "media_type": STIX_MEDIA_TYPE,
        }
        for entry in page.manifest
    ]
    return taxii_json(_paged(page, "objects", records), headers=_date_headers(page))


@_taxii_route("/{api_root}/collections/{collection_id}/objects/", ["GET"])
def get_objects(
    request: Request, collection_id: str, actor: Actor, root: Root, session: Db
) -> Response:
    """An envelope of the objects the requester may read, oldest addition first (§5.4)."""
    filters = parse_filters(request)
    with unit_of_work(session):
        found = _readable(session, actor, collection_id)
        page = _query(session, actor, found.collection, filters)
        service.audit_read(session, actor, found.collection, page, via="taxii")
    return taxii_json(_paged(page, "objects", page.objects), headers=_date_headers(page))


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` octets (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        declared = declared.strip()
        if not _DIGITS_RE.fullmatch(declared):
            raise _bad("Content-Length: not a number")
        if len(declared) > 15 or int(declared) > limit:
            raise TaxiiError(413, f"the body is larger than max_content_length ({limit} octets)")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise TaxiiError(413, f"the body is larger than max_content_length ({limit} octets)")
    return bytes(data)


def parse_envelope(raw: bytes) -> list[Any]:
    """The ``objects`` of a TAXII envelope (§3.7); 422 for anything else (§5.5)."""
    try:
        envelope = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise TaxiiError(422, "the body is not JSON (UTF-8)") from None
    if not isinstance(envelope, dict):
        raise TaxiiError(422, 'the body must be a TAXII envelope: {"objects": [...]}')
    objects = envelope.get("objects")
    if not isinstance(objects, list) or not objects:
        raise TaxiiError(
            422, "the envelope must have an 'objects' list with at least one STIX object"
        )
    return objects


def _writable(session: Session, actor: Principal, ref: str) -> IntelCollection:
    with unit_of_work(session):
        found = find_collection(session, actor, ref)
    if not found.can_write:
        raise TaxiiError(403, "you may not add objects to this collection (can_write is false)")
    return found.collection


def _add(
    session: Session, actor: Principal, collection: IntelCollection, objects: list[Any]
) -> service.StatusResult:
    with unit_of_work(session):
        return service.add_objects(session, actor, collection, objects)


@_taxii_route("/{api_root}/collections/{collection_id}/objects/", ["POST"])
async def add_objects(
    request: Request, collection_id: str, actor: Actor, root: Root, session: Db
) -> Response:
    """Add an envelope's objects (§5.5): 202 and the Status, which counts every failure."""
    collection = await run_in_threadpool(_writable, session, actor, collection_id)
    require_taxii_content(request)
    objects = parse_envelope(await read_body(request, MAX_CONTENT_LENGTH))
    status = await run_in_threadpool(_add, session, actor, collection, objects)
    return taxii_json(status_resource(status), 202)


@_taxii_route("/{api_root}/collections/{collection_id}/objects/{object_id}/", ["GET"])
def get_object(
    request: Request, collection_id: str, object_id: str, actor: Actor, root: Root, session: Db
) -> Response:
    """The versions of one object the filters select, in an envelope (§5.6); 404 if absent."""
    filters = parse_filters(request)
    with unit_of_work(session):
        found = _readable(session, actor, collection_id)
        page = _query(session, actor, found.collection, filters, ids=(object_id,), types=())
        if not page.objects and filters.next is None:
            probe = Filters(versions=("all",), limit=1)
            if not _query(session, actor, found.collection, probe, ids=(object_id,)).objects:
                raise TaxiiError(404, "no such object in this collection")
        service.audit_read(session, actor, found.collection, page, via="taxii")
    return taxii_json(_paged(page, "objects", page.objects), headers=_date_headers(page))


@_taxii_route("/{api_root}/collections/{collection_id}/objects/{object_id}/", ["DELETE"])
def delete_object(
    request: Request, collection_id: str, object_id: str, actor: Actor, root: Root, session: Db
) -> Response:
    """Delete an object's versions (§5.7): all of them unless ``match[version]`` and
    ``match[spec_version]`` select some; needs can_read and can_write."""
    filters = parse_filters(request)
    with unit_of_work(session):
        found = find_collection(session, actor, collection_id)
        if not (found.can_read and found.can_write):
            raise TaxiiError(403, "deleting needs both can_read and can_write on the collection")
        try:
            service.delete_object(
                session,
                actor,
                found.collection,
                object_id,
                match_version=filters.versions if filters.version_given else "all",
                match_spec_version=filters.spec_versions,
            )
        except InvalidInput as exc:
            raise _bad(exc.detail) from None
    return Response(status_code=200, media_type=TAXII_MEDIA_TYPE)


@_taxii_route("/{api_root}/collections/{collection_id}/objects/{object_id}/versions/", ["GET"])
def get_object_versions(
    request: Request, collection_id: str, object_id: str, actor: Actor, root: Root, session: Db
) -> Response:
    """The versions of an object the requester may read, oldest addition first (§5.8)."""
    filters = parse_filters(request, default_limit=MAX_PAGE)
    with unit_of_work(session):
        found = _readable(session, actor, collection_id)
        try:
            page = service.get_versions(
                session,
                actor,
                found.collection,
                object_id,
                added_after=filters.added_after,
                match_spec_version=filters.spec_versions,
                limit=filters.limit,
                next_token=filters.next,
            )
        except InvalidInput as exc:
            raise _bad(exc.detail) from None
        service.audit_read(session, actor, found.collection, page, via="taxii versions")
    versions = [stix.format_timestamp(entry.version) for entry in page.manifest]
    return taxii_json(_paged(page, "versions", versions), headers=_date_headers(page))


# --- anything else under /taxii2/ -------------------------------------------------------------

_ALL_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _allowed_methods(path: str) -> set[str]:
    allowed: set[str] = set()
    for route in router.routes:
        if (
            isinstance(route, APIRoute)
            and route.endpoint is not not_found
            and route.path_regex.match(path)
        ):
            allowed |= route.methods or set()
    return allowed


def not_found(request: Request, rest: str) -> Response:
    """Unknown paths are 404, known paths with another method 405: as TAXII errors."""
    allowed = _allowed_methods(request.url.path)
    if allowed:
        raise TaxiiError(
            405,
            f"{request.method} is not allowed here",
            headers={"Allow": ", ".join(sorted(allowed))},
        )
    raise TaxiiError(404, "no such TAXII endpoint")


router.add_api_route(
    "/{rest:path}",
    not_found,
    methods=_ALL_METHODS,
    response_class=Response,
    include_in_schema=False,
)
