"""STIX bundles in: read one (bytes, a file, an http(s) URL) and import it in batches.

Reading is ``orjson`` (no ``stix2.parse``): the top level must be a bundle (``type``
"bundle", an ``id`` ``bundle--<UUID>``, ``objects`` a list). Objects are checked one by one
by :func:`crossborder.intel.service.add_objects`; a bad object is counted and reported, the
others are stored. The whole import is one transaction: a database failure half-way leaves
nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy.orm import Session

from crossborder.auth.permissions import Principal
from crossborder.core.errors import DomainError, InvalidInput
from crossborder.db.session import unit_of_work
from crossborder.intel import service, stix
from crossborder.intel.models import IntelCollection

MAX_BUNDLE_BYTES: Final = 100 * 1024 * 1024
BATCH: Final = 1000
MAX_ERRORS_SHOWN: Final = 20
FETCH_TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)
_READ_CHUNK: Final = 1024 * 1024


class TooLarge(DomainError):
    status = 413
    code = "too-large"
    title = "Content too large"


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the bundle is larger than {limit:,} bytes")


def parse(data: bytes) -> list[Any]:
    """The objects of a STIX bundle given as JSON bytes; raises InvalidInput."""
    try:
        top = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON: {exc}", field="bundle") from None
    if not isinstance(top, dict) or top.get("type") != "bundle":
        raise InvalidInput(
            'not a STIX bundle: the top level needs "type": "bundle"', field="bundle"
        )
    if not stix.is_stix_id(top.get("id"), "bundle"):
        raise InvalidInput('not a STIX bundle: its "id" must be bundle--<UUID>', field="bundle")
    objects = top.get("objects", [])
    if not isinstance(objects, list):
        raise InvalidInput('not a STIX bundle: "objects" must be a list', field="bundle")
    return objects


def read_file(path: Path, *, limit: int = MAX_BUNDLE_BYTES) -> list[Any]:
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", field="file")
    if path.stat().st_size > limit:
        raise _too_large(limit)
    return parse(path.read_bytes())


def fetch(url: str, *, limit: int = MAX_BUNDLE_BYTES, client: httpx.Client | None = None) -> bytes:
    """Download a bundle over http(s), refusing more than ``limit`` bytes as they arrive."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise InvalidInput("only http and https URLs can be fetched", field="url")
    own = client is None
    http = client or httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=True, max_redirects=5)
    try:
        with http.stream("GET", url, headers={"Accept": "application/stix+json, */*"}) as reply:
            if reply.status_code != 200:
                raise InvalidInput(f"fetching the bundle answered HTTP {reply.status_code}")
            declared = reply.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(limit)
            data = bytearray()
            for chunk in reply.iter_bytes(_READ_CHUNK):
                data += chunk
                if len(data) > limit:
                    raise _too_large(limit)
            return bytes(data)
    except httpx.HTTPError as exc:
        raise InvalidInput(f"could not fetch the bundle: {type(exc).__name__}") from None
    finally:
        if own:
            http.close()


def read_source(source: str, *, limit: int = MAX_BUNDLE_BYTES) -> list[Any]:
    """The objects of a bundle named by a file path or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        return parse(fetch(source, limit=limit))
    return read_file(Path(source), limit=limit)


@dataclass
class ImportReport:
    total: int = 0
    stored: int = 0
    already_present: int = 0
    invalid: int = 0
    errors: list[str] = field(default_factory=list)  # the first invalid objects, why
    statuses: list[str] = field(default_factory=list)  # the status resources written

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "stored": self.stored,
            "already_present": self.already_present,
            "invalid": self.invalid,
            "errors": self.errors,
            "statuses": self.statuses,
        }

    def summary(self) -> str:
        return (
            f"{self.stored} stored, {self.already_present} already present, "
            f"{self.invalid} invalid (of {self.total})"
        )


def import_objects(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    objects: Sequence[Any],
    *,
    progress: Callable[[int], None] | None = None,
    batch: int = BATCH,
    origin_authority_id: int | None = None,
    source: str = "imported",
) -> ImportReport:
    """Store a bundle's objects in batches, all in one transaction; returns the totals."""
    report = ImportReport(total=len(objects))
    with unit_of_work(session):
        for start in range(0, len(objects), batch):
            part = objects[start : start + batch]
            status = service.add_objects(
                session,
                actor,
                collection,
                part,
                origin_authority_id=origin_authority_id,
                source=source,
            )
            report.stored += status.success_count
            report.already_present += status.already_present
            report.invalid += status.invalid
            report.statuses.append(status.id)
            for failure in status.failures:
                if failure.get("message") == service.ALREADY_PRESENT:
                    continue
                if len(report.errors) < MAX_ERRORS_SHOWN:
                    report.errors.append(f"{failure.get('id') or '(no id)'}: {failure['message']}")
            if progress is not None:
                progress(len(part))
    return report
