"""Identifier sets: named lists an authority keeps, filled by hand or by bulk CSV import.

A set is visible to the users of the authority that keeps it, and to nobody else; its
identifiers join the global index like any other record's, so they correlate with requests,
messages, attachments — and others' hits in a set show as "another authority holds this".

CSV import (:func:`import_csv`) reads a header row naming the columns — ``type`` (or
``kind``) and ``value`` are required; ``port``, ``seen_from``, ``seen_until`` (ISO 8601 with
an offset), ``time_zone``, ``chain``, ``platform`` and ``note`` are optional — and is
all-or-nothing: every row is checked first, and if any is invalid nothing is stored unless
the caller asked to skip invalid rows. The file is read twice (check, then store), so memory
does not grow with its size.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crossborder.audit.service import record
from crossborder.auth.permissions import Permission, Principal, require
from crossborder.core.errors import InvalidInput, NotFound
from crossborder.selectors import bulk, service
from crossborder.selectors.correlate import digest
from crossborder.selectors.models import IdentOccurrence, IdentSet
from crossborder.selectors.scopes import ScopeLabel

MAX_ROWS: Final = 2_000_000
MAX_ERRORS_SHOWN: Final = 20
BATCH: Final = 5_000
_COLUMNS: Final = {"type", "kind", "value", "port", "seen_from", "seen_until", "time_zone"}
_OPTIONAL: Final = {"chain", "platform", "note"}


class SetScopes:
    def visible(self, session: Session, actor: Principal, ids: Collection[str]) -> set[str]:
        if not actor.has(Permission.IDENTIFIERS_READ):
            return set()
        rows = session.execute(
            select(IdentSet.public_id).where(
                IdentSet.public_id.in_(list(ids)), IdentSet.authority_id == actor.authority_id
            )
        )
        return {r[0] for r in rows}

    def describe(self, session: Session, ids: Collection[str]) -> dict[str, ScopeLabel]:
        rows = session.execute(
            select(IdentSet.public_id, IdentSet.name).where(IdentSet.public_id.in_(list(ids)))
        )
        return {pid: ScopeLabel(name, f"/identifiers/sets/{pid}") for pid, name in rows}


def create_set(session: Session, actor: Principal, *, name: str, description: str = "") -> IdentSet:
    require(actor, Permission.IDENTIFIERS_WRITE)
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("a set needs a name of 1 to 200 characters", field="name")
    if len(description) > 5000:
        raise InvalidInput("the description is longer than 5,000 characters", field="description")
    item = IdentSet(
        public_id=str(uuid.uuid4()),
        name=name,
        description=description.strip(),
        authority_id=actor.authority_id,
        created_by_user_id=actor.user_id,
        created_by_label=actor.label,
    )
    session.add(item)
    session.flush()
    record(
        session,
        actor=actor,
        action="identifiers.set_created",
        object_type="identifier_set",
        object_id=item.public_id,
    )
    return item


def get_set(session: Session, actor: Principal, public_id: str) -> IdentSet:
    require(actor, Permission.IDENTIFIERS_READ)
    item = session.scalar(select(IdentSet).where(IdentSet.public_id == public_id))
    if item is None or item.authority_id != actor.authority_id:
        raise NotFound("no such identifier set, or not kept by your authority")
    return item


@dataclass(frozen=True)
class SetSummary:
    item: IdentSet
    identifiers: int


def list_sets(session: Session, actor: Principal) -> list[SetSummary]:
    require(actor, Permission.IDENTIFIERS_READ)
    counts = (
        select(IdentOccurrence.scope_id, func.count().label("n"))
        .where(IdentOccurrence.scope_type == "set")
        .group_by(IdentOccurrence.scope_id)
        .subquery()
    )
    rows = session.execute(
        select(IdentSet, counts.c.n)
        .outerjoin(counts, counts.c.scope_id == IdentSet.public_id)
        .where(IdentSet.authority_id == actor.authority_id)
        .order_by(IdentSet.created_at.desc())
    ).all()
    return [SetSummary(s, int(n or 0)) for s, n in rows]


def where_of(item: IdentSet) -> service.Where:
    return service.Where("set", item.public_id, "set", item.public_id, item.authority_id)


# --- CSV -------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    rows: int = 0
    stored: int = 0
    invalid: int = 0
    known_elsewhere: int = 0  # stored rows whose value other records already hold
    errors: list[str] = field(default_factory=list)


def _time(text: str, column: str, line: int) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"line {line}: {column} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise InvalidInput(f"line {line}: {column} has no UTC offset (write e.g. +07:00)")
    return value


def _rows(text: IO[str]) -> Iterator[tuple[int, service.Entry]]:
    reader = csv.DictReader(text)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not header:
        raise InvalidInput("the file is empty: the first line must name the columns", field="file")
    unknown = set(header) - _COLUMNS - _OPTIONAL
    if unknown:
        raise InvalidInput(
            f"unknown column(s): {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(_COLUMNS | _OPTIONAL))}",
            field="file",
        )
    if "value" not in header or not ({"type", "kind"} & set(header)):
        raise InvalidInput("the first line must name the columns 'type' and 'value'", field="file")
    reader.fieldnames = header
    for count, row in enumerate(reader, start=1):
        number = reader.line_num  # blank lines are skipped but still counted
        if count > MAX_ROWS:
            raise InvalidInput(f"more than {MAX_ROWS:,} rows; split the file", field="file")
        if None in row:
            raise InvalidInput(f"line {number}: more fields than columns", field="file")
        get = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if not any(get.values()):
            continue
        port_text = get.get("port", "")
        if port_text and not (port_text.isascii() and port_text.isdigit()):
            raise InvalidInput(f"line {number}: port is not a number")
        yield (
            number,
            service.Entry(
                kind=get.get("type") or get.get("kind", ""),
                value=get.get("value", ""),
                port=int(port_text) if port_text else None,
                seen_from=_time(get.get("seen_from", ""), "seen_from", number),
                seen_until=_time(get.get("seen_until", ""), "seen_until", number),
                time_zone=get.get("time_zone") or None,
                chain=get.get("chain") or None,
                platform=get.get("platform") or None,
                location=f"line {number}",
            ),
        )


def import_csv(
    session: Session,
    actor: Principal,
    item: IdentSet,
    open_text: Callable[[], IO[str]],
    *,
    default_region: str | None = None,
    skip_invalid: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Check, then store, the identifiers of a CSV file into a set (one transaction).

    ``open_text`` opens the file afresh (it is read twice); ``progress`` is called with the
    number of rows handled since the last call (both passes, so a bar counts to 2 x rows).
    Raises :class:`InvalidInput` naming the first bad rows when any is invalid and
    ``skip_invalid`` is false — nothing is stored then.
    """
    require(actor, Permission.IDENTIFIERS_WRITE)
    if item.authority_id != actor.authority_id:
        raise NotFound("no such identifier set, or not kept by your authority")
    report = ImportReport()
    try:
        with open_text() as text:
            for line, entry in _rows(text):
                report.rows += 1
                try:
                    service.prepare(entry, default_region=default_region)
                except InvalidInput as exc:
                    report.invalid += 1
                    if len(report.errors) < MAX_ERRORS_SHOWN:
                        report.errors.append(f"line {line}: {exc.detail}")
                if progress and report.rows % 1000 == 0:
                    progress(1000)
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", field="file") from None
    except csv.Error as exc:
        raise InvalidInput(f"not a CSV file: {exc}", field="file") from None
    if progress:
        progress(report.rows % 1000)
    if report.invalid and not skip_invalid:
        shown = "; ".join(report.errors)
        raise InvalidInput(
            f"{report.invalid} of {report.rows} rows are invalid, nothing was imported: {shown}",
            field="file",
        )
    where = where_of(item)  # imports accumulate: the set's earlier identifiers stay
    batch: list[service.Entry] = []

    def flush() -> None:
        stored, known = _append(session, where, batch, default_region)
        report.stored += stored
        report.known_elsewhere += known
        if progress:
            progress(len(batch))
        batch.clear()

    with open_text() as text:
        for _line, entry in _rows(text):
            batch.append(entry)
            if len(batch) >= BATCH:
                flush()
        if batch:
            flush()
    record(
        session,
        actor=actor,
        action="identifiers.imported",
        object_type="identifier_set",
        object_id=item.public_id,
        details={
            "rows": report.rows,
            "stored": report.stored,
            "invalid": report.invalid,
            "known_elsewhere": report.known_elsewhere,
        },
    )
    return report


def _append(
    session: Session, where: service.Where, entries: list[service.Entry], region: str | None
) -> tuple[int, int]:
    """Store one batch; how many rows were stored and how many of them others already hold."""
    prepared = []
    for entry in entries:
        try:
            prepared.append(service.prepare(entry, default_region=region))
        except InvalidInput:
            continue
    digests = [digest(p.normalized.kind, p.normalized.canonical) for p in prepared]
    held = bulk.known_counts(session, digests, exclude_scope=(where.scope_type, where.scope_id))
    stored = service.append_occurrences(session, where, prepared, source="imported")
    return stored, sum(1 for d in digests if d in held)


def read_text(data: bytes) -> Callable[[], IO[str]]:
    """An opener for bytes already in memory (uploads through the API)."""

    def opener() -> IO[str]:
        return io.StringIO(data.decode("utf-8-sig"))

    return opener
