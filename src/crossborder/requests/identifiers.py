"""Requests in the identifier index: what a request, its messages and attachments name.

A request is one scope (``request`` / its public id): its structured identifiers (``entered``,
or ``received`` for a copy from another node), identifiers found in its summary of facts,
in its messages and in its attachments' text (``extracted``) all take the request's
need-to-know. The authority that contributed an identifier — the sender for the request's
own fields, the author's authority for a message or an attachment — is the one another
officer is told to contact.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.auth.permissions import Principal
from crossborder.core.clock import ensure_utc
from crossborder.core.errors import InvalidInput
from crossborder.directory.models import Authority
from crossborder.evidence import storage
from crossborder.evidence.models import Attachment
from crossborder.requests.models import CooperationRequest, RequestMessage
from crossborder.selectors import service as selectors
from crossborder.selectors.extract import MAX_BYTES, extract, extract_from_file
from crossborder.selectors.models import IdentScan
from crossborder.selectors.normalize import InvalidIdentifier
from crossborder.selectors.scopes import ScopeLabel

log = logging.getLogger("crossborder.requests.identifiers")
SCANNABLE: Final = ("text/", "application/json", "application/pdf", "application/csv")


class RequestScopes:
    def visible(self, session: Session, actor: Principal, ids: Collection[str]) -> set[str]:
        from crossborder.requests.service import may_see

        rows = session.scalars(
            select(CooperationRequest).where(CooperationRequest.public_id.in_(list(ids)))
        )
        return {r.public_id for r in rows if may_see(r, actor)}

    def describe(self, session: Session, ids: Collection[str]) -> dict[str, ScopeLabel]:
        rows = session.execute(
            select(
                CooperationRequest.public_id,
                CooperationRequest.reference,
                CooperationRequest.title,
            ).where(CooperationRequest.public_id.in_(list(ids)))
        )
        return {pid: ScopeLabel(f"{ref} — {title}", f"/requests/{pid}") for pid, ref, title in rows}


def region_of(session: Session, authority_id: int | None) -> str | None:
    """The default phone region of an authority: its state's ISO 3166 code."""
    if authority_id is None:
        return None
    authority = session.get(Authority, authority_id)
    return authority.state.alpha2 if authority and authority.state else None


def _entries(req: CooperationRequest) -> list[selectors.Entry]:
    entries = []
    for item in req.identifiers or []:
        start, end = item.get("window_start"), item.get("window_end")
        entries.append(
            selectors.Entry(
                kind=str(item.get("kind", "")),
                value=str(item.get("value", "")),
                seen_from=ensure_utc(_parse(start)) if start else None,
                seen_until=ensure_utc(_parse(end)) if end else None,
                time_zone=item.get("time_zone") or None,
            )
        )
    return entries


def _parse(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def check_identifiers(session: Session, req: CooperationRequest) -> None:
    """Refuse a draft whose identifiers do not normalise, naming the row (nothing written)."""
    region = region_of(session, req.sender_authority_id)
    for position, entry in enumerate(_entries(req)):
        try:
            selectors.prepare(entry, default_region=region)
        except InvalidIdentifier as exc:
            raise InvalidInput(exc.detail, field=f"identifiers.{position}.value") from None


def index_request(session: Session, req: CooperationRequest, *, received: bool = False) -> None:
    """(Re)index a request's own fields: its identifiers and what its summary names."""
    region = region_of(session, req.sender_authority_id)
    where = selectors.Where(
        "request", req.public_id, "request", req.public_id, req.sender_authority_id
    )
    selectors.index_record(
        session,
        where,
        _entries(req),
        source="received" if received else "entered",
        default_region=region,
        replace_sources=("entered", "received"),
        strict=not received,
    )
    found = extract(req.summary_of_facts or "", default_region=region)
    selectors.index_record(
        session,
        where,
        [selectors.Entry(f.kind, f.raw, location="summary of facts") for f in found],
        source="extracted",
        default_region=region,
    )


def index_message(session: Session, req: CooperationRequest, message: RequestMessage) -> None:
    region = region_of(session, message.author_authority_id)
    found = extract(message.body or "", default_region=region)
    where = selectors.Where(
        "message", str(message.id), "request", req.public_id, message.author_authority_id
    )
    selectors.index_record(
        session,
        where,
        [selectors.Entry(f.kind, f.raw, location="message") for f in found],
        source="extracted",
        default_region=region,
    )


def scan_attachments(session: Session, data_dir: Path, *, limit: int = 20) -> int:
    """Extract identifiers from request attachments not yet scanned (the worker calls this).

    Each attachment is scanned once; the scan row says how many identifiers were found, or
    why none could be (not a text document, too large, unreadable). Returns how many
    attachments were scanned. Commits after each attachment.
    """
    scanned = select(IdentScan.record_id).where(IdentScan.record_type == "attachment")
    rows = session.scalars(
        select(Attachment)
        .where(Attachment.owner_type == "request", Attachment.public_id.not_in(scanned))
        .order_by(Attachment.id)
        .limit(limit)
    ).all()
    root = storage.evidence_root(data_dir)
    done = 0
    for attachment in rows:
        req = session.scalar(
            select(CooperationRequest).where(CooperationRequest.public_id == attachment.owner_id)
        )
        found, error = 0, None
        if req is None:
            error = "the request is gone"
        elif not attachment.media_type.startswith(SCANNABLE):
            error = "not a text, CSV, JSON or PDF document"
        elif attachment.size > MAX_BYTES:
            error = "too large to scan"
        else:
            region = region_of(session, attachment.uploaded_by_authority_id)
            try:
                items = extract_from_file(
                    storage.blob_path(root, attachment.sha256),
                    default_region=region,
                    name=attachment.filename,
                )
            except InvalidInput as exc:
                error = exc.detail[:300]
            except Exception:  # a hostile file must not stop the worker
                log.warning("attachment %s could not be scanned", attachment.public_id)
                error = "the file could not be read"
            else:
                where = selectors.Where(
                    "attachment",
                    attachment.public_id,
                    "request",
                    req.public_id,
                    attachment.uploaded_by_authority_id or req.sender_authority_id,
                )
                stored = selectors.index_record(
                    session,
                    where,
                    [
                        selectors.Entry(
                            f.kind, f.raw, location=f"{attachment.filename} {f.location}".strip()
                        )
                        for f in items
                    ],
                    source="extracted",
                    default_region=region,
                )
                found = stored.stored
        session.add(
            IdentScan(
                record_type="attachment", record_id=attachment.public_id, found=found, error=error
            )
        )
        session.commit()
        done += 1
    return done
